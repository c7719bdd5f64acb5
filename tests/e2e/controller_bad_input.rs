//! Runtime bad input the schema cannot catch: each case ends in its own condition reason, and
//! the operator makes no Twilio write for it.

use serde_json::json;

use crate::support::*;

const BINDING: &str = "acme-primary";

async fn binding_case(setup: Vec<serde_json::Value>, reason: &str) {
    let mut env = Env::start(false).await;
    env.start_controller();
    for manifest in setup {
        env.apply(manifest).await;
    }
    let b = env
        .wait_binding(BINDING, reason, |b| {
            ready_reason(b).as_deref() == Some(reason)
        })
        .await;
    assert!(!ready(&b));
    assert!(
        env.writes().is_empty(),
        "{reason}: no Twilio write, got {:?}",
        env.writes()
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret() {
    let b = binding(
        BINDING,
        "no-such-secret",
        json!({"sid": PROFILE}),
        json!([{"sid": WEST_1_SID}]),
        "Orphan",
    );
    binding_case(vec![b], "SecretNotFound").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token() {
    let s = secret("twilio-credentials", "wrongtoken000000000000000000000000");
    let b = binding(
        BINDING,
        "twilio-credentials",
        json!({"sid": PROFILE}),
        json!([{"sid": WEST_1_SID}]),
        "Orphan",
    );
    binding_case(vec![s, b], "TwilioAuthenticationFailed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_profile() {
    let s = secret("twilio-credentials", PARENT_TOKEN);
    let b = binding(
        BINDING,
        "twilio-credentials",
        json!({"friendlyName": "No Such Profile"}),
        json!([{"sid": WEST_1_SID}]),
        "Orphan",
    );
    binding_case(vec![s, b], "ProfileNotFound").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_not_in_the_subaccount() {
    let s = secret("twilio-credentials", PARENT_TOKEN);
    // +15005550301 belongs to the West subaccount, not East.
    let b = binding(
        BINDING,
        "twilio-credentials",
        json!({"sid": PROFILE}),
        json!([{"phoneNumber": "+15005550301", "subaccountSid": EAST}]),
        "Orphan",
    );
    binding_case(vec![s, b], "NumbersUnresolvable").await;
}

async fn product_case(env: &Env, name: &str, reason: &str) {
    let before = env.writes();
    let p = env
        .wait_product(name, reason, |p| ready_reason(p).as_deref() == Some(reason))
        .await;
    assert!(!ready(&p));
    assert_eq!(
        env.writes(),
        before,
        "{reason}: no Twilio write for the product"
    );
    assert!(
        p.status
            .as_ref()
            .and_then(|s| s.trust_product_sid.as_ref())
            .is_none()
            || reason == "NumberOnAnotherTrustProduct"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binding() {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    env.apply(product("lonely", "no-such-binding", "Lonely", "Orphan"))
        .await;
    product_case(&env, "lonely", "BindingNotFound").await;
    assert!(env.writes().is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_not_on_the_profile() {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    let mut p = product("direct", "unused", "Direct", "Orphan");
    let spec = p["spec"].as_object_mut().unwrap();
    spec.remove("businessProfileBindingRef");
    spec.insert("businessProfileSid".into(), json!(PROFILE));
    spec.insert("phoneNumbers".into(), json!([PARENT_NUMBER_SID]));
    env.apply(p).await;
    product_case(&env, "direct", "NumberNotOnProfile").await;
    assert!(env.writes().is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_on_another_trust_product() {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply_examples().await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    env.apply(product(
        "second",
        "acme-primary",
        "Second product",
        "Orphan",
    ))
    .await;
    product_case(&env, "second", "NumberOnAnotherTrustProduct").await;
    assert_eq!(
        env.sim.trust_products().len(),
        1,
        "no second Trust Product was created"
    );
    env.shutdown().await;
}
