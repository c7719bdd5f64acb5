//! The operator process's `/metrics`, `/healthz` and `/readyz` during a real onboarding against
//! the simulator: the Twilio call counts it reports match the simulator's own counters, and
//! reconciles, failures, 429s, retries and status gauges show up under their documented names.

use std::time::Duration;

use trusthub_sim::faults::{FaultKind, ScriptedFault};

use crate::operator_support::{Operator, sample, total};
use crate::support::{Env, product, ready};

#[tokio::test]
async fn operator_serves_health_readiness_and_metrics_of_an_onboarding() {
    let env = Env::start(false).await;
    // Two throttled answers on the first product create: retried (POST after 429 is safe).
    env.sim.push_fault(ScriptedFault {
        method: Some("POST".into()),
        path_prefix: "/v1/TrustProducts".into(),
        count: 2,
        action: FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
    });
    let op = Operator::start(&env, "op-metrics", &[]).await;
    assert_eq!(op.get("/healthz").await.0, 200);
    op.wait_ready().await;

    env.apply_examples().await;
    // A product whose Secret does not exist fails with a terminal reason.
    let mut broken = product("broken", "acme-primary", "Broken product", "Orphan");
    broken["spec"]["credentials"]["secretName"] = "no-such-secret".into();
    env.apply(broken).await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    env.wait_binding("acme-primary", "Ready", ready).await;

    let text = op.metrics().await;
    let sim = env.sim.counters();
    // Every HTTP attempt the simulator answered was counted, by operation and status.
    let create_201 = sample(
        &text,
        r#"trusthub_twilio_requests_total{operation="CreateTrustProduct",status="201"}"#,
    );
    assert_eq!(create_201, Some(1.0), "{text}");
    let create_429 = sample(
        &text,
        r#"trusthub_twilio_requests_total{operation="CreateTrustProduct",status="429"}"#,
    );
    assert_eq!(create_429, Some(2.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"trusthub_twilio_throttled_total{operation="CreateTrustProduct"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"trusthub_twilio_retries_total{operation="CreateTrustProduct"}"#
        ),
        Some(2.0)
    );
    // The operator's count of attempts equals the simulator's count of requests, minus any the
    // operator made after this scrape (polling goes on): never fewer than the simulator saw then.
    let counted = total(&text, "trusthub_twilio_requests_total");
    assert!(counted > 0.0);
    assert!(
        counted <= env.sim.counters().requests as f64 && counted >= sim.requests as f64,
        "operator counted {counted}, simulator saw {} then",
        sim.requests
    );
    // Reconciles by kind and result, failures by reason, durations.
    assert!(
        sample(
            &text,
            r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="success"}"#
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"trusthub_reconcile_failures_total{kind="ShakenStirTrustProduct",reason="SecretNotFound"}"#
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"trusthub_reconcile_duration_seconds_count{kind="BusinessProfileBinding"}"#
        )
        .is_some_and(|v| v >= 1.0)
    );
    // Gauges by vetting status, from the informer caches.
    assert_eq!(
        sample(
            &text,
            r#"trusthub_resources{kind="ShakenStirTrustProduct",status="twilio-approved"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"trusthub_resources{kind="ShakenStirTrustProduct",status="unknown"}"#
        ),
        Some(1.0),
        "the product without a Secret has no Twilio status: {text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"trusthub_resources{kind="BusinessProfileBinding",status="twilio-approved"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // Per-object series name the object (never its SID) and this replica leads.
    let ns = &env.ns;
    let acme = format!(r#"kind="ShakenStirTrustProduct",namespace="{ns}",name="acme-shaken-stir""#);
    assert_eq!(
        sample(
            &text,
            &format!(r#"trusthub_vetting_status{{{acme},status="twilio-approved"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                r#"trusthub_vetting_status{{kind="BusinessProfileBinding",namespace="{ns}",name="acme-primary",status="twilio-approved"}}"#
            )
        ),
        Some(1.0),
        "{text}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let valid_until = sample(
        &text,
        &format!("trusthub_valid_until_timestamp_seconds{{{acme}}}"),
    )
    .expect("the approved product's validUntil");
    assert!(
        valid_until > now + 300.0 * 86400.0,
        "the simulator approves for a year: {valid_until}"
    );
    let submitted = sample(
        &text,
        &format!("trusthub_submitted_timestamp_seconds{{{acme}}}"),
    )
    .expect("the submitted product's submission time");
    assert!(
        (now - 600.0..=now + 1.0).contains(&submitted),
        "submitted during this test: {submitted}"
    );
    assert_eq!(sample(&text, "trusthub_leader"), Some(1.0), "{text}");
    assert!(
        !text.contains(crate::support::PROFILE) && !text.contains(r#"="BU"#),
        "no SIDs in labels: {text}"
    );
    // The alerts and the dashboard name only metrics this operator exports; promtool lints
    // the exposition (in the text format it reads: OpenMetrics it does not parse).
    crate::chart_monitoring::assert_monitoring_names_only_exported_metrics(&text);
    crate::chart_monitoring::assert_promtool_refuses_openmetrics(&text);
    crate::chart_monitoring::assert_promtool_accepts_metrics(&op.metrics_prometheus_text().await);

    // Deleting the broken product removes it from the gauges at the next scrape.
    env.products()
        .delete("broken", &Default::default())
        .await
        .expect("delete");
    crate::support::wait_gone(&env.products(), "broken").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = op.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"trusthub_resources{kind="ShakenStirTrustProduct",status="unknown"}"#
        ),
        None,
        "{text}"
    );
    // No credential ever appears in the metrics.
    assert!(!text.contains(crate::support::PARENT_TOKEN));
    env.shutdown().await;
}

#[tokio::test]
async fn operator_is_not_ready_while_the_api_is_unreachable() {
    let env = Env::start(false).await;
    // A kubeconfig pointing at a closed port: the caches can never sync.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let kubeconfig = env.dir.path().join("unreachable-kubeconfig");
    std::fs::write(
        &kubeconfig,
        env.cluster.kubeconfig_yaml(&env.ns).replace(
            &env.cluster.url(),
            &format!(
                "{}://127.0.0.1:{port}",
                env.cluster.url().split(':').next().unwrap_or("http")
            ),
        ),
    )
    .expect("write kubeconfig");
    let mut cmd = env.operator_command();
    cmd.env("KUBECONFIG", &kubeconfig);
    let op = Operator::spawn(cmd, "op-unready", &[]).await;
    assert_eq!(
        op.get("/healthz").await.0,
        200,
        "alive even without the API"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = op.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("caches"), "{body}");
    env.shutdown().await;
}
