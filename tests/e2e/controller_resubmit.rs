//! Finding K4 end to end: every resubmission is evaluated first, and a product rejected again
//! after a spec change waits for the user instead of resubmitting on its own.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::*;

const NAME: &str = "acme-shaken-stir";

fn twilio_status(p: &trusthub_operator::api::ShakenStirTrustProduct) -> Option<&str> {
    p.status.as_ref()?.twilio_status.as_deref()
}

async fn patch(env: &Env, body: Value) {
    env.products()
        .patch(NAME, &PatchParams::default(), &Patch::Merge(body))
        .await
        .expect("patch");
}

/// Waits for the product to be submitted, then has Twilio reject it, and waits for `Rejected`.
async fn submitted_then_rejected(env: &Env) -> String {
    let p = env
        .wait_product(NAME, "submitted", |p| {
            twilio_status(p) == Some("pending-review")
        })
        .await;
    let sid = p.status.and_then(|s| s.trust_product_sid).expect("sid");
    env.sim.start_review(&sid).expect("review starts");
    env.sim.reject(&sid, &[18601]).expect("rejected");
    env.wait_product(NAME, "Rejected", |p| {
        ready_reason(p).as_deref() == Some("Rejected")
    })
    .await;
    sid
}

fn count(env: &Env, op: &str) -> u64 {
    env.writes().get(op).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_resubmit_at_the_same_generation_is_evaluated_again() {
    let mut env = Env::start(true).await;
    env.start_controller();
    env.apply_examples().await;
    submitted_then_rejected(&env).await;
    patch(
        &env,
        json!({"metadata": {"annotations": {"trusthub.stir.dev/resubmit": "one"}}}),
    )
    .await;
    submitted_then_rejected(&env).await;
    assert_eq!(count(&env, "CreateTrustProductEvaluation"), 2);
    patch(
        &env,
        json!({"metadata": {"annotations": {"trusthub.stir.dev/resubmit": "two"}}}),
    )
    .await;
    env.wait_product(NAME, "resubmitted", |p| {
        twilio_status(p) == Some("pending-review")
    })
    .await;
    assert_eq!(count(&env, "UpdateTrustProduct"), 3, "three submissions");
    assert_eq!(
        count(&env, "CreateTrustProductEvaluation"),
        3,
        "each submission evaluated first"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_rejected_again_after_a_spec_change_waits_for_the_user() {
    let mut env = Env::start(true).await;
    env.start_controller();
    env.apply_examples().await;
    submitted_then_rejected(&env).await;
    patch(
        &env,
        json!({"spec": {"email": "trust@acme-telecom.example"}}),
    )
    .await;
    submitted_then_rejected(&env).await;
    let submissions = count(&env, "UpdateTrustProduct");
    // Not resubmitted on its own after the second rejection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = env.products().get(NAME).await.expect("product");
    assert_eq!(twilio_status(&p), Some("twilio-rejected"));
    assert_eq!(
        count(&env, "UpdateTrustProduct"),
        submissions,
        "no resubmission without a new spec or annotation"
    );
    env.shutdown().await;
}
