//! The controller under failure: killed (SIGKILL, as its own process) right after each Twilio
//! write in turn and restarted, and run against a simulator answering 30 % 429s and 10 % 503s.
//! Every run must end Ready with no duplicate Twilio object.

use std::collections::BTreeMap;
use std::time::Duration;

use trusthub_sim::Faults;

use crate::support::*;

/// Objects created in the simulator by type must be exactly one onboarding's.
fn assert_minimum_objects(env: &Env) {
    let created: BTreeMap<String, u64> = env.sim.counters().created;
    let want: BTreeMap<String, u64> = [
        ("CustomerProfileChannelEndpointAssignment", 3),
        ("TrustProduct", 1),
        ("TrustProductEntityAssignment", 1),
        ("TrustProductChannelEndpointAssignment", 3),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    let got: BTreeMap<String, u64> = created
        .into_iter()
        .filter(|(k, _)| want.contains_key(k))
        .collect();
    assert_eq!(got, want, "exactly one onboarding's objects");
    assert_no_duplicates(&env.sim);
}

/// The number of Twilio writes of one onboarding (3 + 1 + 1 + 3 + 1 evaluation + 1 submit).
const WRITES: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_each_write_and_restarted_it_never_duplicates() {
    for kill_after in 1..=WRITES {
        let env = Env::start(false).await;
        let mut writes = env.sim.subscribe_writes();
        let mut operator = env
            .operator_command()
            .spawn()
            .expect("start trusthub-operator");
        env.apply_examples().await;
        let mut seen = Vec::new();
        while seen.len() < kill_after {
            let ev = tokio::time::timeout(PATIENCE, writes.recv())
                .await
                .expect("a Twilio write")
                .expect("write channel open");
            seen.push(ev.operation_id);
        }
        operator.start_kill().expect("SIGKILL");
        let _ = operator.wait().await;
        let mut restarted = env
            .operator_command()
            .spawn()
            .expect("restart trusthub-operator");
        env.wait_binding("acme-primary", "Ready", ready).await;
        let product = env.wait_product("acme-shaken-stir", "Ready", ready).await;
        assert!(
            product
                .status
                .as_ref()
                .is_some_and(|s| s.create_pending_since.is_none()),
            "kill after {seen:?}"
        );
        assert_minimum_objects(&env);
        restarted.start_kill().expect("stop");
        let _ = restarted.wait().await;
        env.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_429s_and_503s_without_duplicates() {
    let mut env = Env::start(false).await;
    env.sim.set_faults(Faults {
        rate_429: 0.3,
        rate_503: 0.1,
        rng_seed: 20261123,
        ..Faults::default()
    });
    env.start_controller();
    env.apply_examples().await;
    env.wait_binding("acme-primary", "Ready", ready).await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let faults = env.sim.counters().faults;
    assert!(
        faults.get("429").copied().unwrap_or(0) > 0 && faults.get("503").copied().unwrap_or(0) > 0,
        "faults were injected: {faults:?}"
    );
    assert_minimum_objects(&env);
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.shutdown().await;
}
