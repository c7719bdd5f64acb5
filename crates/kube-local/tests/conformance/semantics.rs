//! resourceVersion, generation, status subresource, finalizers, namespaces, Secret.stringData.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Cluster, Condition, Widget, WidgetStatus, api_error, local_rv, rv_of, widget};

#[tokio::test]
async fn every_write_gets_a_new_resource_version_and_no_ops_keep_it() {
    let (c, api) = Cluster::with_widgets().await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let secrets: Api<Secret> = c.api();
    let s = secrets
        .create(&PostParams::default(), &secret("s", &[("k", "v")]))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    assert!(rv_of(&a) != rv_of(&s) && rv_of(&s) != rv_of(&b) && rv_of(&a) != rv_of(&b));
    if !c.is_real() {
        // kube-local documents one global counter; a real apiserver's versions are opaque.
        assert!(local_rv(&a) < local_rv(&s) && local_rv(&s) < local_rv(&b));
    }

    // A write that changes nothing keeps the resourceVersion (no event either).
    let same = api
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(rv_of(&same), rv_of(&b));
    c.shutdown().await;
}

fn ready_status() -> WidgetStatus {
    WidgetStatus {
        sid: Some("BU1".into()),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
        }],
    }
}

#[tokio::test]
async fn generation_moves_on_spec_changes_only() {
    let (c, api) = Cluster::with_widgets().await;
    let pp = PatchParams::default();
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    assert_eq!(a.metadata.generation, Some(1));
    let labelled = api
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let status = api
        .patch_status("a", &pp, &Patch::Merge(json!({"status": ready_status()})))
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1));
    let spec = api
        .patch("a", &pp, &Patch::Merge(json!({"spec": {"size": 2}})))
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    c.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_isolated_both_ways() {
    let (c, api) = Cluster::with_widgets().await;
    let pp = PatchParams::default();
    // Status sent on create is dropped.
    let mut w = widget("a", 1);
    w.status = Some(ready_status());
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.status, None);

    // Main-resource writes ignore .status.
    let main = api
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"sid": "nope"}})),
        )
        .await
        .unwrap();
    assert_eq!((main.spec.size, main.status), (2, None));

    // /status writes ignore everything but .status.
    let st = api
        .patch_status(
            "a",
            &pp,
            &Patch::Merge(json!({"spec": {"size": 99}, "metadata": {"labels": {"x": "y"}}, "status": ready_status()})),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.size, 2);
    assert_eq!(st.metadata.labels, None);
    assert_eq!(st.status, Some(ready_status()));

    // replace_status with a stale resourceVersion conflicts.
    let mut stale = created.clone();
    stale.status = Some(WidgetStatus::default());
    let err = api
        .replace_status("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 409);
    let got = api.get_status("a").await.unwrap();
    assert_eq!(got.status, Some(ready_status()));
    c.shutdown().await;
}

