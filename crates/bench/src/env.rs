//! One benchmark environment: the Trust Hub simulator (seeded by [`crate::seed`]), the local
//! Kubernetes API with the operator's CRDs and the credentials Secret, and helpers to apply the
//! benchmark's objects and to see how far they got. Everything listens on 127.0.0.1 with ports
//! picked at run time; [`BenchEnv::shutdown`] stops it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube_local::{LocalApiServer, ServerOptions};
use serde_json::{Value, json};
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct, find_condition};
use trusthub_sim::{Faults, SimConfig, SimServer};

use crate::BenchError;
use crate::seed::{BenchSeed, NumberRef};

/// Namespace of every benchmark object.
pub const NS: &str = "default";
/// Name of the credentials Secret (the seed's parent account).
pub const SECRET: &str = "twilio-credentials";
/// Friendly name of the seed's approved Primary Business Profile.
pub const PROFILE_NAME: &str = "Acme Telecom Primary Business Profile";

/// How to start an environment.
#[derive(Clone, Debug)]
pub struct EnvOptions {
    /// Faults of the simulator (concurrency limit, latency).
    pub faults: Faults,
    /// pending-review → in-review; `None` = never.
    pub review_delay: Option<Duration>,
    /// in-review → approved; `None` = never (objects stay in review).
    pub approve_delay: Option<Duration>,
    /// `Some(interval)`: bindings select every voice number of every subaccount with
    /// `spec.discovery` (`allSubaccounts`, listed again every `interval`) instead of listing
    /// their numbers in `spec.phoneNumbers`.
    pub discovery: Option<Duration>,
}

/// Simulator + local API + CRDs + Secret.
pub struct BenchEnv {
    /// The Trust Hub simulator.
    pub sim: SimServer,
    /// The local Kubernetes API.
    pub api: LocalApiServer,
    /// A client of the local API (the benchmark's own, not the controller's).
    pub client: Client,
    /// Numbers per binding, from the seed.
    pub numbers: Vec<Vec<NumberRef>>,
    /// See [`EnvOptions::discovery`].
    pub discovery: Option<Duration>,
    dir: PathBuf,
}

