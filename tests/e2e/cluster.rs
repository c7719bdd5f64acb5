//! The Kubernetes API a test runs against: by default the real kube-apiserver and etcd of
//! `testenv` (one control plane for the whole test binary, a fresh namespace per test), or
//! kube-local (a private server per test) with `TRUSTHUB_KUBE_BACKEND=kube-local`.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube_local::{LocalApiServer, ServerOptions};
use testenv::{Backend, ControlPlane};
use tokio::sync::OnceCell;

use crate::support::root;

/// The CRD files every environment installs, as `kubectl apply -f crds/` would.
pub const CRD_FILES: [&str; 2] = [
    "crds/businessprofilebindings.yaml",
    "crds/shakenstirtrustproducts.yaml",
];

pub enum Cluster {
    Local(LocalApiServer),
    /// The test binary's shared control plane.
    Real(&'static ControlPlane),
    /// A control plane of the test's own (e.g. to install cluster-wide RBAC with a chart and read
    /// an audit log holding nothing but its own requests); stopped with the `Env`.
    Own(Box<ControlPlane>),
}

impl Cluster {
    /// Starts (or joins) the backend picked by `TRUSTHUB_KUBE_BACKEND`, with the CRDs
    /// installed and Established; returns it, an admin client and the test's namespace.
    pub async fn start() -> (Cluster, Client, String) {
        match testenv::backend() {
            Backend::KubeLocal => {
                let api = LocalApiServer::start(ServerOptions::default())
                    .await
                    .expect("local API starts");
                let client = api.client().await;
                install_crds(&client).await;
                (Cluster::Local(api), client, "default".to_string())
            }
            Backend::Real => {
                let cp = ControlPlane::shared();
                let client = cp.admin_client().await.expect("admin client");
                static CRDS: OnceCell<()> = OnceCell::const_new();
                CRDS.get_or_init(|| async {
                    // Its own client: the first test's runtime ends before the others'.
                    install_crds(&cp.admin_client().await.expect("admin client")).await
                })
                .await;
                let ns = cp
                    .namespace("e2e")
                    .await
                    .expect("create the test namespace");
                (Cluster::Real(cp), client, ns)
            }
        }
    }

    pub fn is_real(&self) -> bool {
        self.control_plane().is_some()
    }

    /// The real control plane, if this is one.
    pub fn control_plane(&self) -> Option<&ControlPlane> {
        match self {
            Cluster::Local(_) => None,
            Cluster::Real(cp) => Some(cp),
            Cluster::Own(cp) => Some(cp),
        }
    }

    /// An admin kubeconfig whose default namespace is `ns`.
    pub fn kubeconfig_yaml(&self, ns: &str) -> String {
        match (self, self.control_plane()) {
            (_, Some(cp)) => cp.kubeconfig_yaml(cp.admin_token(), ns),
            (Cluster::Local(api), None) => api.kubeconfig_yaml(),
            _ => unreachable!("a real cluster has a control plane"),
        }
    }

    /// The API server's URL as it appears in the kubeconfig.
    pub fn url(&self) -> String {
        match (self, self.control_plane()) {
            (_, Some(cp)) => cp.url().to_string(),
            (Cluster::Local(api), None) => api.url(),
            _ => unreachable!("a real cluster has a control plane"),
        }
    }

    pub async fn shutdown(self) {
        match self {
            Cluster::Local(api) => api.shutdown().await,
            Cluster::Own(cp) => cp.stop(),
            Cluster::Real(_) => {}
        }
        // The shared control plane outlives the test; its namespace is left behind (no
        // controller-manager runs to finish deleting it).
    }
}

/// Server-side applies the CRDs from `crds/` and waits until each is Established and its
/// resources are served.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in CRD_FILES {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(root().join(file)).expect("read CRD"))
                .expect("parse CRD");
        let name = crd.metadata.name.clone().expect("CRD name");
        crds.patch(
            &name,
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        wait_established(client, &crds, &crd).await;
    }
}

/// Waits until the CRDs of `crds/` (installed by someone else, e.g. Helm) are Established and
/// served.
pub async fn wait_crds_served(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in CRD_FILES {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(root().join(file)).expect("read CRD"))
                .expect("parse CRD");
        wait_established(client, &crds, &crd).await;
    }
}

async fn wait_established(
    client: &Client,
    crds: &Api<CustomResourceDefinition>,
    crd: &CustomResourceDefinition,
) {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let version = &crd.spec.versions[0].name;
    let path = format!("{}/{version}", crd.spec.group);
    let start = Instant::now();
    loop {
        let current = crds.get(&name).await;
        let established = current.as_ref().ok().is_some_and(|c| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|all| {
                    all.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        });
        // Established comes a moment before discovery serves the resource.
        let discovery = client.list_api_group_resources(&path).await;
        let served = discovery
            .as_ref()
            .is_ok_and(|l| l.resources.iter().any(|r| r.name == crd.spec.names.plural));
        if established && served {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "CRD {name} never became Established and served: {:?}; discovery of {path}: {discovery:?}",
            current.map(|c| c.status)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
