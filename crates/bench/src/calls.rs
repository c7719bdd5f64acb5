//! Accounting of Twilio calls, from the simulator's request counters and its stream of
//! successful writes.
//!
//! Reconciles are not visible from outside the controller, so they are counted through the one
//! call each makes exactly once after its cluster-side checks pass: a binding reconcile finds
//! its Business Profile once (`ListCustomerProfile` by name or `FetchCustomerProfile` by SID), a
//! trust product reconcile settles its Trust Product once (`FetchTrustProduct` when the SID is
//! known, else the look-up `ListTrustProduct`). Reconciles that stop before Twilio (waiting for
//! the binding) are not counted; they make no Twilio call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use trusthub_sim::{Counters, SimServer, WriteOrigin};

/// The writes one onboarding needs, by operationId, for `products` products of `k` numbers.
pub fn minimum_writes(products: usize, k: usize) -> BTreeMap<String, u64> {
    let (n, k) = (products as u64, k as u64);
    [
        ("CreateCustomerProfileChannelEndpointAssignment", n * k),
        ("CreateTrustProduct", n),
        ("CreateTrustProductEntityAssignment", n),
        ("CreateTrustProductChannelEndpointAssignment", n * k),
        ("CreateTrustProductEvaluation", n),
        ("UpdateTrustProduct", n),
    ]
    .into_iter()
    .map(|(op, count)| (op.to_string(), count))
    .collect()
}

/// The reads one onboarding cannot do without, by operationId, for `products` products (each
/// with its own binding) of `k` numbers given by E.164 number and subaccount:
/// - `ListCustomerProfile`, one per binding: the profile is named by its friendly name, and its
///   SID and vetting state come only from Trust Hub;
/// - `ListIncomingPhoneNumber`, one per number: an assignment needs the number's `PN…` SID,
///   which only the number's subaccount knows;
/// - `ListCustomerProfileChannelEndpointAssignment`, one per binding: Twilio has no idempotency
///   key, so the numbers already on the profile are looked up (in one filtered call) before
///   assigning, or a retry after a crash would assign a number twice;
/// - `ListTrustProduct`, one per product and one more: the same for the Trust Product, looked up
///   by name and policy before the create (and adopted when found); then, when none has the
///   name, the SHAKEN/STIR products are listed for one attached to the profile by someone else
///   (Twilio adds one to approved Primary Customer Profiles by itself), to adopt instead of
///   creating a second one. That listing covers the whole account, so creates that ask for it
///   at once share one: at least one in all, at most one per product.
///
/// Vetting polls are not in it: they come after submission, on a schedule, not per onboarding.
pub fn minimum_reads(products: usize, k: usize) -> BTreeMap<String, u64> {
    let (n, k) = (products as u64, k as u64);
    [
        ("ListCustomerProfile", n),
        ("ListIncomingPhoneNumber", n * k),
        ("ListCustomerProfileChannelEndpointAssignment", n),
        ("ListTrustProduct", n + 1),
    ]
    .into_iter()
    .map(|(op, count)| (op.to_string(), count))
    .collect()
}

/// Twilio's largest page (`PageSize=1000`), which the operator asks for.
pub const PAGE_SIZE: usize = 1000;

/// Pages of one paged listing of `items` items (an empty listing is still one page).
pub fn pages(items: usize) -> u64 {
    items.max(1).div_ceil(PAGE_SIZE) as u64
}

/// The reads one discovery listing cannot do without, with `allSubaccounts` over subaccounts
/// holding `numbers_per_subaccount[s]` numbers: the parent's Accounts listing (the parent and
/// every subaccount, 1,000 a page) and one IncomingPhoneNumbers listing per subaccount (1,000
/// numbers a page, one page when it holds none).
pub fn discovery_pages(numbers_per_subaccount: &[usize]) -> BTreeMap<String, u64> {
    [
        ("ListAccount", pages(numbers_per_subaccount.len() + 1)),
        (
            "ListIncomingPhoneNumber",
            numbers_per_subaccount.iter().map(|n| pages(*n)).sum(),
        ),
    ]
    .into_iter()
    .map(|(op, count)| (op.to_string(), count))
    .collect()
}

