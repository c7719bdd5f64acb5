//! Findings K3 and K12: one Trust Product has one owning object; a SHAKEN/STIR product Twilio
//! made itself for the profile is adopted, never duplicated; a number on a product outside the
//! cluster is reported with that product's SID.

use serde_json::{Value, json};
use trusthub_sim::{Seed, SimConfig};

use crate::seeds::{OTHER_PROFILE, TWILIO_PRODUCT, other_profile, twilio_product};
use crate::support::*;

const EAST_1: &str = "+15005550201";
const EAST_2: &str = "+15005550202";

fn product_with(name: &str, friendly: &str, numbers: &[&str], extra: Value) -> Value {
    let mut p = product(name, "acme-primary", friendly, "Orphan");
    p["spec"]["phoneNumbers"] = json!(numbers);
    if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    p
}

async fn with_binding(env: &Env) {
    env.apply(example("examples/00-credentials-secret.yaml"))
        .await;
    env.apply(example("examples/10-business-profile-binding.yaml"))
        .await;
    env.wait_binding("acme-primary", "Ready", ready).await;
}

/// K3: a second object adopting the same Trust Product (other numbers, other name) gets a
/// terminal condition naming the first, and changes nothing in Twilio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_object_cannot_adopt_a_product_another_owns() {
    let mut env = Env::start(false).await;
    env.start_controller();
    with_binding(&env).await;
    // Held in draft, so its name and e-mail stay editable (what a second owner would fight over).
    env.apply(product_with(
        "first",
        "Acme first",
        &[EAST_1],
        json!({"submit": false}),
    ))
    .await;
    let first = env.wait_product("first", "Ready", ready).await;
    let sid = first
        .status
        .and_then(|s| s.trust_product_sid)
        .expect("first's product");

    env.apply(product_with(
        "second",
        "Acme second",
        &[EAST_2],
        json!({"submit": false, "trustProductSid": sid}),
    ))
    .await;
    let second = env
        .wait_product("second", "refused", |p| {
            ready_reason(p).as_deref() == Some("TrustProductInUse")
        })
        .await;
    let message = second.condition("Ready").expect("Ready").message.clone();
    assert!(
        message.contains(&sid) && message.contains("first"),
        "{message}"
    );
    let product = env
        .sim
        .trust_products()
        .into_iter()
        .find(|p| p.sid == sid)
        .expect("product");
    assert_eq!(
        product.friendly_name, "Acme first",
        "the name is not fought over"
    );
    let attached: Vec<String> = env
        .sim
        .channel_assignments()
        .into_iter()
        .filter(|a| a.bundle_sid == sid)
        .map(|a| a.channel_endpoint_sid)
        .collect();
    assert_eq!(attached.len(), 1, "only the first's number: {attached:?}");
    assert!(ready(&env.products().get("first").await.expect("first")));
    env.shutdown().await;
}

async fn start_seeded(seed: Seed) -> Env {
    Env::start_with(SimConfig {
        seed,
        review_delay: Some(std::time::Duration::from_millis(100)),
        approve_delay: Some(std::time::Duration::from_millis(300)),
        ..SimConfig::default()
    })
    .await
}

/// K12: Twilio made the SHAKEN/STIR product of the approved profile itself (another name): the
/// operator adopts it, says so, and never creates a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_twilio_made_for_the_profile_is_adopted() {
    let mut seed = Seed::default_seed();
    seed.trust_products.push(twilio_product(PROFILE, &[]));
    let mut env = start_seeded(seed).await;
    env.start_controller();
    env.apply_examples().await;
    let product = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let status = product.status.clone().expect("status");
    assert_eq!(status.trust_product_sid.as_deref(), Some(TWILIO_PRODUCT));
    assert!(!status.trust_product_created, "adopted, not created");
    let note = status.adoption.clone().unwrap_or_default();
    assert!(note.contains(PROFILE), "status says why: {note:?}");
    assert_eq!(env.sim.trust_products().len(), 1, "no second product");
    assert_eq!(status.numbers_summary.as_deref(), Some("3/3"));
    env.shutdown().await;
}

/// K12: a number already on a SHAKEN/STIR product outside the cluster (error 20409) is reported
/// with that product's SID, and that no object of the cluster owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_on_a_product_outside_the_cluster_is_reported_with_its_sid() {
    let mut seed = Seed::default_seed();
    seed.customer_profiles.push(other_profile());
    seed.trust_products
        .push(twilio_product(OTHER_PROFILE, &[WEST_1_SID]));
    let mut env = start_seeded(seed).await;
    env.start_controller();
    with_binding(&env).await;
    env.apply(product_with(
        "acme-shaken-stir",
        "Acme Telecom SHAKEN/STIR",
        &[WEST_1_SID],
        json!({}),
    ))
    .await;
    let refused = env
        .wait_product("acme-shaken-stir", "refused", |p| {
            p.condition("NumbersAttached")
                .is_some_and(|c| c.reason == "AttachmentRefused")
        })
        .await;
    let entry = refused
        .status
        .as_ref()
        .and_then(|s| s.phone_numbers.iter().find(|n| &*n.sid == WEST_1_SID))
        .and_then(|n| n.message.clone())
        .unwrap_or_default();
    assert!(
        entry.contains(TWILIO_PRODUCT) && entry.contains("no object in this cluster"),
        "{entry}"
    );
    env.shutdown().await;
}

/// K3: a number's assignment to the profile has one owning binding; a second binding naming
/// the same number gets a terminal condition naming the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_binding_cannot_own_a_number_another_binding_assigned() {
    let mut env = Env::start(false).await;
    env.start_controller();
    with_binding(&env).await;
    env.apply(binding(
        "second",
        "twilio-credentials",
        json!({"sid": PROFILE}),
        json!([{"sid": WEST_1_SID}]),
        "Delete",
    ))
    .await;
    let second = env
        .wait_binding("second", "refused", |b| {
            ready_reason(b).as_deref() == Some("NumberInAnotherBinding")
        })
        .await;
    let message = second.condition("Ready").expect("Ready").message.clone();
    assert!(
        message.contains(WEST_1_SID) && message.contains("acme-primary"),
        "{message}"
    );
    assert!(ready(
        &env.bindings().get("acme-primary").await.expect("first")
    ));
    env.shutdown().await;
}
