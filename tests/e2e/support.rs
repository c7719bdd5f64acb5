//! A whole environment per test: the Trust Hub simulator, a Kubernetes API with the CRDs
//! applied from `crds/` (the real kube-apiserver by default, see `cluster`), a namespace of its
//! own, and the real controller watching only that namespace, either in this process or as its
//! own `trusthub-operator` process (for the crash tests). Everything listens on 127.0.0.1 with
//! ports picked at run time and stops when the `Env` is dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct, find_condition};
use trusthub_operator::controller::{self, Context, ControllerConfig, ReconcileObserver};
use trusthub_operator::planner::PollSchedule;
use trusthub_operator::twilio::{ClientConfig, Endpoints, RetryPolicy};
use trusthub_sim::{SimConfig, SimServer};

use crate::cluster::Cluster;

pub const PARENT: &str = "AC11111111111111111111111111111111";
pub const PARENT_TOKEN: &str = "parentauthtoken0000000000000000001";
pub const EAST: &str = "AC22222222222222222222222222222222";
pub const PROFILE: &str = "BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
pub const WEST_1_SID: &str = "PN30000000000000000000000000000001";
pub const PARENT_NUMBER_SID: &str = "PN10000000000000000000000000000001";

/// How long any wait in these tests may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fast polling so vetting that takes days in Twilio takes a second here.
pub fn fast_poll() -> PollSchedule {
    PollSchedule {
        review_initial: Duration::from_millis(200),
        review_max: Duration::from_millis(500),
        approved_resync: Duration::from_secs(3600),
        expiry_margin: Duration::from_secs(60),
        expiry_warning: Duration::from_secs(30 * 86_400),
        noncompliant_initial: Duration::from_millis(200),
        noncompliant_max: Duration::from_millis(500),
    }
}

/// Counts the operator's finished reconciles by kind and failure reason (`None`: a success).
#[derive(Default)]
pub struct Reconciles(
    std::sync::Mutex<std::collections::BTreeMap<(&'static str, Option<&'static str>), u32>>,
);

impl Reconciles {
    /// Finished reconciles of `kind` that ended with `failure`.
    pub fn count(&self, kind: &'static str, failure: Option<&'static str>) -> u32 {
        let seen = self.0.lock().unwrap();
        seen.get(&(kind, failure)).copied().unwrap_or(0)
    }

