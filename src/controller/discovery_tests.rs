use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use crate::planner::binding::NumberTarget;
use crate::planner::discovery::{NOT_FOUND, UNKNOWN_STATUS};
use crate::twilio::{
    AccountStatus, BundleFilter, ChannelEndpointAssignment, CreateTrustProduct, CustomerProfile,
    EntityAssignment, Evaluation, NumberCapabilities, Policy, TrustProduct, TwilioErrorBody,
    UpdateTrustProduct,
};

type R<T> = Result<T, TwilioError>;

const PARENT: &str = "AC00000000000000000000000000000000";

fn ac(n: u32) -> String {
    format!("AC{n:032x}")
}

fn pn(n: u32) -> String {
    format!("PN{n:032x}")
}

fn api_error(status: u16) -> TwilioError {
    TwilioError::Api {
        operation: "Fake",
        status,
        body: Box::new(TwilioErrorBody::default()),
        retry_after: None,
    }
}

/// Answers the Accounts and IncomingPhoneNumbers operations from tables, counts calls and
/// records how many number listings ran at once; every other operation is a bug here.
#[derive(Default)]
struct Fake {
    accounts: Vec<Account>,
    /// Per account: its numbers, or the HTTP status Twilio answers.
    numbers: HashMap<String, Result<Vec<IncomingPhoneNumber>, u16>>,
    /// HTTP status `fetch_account` and `list_accounts` answer instead, when set.
    accounts_error: Option<u16>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    listed: Mutex<Vec<String>>,
}

fn account(n: u32, status: AccountStatus) -> Account {
    Account {
        sid: Some(ac(n)),
        owner_account_sid: Some(PARENT.into()),
        status: Some(status),
        ..Default::default()
    }
}

