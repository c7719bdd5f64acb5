//! Someone else writes an object while its reconcile runs a batch: the reconcile's next status
//! write, based on the version it planned from, is refused (409), and the next reconcile plans
//! from the newer copy. Nothing is written twice and nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use trusthub_sim::Faults;

use crate::controller_scale::{
    ASSIGN, ATTACH, NAME, apply_objects, every_number_once, requests, scale_seed, start,
};
use crate::sim_numbers::voice_numbers_of_subaccounts;
use crate::support::*;

/// Sets a label on `NAME` (someone else's write: a new resourceVersion, the same spec and
/// status) while a batch of `operation` writes runs: once at least 100 more writes were sent
/// than the status records as done (at 30 ms a call, 10 in flight, the batch of 500 then has
/// about a second left, so its outcome is written after the label).
async fn label_mid_batch<K>(env: &Env, api: &kube::Api<K>, operation: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    // `.status.numbers.done`, the same field in both kinds.
    let done = |obj: &K| {
        let json = serde_json::to_value(obj).unwrap_or_default();
        json["status"]["numbers"]["done"].as_u64().unwrap_or(0)
    };
    let started = std::time::Instant::now();
    loop {
        let obj = api.get(NAME).await.expect("get");
        if requests(env, operation) >= done(&obj) + 100 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no {operation} batch seen running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let patch = json!({"metadata": {"labels": {"example.com/touched": "yes"}}});
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_someone_else_mid_batch_supersedes_the_reconcile_without_duplicates() {
    const NUMBERS: usize = 1_500;
    // 30 ms per call, 10 in flight: about 1.5 s per batch of 500, three batches per object.
    let mut env = start(
        scale_seed(5, NUMBERS),
        Faults {
            latency_ms: 30,
            ..Faults::none()
        },
    )
    .await;
    let voice = voice_numbers_of_subaccounts(&env);
    let reconciles = Arc::new(Reconciles::default());
    env.start_controller_observed(reconciles.clone());
    apply_objects(&env, "Delete").await;

    label_mid_batch(&env, &env.bindings(), ASSIGN).await;
    label_mid_batch(&env, &env.products(), ATTACH).await;

    every_number_once(&env, &voice, voice.len()).await;
    for kind in ["BusinessProfileBinding", "ShakenStirTrustProduct"] {
        assert!(
            reconciles.count(kind, Some("Superseded")) >= 1,
            "{kind}: a status write was refused as superseded"
        );
    }
    env.shutdown().await;
}