    /// Every finished reconcile of `kind`.
    pub fn all(&self, kind: &'static str) -> u32 {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

impl ReconcileObserver for Reconciles {
    fn reconciled(&self, kind: &'static str, _: Duration, failure: Option<&'static str>) {
        *self.0.lock().unwrap().entry((kind, failure)).or_default() += 1;
    }
}

pub struct Env {
    pub sim: SimServer,
    pub cluster: Cluster,
    pub client: Client,
    /// The test's own namespace (`default` on kube-local, where each test has its own server).
    pub ns: String,
    controller: Option<oneshot::Sender<()>>,
    controller_task: Option<tokio::task::JoinHandle<()>>,
    pub dir: tempdir::Dir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A temporary directory removed on drop.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let path = std::env::temp_dir().join(format!(
                "trusthub-e2e-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Dir(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0))
    }
}

impl Env {
    /// Simulator (auto-vetting after short delays unless `manual_vetting`) and API with CRDs.
    pub async fn start(manual_vetting: bool) -> Env {
        Env::start_with(SimConfig {
            review_delay: (!manual_vetting).then_some(Duration::from_millis(100)),
            approve_delay: (!manual_vetting).then_some(Duration::from_millis(300)),
            ..SimConfig::default()
        })
        .await
    }

    /// A simulator configured by the test, and the API with CRDs.
    pub async fn start_with(config: SimConfig) -> Env {
        let sim = SimServer::start(config).await.expect("simulator starts");
        let (cluster, client, ns) = Cluster::start().await;
        Env::assemble(sim, cluster, client, ns)
    }

    /// A running simulator and a cluster the test prepared itself.
    pub fn assemble(sim: SimServer, cluster: Cluster, client: Client, ns: String) -> Env {
        Env {
            sim,
            cluster,
            client,
            ns,
            controller: None,
            controller_task: None,
            dir: tempdir::Dir::new(),
        }
    }

    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            twilio: ClientConfig {
                endpoints: Endpoints::single(&self.sim.base_url()).expect("sim URL"),
                retry: RetryPolicy {
                    base: Duration::from_millis(20),
                    cap: Duration::from_millis(200),
                    ..RetryPolicy::default()
                },
                ..ClientConfig::default()
            },
            poll: fast_poll(),
            error_backoff_initial: Duration::from_millis(50),
            error_backoff_max: Duration::from_millis(500),
            terminal_recheck: Duration::from_secs(2),
            // The default, narrow Secret mode (get by name), checked often enough for tests.
            secrets: trusthub_operator::controller::SecretAccess::Get {
                recheck: Duration::from_millis(500),
            },
            // The real apiserver is shared by every test of the binary.
            namespace: self.cluster.is_real().then(|| self.ns.clone()),
            ..ControllerConfig::default()
        }
    }

    /// Runs the controller in this process until `stop_controller` or drop.
    pub fn start_controller(&mut self) {
        self.start_controller_with(self.controller_config());
    }

    /// Like [`Env::start_controller`], with a configuration the test adjusted.
    pub fn start_controller_with(&mut self, config: ControllerConfig) {
        let ctx = Context::new(self.client.clone(), config, None);
        self.run_controller(ctx);
    }

    /// Like [`Env::start_controller`], with `observer` seeing every finished reconcile.
    pub fn start_controller_observed(&mut self, observer: Arc<dyn ReconcileObserver>) {
        let config = self.controller_config();
        let ctx = Context::with_observers(self.client.clone(), config, None, Some(observer));
        self.run_controller(ctx);
    }

    fn run_controller(&mut self, ctx: Arc<Context>) {
        let (tx, rx) = oneshot::channel();
        self.controller = Some(tx);
        self.controller_task = Some(tokio::spawn(controller::run(ctx, async move {
            let _ = rx.await;
        })));
    }

    pub async fn stop_controller(&mut self) {
        if let Some(tx) = self.controller.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.controller_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        let path = self.dir.path().join("kubeconfig");
        std::fs::write(&path, self.cluster.kubeconfig_yaml(&self.ns)).expect("write kubeconfig");
        path
    }

    pub fn operator_command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_trusthub-operator"));
        cmd.arg("run")
            .env("KUBECONFIG", self.kubeconfig())
            .env("TRUSTHUB_TRUST_HUB_URL", self.sim.base_url())
            .env("TRUSTHUB_API_URL", self.sim.base_url())
            .env("TRUSTHUB_REVIEW_POLL_INITIAL", "200ms")
            .env("TRUSTHUB_REVIEW_POLL_MAX", "500ms")
            .env("TRUSTHUB_NONCOMPLIANT_RETRY", "200ms")
            .env("TRUSTHUB_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if self.cluster.is_real() {
            // The real apiserver is shared by every test of the binary.
            cmd.env("WATCH_NAMESPACE", &self.ns);
        }
        cmd
    }

    pub async fn apply(&self, manifest: Value) {
        let kind = manifest["kind"].as_str().unwrap_or_default().to_string();
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let params = PatchParams::apply("e2e-test").force();
        match kind.as_str() {
            "Secret" => Api::<Secret>::namespaced(self.client.clone(), &self.ns)
                .patch(&name, &params, &Patch::Apply(&manifest))
                .await
                .map(|_| ()),
            "BusinessProfileBinding" => {
                Api::<BusinessProfileBinding>::namespaced(self.client.clone(), &self.ns)
                    .patch(&name, &params, &Patch::Apply(&manifest))
                    .await
                    .map(|_| ())
            }
            "ShakenStirTrustProduct" => {
                Api::<ShakenStirTrustProduct>::namespaced(self.client.clone(), &self.ns)
                    .patch(&name, &params, &Patch::Apply(&manifest))
                    .await
                    .map(|_| ())
            }
            other => panic!("cannot apply {other}"),
        }
        .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }

    pub async fn apply_examples(&self) {
        for file in [
            "examples/00-credentials-secret.yaml",
            "examples/10-business-profile-binding.yaml",
            "examples/20-shaken-stir-trust-product.yaml",
        ] {
            self.apply(example(file)).await;
        }
    }

