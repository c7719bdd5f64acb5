//! The account's SHAKEN/STIR products, listed before each create (to adopt the one Twilio may
//! have attached to the profile), one listing at a time per account and policy.
//!
//! The listing holds every SHAKEN/STIR product of the account. Onboarding 1,000 products made
//! 1,000 listings of up to 1,000 products each, eight at once: the controller parsed about
//! 400 MB of JSON and held several pages at a time. Now a caller waits for the listing in
//! flight, and then takes the last one if it started after the caller's reconcile did: like
//! every other observation of that reconcile, it shows Trust Hub as it is since the reconcile
//! began, so nothing is missed that a listing of its own would have been sure to see. Creates
//! that run at once share a few listings instead of one each; a lone create lists as before.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::twilio::{TrustProduct, TwilioError};

/// A finished listing.
struct Listed {
    started: Instant,
    products: Arc<Vec<TrustProduct>>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Listed>>>;

/// The last listing of each (account, policy), behind a lock held while the next one runs.
#[derive(Default)]
pub struct ProductListings(Mutex<HashMap<(String, String), Slot>>);

impl ProductListings {
    fn slot(&self, account: &str, policy: &str) -> Slot {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry((account.to_string(), policy.to_string()))
            .or_default()
            .clone()
    }

    /// The products `list` returns for `account` and `policy`, from a listing that started no
    /// earlier than `since` (the caller's reconcile): the last one if it did, else a new one.
    /// Callers keep what `list` keeps (only the products they may need), so the slot holds
    /// little.
    pub async fn listed<F, Fut>(
        &self,
        (account, policy): (&str, &str),
        since: Instant,
        list: F,
    ) -> Result<Arc<Vec<TrustProduct>>, TwilioError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<TrustProduct>, TwilioError>>,
    {
        let slot = self.slot(account, policy);
        let mut last = slot.lock().await;
        if let Some(fresh) = last.as_ref().filter(|l| l.started >= since) {
            return Ok(fresh.products.clone());
        }
        let started = Instant::now();
        let products = Arc::new(list().await?);
        *last = Some(Listed {
            started,
            products: products.clone(),
        });
        Ok(products)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    fn product(sid: &str) -> TrustProduct {
        TrustProduct {
            sid: Some(sid.into()),
            ..Default::default()
        }
    }

    const KEY: (&str, &str) = ("AC1", "RN1");

    /// Callers that ask while a listing runs share the next one; a caller whose reconcile began
    /// after a listing started never takes it; a failed listing is not shared.
    #[tokio::test]
    async fn callers_waiting_on_a_listing_share_the_next_one_never_an_older_one() {
        let listings = Arc::new(ProductListings::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let list = |calls: Arc<AtomicUsize>, gate: Option<oneshot::Receiver<()>>| async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Ok(vec![product(&format!("BU{n}"))])
        };
        // A runs a listing held open; B and C ask meanwhile.
        let (open, gate) = oneshot::channel();
        let a = tokio::spawn({
            let (l, c) = (listings.clone(), calls.clone());
            async move { l.listed(KEY, Instant::now(), || list(c, Some(gate))).await }
        });
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (l, c) = (listings.clone(), calls.clone());
                tokio::spawn(async move { l.listed(KEY, Instant::now(), || list(c, None)).await })
            })
            .collect();
        for _ in 0..4 {
            // Both waiters are queued on the listing in flight.
            tokio::task::yield_now().await;
        }
        open.send(()).expect("A waits");
        let sid =
            |r: Result<Arc<Vec<TrustProduct>>, TwilioError>| r.expect("listed")[0].sid.clone();
        assert_eq!(sid(a.await.expect("A")), Some("BU1".into()));
        let mut seen = Vec::new();
        for w in waiters {
            seen.push(sid(w.await.expect("waiter")));
        }
        assert_eq!(seen, [Some("BU2".into()), Some("BU2".into())]);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one listing for both waiters"
        );

        // A reconcile that began after the last listing started: a listing of its own.
        let after = listings.listed(KEY, Instant::now(), || list(calls.clone(), None));
        assert_eq!(sid(after.await), Some("BU3".into()));
        // One that began before it takes the last listing, started after it began.
        let began = Instant::now();
        let own = listings.listed(KEY, began, || list(calls.clone(), None));
        assert_eq!(sid(own.await), Some("BU4".into()));
        let shared = listings.listed(KEY, began, || list(calls.clone(), None));
        assert_eq!(sid(shared.await), Some("BU4".into()));
        // Another account or policy never shares.
        let other = listings.listed(("AC2", "RN1"), began, || list(calls.clone(), None));
        assert_eq!(sid(other.await), Some("BU5".into()));

        // A failure is the caller's alone; the next caller lists again.
        let down = || async { Err(TwilioError::Setup("down".into())) };
        assert!(listings.listed(KEY, Instant::now(), down).await.is_err());
        let again = listings.listed(KEY, began, || list(calls.clone(), None));
        assert_eq!(
            sid(again.await),
            Some("BU4".into()),
            "the last success stays"
        );
        let later = listings.listed(KEY, Instant::now(), || list(calls.clone(), None));
        assert_eq!(sid(later.await), Some("BU6".into()));
    }
}
