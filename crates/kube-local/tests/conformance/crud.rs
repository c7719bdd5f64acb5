//! Create/get/list/update/patch/delete over a kube-rs Client.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy,
};
use serde_json::json;

use crate::{Cluster, Widget, api_error, rv_of, widget};

#[tokio::test]
async fn create_sets_metadata_and_rejects_duplicates() {
    let (c, api) = Cluster::with_widgets().await;
    let created = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some(c.ns.as_str()));
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));

    let dup = api
        .create(&PostParams::default(), &widget("a", 2))
        .await
        .unwrap_err();
    let status = api_error(dup);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );

    // Names must be RFC 1123 subdomains, label values valid label values.
    let status = api_error(
        api.create(&PostParams::default(), &widget("Bad_Name", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);
    assert!(
        status.message.starts_with(
            "Widget.example.com \"Bad_Name\" is invalid: metadata.name: Invalid value"
        ),
        "{}",
        status.message
    );
    let mut bad_label = widget("b", 1);
    bad_label.metadata.labels = Some([("k".to_string(), "-x".to_string())].into());
    let status = api_error(
        api.create(&PostParams::default(), &bad_label)
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);

    let mut generated = widget("", 1);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = g.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    c.shutdown().await;
}

#[tokio::test]
async fn get_missing_is_a_not_found_status() {
    let (c, api) = Cluster::with_widgets().await;
    let status = api_error(api.get("nope").await.unwrap_err());
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(status.message, "widgets.example.com \"nope\" not found");
    assert!(api.get_opt("nope").await.unwrap().is_none());
    c.shutdown().await;
}

#[tokio::test]
async fn list_filters_by_labels_and_fields_across_namespaces() {
    let (c, api) = Cluster::with_widgets().await;
    let client = c.client.clone();
    let other_ns = c.namespace("other").await;
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let mut w = widget(name, 1);
        w.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        api.create(&PostParams::default(), &w).await.unwrap();
    }
    let other: Api<Widget> = Api::namespaced(client.clone(), &other_ns);
    other
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();

    let names = |l: kube::core::ObjectList<Widget>| {
        l.items
            .into_iter()
            .map(|w| w.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    let front = api
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(names(front), ["a", "c"]);
    let not_front = api
        .list(&ListParams::default().labels("tier!=front"))
        .await
        .unwrap();
    assert_eq!(names(not_front), ["b"]);
    let set = api
        .list(&ListParams::default().labels("tier in (back,x)"))
        .await
        .unwrap();
    assert_eq!(names(set), ["b"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["b"]);

    // Other tests' widgets share a real apiserver: count only this test's two namespaces.
    let all: Api<Widget> = Api::all(client.clone());
    let every = all.list(&ListParams::default()).await.unwrap();
    let ours = every
        .items
        .iter()
        .filter(|w| [&c.ns, &other_ns].contains(&w.metadata.namespace.as_ref().unwrap()))
        .count();
    assert_eq!(ours, 4);
    let in_other = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={other_ns}")))
        .await
        .unwrap();
    assert_eq!(in_other.items.len(), 1);
    assert!(every.metadata.resource_version.is_some());

    // kind/apiVersion on the raw list.
    let raw: serde_json::Value = client
        .request(http_get(&format!(
            "/apis/example.com/v1/namespaces/{}/widgets?limit=2",
            c.ns
        )))
        .await
        .unwrap();
    assert_eq!(raw["kind"], "WidgetList");
    assert_eq!(raw["apiVersion"], "example.com/v1");
    assert_eq!(raw["items"].as_array().unwrap().len(), 2);
    let token = raw["metadata"]["continue"].as_str().unwrap();
    let rest = api
        .list(&ListParams::default().limit(2).continue_token(token))
        .await
        .unwrap();
    assert_eq!(names(rest), ["c"]);
    c.shutdown().await;
}

pub fn http_get(path: &str) -> axum::http::Request<Vec<u8>> {
    axum::http::Request::get(path).body(Vec::new()).unwrap()
}

#[tokio::test]
async fn update_checks_resource_version() {
    let (c, api) = Cluster::with_widgets().await;
    let created = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut first = created.clone();
    first.spec.size = 2;
    let updated = api
        .replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(rv_of(&updated), rv_of(&created));

    let mut stale = created.clone();
    stale.spec.size = 3;
    let status = api_error(
        api.replace("a", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(api.get("a").await.unwrap().spec.size, 2);
    c.shutdown().await;
}

#[tokio::test]
async fn patches_of_every_kind() {
    let (c, api) = Cluster::with_widgets().await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let pp = PatchParams::default();

    let merged = api
        .patch("a", &pp, &Patch::Merge(json!({"spec": {"color": "red"}})))
        .await
        .unwrap();
    assert_eq!(
        (merged.spec.size, merged.spec.color.as_deref()),
        (1, Some("red"))
    );

    let removed = api
        .patch("a", &pp, &Patch::Merge(json!({"spec": {"color": null}})))
        .await
        .unwrap();
    assert_eq!(removed.spec.color, None);

    // Strategic merge patch needs a Go type's patch metadata: custom resources refuse it
    // (415), built-ins take it.
    let status = api_error(
        api.patch("a", &pp, &Patch::Strategic(json!({"spec": {"size": 5}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType"),
        "{}",
        status.message
    );
    let secrets: Api<Secret> = c.api();
    secrets
        .create(
            &PostParams::default(),
            &crate::semantics::secret("s", &[("a", "1")]),
        )
        .await
        .unwrap();
    let strategic = secrets
        .patch(
            "s",
            &pp,
            &Patch::Strategic(json!({"stringData": {"b": "2"}})),
        )
        .await
        .unwrap();
    let keys: Vec<_> = strategic.data.unwrap().into_keys().collect();
    assert_eq!(keys, ["a", "b"]);
    api.patch("a", &pp, &Patch::Merge(json!({"spec": {"size": 5}})))
        .await
        .unwrap();

    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/size", "value": 5},
        {"op": "replace", "path": "/spec/size", "value": 6},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
    ]))
    .unwrap();
    let patched = api.patch("a", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    assert_eq!(patched.spec.size, 6);
    assert_eq!(patched.metadata.labels.unwrap()["x"], "y");

    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/size", "value": 1}])).unwrap();
    let status = api_error(
        api.patch("a", &pp, &Patch::<()>::Json(failing))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);

    // Server-side apply merges into an existing object and creates missing ones.
    let ssa = PatchParams::apply("tests").force();
    let applied = api
        .patch(
            "a",
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "a"}, "spec": {"size": 7},
            })),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.size, 7);
    let fresh = api
        .patch(
            "b",
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "b"}, "spec": {"size": 8},
            })),
        )
        .await
        .unwrap();
    assert_eq!(fresh.spec.size, 8);
    assert!(fresh.metadata.uid.is_some());

    let missing = api
        .patch("zzz", &pp, &Patch::Merge(json!({"spec": {}})))
        .await
        .unwrap_err();
    assert_eq!(api_error(missing).code, 404);
    c.shutdown().await;
}