/// The operator writes status as merge patches carrying the resourceVersion it planned from:
/// the version is a precondition, on the status subresource as on the main resource.
#[tokio::test]
async fn a_status_merge_patch_with_a_resource_version_is_conditional() {
    let (c, api) = Cluster::with_widgets().await;
    let pp = PatchParams::default();
    let created = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let base = created.metadata.resource_version.clone().unwrap();
    let written = api
        .patch_status(
            "a",
            &pp,
            &Patch::Merge(json!({"metadata": {"resourceVersion": base}, "status": ready_status()})),
        )
        .await
        .unwrap();
    assert_eq!(written.status, Some(ready_status()));
    let now = written.metadata.resource_version.clone().unwrap();
    assert_ne!(now, base);

    // Based on the version before that write: refused, and nothing changes.
    let err = api
        .patch_status(
            "a",
            &pp,
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": base}, "status": {"sid": "stale"}}),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 409);
    let got = api.get_status("a").await.unwrap();
    assert_eq!(got.status, Some(ready_status()));
    assert_eq!(got.metadata.resource_version.as_deref(), Some(now.as_str()));

    // Someone else's write (a label) moves the version on: the writer's own last version is
    // refused too.
    api.patch(
        "a",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    let err = api
        .patch_status(
            "a",
            &pp,
            &Patch::Merge(json!({"metadata": {"resourceVersion": now}, "status": {"sid": "late"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 409);
    c.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (c, api) = Cluster::with_widgets().await;
    let pp = PatchParams::default();
    let mut w = widget("a", 1);
    w.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("a").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    // Setting deletionTimestamp bumps generation, so a controller that compares
    // observedGeneration notices the deletion.
    assert_eq!(deleting.metadata.generation, Some(2));

    // Deleting again is idempotent (generation stays); adding finalizers is refused.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let again = api.get("a").await.unwrap();
    assert_eq!(
        (again.metadata.generation, rv_of(&again)),
        (Some(2), rv_of(&deleting))
    );
    let add = api
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/cleanup", "other/x"]}})),
        )
        .await
        .unwrap_err();
    let status = api_error(add);
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("no new finalizers"),
        "{}",
        status.message
    );

    // Spec edits still work while deleting.
    api.patch("a", &pp, &Patch::Merge(json!({"spec": {"size": 3}})))
        .await
        .unwrap();

    api.patch(
        "a",
        &pp,
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    c.shutdown().await;
}

pub fn secret(name: &str, string_data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        string_data: Some(
            string_data
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

#[tokio::test]
async fn secret_string_data_is_folded_into_data() {
    let (c, _api) = Cluster::with_widgets().await;
    let secrets: Api<Secret> = c.api();
    let s = secrets
        .create(&PostParams::default(), &secret("s", &[("token", "abc")]))
        .await
        .unwrap();
    assert_eq!(s.string_data, None);
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let data = s.data.unwrap();
    assert_eq!(data["token"].0, b"abc");
    c.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_makes_it_terminating_and_refuses_creates() {
    let (c, _api) = Cluster::with_widgets().await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let team = c.namespace("team").await;
    let created = namespaces.get(&team).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let api: Api<Widget> = Api::namespaced(c.client.clone(), &team);
    let mut held = widget("held", 1);
    held.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();

    namespaces
        .delete(&team, &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get(&team).await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let refused = api
        .create(&PostParams::default(), &widget("new", 1))
        .await
        .unwrap_err();
    let status = api_error(refused);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (403, "Forbidden"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("because it is being terminated"),
        "{}",
        status.message
    );
    c.shutdown().await;
}

/// kube-local runs the namespace cascade itself; on a real cluster kube-controller-manager's
/// namespace controller does it, and testenv runs none, so this is kube-local-only.
#[tokio::test]
async fn kube_local_namespace_deletion_cascades_and_respects_finalizers() {
    let (c, _api) = Cluster::local().await.and_widgets().await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let team = c.namespace("team").await;
    let api: Api<Widget> = Api::namespaced(c.client.clone(), &team);
    let mut held = widget("held", 1);
    held.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.create(&PostParams::default(), &widget("free", 1))
        .await
        .unwrap();

    namespaces
        .delete(&team, &DeleteParams::default())
        .await
        .unwrap();
    assert!(api.get_opt("free").await.unwrap().is_none());
    assert!(
        api.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    assert!(namespaces.get_opt(&team).await.unwrap().is_none());
    assert!(namespaces.get_opt("default").await.unwrap().is_some());
    c.shutdown().await;
}

#[tokio::test]
async fn leases_and_both_event_apis() {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;

    let (c, _api) = Cluster::with_widgets().await;
    let leases: Api<Lease> = c.api();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("leader".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    };
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    leases
        .replace("leader", &PostParams::default(), &mine)
        .await
        .unwrap();
    // A second contender holding the old resourceVersion loses.
    let mut theirs = created;
    theirs.spec.as_mut().unwrap().holder_identity = Some("pod-c".into());
    let lost = leases
        .replace("leader", &PostParams::default(), &theirs)
        .await
        .unwrap_err();
    assert_eq!(api_error(lost).code, 409);

    // An events.k8s.io/v1 Event is visible as a core v1 Event (shared storage).
    let new_events: Api<NewEvent> = c.api();
    let event: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "w.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Widget", "name": "w", "namespace": c.ns},
        "note": "hello", "reason": "Tested", "type": "Normal", "action": "Test",
        "reportingController": "tests", "reportingInstance": "tests-1",
    }))
    .unwrap();
    new_events
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    let core_events: Api<CoreEvent> = c.api();
    let listed = core_events
        .list(&kube::api::ListParams::default().fields("involvedObject.name=w"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].message.as_deref(), Some("hello"));
    let back = new_events.get("w.1").await.unwrap();
    assert_eq!(back.note.as_deref(), Some("hello"));
    assert_eq!(back.regarding.unwrap().name.as_deref(), Some("w"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_from_one_version_have_one_winner() {
    let (c, api) = Cluster::with_widgets().await;
    let base = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let attempts = (0..16).map(|i| {
        let api = api.clone();
        let mut w = base.clone();
        w.spec.size = 10 + i;
        tokio::spawn(async move { api.replace("a", &PostParams::default(), &w).await })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(api_error(e).code, 409),
        }
    }
    assert_eq!(won, 1);
    let after = api.get("a").await.unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    c.shutdown().await;
}
