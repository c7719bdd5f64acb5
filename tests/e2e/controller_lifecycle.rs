//! Rejection then resubmission through the annotation, Secret rotation, and deletion under
//! both policies (and with the Secret deleted first).

use std::sync::Arc;
use std::time::Duration;
use trusthub_operator::controller::SecretAccess;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::support::*;

fn with_policy(mut manifest: serde_json::Value, policy: &str) -> serde_json::Value {
    manifest["spec"]["deletionPolicy"] = json!(policy);
    manifest
}

async fn apply_examples_with_policy(env: &Env, policy: &str) {
    env.apply(example("examples/00-credentials-secret.yaml"))
        .await;
    env.apply(with_policy(
        example("examples/10-business-profile-binding.yaml"),
        policy,
    ))
    .await;
    env.apply(with_policy(
        example("examples/20-shaken-stir-trust-product.yaml"),
        policy,
    ))
    .await;
}

async fn events_with_reason(env: &Env, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    events
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for an Event with `reason`: the controller publishes it just after the status write
/// a test may have seen first.
async fn wait_event(env: &Env, reason: &str) -> Vec<Event> {
    let start = std::time::Instant::now();
    loop {
        let found = events_with_reason(env, reason).await;
        if !found.is_empty() || start.elapsed() > PATIENCE {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn product_sid(p: &trusthub_operator::api::ShakenStirTrustProduct) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.trust_product_sid.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_then_resubmit_through_the_annotation() {
    let mut env = Env::start(true).await;
    env.start_controller();
    env.apply_examples().await;
    let p = env
        .wait_product("acme-shaken-stir", "submitted", |p| {
            p.status.as_ref().and_then(|s| s.twilio_status.as_deref()) == Some("pending-review")
        })
        .await;
    let sid = product_sid(&p);
    env.sim.start_review(&sid).expect("review starts");
    env.sim.reject(&sid, &[18601]).expect("rejected");
    let p = env
        .wait_product("acme-shaken-stir", "Rejected", |p| {
            ready_reason(p).as_deref() == Some("Rejected")
        })
        .await;
    let status = p.status.clone().unwrap();
    assert_eq!(status.errors, vec![18601]);
    assert!(p.condition("Ready").unwrap().message.contains("18601"));
    assert!(
        !wait_event(&env, "Rejected").await.is_empty(),
        "a Warning Event reports the rejection"
    );
    // Not resubmitted on its own.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(env.writes().get("UpdateTrustProduct"), Some(&1));

    env.products()
        .patch("acme-shaken-stir", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"trusthub.stir.dev/resubmit": "fixed-website-2026-11-23"}}})))
        .await
        .expect("annotate");
    let p = env
        .wait_product("acme-shaken-stir", "resubmitted", |p| {
            p.status.as_ref().and_then(|s| s.twilio_status.as_deref()) == Some("pending-review")
        })
        .await;
    assert_eq!(
        p.status.as_ref().and_then(|s| s.last_resubmit.as_deref()),
        Some("fixed-website-2026-11-23")
    );
    assert_eq!(
        env.writes().get("UpdateTrustProduct"),
        Some(&2),
        "one resubmission"
    );
    assert_eq!(
        env.writes().get("CreateTrustProductEvaluation"),
        Some(&2),
        "evaluated again before resubmitting"
    );
    env.sim.start_review(&sid).expect("review starts");
    env.sim.approve(&sid).expect("approved");
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    assert_eq!(env.sim.trust_products().len(), 1);
    assert_no_duplicates(&env.sim);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_picked_up_without_waiting() {
    rotated_secret_is_picked_up(SecretAccess::Watch {
        label_selector: None,
    })
    .await;
}

/// With Secrets read by name only (`get`, no list or watch), the periodic check of the named
/// Secret's resourceVersion sees the rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_picked_up_by_the_get_only_recheck() {
    rotated_secret_is_picked_up(SecretAccess::Get {
        recheck: Duration::from_millis(500),
    })
    .await;
}

