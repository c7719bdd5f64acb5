//! Crash safety under `deletionPolicy: Delete`: the operator is killed (SIGKILL) right after
//! each Twilio write in turn, restarted, brought to Ready, then both objects are deleted. Every
//! Twilio object the operator created must be gone, and the assignment that existed before the
//! binding (a number already on the profile) must be untouched. A create whose status write was
//! lost to the kill must still be recorded as the operator's, or `Delete` leaves it behind.

use std::collections::BTreeMap;
use std::time::Duration;

use trusthub_sim::{Seed, SimConfig};

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
        let env = Env::start_with(SimConfig {
            seed: seed_with_preassigned_number(),
            review_delay: Some(Duration::from_millis(100)),
            approve_delay: Some(Duration::from_millis(300)),
            ..SimConfig::default()
        })
        .await;
        let preexisting = env.sim.channel_assignments();
        assert_eq!(preexisting.len(), 1, "the seed's assignment");
        let preexisting_entities = env.sim.entity_assignments();
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
        let mut restarted = env
            .operator_command()
            .spawn()
            .expect("restart trusthub-operator");
        let binding = env.wait_binding("acme-primary", "Ready", ready).await;
        env.wait_product("acme-shaken-stir", "Ready", ready).await;
        let owned: Vec<(Option<String>, bool)> = binding
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
        assert!(
            env.sim.trust_products().is_empty(),
            "kill after {seen:?}: the product it created is gone"
        );
        assert_eq!(
            env.sim.channel_assignments(),
            preexisting,
            "kill after {seen:?}: only the pre-existing assignment is left"
        );
        assert_eq!(env.sim.entity_assignments(), preexisting_entities);
        restarted.start_kill().expect("stop");
        let _ = restarted.wait().await;
        env.shutdown().await;
    }
}
