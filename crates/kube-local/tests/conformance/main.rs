//! Conformance suite for kube-local: every behaviour is exercised over HTTP with a kube-rs
//! `Client` (and kubectl where the issue lists it), on the backend `TRUSTHUB_KUBE_BACKEND`
//! picks: the real kube-apiserver (default, from `TRUSTHUB_CONTROLPLANE_BIN`) to pin down what
//! Kubernetes does, kube-local to check it does the same. Tests of kube-local's extras start a
//! kube-local server whatever the backend (see [`Cluster`]).

mod controller;
mod crud;
mod discovery;
mod faults;
mod kubectl;
mod semantics;
mod validation;
mod watch;

use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::{Client, CustomResource, CustomResourceExt};
use kube_local::{LocalApiServer, ServerOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The toy CRD every test uses. (Clippy mistakes the repeated `printcolumn(type_ = ...)`
/// derive arguments for duplicated attributes.)
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    printcolumn(name = "Sid", type_ = "string", json_path = ".status.sid"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    validation = "self.spec.size <= 100"
)]
pub struct WidgetSpec {
    #[schemars(range(min = 0))]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

/// The Kubernetes API one test talks to, with the test's own namespace.
///
/// [`Cluster::new`] follows `TRUSTHUB_KUBE_BACKEND` (`testenv::backend()`): on the real
/// kube-apiserver (the default) every test of this binary shares one control plane, so a test
/// keeps to its namespace and installs cluster-scoped objects idempotently; on kube-local each
/// test gets its own server. [`Cluster::local`] always starts kube-local: for tests of
/// kube-local's extras (fault injection, request counts, its own watch-history settings,
/// `ServerOptions`, the namespace cascade it runs in place of kube-controller-manager), which a
/// real apiserver does not have, so they run (rather than silently pass) on either backend.
pub struct Cluster {
    pub client: Client,
    /// A fresh namespace made for this test.
    pub ns: String,
    /// This test's kube-local server; `None` on the real apiserver.
    pub local: Option<LocalApiServer>,
}

impl Cluster {
    /// The backend chosen by `TRUSTHUB_KUBE_BACKEND`.
    pub async fn new() -> Cluster {
        match testenv::backend() {
            testenv::Backend::Real => {
                let cp = testenv::ControlPlane::shared();
                let client = cp.admin_client().await.expect("admin client");
                let ns = cp.namespace("conformance").await.expect("test namespace");
                Cluster {
                    client,
                    ns,
                    local: None,
                }
            }
            testenv::Backend::KubeLocal => Cluster::local().await,
        }
    }

    /// A kube-local server, whatever the backend (see the type's docs).
    pub async fn local() -> Cluster {
        Cluster::local_with(ServerOptions::default()).await
    }

    pub async fn local_with(opts: ServerOptions) -> Cluster {
        // RUST_LOG=kube=debug,kube_local=debug shows both sides of the conversation.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = match LocalApiServer::start(opts).await {
            Ok(s) => s,
            Err(e) => panic!("kube-local failed to start: {e}"),
        };
        let client = server.client().await;
        let ns = create_namespace(&client, "conformance").await;
        Cluster {
            client,
            ns,
            local: Some(server),
        }
    }

    /// The backend's cluster with the Widget CRD installed, and the Widget Api of the namespace.
    pub async fn with_widgets() -> (Cluster, Api<Widget>) {
        Cluster::new().await.and_widgets().await
    }

    /// Installs the Widget CRD (if missing) and returns the Widget Api of the namespace.
    pub async fn and_widgets(self) -> (Cluster, Api<Widget>) {
        install_crd(&self.client).await;
        let api = self.api();
        (self, api)
    }

    pub fn is_real(&self) -> bool {
        self.local.is_none()
    }

    /// The kube-local server; only for tests that made theirs with [`Cluster::local`].
    pub fn server(&self) -> &LocalApiServer {
        self.local
            .as_ref()
            .expect("a kube-local-only test must start its cluster with Cluster::local")
    }

    /// The Api of `K` in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Another fresh namespace.
    pub async fn namespace(&self, prefix: &str) -> String {
        create_namespace(&self.client, prefix).await
    }

    /// Stops this test's kube-local server. (The real control plane outlives the test;
    /// namespaces stay, as nothing finishes their deletion without kube-controller-manager.)
    pub async fn shutdown(self) {
        if let Some(server) = self.local {
            server.shutdown().await;
        }
    }
}

async fn create_namespace(client: &Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.generate_name = Some(format!("{prefix}-"));
    let created = api
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating a namespace");
    created.metadata.name.expect("generated namespace name")
}

type Crd =
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Creates the Widget CRD through the API, as `kubectl apply` would on a real cluster.
pub async fn install_crd(client: &Client) {
    ensure_crd(client, &Widget::crd()).await;
}

/// The Widget CRD's schema as kind `kind` of API group `group`: for tests that watch a CRD
/// appear or apply one, which on the shared real apiserver needs names no other test installs
/// (and no second `widgets` resource for kubectl to pick instead of example.com's).
pub fn renamed_crd(group: &str, kind: &str) -> Crd {
    let mut crd = serde_json::to_value(Widget::crd()).unwrap();
    let singular = kind.to_lowercase();
    let plural = format!("{singular}s");
    crd["metadata"]["name"] = format!("{plural}.{group}").into();
    crd["spec"]["group"] = group.into();
    crd["spec"]["names"] = serde_json::json!({
        "kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": singular,
    });
    serde_json::from_value(crd).unwrap()
}

/// Creates `crd` unless it exists (409 is fine: another test of the binary made it), then waits
/// until it is Established and its resource is served: a real apiserver installs the handlers
/// a moment after answering the create.
pub async fn ensure_crd(client: &Client, crd: &Crd) {
    let crds: Api<Crd> = Api::all(client.clone());
    match crds.create(&PostParams::default(), crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating CRD: {e}"),
    }
    let name = crd.metadata.name.clone().unwrap_or_default();
    let group = &crd.spec.group;
    let version = &crd.spec.versions[0].name;
    let plural = &crd.spec.names.plural;
    eventually("the CRD Established and served", || {
        let (crds, client, name) = (crds.clone(), client.clone(), name.clone());
        let path = format!("/apis/{group}/{version}/{plural}?limit=1");
        async move {
            let established = crds.get(&name).await.is_ok_and(|c| {
                c.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            established
                && client
                    .request::<serde_json::Value>(crud::http_get(&path))
                    .await
                    .is_ok()
        }
    })
    .await;
}

pub fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, color: None })
}

pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API Status error, got {other:?}"),
    }
}

/// The resourceVersion: opaque, so compare it only for equality.
pub fn rv_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta()
        .resource_version
        .clone()
        .expect("a resourceVersion")
}

/// The resourceVersion as a number: kube-local's documented behaviour (one global counter),
/// never to be asserted on a real apiserver, whose resourceVersions are opaque.
pub fn local_rv<K: kube::Resource>(obj: &K) -> u64 {
    rv_of(obj)
        .parse()
        .expect("numeric kube-local resourceVersion")
}

/// Polls `check` until it returns true or 10 seconds pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}
