//! Schema admission of custom resources (crd-validation): 422 Invalid on bad objects,
//! pruning of unknown fields, and `fieldValidation=Strict`.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Cluster, api_error, widget};

#[tokio::test]
async fn invalid_objects_are_refused_with_422() {
    let (c, api) = Cluster::with_widgets().await;
    let status = api_error(
        api.create(&PostParams::default(), &widget("neg", -1))
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with("Widget.example.com \"neg\" is invalid: spec.size"),
        "{}",
        status.message
    );

    // The CEL rule on the root.
    let status = api_error(
        api.create(&PostParams::default(), &widget("big", 101))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422, "{}", status.message);

    // Updates are admitted too; the stored object is unchanged after a refusal.
    api.create(&PostParams::default(), &widget("ok", 1))
        .await
        .unwrap();
    let err = api
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": -5}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 422);
    assert_eq!(api.get("ok").await.unwrap().spec.size, 1);
    c.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_pruned_or_refused_when_strict() {
    let (c, api) = Cluster::with_widgets().await;
    let client = c.client.clone();
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"bogus": true}})),
        )
        .await
        .unwrap();
    // Pruning removes the field and, the spec being unchanged, generation stays put.
    assert_eq!(patched.metadata.generation, Some(1));
    let raw = serde_json::to_value(api.get("a").await.unwrap()).unwrap();
    assert!(raw["spec"].get("bogus").is_none(), "{raw}");

    // Without fieldValidation (= Warn) the apiserver answers with a Warning header.
    let path = format!("/apis/example.com/v1/namespaces/{}/widgets/a", c.ns);
    let request = axum::http::Request::patch(path)
        .header("content-type", "application/merge-patch+json")
        .body(kube::client::Body::from(
            br#"{"spec":{"bogus":1}}"#.to_vec(),
        ))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let warnings: Vec<&str> = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(warnings, [r#"299 - "unknown field \"spec.bogus\"""#]);

    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..PatchParams::default()
    };
    let err = api
        .patch(
            "a",
            &strict,
            &Patch::Merge(json!({"spec": {"bogus": true}})),
        )
        .await
        .unwrap_err();
    // A patch is refused as an invalid `patch` (422); a create or update body as a bad
    // request (400, see the kubectl tests).
    let status = api_error(err);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with(" \"\" is invalid: patch: Invalid value: \"{"),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .ends_with("strict decoding error: unknown field \"spec.bogus\""),
        "{}",
        status.message
    );
    let causes = status.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(
        causes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
        ["patch"]
    );
    c.shutdown().await;
}

/// etcd refuses a value over its request limit (1.5 MiB by default) and the apiserver answers
/// 500 with etcd's words; kube-local has no etcd but refuses alike, so a test on it meets the
/// same wall a cluster would.
#[tokio::test]
async fn an_object_over_etcds_limit_is_refused_with_500() {
    let (c, api) = Cluster::with_widgets().await;
    let mut big = widget("big-status", 1);
    api.create(&PostParams::default(), &big).await.unwrap();
    let sid = "x".repeat(1536 * 1024 + 64 * 1024);
    let status = api_error(
        api.patch_status(
            "big-status",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"sid": sid}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 500, "{}", status.message);
    assert!(
        status.message.contains("etcdserver: request is too large"),
        "{}",
        status.message
    );
    assert!(api.get("big-status").await.unwrap().status.is_none());
    big.metadata.name = Some("big-spec".into());
    big.spec.color = Some("y".repeat(1536 * 1024 + 64 * 1024));
    let status = api_error(api.create(&PostParams::default(), &big).await.unwrap_err());
    assert_eq!(status.code, 500, "{}", status.message);
    c.shutdown().await;
}

/// events.k8s.io/v1 refuses a note over 1 KiB (`NoteLengthLimit`) with 422.
#[tokio::test]
async fn an_event_note_over_one_kib_is_refused_with_422() {
    use k8s_openapi::api::events::v1::Event;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let c = Cluster::new().await;
    let api: kube::Api<Event> = kube::Api::namespaced(c.client.clone(), &c.ns);
    let event = |name: &str, note: String| Event {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        reporting_controller: Some("example.com/conformance".into()),
        reporting_instance: Some("conformance".into()),
        action: Some("Test".into()),
        reason: Some("Test".into()),
        type_: Some("Normal".into()),
        note: Some(note),
        regarding: Some(k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
            name: Some(c.ns.clone()),
            namespace: Some(c.ns.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create(&PostParams::default(), &event("fits", "n".repeat(1024)))
        .await
        .expect("a note of exactly 1 KiB");
    let status = api_error(
        api.create(&PostParams::default(), &event("over", "n".repeat(1025)))
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.starts_with(
            "Event \"over\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
        ),
        "{}",
        status.message
    );
    c.shutdown().await;
}