#[tokio::test]
async fn delete_accepts_propagation_and_removes() {
    let (c, api) = Cluster::with_widgets().await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    // Background: Foreground and Orphan add a finalizer that only the garbage collector
    // (kube-controller-manager) removes, and neither testenv nor kube-local runs one.
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    api.delete("a", &dp).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    let status = api_error(
        api.delete("a", &DeleteParams::background())
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 404);

    // Namespaced objects need an existing namespace.
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "missing");
    let s = Secret {
        metadata: ObjectMeta {
            name: Some("s".into()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    let status = api_error(
        secrets
            .create(&PostParams::default(), &s)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"missing\" not found")
    );
    c.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_tracks_field_owners() {
    let (c, api) = Cluster::with_widgets().await;
    let pp = PostParams {
        field_manager: Some("creator".into()),
        ..PostParams::default()
    };
    api.create(&pp, &widget("a", 1)).await.unwrap();
    let body = |size: i64, color: Option<&str>| {
        let mut spec = json!({"size": size});
        if let Some(c) = color {
            spec["color"] = json!(c);
        }
        Patch::Apply(json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "a"}, "spec": spec,
        }))
    };
    // Changing a field another manager set is a conflict unless forced.
    let err = api
        .patch("a", &PatchParams::apply("ctl"), &body(2, Some("red")))
        .await
        .unwrap_err();
    let status = api_error(err);
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .contains("conflict with \"creator\" using example.com/v1: .spec.size"),
        "{}",
        status.message
    );
    let forced = api
        .patch(
            "a",
            &PatchParams::apply("ctl").force(),
            &body(2, Some("red")),
        )
        .await
        .unwrap();
    assert_eq!(
        (forced.spec.size, forced.spec.color.as_deref()),
        (2, Some("red"))
    );
    // A field the manager stops applying is removed.
    let dropped = api
        .patch("a", &PatchParams::apply("ctl"), &body(2, None))
        .await
        .unwrap();
    assert_eq!(dropped.spec.color, None);
    // Applying a value equal to another manager's is shared ownership, not a conflict.
    let shared = api
        .patch("a", &PatchParams::apply("other"), &body(2, None))
        .await
        .unwrap();
    assert_eq!(shared.spec.size, 2);
    c.shutdown().await;
}
