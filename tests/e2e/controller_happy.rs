//! The seed's six steps end to end: the examples applied to the local API, the real controller,
//! the simulator vetting; both objects Ready with exactly the minimum Twilio writes.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_reaches_ready_with_the_minimum_writes() {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply_examples().await;

    let binding = env.wait_binding("acme-primary", "Ready", ready).await;
    let status = binding.status.clone().unwrap();
    assert_eq!(status.numbers_summary.as_deref(), Some("3/3"));
    assert_eq!(
        status.business_profile.as_ref().map(|p| p.sid.as_str()),
        Some(PROFILE)
    );
    assert_eq!(
        status
            .business_profile
            .as_ref()
            .and_then(|p| p.status.as_deref()),
        Some("twilio-approved")
    );
    let subaccounts: Vec<Option<&str>> = status
        .phone_numbers
        .iter()
        .map(|n| n.subaccount_sid.as_deref())
        .collect();
    assert_eq!(subaccounts, vec![Some(EAST), Some(EAST), None]);
    assert!(status.phone_numbers.iter().all(|n| {
        n.assignment_sid
            .as_deref()
            .is_some_and(|s| s.starts_with("RA"))
    }));
    assert_eq!(status.observed_generation, binding.metadata.generation);

    let product = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let status = product.status.clone().unwrap();
    assert_eq!(status.twilio_status.as_deref(), Some("twilio-approved"));
    assert!(
        status
            .trust_product_sid
            .as_deref()
            .is_some_and(|s| s.starts_with("BU"))
    );
    assert!(
        status
            .entity_assignment_sid
            .as_deref()
            .is_some_and(|s| s.starts_with("BV"))
    );
    assert_eq!(status.business_profile_sid.as_deref(), Some(PROFILE));
    assert_eq!(status.numbers_summary.as_deref(), Some("3/3"));
    assert!(status.phone_numbers.iter().all(|n| {
        n.assignment_sid
            .as_deref()
            .is_some_and(|s| s.starts_with("RA"))
    }));
    assert_eq!(
        status.last_evaluation.as_ref().map(|e| e.status.as_str()),
        Some("compliant")
    );
    assert!(
        status.submitted_at.is_some()
            && status.approved_at.is_some()
            && status.valid_until.is_some()
    );
    assert!(status.create_pending_since.is_none());
    for c in [
        "ProfileAttached",
        "NumbersAttached",
        "Compliant",
        "Submitted",
        "Approved",
        "Ready",
        "Synced",
    ] {
        let cond = product
            .condition(c)
            .unwrap_or_else(|| panic!("{c} condition"));
        assert_eq!(cond.status, "True", "{c}: {cond:?}");
        assert_eq!(cond.observed_generation, product.metadata.generation);
    }

    // Once the product is approved, its binding counts the numbers it covers: woken by the
    // product's coverage, not an hour later at the resync, and without a Twilio call (the
    // approved profile and the assignments are as recorded).
    let profile_reads = || {
        let counters = env.sim.counters();
        counters.calls("FetchCustomerProfile") + counters.calls("ListCustomerProfile")
    };
    let before = profile_reads();
    let binding = env
        .wait_binding("acme-primary", "covered by the approved product", |b| {
            let counts = b.status.as_ref().and_then(|s| s.numbers.as_ref());
            counts.is_some_and(|c| c.covered == 3 && c.selected == 3)
        })
        .await;
    let status = binding.status.unwrap();
    assert_eq!(status.coverage.as_deref(), Some("3/3"), "{status:?}");
    assert_eq!(
        profile_reads(),
        before,
        "the coverage is counted again without reading the profile"
    );

    let writes = env.writes();
    let expected = [
        ("CreateCustomerProfileChannelEndpointAssignment", 3),
        ("CreateTrustProduct", 1),
        ("CreateTrustProductEntityAssignment", 1),
        ("CreateTrustProductChannelEndpointAssignment", 3),
        ("CreateTrustProductEvaluation", 1),
        ("UpdateTrustProduct", 1),
    ];
    let expected: std::collections::BTreeMap<String, u64> =
        expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(writes, expected, "exactly the minimum Twilio writes");
    assert_no_duplicates(&env.sim);
    env.shutdown().await;
}