async fn rotated_secret_is_picked_up(secrets: SecretAccess) {
    let mut env = Env::start(false).await;
    // A slow recheck of terminal errors: only the Secret watch (or the Secret recheck) can make
    // this test pass in time.
    let mut config = env.controller_config();
    config.terminal_recheck = Duration::from_secs(3600);
    config.secrets = secrets;
    let ctx = trusthub_operator::controller::Context::new(env.client.clone(), config, None);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(trusthub_operator::controller::run(ctx, async move {
        let _ = rx.await;
    }));
    env.apply(secret(
        "twilio-credentials",
        "revokedtoken0000000000000000000000",
    ))
    .await;
    env.apply(example("examples/10-business-profile-binding.yaml"))
        .await;
    env.wait_binding("acme-primary", "refused", |b| {
        ready_reason(b).as_deref() == Some("TwilioAuthenticationFailed")
    })
    .await;
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    env.wait_binding("acme-primary", "Ready", ready).await;
    let _ = tx.send(());
    let _ = task.await;
    env.stop_controller().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_policy_removes_what_the_operator_created() {
    let mut env = Env::start(false).await;
    env.start_controller();
    apply_examples_with_policy(&env, "Delete").await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    env.wait_binding("acme-primary", "Ready", ready).await;
    env.products()
        .delete("acme-shaken-stir", &DeleteParams::default())
        .await
        .expect("delete product");
    wait_gone(&env.products(), "acme-shaken-stir").await;
    let cleanup: Vec<Option<String>> = events_with_reason(&env, "CleanupIncomplete")
        .await
        .into_iter()
        .map(|e| e.note)
        .collect();
    assert!(
        env.sim.trust_products().is_empty(),
        "the Trust Product is deleted; cleanup warnings: {cleanup:?}"
    );
    assert!(
        env.sim
            .entity_assignments()
            .iter()
            .all(|a| !a.bundle_sid.is_empty() && a.object_sid != PROFILE),
        "its profile attachment is deleted"
    );
    env.bindings()
        .delete("acme-primary", &DeleteParams::default())
        .await
        .expect("delete binding");
    wait_gone(&env.bindings(), "acme-primary").await;
    assert!(
        env.sim.channel_assignments().is_empty(),
        "every number assignment is removed"
    );
    let writes = env.writes();
    assert_eq!(
        writes.get("DeleteTrustProductChannelEndpointAssignment"),
        Some(&3)
    );
    assert_eq!(writes.get("DeleteTrustProductEntityAssignment"), Some(&1));
    assert_eq!(writes.get("DeleteTrustProduct"), Some(&1));
    assert_eq!(
        writes.get("DeleteCustomerProfileChannelEndpointAssignment"),
        Some(&3)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_policy_leaves_twilio_untouched() {
    let mut env = Env::start(false).await;
    env.start_controller();
    apply_examples_with_policy(&env, "Orphan").await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let before = env.writes();
    env.delete_examples().await;
    assert_eq!(env.writes(), before, "no Twilio write on deletion");
    assert_eq!(env.sim.trust_products().len(), 1);
    assert_eq!(env.sim.channel_assignments().len(), 6);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_never_hangs_when_the_secret_is_gone() {
    let mut env = Env::start(false).await;
    env.start_controller();
    apply_examples_with_policy(&env, "Delete").await;
    let p = env.wait_product("acme-shaken-stir", "Ready", ready).await;
    let sid = product_sid(&p);
    env.secrets()
        .delete("twilio-credentials", &DeleteParams::default())
        .await
        .expect("delete secret");
    env.delete_examples().await;
    assert_eq!(
        env.sim.trust_products().len(),
        1,
        "nothing could be deleted without credentials"
    );
    let warnings = events_with_reason(&env, "CleanupSkipped").await;
    assert_eq!(warnings.len(), 2, "one Warning per object: {warnings:#?}");
    let missing = format!("Secret {}/twilio-credentials not found", env.ns);
    assert!(
        warnings.iter().any(|e| e
            .note
            .as_deref()
            .is_some_and(|n| n.contains(&sid) && n.contains(&missing))),
        "the Warning lists what is left behind: {warnings:#?}"
    );
    env.shutdown().await;
}

/// In get-only mode the first check of a Secret after start-up finds the version the objects
/// just read themselves: it wakes nobody. (It used to wake every object once, which the
/// benchmark's idle run counted as one extra Twilio GET per object.) Nor does the initial
/// listing of the products wake their bindings for coverage: the start-up reconcile counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_operator_reconciles_each_approved_binding_once_in_get_mode() {
    let mut env = Env::start(false).await;
    env.start_controller();
    env.apply_examples().await;
    env.wait_product("acme-shaken-stir", "Ready", ready).await;
    env.wait_binding("acme-primary", "covered", |b| {
        let counts = b.status.as_ref().and_then(|s| s.numbers.as_ref());
        ready(b) && counts.is_some_and(|c| c.covered == 3)
    })
    .await;
    env.stop_controller().await;
    env.sim.reset_counters();
    // Secrets checked every 500 ms (support::controller_config): several checks in this window.
    let reconciles = Arc::new(Reconciles::default());
    env.start_controller_observed(reconciles.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The binding is counted: nothing else wakes it (a product may also be woken once by its
    // binding's start-up status write, whatever the Secret check does).
    assert_eq!(
        reconciles.all("BusinessProfileBinding"),
        1,
        "one start-up reconcile, none woken by the Secret check or the products' listing"
    );
    // Approved, and listed within the resync period: the record stands, nothing is read.
    let calls = env.sim.counters().by_operation;
    for op in ["FetchCustomerProfile", "ListCustomerProfile"] {
        assert_eq!(calls.get(op).copied().unwrap_or(0), 0, "{op}: {calls:#?}");
    }
    env.shutdown().await;
}