/// The reads one onboarding of one binding with discovery (and its one product) cannot do
/// without, when discovery lists the numbers `listings` times: [`discovery_pages`] per listing,
/// and the fixed reads of [`minimum_reads`] without its per-number look-ups (discovery answers
/// them): the profile by name, the profile's assignments (one page: the profile starts with
/// none), the product by name and among the SHAKEN/STIR products.
pub fn minimum_reads_discovery(
    numbers_per_subaccount: &[usize],
    listings: u64,
) -> BTreeMap<String, u64> {
    let mut reads = minimum_reads(1, 0);
    reads.remove("ListIncomingPhoneNumber");
    for (op, count) in discovery_pages(numbers_per_subaccount) {
        *reads.entry(op).or_insert(0) += count * listings;
    }
    reads
}

/// Whether an operationId changes state in Twilio.
pub fn is_write(operation: &str) -> bool {
    ["Create", "Update", "Delete"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Counts every successful write the simulator reports, from the moment it is created.
pub struct WriteTally {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    lost: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl WriteTally {
    /// Subscribes to `sim`'s writes.
    pub fn start(sim: &SimServer) -> WriteTally {
        let mut rx = sim.subscribe_writes();
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let lost = Arc::new(Mutex::new(0));
        let (c, l) = (counts.clone(), lost.clone());
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    // Numbers bought or released through the simulator's admin API are Twilio
                    // acting on its own, not the operator's writes.
                    Ok(event) if event.origin == WriteOrigin::Admin => {}
                    Ok(event) => {
                        *c.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(event.operation_id)
                            .or_insert(0) += 1;
                    }
                    Err(RecvError::Lagged(n)) => *l.lock().unwrap_or_else(|e| e.into_inner()) += n,
                    Err(RecvError::Closed) => break,
                }
            }
        });
        WriteTally { counts, lost, task }
    }

    /// Successful writes so far by operationId, and how many events were missed (0 normally).
    pub fn snapshot(&self) -> (BTreeMap<String, u64>, u64) {
        (
            self.counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            *self.lost.lock().unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl Drop for WriteTally {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Twilio calls between two counter snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallSummary {
    /// Requests by operationId (every attempt, including those answered 429).
    pub requests: BTreeMap<String, u64>,
    /// All requests.
    pub total_requests: u64,
    /// Read requests (List/Fetch), including extra pages.
    pub reads: u64,
    /// Write requests (Create/Update/Delete attempts).
    pub write_requests: u64,
    /// 429s answered because more than `max_in_flight` requests were in flight.
    pub concurrency_429: u64,
    /// Binding reconciles that reached Twilio (see the module docs).
    pub binding_reconciles: u64,
    /// Trust product reconciles that reached Twilio.
    pub product_reconciles: u64,
    /// Requests served (not refused by the limit), and their summed time in flight at the
    /// simulator, microseconds.
    pub served: u64,
    pub served_micros: u64,
}

impl CallSummary {
    /// The calls made between `before` and `after`.
    pub fn between(before: &Counters, after: &Counters) -> CallSummary {
        let requests: BTreeMap<String, u64> = after
            .by_operation
            .iter()
            .map(|(op, n)| (op.clone(), n.saturating_sub(before.calls(op))))
            .filter(|(_, n)| *n > 0)
            .collect();
        let fault = |c: &Counters| c.faults.get("concurrency_429").copied().unwrap_or(0);
        let write_requests = requests
            .iter()
            .filter(|(op, _)| is_write(op))
            .map(|(_, n)| n)
            .sum();
        let reads = requests
            .iter()
            .filter(|(op, _)| !is_write(op))
            .map(|(_, n)| n)
            .sum();
        CallSummary {
            total_requests: after.requests.saturating_sub(before.requests),
            reads,
            write_requests,
            concurrency_429: fault(after).saturating_sub(fault(before)),
            binding_reconciles: ["ListCustomerProfile", "FetchCustomerProfile"]
                .iter()
                .map(|op| requests.get(*op).copied().unwrap_or(0))
                .sum(),
            product_reconciles: ["FetchTrustProduct", "ListTrustProduct"]
                .iter()
                .map(|op| requests.get(*op).copied().unwrap_or(0))
                .sum(),
            served: after.served.saturating_sub(before.served),
            served_micros: after.served_micros.saturating_sub(before.served_micros),
            requests,
        }
    }

    /// Mean time a served request was in flight at the simulator (the call latency), seconds.
    pub fn mean_latency_secs(&self) -> Option<f64> {
        (self.served > 0).then(|| self.served_micros as f64 / 1e6 / self.served as f64)
    }

    /// Mean number of requests in flight at the simulator over `wall_secs`.
    pub fn mean_in_flight(&self, wall_secs: f64) -> Option<f64> {
        (wall_secs > 0.0).then(|| self.served_micros as f64 / 1e6 / wall_secs)
    }

    /// Read requests per reconcile that reached Twilio (both kinds together).
    pub fn reads_per_reconcile(&self) -> f64 {
        let reconciles = self.binding_reconciles + self.product_reconciles;
        if reconciles == 0 {
            0.0
        } else {
            self.reads as f64 / reconciles as f64
        }
    }
}

/// Trust products, channel endpoint assignments and entity assignments that exist more than
/// once in the simulator (0 when the operator never duplicated a create).
pub fn duplicates(sim: &SimServer) -> u64 {
    fn extra<T: Ord>(mut items: Vec<T>) -> u64 {
        let before = items.len();
        items.sort();
        items.dedup();
        (before - items.len()) as u64
    }
    let products = sim
        .trust_products()
        .into_iter()
        .map(|p| (p.friendly_name, p.policy_sid))
        .collect();
    let channels = sim
        .channel_assignments()
        .into_iter()
        .map(|a| (a.bundle_sid, a.channel_endpoint_sid))
        .collect();
    let entities = sim
        .entity_assignments()
        .into_iter()
        .map(|a| (a.bundle_sid, a.object_sid))
        .collect();
    extra(products) + extra(channels) + extra(entities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_is_two_k_plus_four_per_product() {
        let total: u64 = minimum_writes(10, 3).values().sum();
        assert_eq!(total, 10 * (2 * 3 + 4));
        assert!(is_write("UpdateTrustProduct") && !is_write("FetchTrustProduct"));
    }

    #[test]
    fn discovery_minimum_counts_a_page_per_subaccount_per_thousand_numbers() {
        // 2,500 numbers over 2 subaccounts (1,250 each: 2 pages each), one empty subaccount.
        let per = [1250, 1250, 0];
        let pages = discovery_pages(&per);
        assert_eq!(pages["ListAccount"], 1);
        assert_eq!(pages["ListIncomingPhoneNumber"], 5);
        let reads = minimum_reads_discovery(&per, 2);
        assert_eq!(reads["ListIncomingPhoneNumber"], 10);
        assert_eq!(reads["ListAccount"], 2);
        assert_eq!(reads["ListCustomerProfile"], 1);
        assert_eq!(reads["ListCustomerProfileChannelEndpointAssignment"], 1);
        assert_eq!(reads["ListTrustProduct"], 2);
        // 500 subaccounts and the parent: 501 accounts, one page.
        assert_eq!(discovery_pages(&[100; 500])["ListAccount"], 1);
        assert_eq!(discovery_pages(&[100; 1000])["ListAccount"], 2);
    }

    #[test]
    fn summary_subtracts_the_earlier_snapshot() {
        let mut before = Counters::default();
        before.record_request("GET /v1/TrustProducts", Some("ListTrustProduct"));
        let mut after = before.clone();
        after.record_request("GET /v1/TrustProducts", Some("ListTrustProduct"));
        after.record_request("POST /v1/TrustProducts", Some("CreateTrustProduct"));
        after.record_request(
            "GET /v1/TrustProducts/{Sid}/EntityAssignments",
            Some("ListTrustProductEntityAssignment"),
        );
        after.record_fault("concurrency_429");
        let s = CallSummary::between(&before, &after);
        assert_eq!((s.reads, s.write_requests, s.total_requests), (2, 1, 3));
        // The look-up (ListTrustProduct) is the one call that marks a product reconcile.
        assert_eq!((s.product_reconciles, s.concurrency_429), (1, 1));
        assert_eq!(s.reads_per_reconcile(), 2.0);
    }
}
