//! Who created what, under `deletionPolicy: Delete`. Crash safety: the operator is killed
//! (SIGKILL) right after each Twilio write in turn, restarted, brought to Ready, then both
//! objects are deleted. Every Twilio object the operator created must be gone, and the
//! assignment that existed before the binding (a number already on the profile) must be
//! untouched. A create whose status write was lost to the kill must still be recorded as the
//! operator's, or `Delete` leaves it behind. And a create Twilio refused leaves no claim: a
//! product of the same name made later by someone else is adopted, never deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use trusthub_operator::twilio::{CreateTrustProduct, TrustHub};
use trusthub_sim::{BundleStatus, FaultKind, Faults, ScriptedFault, Seed, SimConfig};

use crate::support::*;

/// The onboarding's writes with one number already on the profile: 2 assignments, the product,
/// its profile attachment, 3 number attachments, 1 evaluation, 1 submit.
const WRITES: usize = 9;

/// The default seed with the West number already assigned to the Primary Business Profile.
fn seed_with_preassigned_number() -> Seed {
    let mut seed = Seed::default_seed();
    seed.customer_profiles[0].phone_numbers = vec![WEST_1_SID.to_string()];
    seed
}

/// The examples with `deletionPolicy: Delete` on both objects.
async fn apply_examples_under_delete(env: &Env) {
    env.apply(example("examples/00-credentials-secret.yaml"))
        .await;
    for file in [
        "examples/10-business-profile-binding.yaml",
        "examples/20-shaken-stir-trust-product.yaml",
    ] {
        let mut manifest = example(file);
        manifest["spec"]["deletionPolicy"] = "Delete".into();
        env.apply(manifest).await;
    }
}

