//! Leader election with two real operator processes against the local API server: one holds
//! the Lease and does all the Twilio work, the other stands by (ready, silent); when the leader
//! is SIGKILLed the standby takes the Lease within the lease duration (plus polling slack) and
//! finishes the onboarding; on SIGTERM the leader hands the Lease over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::operator_support::{Operator, lease_holder, sample, total, wait_holder};
use crate::support::{Env, PATIENCE, assert_no_duplicates, ready};

const LEASE: &str = "trusthub-operator";
/// Short, so the test is quick; the operator's default is 15s.
const DURATION: Duration = Duration::from_secs(3);
/// A standby looks every duration/5, the API round trips and a loaded machine take a little.
const SLACK: Duration = Duration::from_secs(2);

async fn start_replica(env: &Env, name: &str) -> Operator {
    Operator::start(
        env,
        name,
        &[
            "--leader-election",
            "--lease-duration",
            "3s",
            "--lease-namespace",
            &env.ns,
        ],
    )
    .await
}

fn twilio_requests(metrics: &str) -> f64 {
    total(metrics, "trusthub_twilio_requests_total")
}

#[tokio::test]
async fn operator_standby_takes_over_within_the_lease_duration_when_the_leader_dies() {
    let env = Env::start(true).await;
    let mut a = start_replica(&env, "op-a").await;
    wait_holder(&env, LEASE, "op-a", PATIENCE).await;
    a.wait_ready().await;
    let b = start_replica(&env, "op-b").await;
    // The standby knows its role: ready, though it runs no controllers.
    b.wait_ready().await;

    env.apply_examples().await;
    let p = env
        .wait_product("acme-shaken-stir", "submitted", |p| {
            p.status.as_ref().and_then(|s| s.twilio_status.as_deref()) == Some("pending-review")
        })
        .await;
    let sid = p
        .status
        .as_ref()
        .and_then(|s| s.trust_product_sid.clone())
        .expect("product SID");
    // Only the Lease holder talked to Twilio; the standby made no call and no reconcile.
    assert_eq!(lease_holder(&env, LEASE).await.as_deref(), Some("op-a"));
    let leader_metrics = a.metrics().await;
    let standby_metrics = b.metrics().await;
    let seen_by_sim = env.sim.counters().requests as f64;
    assert!(twilio_requests(&leader_metrics) > 0.0, "{leader_metrics}");
    assert_eq!(twilio_requests(&standby_metrics), 0.0, "{standby_metrics}");
    assert_eq!(total(&standby_metrics, "trusthub_reconciles_total"), 0.0);
    // trusthub_leader tells them apart (the "no leader" alert); only the leader has caches,
    // so the per-object series are not doubled by the standby.
    assert_eq!(sample(&leader_metrics, "trusthub_leader"), Some(1.0));
    assert_eq!(sample(&standby_metrics, "trusthub_leader"), Some(0.0));
    assert!(leader_metrics.contains("trusthub_vetting_status{"));
    assert!(!standby_metrics.contains("trusthub_vetting_status{"));
    assert!(
        twilio_requests(&leader_metrics) <= seen_by_sim,
        "the leader's calls are the simulator's requests"
    );

    a.child.start_kill().expect("SIGKILL the leader");
    let killed = Instant::now();
    let _ = a.child.wait().await;
    let waited = wait_holder(&env, LEASE, "op-b", DURATION + SLACK + SLACK).await;
    let took = killed.elapsed();
    assert!(
        took <= DURATION + SLACK,
        "failover took {took:?} (holder seen after {waited:?}); lease duration {DURATION:?}"
    );
    let lease: Lease = Api::namespaced(env.client.clone(), &env.ns)
        .get(LEASE)
        .await
        .expect("lease");
    let spec = lease.spec.expect("lease spec");
    assert!(spec.lease_transitions.unwrap_or(0) >= 1);
    assert_eq!(spec.lease_duration_seconds, Some(3));

    // The new leader finishes the onboarding: vetting approves, it polls and reports Ready.
    env.sim.approve(&sid).expect("approve");
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let new_leader_metrics = b.metrics().await;
    assert!(twilio_requests(&new_leader_metrics) > 0.0);
    assert_eq!(sample(&new_leader_metrics, "trusthub_leader"), Some(1.0));
    assert_no_duplicates(&env.sim);
    assert_eq!(
        env.sim.trust_products().len(),
        1,
        "the new leader adopted the product, it did not create another"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn operator_leader_releases_the_lease_on_sigterm() {
    let env = Env::start(false).await;
    let mut a = start_replica(&env, "op-a").await;
    wait_holder(&env, LEASE, "op-a", PATIENCE).await;
    let b = start_replica(&env, "op-b").await;
    b.wait_ready().await;
    let pid = a.child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let stopped = Instant::now();
    let exit = tokio::time::timeout(PATIENCE, a.child.wait())
        .await
        .expect("the leader stops on SIGTERM")
        .expect("wait");
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    // Released, not expired: the standby takes it at its next look (duration/5), well
    // before the duration.
    wait_holder(&env, LEASE, "op-b", PATIENCE).await;
    assert!(
        stopped.elapsed() < DURATION,
        "takeover after release took {:?}",
        stopped.elapsed()
    );
    env.apply_examples().await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    env.shutdown().await;
}

#[tokio::test]
async fn operator_leader_steps_down_when_another_replica_holds_the_lease() {
    let env = Env::start(false).await;
    let mut a = start_replica(&env, "op-a").await;
    wait_holder(&env, LEASE, "op-a", PATIENCE).await;
    a.wait_ready().await;
    // Another replica (here: the test) takes the Lease, e.g. after a network partition.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let mut lease = leases.get(LEASE).await.expect("lease");
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        spec.lease_duration_seconds = Some(3600);
    }
    leases
        .replace(LEASE, &Default::default(), &lease)
        .await
        .expect("take the lease");
    // The former leader notices at its next renewal (duration/3) and stops with an error.
    let exit = tokio::time::timeout(DURATION + SLACK, a.child.wait())
        .await
        .expect("the former leader stops")
        .expect("wait");
    assert!(
        !exit.success(),
        "losing the Lease is an error exit: {exit:?}"
    );
    assert_eq!(lease_holder(&env, LEASE).await.as_deref(), Some("intruder"));
    env.shutdown().await;
}
