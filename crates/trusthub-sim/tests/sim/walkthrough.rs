//! The seed's six steps (SHAKEN/STIR onboarding, direct customer using subaccounts) over
//! HTTP, through Stoplight Prism validating proxies, asserting every response field.
//!
//! Both APIs go through `prism proxy … --errors` and must produce no violation at all. (The
//! API 2010 paging URIs are absolute, as the spec's `format: uri` demands, although Twilio's
//! examples show host-relative paths.)

use serde_json::{Value, json};

use crate::common::*;

const TH_SPEC: &str = "twilio_trusthub_v1.json";
const API_SPEC: &str = "twilio_api_v2010.json";

#[track_caller]
fn assert_profile(th_spec: &Value, p: &Value, base: &str) {
    assert_schema_fields(th_spec, "trusthub.v1.customer_profile", p);
    let url = format!("{base}/v1/CustomerProfiles/{PRIMARY}");
    assert_eq!(p["sid"], PRIMARY);
    assert_eq!(p["account_sid"], PARENT);
    assert_eq!(p["policy_sid"], "RN6433641899984f951173ef1738c3bdd0");
    assert_eq!(p["friendly_name"], "Acme Telecom Primary Business Profile");
    assert_eq!(p["status"], "twilio-approved");
    assert!(iso(&p["valid_until"]));
    assert_eq!(p["email"], "compliance@acme.example");
    assert_eq!(p["status_callback"], Value::Null);
    assert!(iso(&p["date_created"]) && iso(&p["date_updated"]));
    assert_eq!(p["url"], url);
    assert_eq!(
        p["links"],
        json!({
            "customer_profiles_entity_assignments": format!("{url}/EntityAssignments"),
            "customer_profiles_evaluations": format!("{url}/Evaluations"),
            "customer_profiles_channel_endpoint_assignment": format!("{url}/ChannelEndpointAssignments"),
        })
    );
    assert_eq!(p["errors"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_walkthrough_six_steps_validate_against_the_spec() {
    let sim = start().await;
    let base = sim.base_url();
    let th_spec = load_spec(TH_SPEC);
    let api_spec = load_spec(API_SPEC);
    let (th_proxy, api_proxy) = proxies(&sim).await;
    let th = Api::parent(&sim).with_base(&th_proxy.base);
    let api = Api::parent(&sim).with_base(&api_proxy.base);

    // Step 1: the Primary Business Profile exists (made in the Console); find and fetch it.
    let r = th
        .get("/v1/CustomerProfiles?PolicySid=RN6433641899984f951173ef1738c3bdd0")
        .await;
    strict(&r, 200);
    let list_url = format!(
        "{base}/v1/CustomerProfiles?PolicySid=RN6433641899984f951173ef1738c3bdd0&PageSize=50&Page=0"
    );
    assert_eq!(
        r.body["meta"],
        json!({"page": 0, "page_size": 50, "first_page_url": list_url, "previous_page_url": null,
               "url": list_url, "next_page_url": null, "key": "results"})
    );
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    assert_profile(&th_spec, &r.body["results"][0], &base);
    let r = th.get(&format!("/v1/CustomerProfiles/{PRIMARY}")).await;
    strict(&r, 200);
    assert_profile(&th_spec, &r.body, &base);

    // Step 2: the subaccounts' numbers (API 2010) go onto the Primary profile.
    let r = api.get("/2010-04-01/Accounts.json").await;
    strict(&r, 200);
    let accounts = r.body["accounts"].as_array().expect("accounts array");
    let sids: Vec<&str> = accounts.iter().filter_map(|a| a["sid"].as_str()).collect();
    assert_eq!(sids, [PARENT, EAST, WEST]);
    for a in accounts {
        assert_schema_fields(&api_spec, "api.v2010.account", a);
        let sid = a["sid"].as_str().unwrap_or_default();
        assert!(a["auth_token"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(rfc2822(&a["date_created"]) && rfc2822(&a["date_updated"]));
        assert_eq!(a["owner_account_sid"], PARENT);
        assert_eq!(a["status"], "active");
        assert_eq!(a["type"], "Full");
        assert_eq!(a["uri"], format!("/2010-04-01/Accounts/{sid}.json"));
        assert_eq!(
            a["subresource_uris"]["incoming_phone_numbers"],
            format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json")
        );
    }
    assert_eq!(accounts[1]["friendly_name"], "Acme East");
    assert_eq!(accounts[1]["auth_token"], EAST_TOKEN);
    assert_eq!(
        r.body["first_page_uri"],
        format!("{base}/2010-04-01/Accounts.json?PageSize=50&Page=0")
    );
    assert_eq!(
        r.body["uri"],
        format!("{base}/2010-04-01/Accounts.json?PageSize=50&Page=0")
    );
    assert_eq!(r.body["next_page_uri"], Value::Null);
    assert_eq!(r.body["previous_page_uri"], Value::Null);
    assert_eq!(
        (r.body["page"].clone(), r.body["page_size"].clone()),
        (json!(0), json!(50))
    );
    assert_eq!(
        (r.body["start"].clone(), r.body["end"].clone()),
        (json!(0), json!(2))
    );

    let r = api.get(&format!("/2010-04-01/Accounts/{EAST}.json")).await;
    strict(&r, 200);
    assert_schema_fields(&api_spec, "api.v2010.account", &r.body);
    assert_eq!(r.body["sid"], EAST);

    let mut sub_numbers = Vec::new();
    for (sub, expected) in [
        (EAST, vec![EAST_NUMBER_1, EAST_NUMBER_2]),
        (WEST, vec![WEST_NUMBER]),
    ] {
        let r = api
            .get(&format!(
                "/2010-04-01/Accounts/{sub}/IncomingPhoneNumbers.json"
            ))
            .await;
        strict(&r, 200);
        let numbers = r.body["incoming_phone_numbers"]
            .as_array()
            .expect("numbers");
        let sids: Vec<&str> = numbers.iter().filter_map(|n| n["sid"].as_str()).collect();
        assert_eq!(sids, expected);
        for n in numbers {
            assert_schema_fields(&api_spec, "api.v2010.account.incoming_phone_number", n);
            assert_eq!(n["account_sid"], sub);
            assert!(
                n["phone_number"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("+1500555"))
            );
            assert!(rfc2822(&n["date_created"]) && rfc2822(&n["date_updated"]));
            assert_eq!(
                n["uri"],
                format!(
                    "/2010-04-01/Accounts/{sub}/IncomingPhoneNumbers/{}.json",
                    n["sid"].as_str().unwrap_or_default()
                )
            );
            assert_eq!(n["capabilities"]["voice"], true);
            assert_eq!(n["api_version"], "2010-04-01");
            assert_eq!(n["status"], "in-use");
        }
        sub_numbers.extend(expected);
    }
    let r = api.get(&format!("/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers.json?PhoneNumber=%2B15005550202&PageSize=1")).await;
    strict(&r, 200);
    assert_eq!(r.body["incoming_phone_numbers"][0]["sid"], EAST_NUMBER_2);
    assert_eq!(
        r.body["incoming_phone_numbers"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(r.body["page_size"], 1);
    let r = api
        .get(&format!(
            "/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers/{EAST_NUMBER_1}.json"
        ))
        .await;
    strict(&r, 200);
    assert_schema_fields(
        &api_spec,
        "api.v2010.account.incoming_phone_number",
        &r.body,
    );
    assert_eq!(r.body["phone_number"], "+15005550201");
    assert_eq!(r.body["friendly_name"], "(500) 555-0201");

    for number in &sub_numbers {
        let r = th
            .post(
                &format!("/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments"),
                &[
                    ("ChannelEndpointType", "phone-number"),
                    ("ChannelEndpointSid", number),
                ],
            )
            .await;
        strict(&r, 201);
        let a = &r.body;
        assert_schema_fields(
            &th_spec,
            "trusthub.v1.customer_profile.customer_profile_channel_endpoint_assignment",
            a,
        );
        let sid = a["sid"].as_str().expect("sid");
        assert!(sid.starts_with("RA") && sid.len() == 34);
        assert_eq!(a["customer_profile_sid"], PRIMARY);
        assert_eq!(a["account_sid"], PARENT);
        assert_eq!(a["channel_endpoint_type"], "phone-number");
        assert_eq!(a["channel_endpoint_sid"], *number);
        assert!(iso(&a["date_created"]));
        assert_eq!(
            a["url"],
            format!("{base}/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments/{sid}")
        );
    }

    // Step 3: create the SHAKEN/STIR Trust Product.
    let r = th
        .post(
            "/v1/TrustProducts",
            &[
                ("FriendlyName", "Acme SHAKEN/STIR"),
                ("Email", "ops@acme.example"),
                ("PolicySid", SHAKEN),
            ],
        )
        .await;
    strict(&r, 201);
    let tp = r.body["sid"].as_str().expect("sid").to_string();
    let tp_url = format!("{base}/v1/TrustProducts/{tp}");
    assert_schema_fields(&th_spec, "trusthub.v1.trust_product", &r.body);
    assert!(
        tp.starts_with("BU")
            && tp.len() == 34
            && tp[2..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(r.body["account_sid"], PARENT);
    assert_eq!(r.body["policy_sid"], SHAKEN);
    assert_eq!(r.body["friendly_name"], "Acme SHAKEN/STIR");
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["valid_until"], Value::Null);
    assert_eq!(r.body["email"], "ops@acme.example");
    assert_eq!(r.body["status_callback"], Value::Null);
    assert!(iso(&r.body["date_created"]) && iso(&r.body["date_updated"]));
    assert_eq!(r.body["url"], tp_url);
    assert_eq!(
        r.body["links"],
        json!({
            "trust_products_entity_assignments": format!("{tp_url}/EntityAssignments"),
            "trust_products_evaluations": format!("{tp_url}/Evaluations"),
            "trust_products_channel_endpoint_assignment": format!("{tp_url}/ChannelEndpointAssignments"),
        })
    );
    assert_eq!(r.body["errors"], Value::Null);

    // Step 4: link the Trust Product to the Business Profile.
    let r = th
        .post(
            &format!("/v1/TrustProducts/{tp}/EntityAssignments"),
            &[("ObjectSid", PRIMARY)],
        )
        .await;
    strict(&r, 201);
    assert_schema_fields(
        &th_spec,
        "trusthub.v1.trust_product.trust_product_entity_assignment",
        &r.body,
    );
    let bv = r.body["sid"].as_str().expect("sid").to_string();
    assert!(bv.starts_with("BV"));
    assert_eq!(r.body["trust_product_sid"], tp.as_str());
    assert_eq!(r.body["account_sid"], PARENT);
    assert_eq!(r.body["object_sid"], PRIMARY);
    assert!(iso(&r.body["date_created"]));
    assert_eq!(r.body["url"], format!("{tp_url}/EntityAssignments/{bv}"));
    let r = th
        .get(&format!("/v1/TrustProducts/{tp}/EntityAssignments/{bv}"))
        .await;
    strict(&r, 200);
    assert_eq!(r.body["object_sid"], PRIMARY);

    // Step 5: assign the numbers (already on the profile) to the Trust Product.
    for number in [EAST_NUMBER_1, WEST_NUMBER] {
        let r = th
            .post(
                &format!("/v1/TrustProducts/{tp}/ChannelEndpointAssignments"),
                &[
                    ("ChannelEndpointType", "phone-number"),
                    ("ChannelEndpointSid", number),
                ],
            )
            .await;
        strict(&r, 201);
        assert_schema_fields(
            &th_spec,
            "trusthub.v1.trust_product.trust_product_channel_endpoint_assignment",
            &r.body,
        );
        let ra = r.body["sid"].as_str().expect("sid");
        assert!(ra.starts_with("RA"));
        assert_eq!(r.body["trust_product_sid"], tp.as_str());
        assert_eq!(r.body["account_sid"], PARENT);
        assert_eq!(r.body["channel_endpoint_type"], "phone-number");
        assert_eq!(r.body["channel_endpoint_sid"], number);
        assert!(iso(&r.body["date_created"]));
        assert_eq!(
            r.body["url"],
            format!("{tp_url}/ChannelEndpointAssignments/{ra}")
        );
    }
    let r = th
        .get(&format!(
            "/v1/TrustProducts/{tp}/ChannelEndpointAssignments?ChannelEndpointSid={WEST_NUMBER}"
        ))
        .await;
    strict(&r, 200);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["results"][0]["channel_endpoint_sid"], WEST_NUMBER);

    // Optional check before submitting: an evaluation.
    let r = th
        .post(
            &format!("/v1/TrustProducts/{tp}/Evaluations"),
            &[("PolicySid", SHAKEN)],
        )
        .await;
    strict(&r, 201);
    assert_schema_fields(
        &th_spec,
        "trusthub.v1.trust_product.trust_product_evaluation",
        &r.body,
    );
    let el = r.body["sid"].as_str().expect("sid").to_string();
    assert!(el.starts_with("EL"));
    assert_eq!(r.body["account_sid"], PARENT);
    assert_eq!(r.body["policy_sid"], SHAKEN);
    assert_eq!(r.body["trust_product_sid"], tp.as_str());
    assert_eq!(r.body["status"], "compliant");
    assert!(iso(&r.body["date_created"]));
    assert_eq!(r.body["url"], format!("{tp_url}/Evaluations/{el}"));
    let results = r.body["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for req in results {
        assert_eq!(req["passed"], true, "{req}");
        assert_eq!(req["invalid"], json!([]));
    }
    let r = th
        .get(&format!("/v1/TrustProducts/{tp}/Evaluations/{el}"))
        .await;
    strict(&r, 200);
    assert_eq!(r.body["status"], "compliant");

    // Step 6: submit for vetting.
    let r = th
        .post(
            &format!("/v1/TrustProducts/{tp}"),
            &[
                ("Status", "pending-review"),
                ("StatusCallback", "http://127.0.0.1:9/cb"),
            ],
        )
        .await;
    strict(&r, 200);
    assert_schema_fields(&th_spec, "trusthub.v1.trust_product", &r.body);
    assert_eq!(r.body["status"], "pending-review");
    assert_eq!(r.body["status_callback"], "http://127.0.0.1:9/cb");

    // Twilio vets it (admin decision), the client sees the approval.
    sim.approve(&tp).expect("approve");
    let r = th
        .get(&format!(
            "/v1/TrustProducts?PolicySid={SHAKEN}&Status=twilio-approved"
        ))
        .await;
    strict(&r, 200);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    let approved = &r.body["results"][0];
    assert_schema_fields(&th_spec, "trusthub.v1.trust_product", approved);
    assert_eq!(approved["sid"], tp.as_str());
    assert_eq!(approved["status"], "twilio-approved");
    assert!(iso(&approved["valid_until"]));
    assert_eq!(approved["errors"], Value::Null);
    let r = th.get(&format!("/v1/Policies/{SHAKEN}")).await;
    strict(&r, 200);
    assert_schema_fields(&th_spec, "trusthub.v1.policies", &r.body);
    assert_eq!(r.body["sid"], SHAKEN);

    // Proof that the strict check is not vacuous: an undeclared 404 is reported by Prism.
    let r = th
        .get("/v1/TrustProducts/BU00000000000000000000000000000000")
        .await;
    assert!(
        !violations(&r).is_empty(),
        "Prism did not flag an undeclared 404"
    );

    drop(th_proxy);
    drop(api_proxy);
    sim.shutdown().await;
}
