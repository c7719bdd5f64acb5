//! One binding selecting every voice number of 5 subaccounts with `spec.discovery` (300
//! numbers) and its trust product: exactly the minimum writes (2n + 4), the numbers found with
//! one IncomingPhoneNumbers page per subaccount and one Accounts page (never a look-up per
//! number), every minimum read made exactly as often as the minimum says, no duplicates, no 429s, a small stored status.

use std::time::Duration;

use trusthub_bench::calls::{minimum_reads_discovery, minimum_writes};
use trusthub_bench::controller::{OperatorSettings, Runner};
use trusthub_bench::report::{BenchReport, render};
use trusthub_bench::scale::STATUS_BYTES;
use trusthub_bench::scenario::{self, OnboardingParams};
use trusthub_sim::Faults;

const NUMBERS: usize = 300;
const SUBACCOUNTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_onboarding_reads_a_page_per_subaccount_and_writes_the_minimum() {
    let params = OnboardingParams {
        label: "discovery".into(),
        products: 1,
        numbers_per_product: NUMBERS,
        subaccounts: SUBACCOUNTS,
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
        timeout: Duration::from_secs(120),
        // Longer than the run: one listing.
        discovery: Some(Duration::from_secs(600)),
    };
    let (report, session) = scenario::onboarding(&Runner::InProcess, &params)
        .await
        .expect("onboarding finishes");
    session.shutdown().await;
    eprintln!(
        "{}",
        render(&BenchReport {
            onboarding: Some(report.clone()),
            scale_shape: true,
            ..BenchReport::default()
        })
    );
    let calls = &report.calls;
    assert_eq!(
        report.writes,
        minimum_writes(1, NUMBERS),
        "exactly the minimum Twilio writes; requests made: {:#?}",
        calls.requests
    );
    assert_eq!(report.writes_missed, 0);
    assert_eq!(report.duplicates, 0, "no duplicated product or assignment");
    assert_eq!(calls.concurrency_429, 0);
    assert_eq!(report.discovery_listings, Some(1));
    let per_subaccount = vec![NUMBERS / SUBACCOUNTS; SUBACCOUNTS];
    let minimum = minimum_reads_discovery(&per_subaccount, 1);
    let made = |op: &str| calls.requests.get(op).copied().unwrap_or(0);
    // One page per subaccount (60 numbers each) and one Accounts page, no look-up per number;
    // the profile, its assignments and the product looked up exactly as the minimum says.
    for (op, count) in &minimum {
        assert_eq!(made(op), *count, "{op}: {:#?}", calls.requests);
    }
    assert_eq!(made("FetchIncomingPhoneNumber"), 0, "{:#?}", calls.requests);
    // Beyond the minimum: the policy (once per credentials, save for racing first reconciles)
    // and vetting polls after submission. At this size the 1.01 factor of the benchmark would
    // leave no room for the policy fetch; the per-kind equalities above are the stricter check.
    let reads = report.reads_until_submitted();
    let minimum_total: u64 = minimum.values().sum();
    let policy = u64::from(OperatorSettings::default().concurrency);
    assert!(
        reads <= minimum_total + policy,
        "{reads} reads until Submitted, minimum {minimum_total}: {:#?}",
        calls.requests
    );
    let sizes = report.object_sizes.expect("sizes measured");
    assert!(sizes.largest() <= STATUS_BYTES, "{sizes:?}");
}
