//! The operations the walkthrough does not use, through the same Prism proxies: every
//! success response of every served operation validates against the spec.

use serde_json::Value;
use trusthub_sim::SECONDARY_PROFILE_POLICY;

use crate::common::*;

fn sid(r: &Resp) -> String {
    r.body["sid"].as_str().expect("sid").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_validates_against_the_spec() {
    let sim = start().await;
    let th_spec = load_spec("twilio_trusthub_v1.json");
    let (th_proxy, api_proxy) = proxies(&sim).await;
    let th = Api::parent(&sim).with_base(&th_proxy.base);
    let east = Api::new(&th_proxy.base, EAST, EAST_TOKEN);
    let api = Api::parent(&sim).with_base(&api_proxy.base);

    // CustomerProfiles: create (secondary, in a subaccount), list, fetch, update.
    let r = east
        .post(
            "/v1/CustomerProfiles",
            &[
                ("FriendlyName", "East secondary"),
                ("Email", "e@acme.example"),
                ("PolicySid", SECONDARY_PROFILE_POLICY),
                ("StatusCallback", "https://example.com/cb"),
            ],
        )
        .await;
    strict(&r, 201);
    assert_schema_fields(&th_spec, "trusthub.v1.customer_profile", &r.body);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["status_callback"], "https://example.com/cb");
    let cp = sid(&r);
    let r = east
        .get("/v1/CustomerProfiles?Status=draft&FriendlyName=East%20secondary")
        .await;
    strict(&r, 200);
    assert_eq!(r.body["results"][0]["sid"], cp.as_str());
    let r = east
        .post(
            &format!("/v1/CustomerProfiles/{cp}"),
            &[("Email", "new@acme.example")],
        )
        .await;
    strict(&r, 200);
    assert_eq!(r.body["email"], "new@acme.example");
    strict(&east.get(&format!("/v1/CustomerProfiles/{cp}")).await, 200);

    // Profile EntityAssignments: the parent's Primary, an EndUser, a document.
    let mut bvs = Vec::new();
    for object in [
        PRIMARY,
        "ITaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "RDaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let r = east
            .post(
                &format!("/v1/CustomerProfiles/{cp}/EntityAssignments"),
                &[("ObjectSid", object)],
            )
            .await;
        strict(&r, 201);
        assert_schema_fields(
            &th_spec,
            "trusthub.v1.customer_profile.customer_profile_entity_assignment",
            &r.body,
        );
        assert_eq!(r.body["customer_profile_sid"], cp.as_str());
        assert_eq!(r.body["object_sid"], object);
        bvs.push(sid(&r));
    }
    let r = east
        .get(&format!(
            "/v1/CustomerProfiles/{cp}/EntityAssignments?ObjectType=end_user"
        ))
        .await;
    strict(&r, 200);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    strict(
        &east
            .get(&format!(
                "/v1/CustomerProfiles/{cp}/EntityAssignments/{}",
                bvs[2]
            ))
            .await,
        200,
    );

    // Profile Evaluations: compliant with all three attached.
    let r = east
        .post(
            &format!("/v1/CustomerProfiles/{cp}/Evaluations"),
            &[("PolicySid", SECONDARY_PROFILE_POLICY)],
        )
        .await;
    strict(&r, 201);
    assert_schema_fields(
        &th_spec,
        "trusthub.v1.customer_profile.customer_profile_evaluation",
        &r.body,
    );
    assert_eq!(r.body["status"], "compliant");
    assert_eq!(r.body["customer_profile_sid"], cp.as_str());
    let el = sid(&r);
    strict(
        &east
            .get(&format!("/v1/CustomerProfiles/{cp}/Evaluations"))
            .await,
        200,
    );
    strict(
        &east
            .get(&format!("/v1/CustomerProfiles/{cp}/Evaluations/{el}"))
            .await,
        200,
    );

    // Profile ChannelEndpointAssignments: create, list (both filters), fetch, delete.
    let r = east
        .post(
            &format!("/v1/CustomerProfiles/{cp}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", EAST_NUMBER_2),
            ],
        )
        .await;
    strict(&r, 201);
    let ra = sid(&r);
    let r = east
        .get(&format!("/v1/CustomerProfiles/{cp}/ChannelEndpointAssignments?ChannelEndpointSids={EAST_NUMBER_1},{EAST_NUMBER_2}"))
        .await;
    strict(&r, 200);
    assert_eq!(r.body["results"][0]["sid"], ra.as_str());
    strict(
        &east
            .get(&format!(
                "/v1/CustomerProfiles/{cp}/ChannelEndpointAssignments/{ra}"
            ))
            .await,
        200,
    );
    let r = east
        .delete(&format!(
            "/v1/CustomerProfiles/{cp}/ChannelEndpointAssignments/{ra}"
        ))
        .await;
    strict(&r, 204);
    assert_eq!(r.body, Value::Null);
    strict(
        &east
            .delete(&format!(
                "/v1/CustomerProfiles/{cp}/EntityAssignments/{}",
                bvs[1]
            ))
            .await,
        204,
    );

    // TrustProducts: list, fetch, update, entity/channel list+fetch+delete, evaluations list, delete.
    let tp = ready_trust_product(&th, EAST_NUMBER_1).await;
    let r = th.get("/v1/TrustProducts?PageSize=1").await;
    strict(&r, 200);
    strict(&th.get(&format!("/v1/TrustProducts/{tp}")).await, 200);
    let r = th
        .post(
            &format!("/v1/TrustProducts/{tp}"),
            &[
                ("FriendlyName", "renamed"),
                ("StatusCallback", "https://example.com/tp"),
            ],
        )
        .await;
    strict(&r, 200);
    assert_eq!(r.body["friendly_name"], "renamed");
    let r = th
        .get(&format!("/v1/TrustProducts/{tp}/EntityAssignments"))
        .await;
    strict(&r, 200);
    let bv = r.body["results"][0]["sid"]
        .as_str()
        .expect("bv")
        .to_string();
    let r = th
        .get(&format!(
            "/v1/TrustProducts/{tp}/ChannelEndpointAssignments"
        ))
        .await;
    strict(&r, 200);
    let tra = r.body["results"][0]["sid"]
        .as_str()
        .expect("ra")
        .to_string();
    strict(
        &th.get(&format!(
            "/v1/TrustProducts/{tp}/ChannelEndpointAssignments/{tra}"
        ))
        .await,
        200,
    );
    strict(
        &th.get(&format!("/v1/TrustProducts/{tp}/Evaluations")).await,
        200,
    );
    strict(
        &th.delete(&format!(
            "/v1/TrustProducts/{tp}/ChannelEndpointAssignments/{tra}"
        ))
        .await,
        204,
    );
    strict(
        &th.delete(&format!("/v1/TrustProducts/{tp}/EntityAssignments/{bv}"))
            .await,
        204,
    );
    strict(&th.delete(&format!("/v1/TrustProducts/{tp}")).await, 204);
    strict(
        &east.delete(&format!("/v1/CustomerProfiles/{cp}")).await,
        204,
    );

    // Policies list.
    let r = th.get("/v1/Policies?PageSize=2").await;
    strict(&r, 200);
    assert_schema_fields(&th_spec, "trusthub.v1.policies", &r.body["results"][0]);
    assert!(r.body["meta"]["next_page_url"].as_str().is_some());

    // API 2010 with filters and a main key.
    let main = Api::new(&api_proxy.base, MAIN_KEY, MAIN_SECRET);
    let r = main
        .get("/2010-04-01/Accounts.json?FriendlyName=Acme%20West&Status=active")
        .await;
    strict(&r, 200);
    assert_eq!(r.body["accounts"][0]["sid"], WEST);
    let r = api.get(&format!("/2010-04-01/Accounts/{PARENT}/IncomingPhoneNumbers.json?PhoneNumber=555**01&Origin=twilio&Beta=false")).await;
    strict(&r, 200);
    assert_eq!(r.body["incoming_phone_numbers"][0]["sid"], PARENT_NUMBER);

    drop(th_proxy);
    drop(api_proxy);
    sim.shutdown().await;
}