fn created(env: &Env) -> BTreeMap<String, u64> {
    env.sim
        .counters()
        .created
        .into_iter()
        .filter(|(k, _)| {
            k.contains("ChannelEndpointAssignment")
                || k.starts_with("TrustProduct") && !k.contains("Evaluation")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_each_write_under_delete_removes_exactly_what_it_created() {
    for kill_after in 1..=WRITES {
        let (env, before, seen) = killed_after(kill_after).await;
        assert_eq!(before.channels.len(), 1, "the seed's assignment");
        let mut restarted = env
            .operator_command()
            .spawn()
            .expect("restart trusthub-operator");
        let binding = env.wait_binding("acme-primary", "Ready", ready).await;
        let product = env.wait_product("acme-shaken-stir", "Ready", ready).await;
        let status = product.status.unwrap_or_default();
        assert!(
            status.entity_assignment_created
                && status.phone_numbers.iter().all(|n| n.created_by_operator),
            "kill after {seen:?}: the attachments it made are recorded as its own: {status:#?}"
        );
        let owned: Vec<(Option<trusthub_operator::api::Sid>, bool)> = binding
            .status
            .iter()
            .flat_map(|s| &s.phone_numbers)
            .map(|n| (n.sid.clone(), n.created_by_operator))
            .collect();
        assert_eq!(
            owned.iter().filter(|(_, ours)| *ours).count(),
            2,
            "kill after {seen:?}: the two assignments it made are recorded as its own: {owned:?}"
        );
        let want: BTreeMap<String, u64> = [
            ("CustomerProfileChannelEndpointAssignment", 2),
            ("TrustProduct", 1),
            ("TrustProductEntityAssignment", 1),
            ("TrustProductChannelEndpointAssignment", 3),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        assert_eq!(created(&env), want, "kill after {seen:?}: no duplicates");
        assert_no_duplicates(&env.sim);

        env.delete_examples().await;
        assert_only_the_seed_is_left(&env, &before, &seen);
        restarted.start_kill().expect("stop");
        let _ = restarted.wait().await;
        env.shutdown().await;
    }
}

/// After deletion: the product the operator created is gone and Twilio holds exactly the
/// assignments it held before the operator ran.
fn assert_only_the_seed_is_left(env: &Env, before: &Before, seen: &[String]) {
    assert!(
        env.sim.trust_products().is_empty(),
        "kill after {seen:?}: the product it created is gone"
    );
    assert_eq!(
        env.sim.channel_assignments(),
        before.channels,
        "kill after {seen:?}: only the pre-existing assignment is left"
    );
    assert_eq!(env.sim.entity_assignments(), before.entities);
}

/// The state of Twilio before the operator ran: the seed's assignments.
struct Before {
    channels: Vec<trusthub_sim::ChannelAssignment>,
    entities: Vec<trusthub_sim::EntityAssignment>,
}

/// Starts the operator on the examples under `Delete` and kills it right after the
/// `kill_after`-th Twilio write: the environment, Twilio's state before, the writes seen.
async fn killed_after(kill_after: usize) -> (Env, Before, Vec<String>) {
    let env = Env::start_with(SimConfig {
        seed: seed_with_preassigned_number(),
        review_delay: Some(Duration::from_millis(100)),
        approve_delay: Some(Duration::from_millis(300)),
        ..SimConfig::default()
    })
    .await;
    let before = Before {
        channels: env.sim.channel_assignments(),
        entities: env.sim.entity_assignments(),
    };
    let mut writes = env.sim.subscribe_writes();
    let mut operator = env
        .operator_command()
        .spawn()
        .expect("start trusthub-operator");
    apply_examples_under_delete(&env).await;
    let mut seen = Vec::new();
    while seen.len() < kill_after {
        let ev = tokio::time::timeout(PATIENCE, writes.recv())
            .await
            .expect("a Twilio write")
            .expect("write channel open");
        seen.push(ev.operation_id);
    }
    operator.start_kill().expect("SIGKILL");
    let _ = operator.wait().await;
    (env, before, seen)
}

/// Deleted while the operator is down, right after a write whose outcome it never recorded:
/// once back, it must still remove what that write made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_each_write_and_deleted_meanwhile_removes_what_it_created() {
    for kill_after in 1..=WRITES {
        let (env, before, seen) = killed_after(kill_after).await;
        // Twilio refuses to delete a product under review (unrelated to ownership): end it.
        for p in env.sim.trust_products() {
            if p.status == BundleStatus::PendingReview {
                env.sim.start_review(&p.sid).expect("start review");
            }
            if p.status.is_locked() {
                env.sim.approve(&p.sid).expect("approve");
            }
        }
        env.products()
            .delete("acme-shaken-stir", &Default::default())
            .await
            .expect("delete product");
        env.bindings()
            .delete("acme-primary", &Default::default())
            .await
            .expect("delete binding");
        let mut restarted = env
            .operator_command()
            .spawn()
            .expect("restart trusthub-operator");
        wait_gone(&env.products(), "acme-shaken-stir").await;
        wait_gone(&env.bindings(), "acme-primary").await;
        assert_only_the_seed_is_left(&env, &before, &seen);
        restarted.start_kill().expect("stop");
        let _ = restarted.wait().await;
        env.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_product_create_leaves_no_claim_on_a_later_product_of_that_name() {
    let mut env = Env::start(false).await;
    // Every create of a Trust Product is refused (429 is a definite answer: nothing was made).
    env.sim.push_fault(ScriptedFault {
        method: Some("POST".into()),
        path_prefix: "/v1/TrustProducts".into(),
        count: 100_000,
        action: FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
    });
    env.start_controller();
    apply_examples_under_delete(&env).await;
    env.wait_product("acme-shaken-stir", "refused by Twilio", |p| {
        p.condition("Synced")
            .is_some_and(|c| c.reason == "TwilioRateLimited")
    })
    .await;
    env.stop_controller().await;
    let stored = env.products().get("acme-shaken-stir").await.expect("get");
    let marker = stored
        .status
        .as_ref()
        .and_then(|s| s.create_pending_since.clone());

    // Someone else creates a product of that name, then the operator comes back.
    env.sim.set_faults(Faults::none());
    let theirs = crate::client_ops::parent_client(&env.sim, 50)
        .create_trust_product(&CreateTrustProduct {
            friendly_name: stored.spec.friendly_name.clone(),
            email: "someone@else.example".into(),
            policy_sid: stored.spec.policy_sid.clone(),
            status_callback: None,
        })
        .await
        .expect("someone else's create")
        .sid
        .expect("sid");
    env.start_controller();
    let product = env
        .wait_product("acme-shaken-stir", "using their product", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.trust_product_sid.as_deref())
                == Some(&theirs)
        })
        .await;
    assert!(
        !product
            .status
            .as_ref()
            .is_some_and(|s| s.trust_product_created),
        "someone else's product was recorded as created by the operator"
    );
    env.products()
        .delete("acme-shaken-stir", &Default::default())
        .await
        .expect("delete");
    wait_gone(&env.products(), "acme-shaken-stir").await;
    assert!(
        env.sim.trust_products().iter().any(|p| p.sid == theirs),
        "someone else's product survives the deletion"
    );
    assert_eq!(marker, None, "the create-pending marker outlived a refusal");
    env.shutdown().await;
}
