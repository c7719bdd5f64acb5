//! Vetting by delays and by the admin API, `valid_until`, rejection `errors`, and signed
//! status callbacks.

use std::time::Duration;

use serde_json::json;
use trusthub_sim::vetting::twilio_signature;
use trusthub_sim::{SimConfig, SimError};

use crate::common::*;

fn param<'a>(c: &'a Captured, name: &str) -> Option<&'a str> {
    c.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn delays_drive_a_compliant_product_to_approval_with_signed_callbacks() {
    let sim = start_with(SimConfig {
        review_delay: Some(Duration::from_millis(100)),
        approve_delay: Some(Duration::from_millis(150)),
        ..SimConfig::default()
    })
    .await;
    let sink = CallbackSink::start().await;
    let api = Api::parent(&sim);
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let path = format!("/v1/TrustProducts/{tp}");
    let r = api
        .post(
            &path,
            &[("Status", "pending-review"), ("StatusCallback", &sink.url)],
        )
        .await;
    assert_eq!(r.body["status"], "pending-review");
    let body = wait_status(&api, &path, "twilio-approved").await;
    assert!(body["valid_until"].as_str().is_some());
    let got = sink.wait_for(3).await;
    let statuses: Vec<&str> = got.iter().filter_map(|c| param(c, "Status")).collect();
    assert_eq!(statuses, ["pending-review", "in-review", "twilio-approved"]);
    for c in &got {
        assert_eq!(c.url, sink.url);
        assert_eq!(param(c, "AccountSid"), Some(PARENT));
        assert_eq!(param(c, "BundleSid"), Some(tp.as_str()));
        assert_eq!(param(c, "TrustProductSid"), Some(tp.as_str()));
        let expected = twilio_signature(PARENT_TOKEN, &sink.url, &c.params);
        assert_eq!(c.signature.as_deref(), Some(expected.as_str()));
    }
    assert_eq!(sim.counters().callbacks_delivered, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_noncompliant_product_is_rejected_with_error_codes() {
    let sim = start_with(SimConfig {
        review_delay: Some(Duration::from_millis(50)),
        approve_delay: Some(Duration::from_millis(50)),
        ..SimConfig::default()
    })
    .await;
    let sink = CallbackSink::start().await;
    let api = Api::parent(&sim);
    let tp = create_trust_product(&api, "empty").await;
    let path = format!("/v1/TrustProducts/{tp}");
    api.post(
        &path,
        &[("Status", "pending-review"), ("StatusCallback", &sink.url)],
    )
    .await;
    let body = wait_status(&api, &path, "twilio-rejected").await;
    assert_eq!(body["errors"], json!([{"code": 22216}, {"code": 22214}]));
    assert_eq!(body["valid_until"], serde_json::Value::Null);
    let got = sink.wait_for(3).await;
    let last = &got[2];
    assert_eq!(param(last, "Status"), Some("twilio-rejected"));
    assert_eq!(param(last, "ErrorCodes"), Some("22216,22214"));
    assert!(param(last, "FailureReason").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn without_delays_only_the_admin_api_decides() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let http = reqwest::Client::new();
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let path = format!("/v1/TrustProducts/{tp}");
    // Draft objects cannot be decided.
    let r = http
        .post(format!("{}/_sim/bundles/{tp}/approve", sim.base_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 409);
    assert!(matches!(
        sim.approve(&tp),
        Err(SimError::NotUnderReview { .. })
    ));
    assert!(matches!(
        sim.approve("BU00000000000000000000000000000000"),
        Err(SimError::UnknownBundle(_))
    ));
    api.post(&path, &[("Status", "pending-review")]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.get(&path).await.body["status"], "pending-review");
    let r = http
        .post(format!("{}/_sim/bundles/{tp}/reject", sim.base_url()))
        .json(&json!({"codes": [18601, 18606]}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let body = api.get(&path).await.body;
    assert_eq!(body["status"], "twilio-rejected");
    assert_eq!(body["errors"], json!([{"code": 18601}, {"code": 18606}]));
    // Resubmit and approve over HTTP.
    api.post(&path, &[("Status", "pending-review")]).await;
    let r = http
        .post(format!("{}/_sim/bundles/{tp}/approve", sim.base_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["status"], "twilio-approved");
    assert!(body["valid_until"].as_str().is_some());
    let r = http
        .post(format!(
            "{}/_sim/bundles/BU00000000000000000000000000000000/approve",
            sim.base_url()
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_seeded_profile_in_review_is_vetted_by_the_delays() {
    let mut seed = trusthub_sim::Seed::default_seed();
    seed.customer_profiles[0].status = trusthub_sim::BundleStatus::InReview;
    let sim = start_with(SimConfig {
        seed,
        approve_delay: Some(Duration::from_millis(100)),
        ..SimConfig::default()
    })
    .await;
    let api = Api::parent(&sim);
    let body = wait_status(
        &api,
        &format!("/v1/CustomerProfiles/{PRIMARY}"),
        "twilio-approved",
    )
    .await;
    assert!(body["valid_until"].as_str().is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn approvals_last_the_configured_validity_and_the_admin_api_moves_valid_until() {
    let validity = Duration::from_secs(90);
    let sim = start_with(SimConfig {
        approval_validity: Some(validity),
        ..SimConfig::default()
    })
    .await;
    let api = Api::parent(&sim);
    let profile_path = format!("/v1/CustomerProfiles/{PRIMARY}");
    let seeded = api.get(&profile_path).await;
    let until = |body: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(body["valid_until"].as_str().expect("valid_until"))
            .expect("RFC 3339")
            .with_timezone(&chrono::Utc)
    };
    let left = until(&seeded.body) - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::seconds(90) && left > chrono::Duration::seconds(60),
        "the seeded approval lasts the configured validity, not 365 days: {left}"
    );
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let path = format!("/v1/TrustProducts/{tp}");
    api.post(&path, &[("Status", "pending-review")]).await;
    sim.approve(&tp).expect("approve");
    let left = until(&api.get(&path).await.body) - chrono::Utc::now();
    assert!(left <= chrono::Duration::seconds(90) && left > chrono::Duration::seconds(60));

    // The admin API moves the expiry: to the past (a lapsed approval), then cleared.
    let admin = reqwest::Client::new();
    let url = format!("{}/_sim/bundles/{tp}/valid-until", sim.base_url());
    let r = admin
        .put(&url)
        .json(&json!({"valid_until": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let body = api.get(&path).await.body;
    assert_eq!(body["valid_until"], "2020-01-01T00:00:00Z");
    assert_eq!(body["status"], "twilio-approved", "only the date moves");
    sim.set_valid_until(&tp, None).expect("clear");
    assert!(api.get(&path).await.body["valid_until"].is_null());
    let r = admin
        .put(format!(
            "{}/_sim/bundles/BU00000000000000000000000000000000/valid-until",
            sim.base_url()
        ))
        .json(&json!({"valid_until": null}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 404);
    let r = admin.put(&url).body("{").send().await.expect("put");
    assert_eq!(r.status(), 400);
    sim.shutdown().await;
}
