//! Retries against the simulator's faults, counted by the simulator: 429 with and without
//! `Retry-After`, 503, dropped connections, and its concurrency limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use trusthub_operator::twilio::{
    BundleFilter, ClientConfig, CreateTrustProduct, Credentials, Endpoints, RetryPolicy, TrustHub,
    TwilioClient,
};
use trusthub_sim::{FaultKind, Faults, SHAKEN_STIR_POLICY, ScriptedFault, SimConfig, SimServer};

use crate::client_ops::parent_client;

fn fault(method: &str, path_prefix: &str, count: u32, action: FaultKind) -> ScriptedFault {
    ScriptedFault {
        method: Some(method.into()),
        path_prefix: path_prefix.into(),
        count,
        action,
    }
}

fn create() -> CreateTrustProduct {
    CreateTrustProduct {
        friendly_name: "Acme SHAKEN/STIR".into(),
        email: "compliance@acme.example".into(),
        policy_sid: SHAKEN_STIR_POLICY.into(),
        status_callback: None,
    }
}

#[tokio::test]
async fn throttled_create_is_retried_and_created_once() {
    let sim = SimServer::start(SimConfig::default()).await.expect("sim");
    let c = parent_client(&sim, 1000);
    sim.push_fault(fault(
        "POST",
        "/v1/TrustProducts",
        1,
        FaultKind::TooManyRequests {
            retry_after_secs: Some(1),
        },
    ));
    sim.push_fault(fault(
        "POST",
        "/v1/TrustProducts",
        1,
        FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
    ));
    let started = Instant::now();
    c.create_trust_product(&create())
        .await
        .expect("created after two 429s");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After ignored"
    );
    let counters = sim.counters();
    assert_eq!(counters.calls("CreateTrustProduct"), 3);
    assert_eq!(counters.created.get("TrustProduct"), Some(&1));
    assert_eq!(sim.trust_products().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn create_answered_503_or_dropped_is_ambiguous_and_sent_once() {
    let sim = SimServer::start(SimConfig::default()).await.expect("sim");
    let c = parent_client(&sim, 1000);
    for action in [
        FaultKind::ServiceUnavailable,
        FaultKind::InternalError,
        FaultKind::Drop,
    ] {
        sim.reset_counters();
        sim.push_fault(fault("POST", "/v1/TrustProducts", 1, action.clone()));
        let err = c.create_trust_product(&create()).await.unwrap_err();
        assert!(
            err.is_ambiguous() && err.is_transient(),
            "{action:?}: {err}"
        );
        assert_eq!(
            sim.counters().calls("CreateTrustProduct"),
            1,
            "{action:?} was resent"
        );
    }
    // The caller looks before creating again: nothing was made.
    let shaken = BundleFilter {
        policy_sid: Some(SHAKEN_STIR_POLICY.into()),
        ..Default::default()
    };
    assert!(
        c.list_trust_products(&shaken)
            .await
            .expect("look")
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reads_and_deletes_retry_503_and_dropped_connections() {
    let sim = SimServer::start(SimConfig::default()).await.expect("sim");
    let c = parent_client(&sim, 1000);
    let tp = c.create_trust_product(&create()).await.expect("create");
    let sid = tp.sid.expect("sid");
    sim.reset_counters();
    sim.push_fault(fault(
        "GET",
        "/v1/TrustProducts",
        1,
        FaultKind::ServiceUnavailable,
    ));
    sim.push_fault(fault("GET", "/v1/TrustProducts", 1, FaultKind::Drop));
    c.fetch_trust_product(&sid)
        .await
        .expect("fetch after 503 and drop");
    assert_eq!(sim.counters().calls("FetchTrustProduct"), 3);

    sim.push_fault(fault("DELETE", "/v1/TrustProducts", 1, FaultKind::Drop));
    c.delete_trust_product(&sid)
        .await
        .expect("delete after a drop");
    assert_eq!(sim.counters().calls("DeleteTrustProduct"), 2);

    // Out of attempts: the last error is returned, transient, with its status.
    sim.push_fault(fault(
        "GET",
        "/v1/Policies",
        5,
        FaultKind::ServiceUnavailable,
    ));
    let err = c.fetch_policy(SHAKEN_STIR_POLICY).await.unwrap_err();
    assert!(err.is_transient() && !err.is_ambiguous());
    assert_eq!(
        (err.http_status(), err.twilio_code()),
        (Some(503), Some(20503))
    );
    assert_eq!(sim.counters().calls("FetchPolicies"), 3);
    sim.shutdown().await;
}

async fn concurrent_fetches(sim: &SimServer, max_in_flight: usize, calls: usize) -> usize {
    let parent = &sim.seed().parent;
    let config = ClientConfig {
        endpoints: Endpoints::single(&sim.base_url()).expect("sim base URL"),
        max_in_flight,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    };
    let creds = Credentials::auth_token(&parent.sid, parent.auth_token.expose()).expect("creds");
    let client: Arc<dyn TrustHub> = Arc::new(TwilioClient::new(creds, config).expect("client"));
    let profile = sim.seed().customer_profiles[0].sid.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..calls {
        let (c, sid) = (client.clone(), profile.clone());
        tasks.spawn(async move { c.fetch_customer_profile(&sid).await });
    }
    let mut failures = 0;
    while let Some(result) = tasks.join_next().await {
        if result.expect("task").is_err() {
            failures += 1;
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_keeps_200_calls_under_the_account_concurrency_limit() {
    let sim = SimServer::start(SimConfig::default()).await.expect("sim");
    sim.set_faults(Faults {
        max_in_flight: Some(5),
        latency_ms: 5,
        ..Faults::none()
    });
    // Within the limit: not one request is throttled, even without retries.
    assert_eq!(concurrent_fetches(&sim, 5, 200).await, 0);
    let counters = sim.counters();
    assert_eq!(counters.calls("FetchCustomerProfile"), 200);
    assert_eq!(counters.faults.get("concurrency_429"), None);
    // Control: a client allowed 40 in flight does trip the simulator's limit.
    sim.reset_counters();
    let failures = concurrent_fetches(&sim, 40, 200).await;
    assert!(failures > 0 && sim.counters().faults.contains_key("concurrency_429"));
    sim.shutdown().await;
}
