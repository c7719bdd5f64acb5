//! Discovery via kube-rs, before and after a CRD is created; CRD status conditions.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::discovery::{Discovery, Scope};

use crate::{Cluster, ensure_crd, install_crd, renamed_crd};

#[tokio::test]
async fn discovery_lists_builtins_and_crds_once_created() {
    let c = Cluster::new().await;
    let client = c.client.clone();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );

    // A group of its own: the Widget CRD may already be installed by other tests.
    let group = "discovery.example.com";
    let before = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!before.has_group(group));
    let core = before.get("").expect("core group");
    let kinds: Vec<String> = core
        .recommended_resources()
        .into_iter()
        .map(|(r, _)| r.kind)
        .collect();
    for kind in ["Namespace", "Secret", "Event"] {
        assert!(kinds.contains(&kind.to_string()), "{kinds:?}");
    }
    for group in [
        "events.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(before.has_group(group), "{group}");
    }

    ensure_crd(&client, &renamed_crd(group, "Gizmo")).await;
    let after = Discovery::new(client.clone()).run().await.unwrap();
    let widgets = after.get(group).expect("the group after CRD creation");
    let (resource, caps) = widgets
        .recommended_kind("Gizmo")
        .expect("Gizmo kind discovered");
    assert_eq!(resource.plural, "gizmos");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "gizmos/status" || r.plural == "status")
    );

    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let crd = crds.get(&format!("gizmos.{group}")).await.unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap();
    for wanted in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == wanted && c.status == "True"),
            "{wanted} missing in {conditions:?}"
        );
    }
    c.shutdown().await;
}

#[tokio::test]
async fn aggregated_discovery_v2_matches_legacy_discovery() {
    let c = Cluster::new().await;
    let client = c.client.clone();
    install_crd(&client).await;
    let aggregated = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (resource, caps) = aggregated
        .get("example.com")
        .and_then(|g| g.recommended_kind("Widget"))
        .expect("Widget in aggregated discovery");
    assert_eq!(
        (resource.plural.as_str(), caps.scope),
        ("widgets", Scope::Namespaced)
    );
    let core = aggregated.get("").expect("core group from /api");
    assert!(core.recommended_kind("Secret").is_some());
    let leases = aggregated
        .get("coordination.k8s.io")
        .expect("coordination group");
    assert!(leases.recommended_kind("Lease").is_some());

    let raw = client.list_api_groups_aggregated().await.unwrap();
    assert!(
        raw.items
            .iter()
            .any(|g| g.metadata.as_ref().and_then(|m| m.name.as_deref()) == Some("events.k8s.io"))
    );
    c.shutdown().await;
}

#[tokio::test]
async fn unservable_crds_are_refused_and_not_stored() {
    let c = Cluster::new().await;
    let client = c.client.clone();
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let group = "unservable.example.com";
    let mut crd: serde_json::Value = serde_json::to_value(renamed_crd(group, "Gizmo")).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"]
        ["pattern"] = serde_json::json!("([unclosed");
    let bad: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    let err = crds.create(&Default::default(), &bad).await.unwrap_err();
    assert_eq!(crate::api_error(err).code, 422);
    assert!(
        crds.get_opt(&format!("gizmos.{group}"))
            .await
            .unwrap()
            .is_none()
    );
    c.shutdown().await;
}
