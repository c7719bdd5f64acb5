//! Identity: Basic auth with account SID + token or API key + secret, and account scoping.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn bad_or_missing_credentials_get_twilios_401_body() {
    let sim = start().await;
    let expected = json!({
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401
    });
    let no_auth = reqwest::get(format!("{}/v1/TrustProducts", sim.base_url()))
        .await
        .expect("request");
    assert_eq!(no_auth.status(), 401);
    assert!(no_auth.headers().contains_key("www-authenticate"));
    assert_eq!(
        no_auth.json::<serde_json::Value>().await.expect("json"),
        expected
    );
    for (user, pass) in [
        (PARENT, "wrong"),
        (EAST, PARENT_TOKEN),
        (STANDARD_KEY, "wrong"),
        ("ACffffffffffffffffffffffffffffffff", PARENT_TOKEN),
    ] {
        let r = Api::new(&sim.base_url(), user, pass)
            .get("/v1/TrustProducts")
            .await;
        assert_eq!(r.status, 401, "{user}");
        assert_eq!(r.body, expected);
        let r = Api::new(&sim.base_url(), user, pass)
            .get("/2010-04-01/Accounts.json")
            .await;
        assert_eq!(r.body, expected);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn api_keys_act_for_their_account_and_standard_keys_cannot_list_accounts() {
    let sim = start().await;
    let standard = Api::new(&sim.base_url(), STANDARD_KEY, STANDARD_SECRET);
    let tp = create_trust_product(&standard, "via key").await;
    assert_eq!(sim.trust_products()[0].account_sid, PARENT);
    assert_eq!(
        Api::parent(&sim)
            .get(&format!("/v1/TrustProducts/{tp}"))
            .await
            .status,
        200
    );
    standard
        .get("/2010-04-01/Accounts.json")
        .await
        .assert_error(403, 20003);
    standard
        .get(&format!("/2010-04-01/Accounts/{EAST}.json"))
        .await
        .assert_error(403, 20003);
    // Numbers are not the Accounts resource: allowed.
    assert_eq!(
        standard
            .get(&format!(
                "/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers.json"
            ))
            .await
            .status,
        200
    );
    let main = Api::new(&sim.base_url(), MAIN_KEY, MAIN_SECRET);
    let r = main.get("/2010-04-01/Accounts.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accounts"].as_array().map(Vec::len), Some(3));
    sim.shutdown().await;
}

#[tokio::test]
async fn parents_reach_subaccount_numbers_but_not_the_reverse() {
    let sim = start().await;
    let parent = Api::parent(&sim);
    let east = Api::new(&sim.base_url(), EAST, EAST_TOKEN);
    let r = parent
        .get(&format!(
            "/2010-04-01/Accounts/{WEST}/IncomingPhoneNumbers.json"
        ))
        .await;
    assert_eq!(r.body["incoming_phone_numbers"][0]["sid"], WEST_NUMBER);
    let r = east
        .get(&format!(
            "/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers.json"
        ))
        .await;
    assert_eq!(
        r.body["incoming_phone_numbers"].as_array().map(Vec::len),
        Some(2)
    );
    east.get(&format!(
        "/2010-04-01/Accounts/{PARENT}/IncomingPhoneNumbers.json"
    ))
    .await
    .assert_error(404, 20404);
    east.get(&format!(
        "/2010-04-01/Accounts/{WEST}/IncomingPhoneNumbers.json"
    ))
    .await
    .assert_error(404, 20404);
    east.get(&format!(
        "/2010-04-01/Accounts/{WEST}/IncomingPhoneNumbers/{WEST_NUMBER}.json"
    ))
    .await
    .assert_error(404, 20404);
    east.get(&format!("/2010-04-01/Accounts/{PARENT}.json"))
        .await
        .assert_error(404, 20404);
    // A subaccount lists only itself.
    let r = east.get("/2010-04-01/Accounts.json").await;
    assert_eq!(r.body["accounts"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["accounts"][0]["owner_account_sid"], PARENT);
    // A number fetched under the wrong account is not found.
    parent
        .get(&format!(
            "/2010-04-01/Accounts/{EAST}/IncomingPhoneNumbers/{WEST_NUMBER}.json"
        ))
        .await
        .assert_error(404, 20404);
    sim.shutdown().await;
}