impl BenchEnv {
    /// Starts the simulator with `seed` and the local API, and creates the CRDs and the Secret.
    pub async fn start(seed: BenchSeed, options: EnvOptions) -> Result<BenchEnv, BenchError> {
        let sim = SimServer::start(SimConfig {
            seed: seed.seed.clone(),
            review_delay: options.review_delay,
            approve_delay: options.approve_delay,
            faults: options.faults,
            ..SimConfig::default()
        })
        .await
        .map_err(|e| BenchError::Setup(format!("simulator: {e}")))?;
        let api = LocalApiServer::start(ServerOptions::default())
            .await
            .map_err(|e| BenchError::Setup(format!("local API: {e}")))?;
        let client = api.client().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for (_, crd) in trusthub_operator::api::crds() {
            crds.create(&PostParams::default(), &crd).await?;
        }
        let parent = &seed.seed.parent;
        apply(
            &client,
            json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET},
                "stringData": {
                    "TWILIO_ACCOUNT_SID": parent.sid,
                    "TWILIO_AUTH_TOKEN": parent.auth_token.expose(),
                }
            }),
        )
        .await?;
        let dir = std::env::temp_dir().join(format!(
            "trusthub-bench-{}-{}",
            std::process::id(),
            api.addr().port()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(BenchEnv {
            sim,
            api,
            client,
            numbers: seed.numbers,
            discovery: options.discovery,
            dir,
        })
    }

    /// A scratch directory removed at shutdown (kubeconfig, controller log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a kubeconfig for the local API and returns its path.
    pub fn kubeconfig(&self) -> Result<PathBuf, BenchError> {
        let path = self.dir.join("kubeconfig");
        self.api.write_kubeconfig(&path)?;
        Ok(path)
    }

    /// Applies binding `index` (its numbers from the seed) and the trust product referring to it.
    pub async fn apply_pair(&self, index: usize) -> Result<(), BenchError> {
        let numbers = self
            .numbers
            .get(index)
            .ok_or_else(|| BenchError::Setup(format!("the seed has no numbers for #{index}")))?;
        let name = pair_name(index);
        let mut spec = json!({
            "credentials": {"secretName": SECRET},
            "businessProfile": {"friendlyName": PROFILE_NAME},
            "deletionPolicy": "Orphan"
        });
        match self.discovery {
            Some(interval) => {
                spec["discovery"] =
                    json!({"allSubaccounts": true, "interval": interval_text(interval)});
            }
            None => {
                spec["phoneNumbers"] = numbers
                    .iter()
                    .map(|n| json!({"phoneNumber": n.phone_number, "subaccountSid": n.subaccount_sid}))
                    .collect();
            }
        }
        apply(
            &self.client,
            json!({
                "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "BusinessProfileBinding",
                "metadata": {"name": name},
                "spec": spec
            }),
        )
        .await?;
        apply(
            &self.client,
            json!({
                "apiVersion": "trusthub.stir.dev/v1alpha1", "kind": "ShakenStirTrustProduct",
                "metadata": {"name": name},
                "spec": {
                    "credentials": {"secretName": SECRET},
                    "friendlyName": format!("Bench SHAKEN/STIR {index:05}"),
                    "email": "compliance@acme.example",
                    "businessProfileBindingRef": {"name": name},
                    "submit": true,
                    "deletionPolicy": "Orphan"
                }
            }),
        )
        .await
    }

    /// Applies pairs `0..count`, `parallel` requests at a time.
    pub async fn apply_pairs(&self, count: usize, parallel: usize) -> Result<(), BenchError> {
        use futures::StreamExt;
        let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..count)
            .map(|i| self.apply_pair(i))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// How many trust products are submitted and ready, and how many bindings are ready.
    pub async fn progress(&self) -> Result<Progress, BenchError> {
        let products: Api<ShakenStirTrustProduct> = Api::namespaced(self.client.clone(), NS);
        let bindings: Api<BusinessProfileBinding> = Api::namespaced(self.client.clone(), NS);
        let mut progress = Progress::default();
        for p in products.list(&ListParams::default()).await? {
            let status = p.status.as_ref();
            if status.is_some_and(|s| s.submitted_at.is_some()) {
                progress.products_submitted += 1;
            }
            if status.is_some_and(|s| is_true(&s.conditions, "Ready")) {
                progress.products_ready += 1;
            }
        }
        for b in bindings.list(&ListParams::default()).await? {
            if b.status
                .as_ref()
                .is_some_and(|s| is_true(&s.conditions, "Ready"))
            {
                progress.bindings_ready += 1;
            }
        }
        Ok(progress)
    }

    /// Whether trust product `index` has been submitted (`status.submittedAt` recorded).
    pub async fn submitted(&self, index: usize) -> Result<bool, BenchError> {
        let products: Api<ShakenStirTrustProduct> = Api::namespaced(self.client.clone(), NS);
        Ok(products
            .get_opt(&pair_name(index))
            .await?
            .and_then(|p| p.status)
            .is_some_and(|s| s.submitted_at.is_some()))
    }

    /// Bytes of the JSON of binding `index` and of its trust product as the API server stores
    /// them (read whole, status included, without a typed round trip that could drop fields).
    pub async fn object_sizes(&self, index: usize) -> Result<ObjectSizes, BenchError> {
        let name = pair_name(index);
        let size = |obj: Option<DynamicObject>| -> Result<u64, BenchError> {
            Ok(obj.map_or(Ok(0), |o| serde_json::to_vec(&o).map(|v| v.len() as u64))?)
        };
        let binding = Api::<DynamicObject>::namespaced_with(
            self.client.clone(),
            NS,
            &ApiResource::erase::<BusinessProfileBinding>(&()),
        )
        .get_opt(&name)
        .await?;
        let product = Api::<DynamicObject>::namespaced_with(
            self.client.clone(),
            NS,
            &ApiResource::erase::<ShakenStirTrustProduct>(&()),
        )
        .get_opt(&name)
        .await?;
        Ok(ObjectSizes {
            binding_bytes: size(binding)?,
            product_bytes: size(product)?,
        })
    }

    /// Stops both servers and removes the scratch directory.
    pub async fn shutdown(self) {
        self.sim.shutdown().await;
        self.api.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sizes of one binding and its trust product as stored (JSON bytes, status included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObjectSizes {
    /// The binding.
    pub binding_bytes: u64,
    /// The trust product.
    pub product_bytes: u64,
}

impl ObjectSizes {
    /// The larger of the two.
    pub fn largest(&self) -> u64 {
        self.binding_bytes.max(self.product_bytes)
    }
}

/// `spec.discovery.interval` text for `d` (`10s`, or milliseconds when not whole seconds).
pub fn interval_text(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Counts of objects that reached each milestone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Trust products with `status.submittedAt`.
    pub products_submitted: usize,
    /// Trust products with `Ready=True`.
    pub products_ready: usize,
    /// Bindings with `Ready=True`.
    pub bindings_ready: usize,
}

/// Name of binding and trust product `index`.
pub fn pair_name(index: usize) -> String {
    format!("bench-{index:05}")
}

fn is_true(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Server-side apply of a Secret, binding or trust product manifest.
async fn apply(client: &Client, manifest: Value) -> Result<(), BenchError> {
    let name = manifest["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let params = PatchParams::apply("trusthub-bench").force();
    let patch = Patch::Apply(&manifest);
    match manifest["kind"].as_str() {
        Some("Secret") => {
            Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), NS)
                .patch(&name, &params, &patch)
                .await?;
        }
        Some("BusinessProfileBinding") => {
            Api::<BusinessProfileBinding>::namespaced(client.clone(), NS)
                .patch(&name, &params, &patch)
                .await?;
        }
        Some("ShakenStirTrustProduct") => {
            Api::<ShakenStirTrustProduct>::namespaced(client.clone(), NS)
                .patch(&name, &params, &patch)
                .await?;
        }
        other => return Err(BenchError::Setup(format!("cannot apply kind {other:?}"))),
    }
    Ok(())
}