fn number(n: u32, voice: bool) -> IncomingPhoneNumber {
    IncomingPhoneNumber {
        sid: Some(pn(n)),
        phone_number: Some(format!("+1415555{n:04}")),
        friendly_name: Some(format!("line {n}")),
        capabilities: Some(NumberCapabilities {
            voice: Some(voice),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The parent (2 numbers), subaccounts 1–3 active with 3 numbers each (the third not voice),
/// 4 suspended, 5 closed, 6 active but answering 403, 7 active but answering 404.
fn fake() -> Fake {
    let mut accounts = vec![Account {
        sid: Some(PARENT.into()),
        owner_account_sid: Some(PARENT.into()),
        status: Some(AccountStatus::Active),
        ..Default::default()
    }];
    let mut numbers = HashMap::new();
    numbers.insert(
        PARENT.to_string(),
        Ok(vec![number(900, true), number(901, true)]),
    );
    for a in 1..=3 {
        accounts.push(account(a, AccountStatus::Active));
        let listed = (0..3).map(|i| number(a * 10 + i, i != 2)).collect();
        numbers.insert(ac(a), Ok(listed));
    }
    accounts.push(account(4, AccountStatus::Suspended));
    accounts.push(account(5, AccountStatus::Closed));
    accounts.push(account(6, AccountStatus::Active));
    accounts.push(account(7, AccountStatus::Active));
    numbers.insert(ac(6), Err(403));
    numbers.insert(ac(7), Err(404));
    Fake {
        accounts,
        numbers,
        ..Default::default()
    }
}

fn spec(all: bool, subaccounts: &[String]) -> NumberDiscovery {
    NumberDiscovery {
        subaccounts: subaccounts.to_vec(),
        all_subaccounts: all,
        include_parent: false,
        voice_only: true,
        phone_number_prefix: None,
        friendly_name_pattern: None,
        include: Vec::new(),
        exclude: Vec::new(),
        interval: None,
    }
}

fn skipped(sid: String, status: &str) -> Skipped {
    Skipped {
        sid,
        status: status.into(),
    }
}

fn selected(d: &Discovered) -> Vec<String> {
    d.selection
        .numbers
        .iter()
        .map(|t| match t {
            NumberTarget::Resolved { number_sid, .. } => number_sid.to_string(),
            NumberTarget::Unresolvable { shown, .. } => shown.clone(),
        })
        .collect()
}

#[tokio::test]
async fn all_subaccounts_are_listed_concurrently_and_refusals_are_reported() {
    let twilio = fake();
    let mut spec = spec(true, &[]);
    spec.include_parent = true;
    let got = discover(&twilio, &spec, 2, &Known::default())
        .await
        .unwrap();
    let want: Vec<String> = [900, 901, 10, 11, 20, 21, 30, 31].map(pn).into();
    let mut want = want;
    want.sort();
    assert_eq!(selected(&got), want);
    assert_eq!(
        got.skipped,
        vec![
            skipped(ac(4), "suspended"),
            skipped(ac(5), "closed"),
            skipped(ac(6), REFUSED),
            skipped(ac(7), REFUSED),
        ]
    );
    // The parent and subaccounts 1–3; 6 and 7 were tried but refused.
    assert_eq!(got.accounts_listed, 4);
    // One account listing, six number listings.
    assert_eq!((got.calls, twilio.calls.load(Ordering::SeqCst)), (7, 7));
    assert_eq!(got.selection.counts.seen, 11);
    assert_eq!(
        twilio.peak.load(Ordering::SeqCst),
        2,
        "bounded by max_in_flight"
    );
    assert_eq!(twilio.listed.lock().unwrap().len(), 6);
}

#[tokio::test]
async fn named_subaccounts_are_fetched_and_checked() {
    let twilio = fake();
    let spec = spec(false, &[ac(1), ac(4), ac(9)]);
    let got = discover(&twilio, &spec, 10, &Known::default())
        .await
        .unwrap();
    assert_eq!(selected(&got), vec![pn(10), pn(11)]);
    assert_eq!(
        got.skipped,
        vec![skipped(ac(4), "suspended"), skipped(ac(9), NOT_FOUND)]
    );
    // Three fetches, one listing.
    assert_eq!((got.calls, got.accounts_listed), (4, 1));
}

/// A number the binding already holds keeps its one copy: the selection shares the known
/// SID rather than a copy made from the listing.
#[tokio::test]
async fn known_numbers_are_shared_not_copied() {
    let twilio = fake();
    let spec = spec(false, &[ac(1)]);
    let known_sid = Sid::from(pn(10));
    let held = [known_sid.clone()];
    let known = Known::new(held.iter());
    let got = discover(&twilio, &spec, 10, &known).await.unwrap();
    let sids: Vec<&Sid> = got
        .selection
        .numbers
        .iter()
        .filter_map(|t| match t {
            NumberTarget::Resolved { number_sid, .. } => Some(number_sid),
            NumberTarget::Unresolvable { .. } => None,
        })
        .collect();
    assert_eq!(sids.len(), 2);
    assert!(
        std::sync::Arc::ptr_eq(sids[0], &known_sid),
        "PN10 is the known copy"
    );
    assert!(!std::sync::Arc::ptr_eq(sids[1], &known_sid));
    assert_eq!(**sids[1], pn(11));
}

#[tokio::test]
async fn named_subaccounts_are_listed_unchecked_when_accounts_are_unreadable() {
    let mut twilio = fake();
    twilio.accounts_error = Some(403);
    let got = discover(&twilio, &spec(false, &[ac(2), ac(7)]), 0, &Known::default())
        .await
        .unwrap();
    assert_eq!(selected(&got), vec![pn(20), pn(21)]);
    assert_eq!(got.skipped, vec![skipped(ac(7), REFUSED)]);
    assert_eq!(twilio.peak.load(Ordering::SeqCst), 1, "0 in flight means 1");
}

#[tokio::test]
async fn failures_other_than_a_refused_account_fail_the_discovery() {
    let mut twilio = fake();
    twilio.accounts_error = Some(403);
    let err = discover(&twilio, &spec(true, &[]), 4, &Known::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "TwilioAuthenticationFailed");

    let mut twilio = fake();
    twilio.numbers.insert(ac(2), Err(503));
    let err = discover(&twilio, &spec(true, &[]), 4, &Known::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), super::super::ErrorClass::Transient);
}

#[tokio::test]
async fn numbers_and_accounts_without_a_sid_are_dropped() {
    let mut twilio = fake();
    twilio.accounts.push(Account {
        sid: None,
        owner_account_sid: Some(PARENT.into()),
        status: Some(AccountStatus::Active),
        ..Default::default()
    });
    twilio.accounts.push(Account {
        sid: Some(ac(8)),
        owner_account_sid: Some(PARENT.into()),
        status: None,
        ..Default::default()
    });
    let mut nameless = number(12, true);
    nameless.sid = None;
    twilio
        .numbers
        .insert(ac(1), Ok(vec![number(10, true), nameless]));
    let got = discover(&twilio, &spec(true, &[]), 4, &Known::default())
        .await
        .unwrap();
    assert!(got.skipped.contains(&skipped(ac(8), UNKNOWN_STATUS)));
    assert_eq!(got.selection.counts.seen, 1 + 3 + 3);
}

#[async_trait]
impl TrustHub for Fake {
    fn account_sid(&self) -> &str {
        PARENT
    }

    async fn list_accounts(&self, _filter: &AccountFilter) -> R<Vec<Account>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.accounts_error {
            Some(status) => Err(api_error(status)),
            None => Ok(self.accounts.clone()),
        }
    }

    async fn fetch_account(&self, sid: &str) -> R<Account> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(status) = self.accounts_error {
            return Err(api_error(status));
        }
        self.accounts
            .iter()
            .find(|a| a.sid.as_deref() == Some(sid))
            .cloned()
            .ok_or_else(|| api_error(404))
    }

    async fn list_incoming_phone_numbers(
        &self,
        account_sid: &str,
        _phone_number: Option<&str>,
    ) -> R<Vec<IncomingPhoneNumber>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        // Stay in flight across a few polls, so concurrent listings overlap.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.listed.lock().unwrap().push(account_sid.to_string());
        match self.numbers.get(account_sid) {
            Some(Ok(numbers)) => Ok(numbers.clone()),
            Some(Err(status)) => Err(api_error(*status)),
            None => Err(api_error(404)),
        }
    }

    async fn fetch_incoming_phone_number(&self, _: &str, _: &str) -> R<IncomingPhoneNumber> {
        unreachable!("discovery lists numbers, it never fetches one")
    }
    async fn list_customer_profiles(&self, _: &BundleFilter) -> R<Vec<CustomerProfile>> {
        unreachable!()
    }
    async fn fetch_customer_profile(&self, _: &str) -> R<CustomerProfile> {
        unreachable!()
    }
    async fn create_customer_profile_channel_endpoint_assignment(
        &self,
        _: &str,
        _: &str,
    ) -> R<ChannelEndpointAssignment> {
        unreachable!()
    }
    async fn list_customer_profile_channel_endpoint_assignments(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> R<Vec<ChannelEndpointAssignment>> {
        unreachable!()
    }
    async fn list_customer_profile_channel_endpoint_assignments_among(
        &self,
        _: &str,
        _: &[String],
    ) -> R<Vec<ChannelEndpointAssignment>> {
        unreachable!()
    }
    async fn delete_customer_profile_channel_endpoint_assignment(&self, _: &str, _: &str) -> R<()> {
        unreachable!()
    }
    async fn create_trust_product(&self, _: &CreateTrustProduct) -> R<TrustProduct> {
        unreachable!()
    }
    async fn list_trust_products(&self, _: &BundleFilter) -> R<Vec<TrustProduct>> {
        unreachable!()
    }
    async fn fetch_trust_product(&self, _: &str) -> R<TrustProduct> {
        unreachable!()
    }
    async fn update_trust_product(&self, _: &str, _: &UpdateTrustProduct) -> R<TrustProduct> {
        unreachable!()
    }
    async fn delete_trust_product(&self, _: &str) -> R<()> {
        unreachable!()
    }
    async fn create_trust_product_entity_assignment(
        &self,
        _: &str,
        _: &str,
    ) -> R<EntityAssignment> {
        unreachable!()
    }
    async fn list_trust_product_entity_assignments(&self, _: &str) -> R<Vec<EntityAssignment>> {
        unreachable!()
    }
    async fn delete_trust_product_entity_assignment(&self, _: &str, _: &str) -> R<()> {
        unreachable!()
    }
    async fn create_trust_product_channel_endpoint_assignment(
        &self,
        _: &str,
        _: &str,
    ) -> R<ChannelEndpointAssignment> {
        unreachable!()
    }
    async fn list_trust_product_channel_endpoint_assignments(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> R<Vec<ChannelEndpointAssignment>> {
        unreachable!()
    }
    async fn delete_trust_product_channel_endpoint_assignment(&self, _: &str, _: &str) -> R<()> {
        unreachable!()
    }
    async fn create_trust_product_evaluation(&self, _: &str, _: &str) -> R<Evaluation> {
        unreachable!()
    }
    async fn list_trust_product_evaluations(&self, _: &str) -> R<Vec<Evaluation>> {
        unreachable!()
    }
    async fn fetch_policy(&self, _: &str) -> R<Policy> {
        unreachable!()
    }
}
