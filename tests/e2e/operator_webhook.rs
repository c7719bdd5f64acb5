//! The status-callback receiver with the simulator's real signed callbacks, run in-process
//! through `runtime::run` (the code `trusthub-operator run` calls) with its listeners on port 0.
//!
//! The CRD only admits https `spec.statusCallback` URLs, so the operator's own URL comes from
//! `--webhook-public-url` (here `status_callback_url`), which also accepts plain http for local
//! testing like this. Polling under review is set to one hour: only a callback can wake the
//! product up, so reaching Ready within the test proves the callbacks work.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use trusthub_operator::leader::LeaseConfig;
use trusthub_operator::runtime::{self, RuntimeConfig};
use trusthub_operator::webhook::PATH;
use trusthub_sim::vetting::twilio_signature;

use crate::operator_support::Operator;
use crate::support::{Env, PARENT, PARENT_TOKEN, ready};

/// A form body as posted.
type Form = Vec<(String, String)>;

const HOUR: Duration = Duration::from_secs(3600);

struct Running {
    callback_url: String,
    metrics_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), runtime::RuntimeError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the runtime stops")
            .expect("the runtime task does not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Starts the operator runtime for `env` with hour-long review polling and its status
/// callback URL pointing at its own receiver.
async fn start(env: &Env) -> Running {
    launch(env, None, None).await.0
}

/// The operator runtime for `env` with hour-long review polling, its own callback receiver,
/// and `public_url` (else that receiver's URL) as the status callback URL; returns it with the
/// receiver's own URL.
async fn launch(
    env: &Env,
    public_url: Option<&str>,
    lease: Option<LeaseConfig>,
) -> (Running, String) {
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let webhook_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let own_url = format!(
        "http://{}{PATH}",
        webhook_listener.local_addr().expect("addr")
    );
    let callback_url = public_url.map_or_else(|| own_url.clone(), str::to_string);
    let metrics_url = format!(
        "http://{}/metrics",
        metrics_listener.local_addr().expect("addr")
    );
    let mut controller = env.controller_config();
    controller.poll.review_initial = HOUR;
    controller.poll.review_max = HOUR;
    controller.poll.approved_resync = HOUR;
    controller.status_callback_url = Some(callback_url.clone());
    let config = RuntimeConfig {
        controller,
        metrics_listener,
        webhook_listener: Some(webhook_listener),
        leader_election: lease,
    };
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(runtime::run(env.client.clone(), config, async move {
        let _ = stopped.await;
    }));
    let running = Running {
        callback_url,
        metrics_url,
        stop: Some(stop),
        task,
    };
    (running, own_url)
}

async fn post(url: &str, signature: Option<&str>, params: &[(String, String)]) -> u16 {
    let mut request = reqwest::Client::new().post(url).form(params);
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
    }
    request
        .send()
        .await
        .expect("POST the callback")
        .status()
        .as_u16()
}

