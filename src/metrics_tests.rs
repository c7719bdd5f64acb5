use super::*;
use crate::controller::ReconcileError;

#[test]
fn records_calls_retries_and_throttling() {
    let metrics = Metrics::new();
    for (attempt, code) in [(1, 429), (2, 201)] {
        metrics.observe(&CallRecord {
            operation: "CreateTrustProduct",
            outcome: CallOutcome::Status(code),
            duration: Duration::from_millis(10),
            attempt,
        });
    }
    metrics.observe(&CallRecord {
        operation: "FetchTrustProduct",
        outcome: CallOutcome::Error("timeout"),
        duration: Duration::from_millis(10),
        attempt: 1,
    });
    let text = metrics.render(true, None, None);
    for line in [
        r#"trusthub_twilio_requests_total{operation="CreateTrustProduct",status="429"} 1"#,
        r#"trusthub_twilio_requests_total{operation="CreateTrustProduct",status="201"} 1"#,
        r#"trusthub_twilio_requests_total{operation="FetchTrustProduct",status="timeout"} 1"#,
        r#"trusthub_twilio_retries_total{operation="CreateTrustProduct"} 1"#,
        r#"trusthub_twilio_throttled_total{operation="CreateTrustProduct"} 1"#,
        r#"trusthub_twilio_request_duration_seconds_count{operation="FetchTrustProduct"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[test]
fn records_reconciles_by_result_and_reason() {
    let metrics = Metrics::new();
    metrics.reconciled("ShakenStirTrustProduct", Duration::from_millis(3), None);
    let error = ReconcileError::terminal("PolicyNotFound", "no policy");
    metrics.reconciled(
        "ShakenStirTrustProduct",
        Duration::from_millis(3),
        Some(error.reason()),
    );
    let text = metrics.render(true, None, None);
    for line in [
        r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="success"} 1"#,
        r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="error"} 1"#,
        r#"trusthub_reconcile_failures_total{kind="ShakenStirTrustProduct",reason="PolicyNotFound"} 1"#,
        r#"trusthub_reconcile_duration_seconds_count{kind="ShakenStirTrustProduct"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

fn stores() -> (Store<ShakenStirTrustProduct>, Store<BusinessProfileBinding>) {
    use crate::api::business_profile_binding::{
        BusinessProfileBindingStatus, ResolvedBusinessProfile,
    };
    use crate::api::shaken_stir_trust_product::ShakenStirTrustProductStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use kube::runtime::{reflector, watcher};

    fn product(
        name: &str,
        value: serde_json::Value,
        status: ShakenStirTrustProductStatus,
    ) -> ShakenStirTrustProduct {
        let mut p: ShakenStirTrustProduct = serde_json::from_value(value).expect("product");
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("telecom".into());
        p.status = Some(status);
        p
    }
    let submitted = |status: &str, at: i64| Condition {
        type_: "Submitted".into(),
        status: status.into(),
        reason: "Submitted".into(),
        message: String::new(),
        observed_generation: None,
        last_transition_time: Time(Timestamp::from_second(at).expect("time")),
    };
    let template = |name: &str| {
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/20-shaken-stir-trust-product.yaml"
        ))
        .expect("example");
        let mut v: serde_json::Value = serde_yaml::from_str(&example).expect("yaml");
        v["metadata"] = serde_json::json!({ "name": name });
        v
    };
    let products = [
        product(
            "approved",
            template("approved"),
            ShakenStirTrustProductStatus {
                twilio_status: Some("twilio-approved".into()),
                valid_until: Some("2027-06-01T00:00:00Z".into()),
                conditions: vec![submitted("True", 1_000)],
                submitted_at: Some(Time(Timestamp::from_second(2_000).expect("time"))),
                ..Default::default()
            },
        ),
        product(
            "reviewing",
            template("reviewing"),
            ShakenStirTrustProductStatus {
                twilio_status: Some("in-review".into()),
                // Adopted under review: no submittedAt, the condition's time counts.
                conditions: vec![submitted("True", 3_000)],
                valid_until: Some("not a time".into()),
                ..Default::default()
            },
        ),
        product(
            "draft",
            template("draft"),
            ShakenStirTrustProductStatus {
                twilio_status: Some("draft".into()),
                conditions: vec![submitted("False", 4_000)],
                ..Default::default()
            },
        ),
        product(
            "odd",
            template("odd"),
            ShakenStirTrustProductStatus {
                twilio_status: Some("something-new".into()),
                ..Default::default()
            },
        ),
    ];
    let (product_store, mut writer) = reflector::store();
    for p in products {
        writer.apply_watcher_event(&watcher::Event::Apply(p));
    }
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/10-business-profile-binding.yaml"
    ))
    .expect("example");
    let mut binding: BusinessProfileBinding = serde_yaml::from_str(&example).expect("yaml");
    binding.metadata.name = Some("primary".into());
    binding.metadata.namespace = Some("telecom".into());
    binding.status = Some(BusinessProfileBindingStatus {
        business_profile: Some(ResolvedBusinessProfile {
            sid: "BU00000000000000000000000000000000".into(),
            status: Some("twilio-rejected".into()),
            valid_until: Some("2027-01-02T03:04:05Z".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let (binding_store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(binding));
    (product_store, binding_store)
}

#[test]
fn reports_each_object_its_status_expiry_and_submission() {
    let metrics = Metrics::new();
    let (products, bindings) = stores();
    let text = metrics.render(true, Some(&products), Some(&bindings));
    let p = r#"kind="ShakenStirTrustProduct",namespace="telecom""#;
    let b = r#"kind="BusinessProfileBinding",namespace="telecom""#;
    for line in [
        format!(r#"trusthub_vetting_status{{{p},name="approved",status="twilio-approved"}} 1"#),
        format!(r#"trusthub_vetting_status{{{p},name="reviewing",status="in-review"}} 1"#),
        format!(r#"trusthub_vetting_status{{{p},name="draft",status="draft"}} 1"#),
        format!(r#"trusthub_vetting_status{{{p},name="odd",status="other"}} 1"#),
        format!(r#"trusthub_vetting_status{{{b},name="primary",status="twilio-rejected"}} 1"#),
        // 2027-06-01T00:00:00Z and 2027-01-02T03:04:05Z.
        format!(r#"trusthub_valid_until_timestamp_seconds{{{p},name="approved"}} 1811808000"#),
        format!(r#"trusthub_valid_until_timestamp_seconds{{{b},name="primary"}} 1798859045"#),
        // submittedAt wins over the condition's transition time when both exist.
        format!(r#"trusthub_submitted_timestamp_seconds{{{p},name="approved"}} 2000"#),
        format!(r#"trusthub_submitted_timestamp_seconds{{{p},name="reviewing"}} 3000"#),
        r#"trusthub_resources{kind="ShakenStirTrustProduct",status="other"} 1"#.to_string(),
        r#"trusthub_resources{kind="BusinessProfileBinding",status="twilio-rejected"} 1"#
            .to_string(),
        "trusthub_leader 1".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    // No expiry for an unparseable time, no submission for a product not submitted.
    assert!(!text.contains(r#"trusthub_valid_until_timestamp_seconds{kind="ShakenStirTrustProduct",namespace="telecom",name="reviewing"}"#));
    assert!(!text.contains(r#"name="draft"} "#), "{text}");
    assert!(!text.contains("BU0000"), "no SIDs in labels");
    assert_eq!(text.matches("trusthub_vetting_status{").count(), 5);
}

#[test]
fn standby_reports_leader_zero_and_no_objects() {
    let metrics = Metrics::new();
    let text = metrics.render(false, None, None);
    assert!(text.contains("\ntrusthub_leader 0\n"), "{text}");
    // prometheus-client prints no HELP/TYPE for a family without samples: a standby shows
    // no object families at all (and the dashboard check needs a scrape after an
    // onboarding, see tests/e2e/chart_monitoring.rs).
    assert!(!text.contains("trusthub_vetting_status"), "{text}");
    assert!(!text.contains("trusthub_valid_until"), "{text}");
}

#[test]
fn deleted_objects_and_changed_statuses_leave_no_stale_series() {
    let metrics = Metrics::new();
    let (products, bindings) = stores();
    metrics.render(true, Some(&products), Some(&bindings));
    let (empty, mut writer) = kube::runtime::reflector::store::<ShakenStirTrustProduct>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let text = metrics.render(true, Some(&empty), None);
    assert!(!text.contains("name=\"approved\""), "{text}");
    assert!(!text.contains("name=\"primary\""), "{text}");
}

#[test]
fn prometheus_text_describes_counters_under_their_sample_names() {
    let metrics = Metrics::new();
    metrics.reconciled("ShakenStirTrustProduct", Duration::from_millis(3), None);
    let openmetrics = metrics.render(true, None, None);
    assert!(openmetrics.contains("# TYPE trusthub_reconciles counter\n"));
    let text = to_prometheus_text(&openmetrics);
    for line in [
        "# HELP trusthub_reconciles_total Finished reconciles",
        "# TYPE trusthub_reconciles_total counter\n",
        "trusthub_reconciles_total{kind=\"ShakenStirTrustProduct\",result=\"success\"} 1\n",
        "# TYPE trusthub_reconcile_duration_seconds histogram\n",
        "# TYPE trusthub_leader gauge\ntrusthub_leader 1\n",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        !text.contains("# TYPE trusthub_reconciles counter"),
        "{text}"
    );
}

#[test]
fn only_an_explicit_text_plain_preference_gets_the_old_format() {
    assert!(wants_prometheus_text("text/plain"));
    assert!(wants_prometheus_text(
        "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
    ));
    // What Prometheus sends: it gets OpenMetrics.
    assert!(!wants_prometheus_text(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ));
    assert!(!wants_prometheus_text("*/*"));
    assert!(!wants_prometheus_text(""));
}
