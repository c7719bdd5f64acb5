//! Evaluation before submission, the policy check, and numbers removed from a binding.

use kube::api::{Patch, PatchParams};
use serde_json::json;
use trusthub_sim::{BundleStatus, Seed, SimConfig};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noncompliant_products_are_not_submitted_until_an_evaluation_passes() {
    let mut seed = Seed::default_seed();
    seed.customer_profiles[0].status = BundleStatus::InReview;
    // Manual vetting: the profile stays in review until the test approves it.
    let mut env = Env::start_with(SimConfig {
        seed,
        ..SimConfig::default()
    })
    .await;
    env.start_controller();
    env.apply_examples().await;
    let b = env
        .wait_binding("acme-primary", "assigned, profile in review", |b| {
            b.status.as_ref().and_then(|s| s.numbers_summary.as_deref()) == Some("3/3")
                && ready_reason(b).as_deref() == Some("NotApproved")
        })
        .await;
    assert_eq!(
        b.condition("ProfileApproved").map(|c| c.status.as_str()),
        Some("False")
    );
    let p = env
        .wait_product("acme-shaken-stir", "noncompliant", |p| {
            p.condition("Compliant")
                .is_some_and(|c| c.reason == "Noncompliant")
        })
        .await;
    let evaluation = p
        .status
        .as_ref()
        .and_then(|s| s.last_evaluation.clone())
        .expect("evaluation recorded");
    assert_eq!(evaluation.status, "noncompliant");
    assert!(
        !evaluation.failed_requirements.is_empty(),
        "each failed requirement is listed"
    );
    assert!(
        evaluation
            .failed_requirements
            .iter()
            .all(|f| f.error_code.is_some() && f.reason.is_some())
    );
    assert!(
        p.condition("Compliant")
            .unwrap()
            .message
            .contains(&evaluation.failed_requirements[0].requirement)
    );
    assert_eq!(
        env.writes().get("UpdateTrustProduct"),
        None,
        "not submitted while noncompliant"
    );

    env.sim.approve(PROFILE).expect("profile approved");
    env.wait_binding("acme-primary", "Ready", ready).await;
    let p = env
        .wait_product("acme-shaken-stir", "submitted", |p| {
            p.status.as_ref().and_then(|s| s.twilio_status.as_deref()) == Some("pending-review")
        })
        .await;
    let sid = p
        .status
        .as_ref()
        .and_then(|s| s.trust_product_sid.clone())
        .unwrap_or_default();
    env.sim.start_review(&sid).expect("review starts");
    env.sim.approve(&sid).expect("product approved");
    let p = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    assert_eq!(
        p.status
            .as_ref()
            .and_then(|s| s.last_evaluation.as_ref())
            .map(|e| e.status.as_str()),
        Some("compliant")
    );
    assert_eq!(env.writes().get("UpdateTrustProduct"), Some(&1));
    assert!(
        env.writes()
            .get("CreateTrustProductEvaluation")
            .copied()
            .unwrap_or(0)
            >= 2
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_policy_is_a_clear_terminal_condition() {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply(example("examples/00-credentials-secret.yaml"))
        .await;
    env.apply(example("examples/10-business-profile-binding.yaml"))
        .await;
    env.wait_binding("acme-primary", "Ready", ready).await;
    let before = env.writes();
    let mut p = example("examples/20-shaken-stir-trust-product.yaml");
    p["spec"]["policySid"] = json!("RN00000000000000000000000000000000");
    env.apply(p).await;
    let p = env
        .wait_product("acme-shaken-stir", "PolicyNotFound", |p| {
            ready_reason(p).as_deref() == Some("PolicyNotFound")
        })
        .await;
    assert!(
        p.condition("Ready")
            .unwrap()
            .message
            .contains("RN00000000000000000000000000000000")
    );
    assert_eq!(
        env.writes(),
        before,
        "nothing is created without the policy"
    );
    env.shutdown().await;
}

async fn drop_a_number(policy: &str) -> (Env, usize) {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply(example("examples/00-credentials-secret.yaml"))
        .await;
    let mut b = example("examples/10-business-profile-binding.yaml");
    b["spec"]["deletionPolicy"] = json!(policy);
    env.apply(b).await;
    env.wait_binding("acme-primary", "Ready", ready).await;
    env.bindings()
        .patch(
            "acme-primary",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"phoneNumbers": [{"phoneNumber": "+15005550201", "subaccountSid": EAST}, {"sid": WEST_1_SID}]}})),
        )
        .await
        .expect("patch binding");
    env.wait_binding("acme-primary", "2/2", |b| {
        b.status.as_ref().is_some_and(|s| {
            s.numbers_summary.as_deref() == Some("2/2") && s.phone_numbers.len() == 2
        }) && ready(b)
    })
    .await;
    let left = env.sim.channel_assignments().len();
    (env, left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_dropped_from_a_binding_is_unassigned_under_delete() {
    let (env, left) = drop_a_number("Delete").await;
    assert_eq!(left, 2);
    assert_eq!(
        env.writes()
            .get("DeleteCustomerProfileChannelEndpointAssignment"),
        Some(&1)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_dropped_from_a_binding_stays_assigned_under_orphan() {
    let (env, left) = drop_a_number("Orphan").await;
    assert_eq!(left, 3);
    assert_eq!(
        env.writes()
            .get("DeleteCustomerProfileChannelEndpointAssignment"),
        None
    );
    env.shutdown().await;
}
