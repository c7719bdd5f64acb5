//! resourceVersion, generation, status subresource, finalizers, namespaces, Secret.stringData.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Condition, Widget, WidgetStatus, api_error, rv_of, widget, with_widgets};

#[tokio::test]
async fn resource_version_is_global_and_monotonic() {
    let (server, client, api) = with_widgets().await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let s = secrets
        .create(&PostParams::default(), &secret("s", &[("k", "v")]))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    assert!(rv_of(&a) < rv_of(&s) && rv_of(&s) < rv_of(&b));

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
    server.shutdown().await;
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
    let (server, _client, api) = with_widgets().await;
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
    server.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_isolated_both_ways() {
    let (server, _client, api) = with_widgets().await;
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
    server.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (server, _client, api) = with_widgets().await;
    let pp = PatchParams::default();
    let mut w = widget("a", 1);
    w.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    api.create(&PostParams::default(), &w).await.unwrap();

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("a").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());

    // Deleting again is idempotent; adding finalizers is refused.
    api.delete("a", &DeleteParams::default()).await.unwrap();
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
    server.shutdown().await;
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
    let (server, client, _api) = with_widgets().await;
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let s = secrets
        .create(&PostParams::default(), &secret("s", &[("token", "abc")]))
        .await
        .unwrap();
    assert_eq!(s.string_data, None);
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let data = s.data.unwrap();
    assert_eq!(data["token"].0, b"abc");
    server.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_cascades_and_respects_finalizers() {
    let (server, client, _api) = with_widgets().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("team".into());
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let api: Api<Widget> = Api::namespaced(client.clone(), "team");
    let mut held = widget("held", 1);
    held.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.create(&PostParams::default(), &widget("free", 1))
        .await
        .unwrap();

    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("team").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(api.get_opt("free").await.unwrap().is_none());
    assert!(
        api.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let refused = api
        .create(&PostParams::default(), &widget("new", 1))
        .await
        .unwrap_err();
    assert_eq!(api_error(refused).code, 403);

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    assert!(namespaces.get_opt("team").await.unwrap().is_none());
    assert!(namespaces.get_opt("default").await.unwrap().is_some());
    server.shutdown().await;
}
