//! One test per Twilio rule the simulator enforces, asserting status and error code.

use serde_json::json;
use trusthub_sim::{BundleStatus, Seed, SimConfig};

use crate::common::*;

#[tokio::test]
async fn trust_product_number_must_already_be_on_the_linked_business_profile() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let tp = create_trust_product(&api, "tp").await;
    let assign = |tp: String| {
        let api = api.clone();
        async move {
            api.post(
                &format!("/v1/TrustProducts/{tp}/ChannelEndpointAssignments"),
                &[
                    ("ChannelEndpointType", "phone-number"),
                    ("ChannelEndpointSid", EAST_NUMBER_1),
                ],
            )
            .await
        }
    };
    // Not linked to any profile yet.
    assign(tp.clone()).await.assert_error(400, 22218);
    // Linked, but the number is not on the profile.
    let r = api
        .post(
            &format!("/v1/TrustProducts/{tp}/EntityAssignments"),
            &[("ObjectSid", PRIMARY)],
        )
        .await;
    assert_eq!(r.status, 201);
    assign(tp.clone()).await.assert_error(400, 22218);
    // On the profile: accepted.
    let r = api
        .post(
            &format!("/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", EAST_NUMBER_1),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(assign(tp).await.status, 201);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_number_belongs_to_at_most_one_shaken_stir_trust_product() {
    let sim = start().await;
    let api = Api::parent(&sim);
    ready_trust_product(&api, EAST_NUMBER_1).await;
    let second = create_trust_product(&api, "second").await;
    let r = api
        .post(
            &format!("/v1/TrustProducts/{second}/EntityAssignments"),
            &[("ObjectSid", PRIMARY)],
        )
        .await;
    assert_eq!(r.status, 201);
    let r = api
        .post(
            &format!("/v1/TrustProducts/{second}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", EAST_NUMBER_1),
            ],
        )
        .await;
    r.assert_error(409, 20409);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("SHAKEN/STIR")
    );
    let on_tps = sim
        .channel_assignments()
        .iter()
        .filter(|a| {
            a.channel_endpoint_sid == EAST_NUMBER_1
                && a.parent_kind == trusthub_sim::BundleKind::TrustProduct
        })
        .count();
    assert_eq!(on_tps, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_assignments_are_refused() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let profile_dup = api
        .post(
            &format!("/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", EAST_NUMBER_1),
            ],
        )
        .await;
    profile_dup.assert_error(409, 20409);
    let tp_dup = api
        .post(
            &format!("/v1/TrustProducts/{tp}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", EAST_NUMBER_1),
            ],
        )
        .await;
    tp_dup.assert_error(409, 20409);
    let entity_dup = api
        .post(
            &format!("/v1/TrustProducts/{tp}/EntityAssignments"),
            &[("ObjectSid", PRIMARY)],
        )
        .await;
    entity_dup.assert_error(409, 20409);
    assert_eq!(sim.entity_assignments().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn numbers_must_belong_to_the_account_or_its_subaccounts() {
    let sim = start().await;
    // The East subaccount cannot use the parent's or West's numbers.
    let east = Api::new(&sim.base_url(), EAST, EAST_TOKEN);
    let r = east
        .post(
            "/v1/CustomerProfiles",
            &[
                ("FriendlyName", "East"),
                ("Email", "e@acme.example"),
                ("PolicySid", trusthub_sim::SECONDARY_PROFILE_POLICY),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let profile = r.body["sid"].as_str().expect("sid").to_string();
    for foreign in [
        PARENT_NUMBER,
        WEST_NUMBER,
        "PN99999999999999999999999999999999",
    ] {
        let r = east
            .post(
                &format!("/v1/CustomerProfiles/{profile}/ChannelEndpointAssignments"),
                &[
                    ("ChannelEndpointType", "phone-number"),
                    ("ChannelEndpointSid", foreign),
                ],
            )
            .await;
        r.assert_error(400, 20423);
    }
    // Its own number is fine; the parent may use any subaccount's number.
    let r = east
        .post(
            &format!("/v1/CustomerProfiles/{profile}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", EAST_NUMBER_2),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    let r = Api::parent(&sim)
        .post(
            &format!("/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", WEST_NUMBER),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    // Only phone-number endpoints exist.
    let r = east
        .post(
            &format!("/v1/CustomerProfiles/{profile}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "messaging-service"),
                ("ChannelEndpointSid", EAST_NUMBER_1),
            ],
        )
        .await;
    r.assert_error(400, 20422);
    sim.shutdown().await;
}

#[tokio::test]
async fn no_edits_while_pending_review_in_review_or_approved() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let path = format!("/v1/TrustProducts/{tp}");
    assert_eq!(
        api.post(&path, &[("Status", "pending-review")])
            .await
            .status,
        200
    );
    for stage in ["pending-review", "in-review", "twilio-approved"] {
        if stage == "twilio-approved" {
            sim.approve(&tp).expect("approve");
        } else if stage == "in-review" {
            sim.start_review(&tp).expect("start review");
        }
        assert_eq!(api.get(&path).await.body["status"], stage);
        api.post(&path, &[("FriendlyName", "renamed")])
            .await
            .assert_error(400, 60711);
        api.post(&path, &[("Status", "pending-review")])
            .await
            .assert_error(400, 60711);
        api.post(
            &format!("{path}/EntityAssignments"),
            &[("ObjectSid", "ITaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")],
        )
        .await
        .assert_error(400, 60711);
        let bv = sim.entity_assignments()[0].sid.clone();
        api.delete(&format!("{path}/EntityAssignments/{bv}"))
            .await
            .assert_error(400, 60711);
        if stage != "twilio-approved" {
            api.delete(&path).await.assert_error(400, 60711);
        }
    }
    assert_eq!(sim.trust_products()[0].friendly_name, "tp");
    // Numbers may still be assigned after submitting (docs: "before or after").
    let r = api
        .post(
            &format!("/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", WEST_NUMBER),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    let r = api
        .post(
            &format!("{path}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", WEST_NUMBER),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    sim.shutdown().await;
}

#[tokio::test]
async fn clients_may_only_submit_from_draft_or_rejected() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let path = format!("/v1/TrustProducts/{tp}");
    for target in ["twilio-approved", "in-review", "twilio-rejected", "draft"] {
        api.post(&path, &[("Status", target)])
            .await
            .assert_error(400, 20422);
    }
    api.post(&path, &[("Status", "approved")])
        .await
        .assert_error(400, 22203);
    assert_eq!(
        api.post(&path, &[("Status", "pending-review")])
            .await
            .status,
        200
    );
    sim.reject(&tp, &[18601]).expect("reject");
    let r = api.get(&path).await;
    assert_eq!(r.body["status"], "twilio-rejected");
    assert_eq!(r.body["errors"], json!([{"code": 18601}]));
    // Resubmit after a rejection: allowed, rejection errors cleared.
    let r = api
        .post(
            &path,
            &[("Status", "pending-review"), ("FriendlyName", "fixed")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "pending-review");
    assert_eq!(r.body["errors"], serde_json::Value::Null);
    sim.shutdown().await;
}

#[tokio::test]
async fn evaluations_report_each_failed_requirement() {
    let mut seed = Seed::default_seed();
    seed.customer_profiles[0].status = BundleStatus::InReview;
    let sim = start_with(SimConfig {
        seed,
        ..SimConfig::default()
    })
    .await;
    let api = Api::parent(&sim);
    let tp = create_trust_product(&api, "tp").await;
    let evaluate = || {
        let api = api.clone();
        let tp = tp.clone();
        async move {
            let r = api
                .post(
                    &format!("/v1/TrustProducts/{tp}/Evaluations"),
                    &[("PolicySid", SHAKEN)],
                )
                .await;
            assert_eq!(r.status, 201);
            r.body
        }
    };
    let find = |body: &serde_json::Value, name: &str| {
        body["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["requirement_name"] == name).cloned())
            .unwrap_or_else(|| panic!("no requirement {name} in {body}"))
    };
    // Nothing attached: no business profile, no phone numbers.
    let e = evaluate().await;
    assert_eq!(e["status"], "noncompliant");
    let profile = find(&e, "customer_profile");
    assert_eq!(profile["passed"], false);
    assert_eq!(
        profile["invalid"][0]["object_field"],
        "customer_profile_sid"
    );
    assert_eq!(profile["invalid"][0]["error_code"], 22216);
    assert!(profile["invalid"][0]["failure_reason"].as_str().is_some());
    let numbers = find(&e, "phone_numbers");
    assert_eq!(numbers["passed"], false);
    assert_eq!(numbers["invalid"][0]["error_code"], 22214);
    // Profile attached but still in review.
    api.post(
        &format!("/v1/TrustProducts/{tp}/EntityAssignments"),
        &[("ObjectSid", PRIMARY)],
    )
    .await;
    let e = evaluate().await;
    let profile = find(&e, "customer_profile");
    assert_eq!(profile["passed"], false);
    assert_eq!(profile["invalid"][0]["object_field"], "bundle_status");
    assert_eq!(profile["invalid"][0]["error_code"], 22217);
    // Stored evaluations are listed.
    let r = api
        .get(&format!("/v1/TrustProducts/{tp}/Evaluations"))
        .await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(2));
    sim.shutdown().await;
}

#[tokio::test]
async fn required_parameters_unknown_sids_and_unknown_parameters() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let r = api
        .post(
            "/v1/TrustProducts",
            &[("FriendlyName", "x"), ("PolicySid", SHAKEN)],
        )
        .await;
    r.assert_error(400, 20001);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Email")
    );
    api.post(
        "/v1/TrustProducts",
        &[
            ("FriendlyName", "x"),
            ("Email", "e@x"),
            ("PolicySid", "RNnothex"),
        ],
    )
    .await
    .assert_error(400, 20422);
    api.get("/v1/TrustProducts/BU00000000000000000000000000000000")
        .await
        .assert_error(404, 20404);
    api.get("/v1/Policies/RN00000000000000000000000000000000")
        .await
        .assert_error(404, 20404);
    api.get("/v1/NoSuchThing").await.assert_error(404, 20404);
    // Unknown parameters are ignored, as Twilio does.
    let r = api
        .post(
            "/v1/TrustProducts",
            &[
                ("FriendlyName", "x"),
                ("Email", "e@x"),
                ("PolicySid", SHAKEN),
                ("Bogus", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    // Primary profiles are Console-only.
    api.post(
        "/v1/CustomerProfiles",
        &[
            ("FriendlyName", "p"),
            ("Email", "e@x"),
            ("PolicySid", trusthub_sim::PRIMARY_PROFILE_POLICY),
        ],
    )
    .await
    .assert_error(400, 20422);
    // Trust products cannot link another account's profile.
    let tp = r.body["sid"].as_str().expect("sid").to_string();
    api.post(
        &format!("/v1/TrustProducts/{tp}/EntityAssignments"),
        &[("ObjectSid", "BU00000000000000000000000000000000")],
    )
    .await
    .assert_error(400, 22205);
    sim.shutdown().await;
}

#[tokio::test]
async fn trust_hub_acts_on_the_authenticated_account() {
    let sim = start().await;
    let parent = Api::parent(&sim);
    let tp = create_trust_product(&parent, "parent tp").await;
    let east = Api::new(&sim.base_url(), EAST, EAST_TOKEN);
    let r = east.get("/v1/TrustProducts").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["results"], json!([]));
    east.get(&format!("/v1/TrustProducts/{tp}"))
        .await
        .assert_error(404, 20404);
    east.get(&format!("/v1/CustomerProfiles/{PRIMARY}"))
        .await
        .assert_error(404, 20404);
    east.delete(&format!("/v1/TrustProducts/{tp}"))
        .await
        .assert_error(404, 20404);
    let r = create_trust_product(&east, "east tp").await;
    assert_eq!(
        sim.trust_products()
            .iter()
            .find(|b| b.sid == r)
            .map(|b| b.account_sid.as_str()),
        Some(EAST)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_filter_and_honour_page_size() {
    let sim = start().await;
    let api = Api::parent(&sim);
    for i in 0..5 {
        create_trust_product(&api, &format!("tp{i}")).await;
    }
    let r = api.get("/v1/TrustProducts?PageSize=2").await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.body["meta"]["page_size"], 2);
    let mut names: Vec<String> = Vec::new();
    let mut next = Some(format!("{}/v1/TrustProducts?PageSize=2", sim.base_url()));
    let http = Api::parent(&sim);
    while let Some(url) = next {
        let path = url
            .strip_prefix(&sim.base_url())
            .expect("same host")
            .to_string();
        let r = http.get(&path).await;
        for item in r.body["results"].as_array().expect("results") {
            names.push(
                item["friendly_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        next = r.body["meta"]["next_page_url"].as_str().map(str::to_string);
    }
    assert_eq!(names, ["tp0", "tp1", "tp2", "tp3", "tp4"]);
    let r = api.get("/v1/TrustProducts?FriendlyName=tp3").await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    let r = api.get("/v1/TrustProducts?Status=twilio-approved").await;
    assert_eq!(r.body["results"], json!([]));
    let r = api.get("/v1/CustomerProfiles?Status=twilio-approved").await;
    assert_eq!(r.body["results"][0]["sid"], PRIMARY);
    api.get("/v1/TrustProducts?PageSize=0")
        .await
        .assert_error(400, 20422);
    let r = api
        .get(&format!(
            "/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers.json?PageSize=1"
        ))
        .await;
    assert_eq!(
        r.body["incoming_phone_numbers"].as_array().map(Vec::len),
        Some(1)
    );
    let next = r.body["next_page_uri"]
        .as_str()
        .expect("a second page")
        .to_string();
    // Absolute, as the spec's `format: uri` demands; the client follows its path and query.
    let path = next
        .strip_prefix(&sim.base_url())
        .expect("next page on the simulator's origin");
    assert!(path.starts_with("/2010-04-01/Accounts/"));
    let r = api.get(path).await;
    assert_eq!(r.body["incoming_phone_numbers"][0]["sid"], EAST_NUMBER_2);
    assert_eq!(r.body["next_page_uri"], serde_json::Value::Null);
    sim.shutdown().await;
}

#[tokio::test]
async fn deletes_answer_204_then_404() {
    let sim = start().await;
    let api = Api::parent(&sim);
    let tp = ready_trust_product(&api, EAST_NUMBER_1).await;
    let ra = sim
        .channel_assignments()
        .into_iter()
        .find(|a| a.bundle_sid == tp)
        .expect("assignment")
        .sid;
    let path = format!("/v1/TrustProducts/{tp}/ChannelEndpointAssignments/{ra}");
    let r = api.delete(&path).await;
    assert_eq!((r.status, r.body.clone()), (204, serde_json::Value::Null));
    api.delete(&path).await.assert_error(404, 20404);
    assert_eq!(
        api.delete(&format!("/v1/TrustProducts/{tp}")).await.status,
        204
    );
    api.get(&format!("/v1/TrustProducts/{tp}"))
        .await
        .assert_error(404, 20404);
    assert!(sim.entity_assignments().is_empty());
    sim.shutdown().await;
}
