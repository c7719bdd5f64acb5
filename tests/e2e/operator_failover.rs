//! Failover under a stalled API server: the leader's requests to the API server hang (neither
//! answered nor refused) while one of its reconciles waits out a Twilio `Retry-After`. The
//! standby takes the Lease once it expires; at no moment may both processes write to Twilio.
//! Who wrote is told by the simulator's write log, which records each request's User-Agent
//! (the operator puts its replica identity there).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use trusthub_sim::{FaultKind, ScriptedFault, WriteEvent};

use crate::operator_support::{Operator, StallingProxy, wait_holder};
use crate::support::{Env, PATIENCE, assert_no_duplicates};

const LEASE: &str = "trusthub-operator";
/// Long enough that the stalled leader's retry comes well after the standby took over.
const RETRY_AFTER_SECS: u64 = 8;

fn upstream(env: &Env) -> SocketAddr {
    let url = url::Url::parse(&env.cluster.url()).expect("API server URL");
    let port = url.port_or_known_default().expect("port");
    format!("{}:{port}", url.host_str().expect("host"))
        .parse()
        .expect("the API server listens on an IP address")
}

async fn start_replica(env: &Env, name: &str, proxy: Option<&StallingProxy>) -> Operator {
    let mut cmd = env.operator_command();
    if let Some(proxy) = proxy {
        let kubeconfig = env.dir.path().join(format!("kubeconfig-{name}"));
        let yaml = proxy.rewrite_kubeconfig(&env.cluster.kubeconfig_yaml(&env.ns), upstream(env));
        std::fs::write(&kubeconfig, yaml).expect("write the proxied kubeconfig");
        cmd.env("KUBECONFIG", kubeconfig);
    }
    Operator::spawn(
        cmd,
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

/// The replica identity in a write's User-Agent (`trusthub-operator/x.y.z (op-a)`).
fn writer(event: &WriteEvent) -> String {
    event
        .user_agent
        .as_deref()
        .and_then(|ua| ua.split_once('(')?.1.strip_suffix(')'))
        .unwrap_or("unknown")
        .to_string()
}

#[tokio::test]
async fn operator_failover_with_a_stalled_api_server_never_has_two_twilio_writers() {
    let env = Env::start(true).await;
    let proxy = StallingProxy::start(upstream(&env)).await;
    let mut a = start_replica(&env, "op-a", Some(&proxy)).await;
    wait_holder(&env, LEASE, "op-a", PATIENCE).await;
    a.wait_ready().await;
    let b = start_replica(&env, "op-b", None).await;
    b.wait_ready().await;

    let mut writes = env.sim.subscribe_writes();
    // The leader's Trust Product create is answered 429 with a long Retry-After: its
    // reconcile sleeps in the Twilio client's retry, touching no API server.
    env.sim.push_fault(ScriptedFault {
        method: Some("POST".into()),
        path_prefix: "/v1/TrustProducts".into(),
        count: 1,
        action: FaultKind::TooManyRequests {
            retry_after_secs: Some(RETRY_AFTER_SECS),
        },
    });
    env.apply_examples().await;
    let start = Instant::now();
    while env.sim.counters().faults.get("429").copied().unwrap_or(0) == 0 {
        assert!(
            start.elapsed() < PATIENCE,
            "the leader never created the product"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Now the API server stops answering the leader (renewals included).
    proxy.stall();
    let stalled = Instant::now();
    wait_holder(&env, LEASE, "op-b", PATIENCE).await;
    let took_over = stalled.elapsed();
    // Past the stalled leader's retry, with room for its writes to land.
    tokio::time::sleep(Duration::from_secs(RETRY_AFTER_SECS + 3).saturating_sub(stalled.elapsed()))
        .await;
    let a_exit = a.child.try_wait().expect("poll the old leader");

    let mut log = Vec::new();
    while let Ok(event) = writes.try_recv() {
        log.push((writer(&event), event.operation_id));
    }
    let first_b = log.iter().position(|(who, _)| who == "op-b");
    let late_a: Vec<_> = first_b
        .map(|i| log[i..].iter().filter(|(who, _)| who == "op-a").collect())
        .unwrap_or_default();
    assert!(
        late_a.is_empty(),
        "two writers: op-a wrote {late_a:?} after op-b's first write; whole log {log:#?}"
    );
    assert!(
        log.iter().all(|(who, _)| who == "op-a" || who == "op-b"),
        "every write names its replica: {log:#?}"
    );
    assert!(first_b.is_some(), "the new leader wrote: {log:#?}");
    assert!(
        log.iter().any(|(who, _)| who == "op-a"),
        "the old leader wrote before the stall: {log:#?}"
    );
    assert!(
        a_exit.is_some_and(|s| !s.success()),
        "the stalled leader stepped down and exited with an error ({a_exit:?}); took over after {took_over:?}"
    );
    assert_no_duplicates(&env.sim);
    proxy.resume();
    drop(b);
    env.shutdown().await;
}
