//! 5 trust products × 3 numbers: exactly the minimum writes, exactly the minimum look-ups, no
//! listing of a product's assignments while nothing changed on the cluster's side, a bounded
//! number of reads per reconcile, no duplicates, and no Twilio call at all while idle.

use std::time::Duration;

use trusthub_bench::calls::{CallSummary, minimum_reads, minimum_writes};
use trusthub_bench::controller::{OperatorSettings, Runner};
use trusthub_bench::report::{BenchReport, READS_PER_RECONCILE_BOUND, render};
use trusthub_bench::scenario::{self, OnboardingParams};
use trusthub_sim::Faults;

const PRODUCTS: usize = 5;
const NUMBERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_onboarding_makes_the_minimum_writes_and_is_silent_when_idle() {
    let params = OnboardingParams {
        label: "regression".into(),
        products: PRODUCTS,
        numbers_per_product: NUMBERS,
        subaccounts: 4,
        faults: Faults::none(),
        settings: OperatorSettings {
            review_poll_initial: Duration::from_millis(200),
            review_poll_max: Duration::from_millis(500),
            approved_resync: Duration::from_secs(3600),
            ..OperatorSettings::default()
        },
        review_delay: Some(Duration::from_millis(100)),
        approve_delay: Some(Duration::from_millis(300)),
        wait_ready: true,
        timeout: Duration::from_secs(90),
        discovery: None,
    };
    let (report, mut session) = scenario::onboarding(&Runner::InProcess, &params)
        .await
        .expect("onboarding finishes");
    // Shown with --nocapture: the per-kind counts of this run.
    eprintln!(
        "{}",
        render(&BenchReport {
            onboarding: Some(report.clone()),
            ..BenchReport::default()
        })
    );
    assert_eq!(
        report.writes,
        minimum_writes(PRODUCTS, NUMBERS),
        "exactly the minimum Twilio writes; requests made: {:#?}",
        report.calls.requests
    );
    assert_eq!(report.writes_missed, 0);
    assert_eq!(report.duplicates, 0, "no duplicated product or assignment");
    assert_eq!(report.calls.concurrency_429, 0);
    let calls: &CallSummary = &report.calls;
    assert!(
        calls.binding_reconciles >= PRODUCTS as u64 && calls.product_reconciles >= PRODUCTS as u64,
        "every object reconciled against Twilio: {calls:#?}"
    );
    let made = |op: &str| calls.requests.get(op).copied().unwrap_or(0);
    for (op, minimum) in minimum_reads(PRODUCTS, NUMBERS) {
        // The account-wide SHAKEN/STIR listing before a create is shared by the creates that
        // ask for it at once: from one in all to one per product.
        let most = match op.as_str() {
            "ListTrustProduct" => minimum + PRODUCTS as u64 - 1,
            _ => minimum,
        };
        assert!(
            (minimum..=most).contains(&made(&op)),
            "{op}: each look-up once per onboarding ({minimum}..={most}): {:#?}",
            calls.requests
        );
    }
    // A product this reconcile created has no assignments to list, and the vetting's course
    // (pending-review, in-review, approved) changes none: the status already says them all.
    for op in [
        "ListTrustProductEntityAssignment",
        "ListTrustProductChannelEndpointAssignment",
    ] {
        assert_eq!(made(op), 0, "{op} on the happy path: {:#?}", calls.requests);
    }
    // The policy is checked once per credentials, save for first reconciles racing each other.
    assert!(
        made("FetchPolicies") <= u64::from(OperatorSettings::default().concurrency),
        "{:#?}",
        calls.requests
    );
    assert!(
        calls.reads_per_reconcile() <= READS_PER_RECONCILE_BOUND,
        "{:.2} reads per reconcile exceeds {READS_PER_RECONCILE_BOUND}: {:#?}",
        calls.reads_per_reconcile(),
        calls.requests
    );

    // Cluster reads: the binding comes from the watch cache, not from the API server on every
    // reconcile. Secrets are read by name only (`--secret-access=get`, the default): never
    // listed or watched; each reconcile reads its Secret (so a deleted or rotated Secret is
    // never used past its change), and the recheck reads each named Secret once a minute.
    // (`--secret-access=watch` serves them from a metadata watch instead: docs/runtime.md.)
    let api_requests = session.env.api.requests().snapshot();
    let api = |key: &str| api_requests.get(key).copied().unwrap_or(0);
    for watched in ["businessprofilebindings", "shakenstirtrustproducts"] {
        assert_eq!(
            api(&format!("watch {watched}")),
            1,
            "one watch of {watched}"
        );
    }
    for verb in ["list", "watch"] {
        assert_eq!(
            api(&format!("{verb} secrets")),
            0,
            "Secrets are never {verb}ed: {api_requests:#?}"
        );
    }
    // `reconciles` counts only those that reached Twilio; a product waiting for its binding also
    // reconciles (and reads its Secret) without a Twilio call, hence the factor 2.
    let reconciles = calls.binding_reconciles + calls.product_reconciles;
    assert!(
        api("get secrets") <= 2 * reconciles,
        "Secret reads grow with reconciles ({reconciles} reached Twilio): {api_requests:#?}"
    );
    // A product reads its binding from the cache; the API server only when the cache had not
    // listed the binding yet.
    assert!(
        api("get businessprofilebindings") <= PRODUCTS as u64,
        "{api_requests:#?}"
    );

    // Wait out stray requeues of the onboarding (the last in-review poll), then expect silence.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = scenario::idle(&mut session, Duration::from_secs(4), "idle")
        .await
        .expect("idle");
    session.shutdown().await;
    assert_eq!(
        idle.calls.total_requests, 0,
        "no Twilio call while nothing changes: {:#?}",
        idle.calls.requests
    );
}