    pub fn bindings(&self) -> Api<BusinessProfileBinding> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn products(&self) -> Api<ShakenStirTrustProduct> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Waits until `check` holds for the binding `name`, or fails with its last status.
    pub async fn wait_binding(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&BusinessProfileBinding) -> bool,
    ) -> BusinessProfileBinding {
        wait_for(&self.bindings(), name, what, check).await
    }

    /// Waits until `check` holds for the trust product `name`.
    pub async fn wait_product(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&ShakenStirTrustProduct) -> bool,
    ) -> ShakenStirTrustProduct {
        wait_for(&self.products(), name, what, check).await
    }

    /// Deletes the examples' product and binding and waits until both are gone.
    pub async fn delete_examples(&self) {
        self.products()
            .delete("acme-shaken-stir", &Default::default())
            .await
            .expect("delete product");
        self.bindings()
            .delete("acme-primary", &Default::default())
            .await
            .expect("delete binding");
        wait_gone(&self.products(), "acme-shaken-stir").await;
        wait_gone(&self.bindings(), "acme-primary").await;
    }

    /// Twilio writes counted by the simulator, by operationId.
    pub fn writes(&self) -> std::collections::BTreeMap<String, u64> {
        self.sim
            .counters()
            .by_operation
            .into_iter()
            .filter(|(op, _)| {
                op.starts_with("Create") || op.starts_with("Update") || op.starts_with("Delete")
            })
            .collect()
    }

    pub async fn shutdown(mut self) {
        self.stop_controller().await;
        self.sim.shutdown().await;
        self.cluster.shutdown().await;
    }
}

async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < PATIENCE {
        if let Ok(Some(obj)) = api.get_opt(name).await {
            if check(&obj) {
                return obj;
            }
            last = Some(obj);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {name} to be {what}; last seen: {last:#?}");
}

/// Waits until `name` is gone from the API.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if matches!(api.get_opt(name).await, Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {name} to be deleted");
}

pub fn example(rel: &str) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(root().join(rel)).expect("read example"))
        .expect("parse example")
}

pub fn secret(name: &str, token: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"TWILIO_ACCOUNT_SID": PARENT, "TWILIO_AUTH_TOKEN": token}
    })
}

pub fn binding(name: &str, secret: &str, profile: Value, numbers: Value, policy: &str) -> Value {
    json!({
        "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "BusinessProfileBinding",
        "metadata": {"name": name},
        "spec": {"credentials": {"secretName": secret}, "businessProfile": profile, "phoneNumbers": numbers, "deletionPolicy": policy}
    })
}

pub fn product(name: &str, binding: &str, friendly: &str, policy: &str) -> Value {
    json!({
        "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "ShakenStirTrustProduct",
        "metadata": {"name": name},
        "spec": {
            "credentials": {"secretName": "twilio-credentials"},
            "friendlyName": friendly, "email": "compliance@acme.example",
            "businessProfileBindingRef": {"name": binding}, "deletionPolicy": policy
        }
    })
}

pub fn ready<K: HasConditions>(obj: &K) -> bool {
    obj.condition("Ready").is_some_and(|c| c.status == "True")
}

/// The `Ready` condition's reason, if any.
pub fn ready_reason<K: HasConditions>(obj: &K) -> Option<String> {
    obj.condition("Ready").map(|c| c.reason.clone())
}

pub trait HasConditions {
    fn condition(
        &self,
        type_: &str,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;
}

impl HasConditions for BusinessProfileBinding {
    fn condition(
        &self,
        type_: &str,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        find_condition(&self.status.as_ref()?.conditions, type_)
    }
}

impl HasConditions for ShakenStirTrustProduct {
    fn condition(
        &self,
        type_: &str,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        find_condition(&self.status.as_ref()?.conditions, type_)
    }
}

/// No Trust Product, assignment or evaluation exists twice in the simulator.
pub fn assert_no_duplicates(sim: &SimServer) {
    let products = sim.trust_products();
    let mut names: Vec<(&str, &str)> = products
        .iter()
        .map(|p| (p.friendly_name.as_str(), p.policy_sid.as_str()))
        .collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(
        before,
        names.len(),
        "duplicate Trust Products: {products:#?}"
    );
    let mut pairs: Vec<(String, String)> = sim
        .channel_assignments()
        .iter()
        .map(|a| (a.bundle_sid.clone(), a.channel_endpoint_sid.clone()))
        .collect();
    let before = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(
        before,
        pairs.len(),
        "duplicate channel endpoint assignments"
    );
    let mut entities: Vec<(String, String)> = sim
        .entity_assignments()
        .iter()
        .map(|a| (a.bundle_sid.clone(), a.object_sid.clone()))
        .collect();
    let before = entities.len();
    entities.sort();
    entities.dedup();
    assert_eq!(before, entities.len(), "duplicate entity assignments");
}
