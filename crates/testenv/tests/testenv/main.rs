//! The harness itself, against the real binaries: it starts, reports the pinned release,
//! enforces RBAC on ServiceAccount tokens, audits requests and cleans up after itself.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::PostParams;
use testenv::{ControlPlane, Options};

#[tokio::test]
async fn shared_control_plane_serves_the_pinned_release_with_rbac_and_audit() {
    let cp = ControlPlane::shared();
    let admin = cp.admin_client().await.expect("admin client");
    let version = admin.apiserver_version().await.expect("/version");
    assert_eq!(version.git_version, "v1.36.3", "{version:?}");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );

    let ns = cp.namespace("harness").await.expect("namespace");
    let token = cp
        .service_account_token(&ns, "nobody")
        .await
        .expect("TokenRequest");
    let nobody = cp.client_for_token(&token).await.expect("SA client");
    let secrets: Api<Secret> = Api::namespaced(nobody, &ns);
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("a ServiceAccount with no grants must get 403, got {other:?}"),
    }
    let user = format!("system:serviceaccount:{ns}:nobody");
    let denied = cp
        .audit_events()
        .into_iter()
        .find(|e| e.user.username == user && e.verb == "list" && e.code() == Some(403));
    assert!(denied.is_some(), "the denied list is in the audit log");

    // The admin (system:masters) is not subject to RBAC.
    let maps: Api<ConfigMap> = Api::namespaced(admin, &ns);
    let mut map = ConfigMap::default();
    map.metadata.name = Some("probe".into());
    maps.create(&PostParams::default(), &map)
        .await
        .expect("admin creates a ConfigMap");
}

#[tokio::test]
async fn a_private_control_plane_stops_and_removes_its_files_on_drop() {
    let cp = ControlPlane::start(Options::from_env().expect("TRUSTHUB_CONTROLPLANE_BIN"))
        .await
        .expect("starts");
    let url = cp.url().to_string();
    let report = cp.report();
    assert!(
        report.apiserver_rss_kib > 0 && report.etcd_rss_kib > 0,
        "{report:?}"
    );
    let http = cp.http_client().expect("http client");
    let dir = cp.dir().to_path_buf();
    assert!(dir.join("audit.log").exists());
    drop(cp);
    assert!(!dir.exists(), "{} removed", dir.display());
    assert!(
        http.get(format!("{url}/readyz")).send().await.is_err(),
        "nothing listens at {url} after drop"
    );
}