/// A callback body like the simulator's, plus a field that makes its signature differ from the
/// real callbacks already delivered (which the replay check would refuse).
fn callback(product_sid: &str, status: &str) -> Vec<(String, String)> {
    [
        ("AccountSid", PARENT),
        ("BundleSid", product_sid),
        ("TrustProductSid", product_sid),
        ("Status", status),
        ("TestNote", "posted by the e2e test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test]
async fn operator_signed_callbacks_wake_the_product_up_long_before_its_next_poll() {
    let env = Env::start(false).await;
    let op = start(&env).await;
    let started = Instant::now();
    env.apply_examples().await;
    let p = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let took = started.elapsed();
    assert!(took < HOUR / 60, "Ready after {took:?}");
    let sid = p
        .status
        .as_ref()
        .and_then(|s| s.trust_product_sid.clone())
        .expect("SID");
    let product = env
        .sim
        .trust_products()
        .into_iter()
        .find(|b| b.sid == sid)
        .expect("in the simulator");
    assert_eq!(
        product.status_callback.as_deref(),
        Some(op.callback_url.as_str()),
        "created with the operator's callback URL"
    );
    let counters = env.sim.counters();
    // pending-review (submit), in-review, twilio-approved: each delivered and accepted (2xx).
    assert!(counters.callbacks_delivered >= 3, "{counters:?}");
    assert_eq!(counters.callbacks_failed, 0, "{counters:?}");
    let metrics = reqwest::get(&op.metrics_url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(!metrics.contains(PARENT_TOKEN));
    op.stop().await;
    env.shutdown().await;
}

#[tokio::test]
async fn operator_refuses_forged_callbacks_and_triggers_nothing() {
    let env = Env::start(false).await;
    let op = start(&env).await;
    env.apply_examples().await;
    let p = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let sid = p
        .status
        .as_ref()
        .and_then(|s| s.trust_product_sid.clone())
        .expect("SID");
    let url = op.callback_url.clone();
    // Let the last callback's reconcile finish: then nothing polls for an hour.
    let quiet = wait_quiet(&env).await;

    let params = callback(&sid, "twilio-approved");
    let good = twilio_signature(PARENT_TOKEN, &url, &params);
    let unknown = callback("BU00000000000000000000000000000000", "twilio-approved");
    let forged: Vec<(&str, Option<String>, &Form)> = vec![
        ("unsigned", None, &params),
        (
            "wrong signature",
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
            &params,
        ),
        (
            "signed with another token",
            Some(twilio_signature(
                "not-the-auth-token-000000000000000",
                &url,
                &params,
            )),
            &params,
        ),
        (
            "signed for another URL",
            Some(twilio_signature(
                PARENT_TOKEN,
                "https://elsewhere.example/cb",
                &params,
            )),
            &params,
        ),
        (
            "unknown product",
            Some(twilio_signature(PARENT_TOKEN, &url, &unknown)),
            &unknown,
        ),
    ];
    for (what, signature, body) in &forged {
        assert_eq!(post(&url, signature.as_deref(), body).await, 403, "{what}");
    }
    // A tampered body under a valid signature.
    let mut tampered = params.clone();
    tampered[3].1 = "twilio-rejected".into();
    assert_eq!(
        post(&url, Some(&good), &tampered).await,
        403,
        "tampered body"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        env.sim.counters().requests,
        quiet,
        "a refused callback triggers no reconcile (no Twilio read)"
    );

    // The genuine one is accepted and triggers one reconcile (its Twilio reads)...
    assert_eq!(post(&url, Some(&good), &params).await, 204);
    let after_good = wait_quiet(&env).await;
    assert!(
        after_good > quiet,
        "an accepted callback triggers a reconcile"
    );
    // ...but its replay is refused and triggers nothing.
    assert_eq!(post(&url, Some(&good), &params).await, 403, "replay");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(env.sim.counters().requests, after_good);
    // The payload never writes status: the product is still what Twilio says.
    let p = env.products().get("acme-shaken-stir").await.expect("get");
    assert_eq!(
        p.status.and_then(|s| s.twilio_status).as_deref(),
        Some("twilio-approved")
    );
    op.stop().await;
    env.shutdown().await;
}

/// Waits until the simulator has seen no request for half a second; returns its count.
async fn wait_quiet(env: &Env) -> u64 {
    let start = Instant::now();
    let mut last = env.sim.counters().requests;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = env.sim.counters().requests;
        if now == last {
            return now;
        }
        last = now;
        assert!(start.elapsed() < crate::support::PATIENCE, "never quiet");
    }
}

#[tokio::test]
async fn operator_binary_serves_the_receiver_from_its_flags_and_never_logs_the_token() {
    let env = Env::start(false).await;
    // The receiver's port must be in the public URL before the process starts: reserve one.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    let public_url = format!("http://{addr}{PATH}");
    let mut cmd = env.operator_command();
    cmd.env("TRUSTHUB_REVIEW_POLL_INITIAL", "1h")
        .env("TRUSTHUB_REVIEW_POLL_MAX", "1h")
        .env("TRUSTHUB_WEBHOOK_PUBLIC_URL", &public_url);
    let addr_flag = addr.to_string();
    let op = Operator::spawn(cmd, "op-webhook", &["--webhook-addr", &addr_flag]).await;
    env.apply_examples().await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let counters = env.sim.counters();
    assert!(counters.callbacks_delivered >= 3, "{counters:?}");
    assert_eq!(counters.callbacks_failed, 0, "{counters:?}");
    // A forged callback is refused and logged as such, without any secret.
    let sid = env.sim.trust_products()[0].sid.clone();
    let params = callback(&sid, "twilio-approved");
    let forged = twilio_signature("not-the-auth-token-000000000000000", &public_url, &params);
    assert_eq!(post(&public_url, Some(&forged), &params).await, 403);
    let start = Instant::now();
    while !op.log_text().contains("refused status callback") {
        assert!(
            start.elapsed() < crate::support::PATIENCE,
            "refusal not logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = op.log_text();
    assert!(logs.contains("verified status callback"), "{logs}");
    assert!(!logs.contains(PARENT_TOKEN), "the auth token was logged");
    env.shutdown().await;
}

/// One replica of a two-replica deployment, in-process, with leader election on, its own
/// receiver, and `public_url` as the callback URL (the Service's, the same for both).
async fn start_replica(env: &Env, identity: &str, public_url: &str) -> (Running, String) {
    let lease = LeaseConfig {
        name: "trusthub-operator".into(),
        namespace: env.ns.clone(),
        identity: identity.into(),
        duration: Duration::from_secs(3),
    };
    launch(env, Some(public_url), Some(lease)).await
}

#[tokio::test]
async fn operator_standby_accepts_a_verified_callback_and_the_leader_reconciles() {
    let env = Env::start(true).await;
    // The Service's URL, which Twilio signs; here nothing listens there, so the simulator's
    // own callbacks go nowhere and only the test's callback (to the standby) can wake the
    // leader before its hour-long poll.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let public_url = format!("http://{}{PATH}", reserved.local_addr().expect("addr"));
    drop(reserved);
    let (leader, _) = start_replica(&env, "replica-a", &public_url).await;
    crate::operator_support::wait_holder(
        &env,
        "trusthub-operator",
        "replica-a",
        crate::support::PATIENCE,
    )
    .await;
    let (standby, standby_url) = start_replica(&env, "replica-b", &public_url).await;
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
        .expect("SID");
    env.sim.approve(&sid).expect("approve");
    let quiet = wait_quiet(&env).await;
    let params = callback(&sid, "twilio-approved");
    let signature = twilio_signature(PARENT_TOKEN, &public_url, &params);
    // A forged one is refused by the standby too.
    let forged = twilio_signature("not-the-auth-token-000000000000000", &public_url, &params);
    assert_eq!(post(&standby_url, Some(&forged), &params).await, 403);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        env.sim.counters().requests,
        quiet,
        "a forged callback wakes nothing"
    );
    assert_eq!(
        post(&standby_url, Some(&signature), &params).await,
        204,
        "the standby accepts a verified callback"
    );
    let started = Instant::now();
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    assert!(
        started.elapsed() < HOUR / 60,
        "the leader reconciled at once"
    );
    assert_eq!(
        crate::operator_support::lease_holder(&env, "trusthub-operator")
            .await
            .as_deref(),
        Some("replica-a")
    );
    standby.stop().await;
    leader.stop().await;
    env.shutdown().await;
}
