//! Observability and the admin API: counters by route and operationId, created objects,
//! reset, write events, state reset, admin token, account statuses and seeded trust products.

use serde_json::Value;
use trusthub_sim::{Counters, Secret, SimConfig};

use crate::common::*;

#[tokio::test]
async fn counters_count_calls_by_route_and_operation_and_created_objects() {
    let sim = start().await;
    let api = Api::parent(&sim);
    ready_trust_product(&api, EAST_NUMBER_1).await;
    api.get("/v1/TrustProducts").await;
    api.get(&format!(
        "/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers.json"
    ))
    .await;
    api.get("/v1/Nope").await;
    let c = sim.counters();
    assert_eq!(
        c.by_route
            .get("POST /v1/TrustProducts/{TrustProductSid}/ChannelEndpointAssignments"),
        Some(&1)
    );
    assert_eq!(
        c.by_route
            .get("GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"),
        Some(&1)
    );
    assert_eq!(c.by_route.get("GET UNMATCHED"), Some(&1));
    assert_eq!(c.calls("CreateTrustProduct"), 1);
    assert_eq!(c.calls("ListTrustProduct"), 1);
    assert_eq!(c.calls("CreateCustomerProfileChannelEndpointAssignment"), 1);
    assert_eq!(c.calls("ListIncomingPhoneNumber"), 1);
    assert_eq!(c.created.get("TrustProduct"), Some(&1));
    assert_eq!(c.created.get("TrustProductEntityAssignment"), Some(&1));
    assert_eq!(
        c.created.get("TrustProductChannelEndpointAssignment"),
        Some(&1)
    );
    assert_eq!(c.requests, 7);
    // The admin endpoint serves the same JSON.
    let http = reqwest::Client::new();
    let over_http: Counters = http
        .get(format!("{}/_sim/counters", sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(over_http, c);
    let r = http
        .post(format!("{}/_sim/counters/reset", sim.base_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 204);
    assert_eq!(sim.counters(), Counters::default());
    api.get("/v1/TrustProducts").await;
    sim.reset_counters();
    assert_eq!(sim.counters().requests, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_write_is_announced_before_its_response() {
    let sim = start().await;
    let mut writes = sim.subscribe_writes();
    let api = Api::parent(&sim);
    let tp = create_trust_product(&api, "tp").await;
    // The event is already there when the response has arrived.
    let event = writes.try_recv().expect("write event");
    assert_eq!(event.operation_id, "CreateTrustProduct");
    assert_eq!(event.sid, tp);
    assert_eq!(event.account_sid, PARENT);
    api.post(
        &format!("/v1/TrustProducts/{tp}"),
        &[("FriendlyName", "renamed")],
    )
    .await;
    assert_eq!(
        writes.try_recv().expect("event").operation_id,
        "UpdateTrustProduct"
    );
    api.get(&format!("/v1/TrustProducts/{tp}")).await;
    api.post("/v1/TrustProducts", &[("FriendlyName", "no email")])
        .await;
    assert!(
        writes.try_recv().is_err(),
        "reads and failed writes are not announced"
    );
    api.delete(&format!("/v1/TrustProducts/{tp}")).await;
    let event = writes.try_recv().expect("event");
    assert_eq!(
        (event.operation_id.as_str(), event.sid.as_str()),
        ("DeleteTrustProduct", tp.as_str())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn state_snapshot_and_reset_to_the_seed() {
    let sim = start().await;
    let api = Api::parent(&sim);
    create_trust_product(&api, "tp").await;
    let http = reqwest::Client::new();
    let state: Value = http
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(state["bundles"].as_array().map(Vec::len), Some(2));
    let r = http
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 204);
    assert!(sim.trust_products().is_empty());
    assert_eq!(sim.customer_profiles().len(), 1);
    assert_eq!(sim.counters().requests, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_admin_token_protects_the_admin_api() {
    let sim = start_with(SimConfig {
        admin_token: Some(Secret::new("admintok")),
        ..SimConfig::default()
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/_sim/counters", sim.base_url());
    let r = http.get(&url).send().await.expect("get");
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .bearer_auth("admintok")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        !format!(
            "{:?}",
            SimConfig {
                admin_token: Some(Secret::new("admintok")),
                ..SimConfig::default()
            }
        )
        .contains("admintok")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn account_status_is_set_through_the_admin_api_and_filtered_by_status() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_sim/accounts/{WEST}/status", sim.base_url()))
        .body(r#"{"status":"suspended"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "suspended");
    let west = api.get(&format!("/2010-04-01/Accounts/{WEST}.json")).await;
    assert_eq!(west.body["status"], "suspended");
    let suspended = api.get("/2010-04-01/Accounts.json?Status=suspended").await;
    let sids: Vec<&str> = suspended.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["sid"].as_str())
        .collect();
    assert_eq!(sids, [WEST]);
    sim.set_account_status(WEST, trusthub_sim::AccountStatus::Closed)
        .expect("known account");
    let west = api.get(&format!("/2010-04-01/Accounts/{WEST}.json")).await;
    assert_eq!(west.body["status"], "closed");
    let unknown = http
        .post(format!(
            "{}/_sim/accounts/AC00000000000000000000000000000000/status",
            sim.base_url()
        ))
        .body(r#"{"status":"active"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(unknown.status(), 404);
    let bad = http
        .post(format!("{}/_sim/accounts/{WEST}/status", sim.base_url()))
        .body(r#"{"status":"frozen"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn seeded_trust_products_and_absent_policies_are_served() {
    let mut seed = trusthub_sim::Seed::default_seed();
    seed.absent_policies
        .push(trusthub_sim::SHAKEN_STIR_POLICY.into());
    seed.trust_products.push(trusthub_sim::SeedTrustProduct {
        sid: "BUcccccccccccccccccccccccccccccccc".into(),
        account_sid: None,
        friendly_name: "Made by Twilio".into(),
        email: "compliance@acme.example".into(),
        policy_sid: trusthub_sim::SHAKEN_STIR_POLICY.into(),
        status: trusthub_sim::BundleStatus::TwilioApproved,
        business_profile: Some(PRIMARY.into()),
        phone_numbers: vec![EAST_NUMBER_1.into()],
    });
    let sim = start_with(SimConfig {
        seed,
        ..SimConfig::default()
    })
    .await;
    let api = Api::parent(&sim);
    api.get(&format!(
        "/v1/Policies/{}",
        trusthub_sim::SHAKEN_STIR_POLICY
    ))
    .await
    .assert_error(404, 20404);
    let product = api
        .get("/v1/TrustProducts/BUcccccccccccccccccccccccccccccccc")
        .await;
    assert_eq!(product.body["status"], "twilio-approved");
    let entities = api
        .get("/v1/TrustProducts/BUcccccccccccccccccccccccccccccccc/EntityAssignments")
        .await;
    assert_eq!(entities.body["results"][0]["object_sid"], PRIMARY);
    let numbers = api
        .get("/v1/TrustProducts/BUcccccccccccccccccccccccccccccccc/ChannelEndpointAssignments")
        .await;
    assert_eq!(
        numbers.body["results"][0]["channel_endpoint_sid"],
        EAST_NUMBER_1
    );
    sim.shutdown().await;
}
