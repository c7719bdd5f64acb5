//! The whole SHAKEN/STIR onboarding on one machine, with no cluster and no Twilio account: the
//! in-memory Kubernetes API ([`kube_local`]), the Trust Hub simulator ([`trusthub_sim`]) and the
//! operator's controllers, assembled in one process. The `trusthub-playground` binary drives it
//! for newcomers; benchmarks and tests use the same assembly through this library.
//!
//! ```no_run
//! # async fn demo() -> Result<(), trusthub_playground::PlaygroundError> {
//! use trusthub_playground::{Playground, PlaygroundOptions};
//!
//! let mut pg = Playground::start(PlaygroundOptions::default()).await?;
//! pg.apply_crds().await?;
//! pg.apply_examples().await?;
//! // Either the controllers in this process…
//! pg.start_controller_in_process(pg.controller_config()?);
//! // …or the operator binary as its own process (to measure its RSS and CPU):
//! // let child = pg.operator_command(None)?.spawn()?;
//! let rows = pg.snapshot().await?;
//! println!("{}", trusthub_playground::view::render_table(&rows));
//! pg.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! What the playground sets up:
//! - [`Playground::start`]: the simulator with its default seed (parent account, two
//!   subaccounts with numbers, an approved Primary Business Profile) and automatic vetting after
//!   [`PlaygroundOptions::review_delay`] / [`PlaygroundOptions::approve_delay`]; the local API
//!   server; a kubeconfig for it at [`Playground::kubeconfig_path`].
//! - [`Playground::apply_crds`]: the two CRDs of `crds/` (built in).
//! - [`Playground::apply_examples`]: the three files of `examples/` (built in), or
//!   [`Playground::apply_discovery_examples`]: the Secret and `examples/discovery/`, whose
//!   binding selects its numbers (with a [`discovery_seed`] to select from).
//! - [`Playground::start_controller_in_process`] / [`Playground::stop_controller`]: the real
//!   controllers (`trusthub_operator::controller::run`), polling fast enough for the short
//!   vetting delays ([`Playground::controller_config`]).
//! - [`Playground::operator_command`]: a `trusthub-operator run` process pointed at the same
//!   API and simulator ([`Playground::operator_env`] lists the variables it sets).
//! - [`Playground::snapshot`] and [`view::follow`]: the objects' state as table rows.
//!
//! Limits: everything the simulator and the local API do not model (see their crate docs)
//! — no real vetting (a timer approves everything unless told otherwise through
//! `pg.sim.reject(..)`), no RBAC, no TLS, no garbage collection. Nothing is persisted: stopping
//! the playground forgets every object.

pub mod manifests;
pub mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ListParams};
use kube_local::{LocalApiServer, ServerOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct};
use trusthub_operator::controller::{self, Context, ControllerConfig};
use trusthub_operator::planner::PollSchedule;
use trusthub_operator::twilio::{ClientConfig, Endpoints, RetryPolicy};
use trusthub_sim::{AccountStatus, Faults, Seed, SeedScale, SimConfig, SimServer};

pub use view::Row;

/// Name of the operator binary [`Playground::operator_command`] looks for.
pub const OPERATOR_BINARY: &str = "trusthub-operator";

/// How fast the playground's controllers poll objects under review.
pub const REVIEW_POLL_INITIAL: Duration = Duration::from_millis(500);
/// Longest interval between polls under review.
pub const REVIEW_POLL_MAX: Duration = Duration::from_secs(1);
/// Retry of a noncompliant evaluation.
pub const NONCOMPLIANT_RETRY: Duration = Duration::from_secs(1);

/// In [`discovery_seed`], every this-many-th generated number cannot take calls, so the
/// discovery example's `voiceOnly` has something to leave out.
pub const DISCOVERY_NON_VOICE_EVERY: usize = 10;

/// The default seed plus `subaccounts` generated subaccounts holding `numbers` numbers between
/// them, every [`DISCOVERY_NON_VOICE_EVERY`]-th without voice: what `--discovery` starts the
/// simulator with.
pub fn discovery_seed(subaccounts: usize, numbers: usize) -> Seed {
    let mut seed = Seed::default_seed();
    seed.add_generated(SeedScale {
        subaccounts,
        numbers,
        non_voice_every: DISCOVERY_NON_VOICE_EVERY,
    });
    seed
}

/// How many numbers the discovery example selects from `seed`: the voice numbers of its active
/// subaccounts (`allSubaccounts`, `voiceOnly`, not the parent's).
pub fn discoverable_numbers(seed: &Seed) -> usize {
    seed.subaccounts
        .iter()
        .filter(|a| a.status == AccountStatus::Active)
        .flat_map(|a| &a.numbers)
        .filter(|n| n.voice)
        .count()
}

/// Why the playground could not do something.
#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    #[error("Trust Hub simulator: {0}")]
    Sim(#[from] trusthub_sim::SimError),
    #[error("local Kubernetes API: {0}")]
    Api(#[from] kube_local::Error),
    #[error("cannot write the kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Kubernetes API: {0}")]
    Kube(Box<kube::Error>),
    #[error("cannot apply {object}: {source}")]
    Apply {
        object: String,
        source: Box<kube::Error>,
    },
    #[error("{origin}: {message}")]
    Manifest { origin: String, message: String },
    #[error("simulator URL: {0}")]
    Endpoints(String),
    #[error(
        "the {OPERATOR_BINARY} binary is not at {}: build it first (`cargo build -p trusthub-operator`) or pass its path",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")
    )]
    OperatorBinaryNotFound { searched: Vec<PathBuf> },
}

impl From<kube::Error> for PlaygroundError {
    fn from(e: kube::Error) -> Self {
        PlaygroundError::Kube(Box::new(e))
    }
}

/// How to start a [`Playground`].
#[derive(Clone, Debug)]
pub struct PlaygroundOptions {
    /// Where the local Kubernetes API listens; default `127.0.0.1:0` (a free port).
    pub api_listen: SocketAddr,
    /// Where the Trust Hub simulator listens; default `127.0.0.1:0`.
    pub sim_listen: SocketAddr,
    /// When an address is taken, listen on a free port of the same IP instead of failing.
    pub fallback_to_free_port: bool,
    /// pending-review → in-review after this delay (`None`: only via `sim.start_review`).
    pub review_delay: Option<Duration>,
    /// in-review → twilio-approved after this delay (`None`: only via `sim.approve`/`reject`).
    pub approve_delay: Option<Duration>,
    /// The simulator's accounts, numbers and profiles; the examples match the default.
    pub seed: Seed,
    /// Faults the simulator injects (rate limits, 5xx, latency); none by default.
    pub faults: Faults,
    /// Where to write the kubeconfig; `None` writes it in a temporary directory removed by
    /// [`Playground::shutdown`].
    pub kubeconfig_path: Option<PathBuf>,
    /// Namespace of the examples and of manifests without one.
    pub namespace: String,
}

impl Default for PlaygroundOptions {
    fn default() -> Self {
        PlaygroundOptions {
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sim_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fallback_to_free_port: true,
            review_delay: Some(Duration::from_secs(3)),
            approve_delay: Some(Duration::from_secs(6)),
            seed: Seed::default_seed(),
            faults: Faults::none(),
            kubeconfig_path: None,
            namespace: "default".into(),
        }
    }
}

/// The controllers running in this process.
struct RunningController {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A running environment: local API, simulator, kubeconfig and (optionally) the controllers.
pub struct Playground {
    /// The Trust Hub simulator (approve, reject, faults, counters…).
    pub sim: SimServer,
    /// The in-memory Kubernetes API server.
    pub api: LocalApiServer,
    /// A client of [`Playground::api`].
    pub client: Client,
    /// The kubeconfig that points kubectl or the operator at [`Playground::api`].
    pub kubeconfig_path: PathBuf,
    /// Namespace of the examples.
    pub namespace: String,
    /// Listen addresses that were taken, with the address used instead.
    pub fallbacks: Vec<(SocketAddr, SocketAddr)>,
    controller: Option<RunningController>,
    /// A directory the playground created for the kubeconfig and removes on shutdown.
    temp_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground")
            .field("api", &self.api.url())
            .field("sim", &self.sim.base_url())
            .field("kubeconfig_path", &self.kubeconfig_path)
            .field("controller_running", &self.controller.is_some())
            .finish_non_exhaustive()
    }
}

fn is_bind_error(e: &PlaygroundError) -> bool {
    matches!(
        e,
        PlaygroundError::Sim(trusthub_sim::SimError::Bind { .. })
            | PlaygroundError::Api(kube_local::Error::Bind { .. })
    )
}

/// Runs `start` on `addr`, and on a bind failure (when allowed and not already port 0) on a
/// free port of the same IP, recording the fallback.
async fn start_with_fallback<T, F, Fut>(
    addr: SocketAddr,
    fallback: bool,
    fallbacks: &mut Vec<(SocketAddr, SocketAddr)>,
    start: F,
    bound: fn(&T) -> SocketAddr,
) -> Result<T, PlaygroundError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, PlaygroundError>>,
{
    match start(addr).await {
        Err(e) if fallback && addr.port() != 0 && is_bind_error(&e) => {
            let server = start(SocketAddr::new(addr.ip(), 0)).await?;
            fallbacks.push((addr, bound(&server)));
            Ok(server)
        }
        other => other,
    }
}

impl Playground {
    /// Starts the simulator and the local API and writes the kubeconfig.
    pub async fn start(opts: PlaygroundOptions) -> Result<Playground, PlaygroundError> {
        let mut fallbacks = Vec::new();
        let sim_config = SimConfig {
            seed: opts.seed.clone(),
            review_delay: opts.review_delay,
            approve_delay: opts.approve_delay,
            faults: opts.faults.clone(),
            ..SimConfig::default()
        };
        let sim = start_with_fallback(
            opts.sim_listen,
            opts.fallback_to_free_port,
            &mut fallbacks,
            |listen| {
                let cfg = SimConfig {
                    listen,
                    ..sim_config.clone()
                };
                async move { Ok(SimServer::start(cfg).await?) }
            },
            SimServer::addr,
        )
        .await?;
        let api = match start_with_fallback(
            opts.api_listen,
            opts.fallback_to_free_port,
            &mut fallbacks,
            |listen| async move {
                Ok(LocalApiServer::start(ServerOptions {
                    listen,
                    ..ServerOptions::default()
                })
                .await?)
            },
            LocalApiServer::addr,
        )
        .await
        {
            Ok(api) => api,
            Err(e) => {
                sim.shutdown().await;
                return Err(e);
            }
        };
        let (kubeconfig_path, temp_dir) = match &opts.kubeconfig_path {
            Some(path) => (absolute(path), None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "trusthub-playground-{}-{}",
                    std::process::id(),
                    api.addr().port()
                ));
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        if let Err(source) = api.write_kubeconfig(&kubeconfig_path) {
            api.shutdown().await;
            sim.shutdown().await;
            return Err(PlaygroundError::Kubeconfig {
                path: kubeconfig_path,
                source,
            });
        }
        let client = api.client().await;
        Ok(Playground {
            sim,
            api,
            client,
            kubeconfig_path,
            namespace: opts.namespace,
            fallbacks,
            controller: None,
            temp_dir,
        })
    }

    /// Creates or updates the operator's CRDs from `crds/` (server-side apply).
    pub async fn apply_crds(&self) -> Result<Vec<String>, PlaygroundError> {
        let mut applied = Vec::new();
        for (origin, yaml) in manifests::CRDS {
            applied.extend(self.apply_yaml(origin, yaml).await?);
        }
        Ok(applied)
    }

    /// Applies the built-in `examples/` (credentials Secret, binding, trust product); returns
    /// what was applied as `kind/name`.
    pub async fn apply_examples(&self) -> Result<Vec<String>, PlaygroundError> {
        let mut applied = Vec::new();
        for (origin, yaml) in manifests::EXAMPLES {
            applied.extend(self.apply_yaml(origin, yaml).await?);
        }
        Ok(applied)
    }

    /// Applies the built-in discovery examples ([`manifests::DISCOVERY_EXAMPLES`]: the
    /// credentials Secret, a binding selecting every voice number of every subaccount, and its
    /// trust product) instead of [`Playground::apply_examples`]; returns what was applied.
    pub async fn apply_discovery_examples(&self) -> Result<Vec<String>, PlaygroundError> {
        let mut applied = Vec::new();
        for (origin, yaml) in manifests::DISCOVERY_EXAMPLES {
            applied.extend(self.apply_yaml(origin, yaml).await?);
        }
        Ok(applied)
    }

    /// Applies every document of a YAML text (`origin` names it in errors).
    pub async fn apply_yaml(
        &self,
        origin: &str,
        yaml: &str,
    ) -> Result<Vec<String>, PlaygroundError> {
        manifests::apply_yaml(&self.client, &self.namespace, origin, yaml).await
    }

    /// Applies one manifest (Secret, CRD, binding or trust product).
    pub async fn apply(&self, manifest: &serde_json::Value) -> Result<String, PlaygroundError> {
        manifests::apply_value(&self.client, &self.namespace, "manifest", manifest).await
    }

    /// Controller settings for this environment: Twilio is the simulator, polling under review
    /// is fast ([`REVIEW_POLL_INITIAL`], [`REVIEW_POLL_MAX`]) and retries are short.
    pub fn controller_config(&self) -> Result<ControllerConfig, PlaygroundError> {
        let endpoints = Endpoints::single(&self.sim.base_url())
            .map_err(|e| PlaygroundError::Endpoints(e.to_string()))?;
        Ok(ControllerConfig {
            twilio: ClientConfig {
                endpoints,
                retry: RetryPolicy {
                    base: Duration::from_millis(50),
                    cap: Duration::from_secs(1),
                    ..RetryPolicy::default()
                },
                ..ClientConfig::default()
            },
            poll: PollSchedule {
                review_initial: REVIEW_POLL_INITIAL,
                review_max: REVIEW_POLL_MAX,
                noncompliant_initial: NONCOMPLIANT_RETRY,
                noncompliant_max: NONCOMPLIANT_RETRY * 5,
                ..PollSchedule::default()
            },
            error_backoff_initial: Duration::from_millis(200),
            error_backoff_max: Duration::from_secs(5),
            terminal_recheck: Duration::from_secs(10),
            ..ControllerConfig::default()
        })
    }

    /// Runs the controllers in this process (replacing any running ones) until
    /// [`Playground::stop_controller`] or [`Playground::shutdown`].
    pub fn start_controller_in_process(&mut self, config: ControllerConfig) {
        if let Some(old) = self.controller.take() {
            let _ = old.stop.send(());
        }
        let ctx: Arc<Context> = Context::new(self.client.clone(), config, None);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(controller::run(ctx, async move {
            let _ = stopped.await;
        }));
        self.controller = Some(RunningController { stop, task });
    }

    /// Whether controllers started by [`Playground::start_controller_in_process`] are running.
    pub fn controller_running(&self) -> bool {
        self.controller
            .as_ref()
            .is_some_and(|c| !c.task.is_finished())
    }

    /// Stops the in-process controllers, waiting up to 10s for running reconciles to finish.
    pub async fn stop_controller(&mut self) {
        if let Some(RunningController { stop, task }) = self.controller.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// The environment variables that point `trusthub-operator run` at this playground.
    pub fn operator_env(&self) -> Vec<(&'static str, String)> {
        let sim = self.sim.base_url();
        vec![
            ("KUBECONFIG", self.kubeconfig_path.display().to_string()),
            ("TRUSTHUB_TRUST_HUB_URL", sim.clone()),
            ("TRUSTHUB_API_URL", sim),
            (
                "TRUSTHUB_REVIEW_POLL_INITIAL",
                humantime::format_duration(REVIEW_POLL_INITIAL).to_string(),
            ),
            (
                "TRUSTHUB_REVIEW_POLL_MAX",
                humantime::format_duration(REVIEW_POLL_MAX).to_string(),
            ),
            (
                "TRUSTHUB_NONCOMPLIANT_RETRY",
                humantime::format_duration(NONCOMPLIANT_RETRY).to_string(),
            ),
            // Loopback only: a laptop's operator has no business listening on every interface.
            ("TRUSTHUB_METRICS_ADDR", "127.0.0.1:8080".to_string()),
        ]
    }

    /// The shell line that runs the operator against this playground (for `--no-controller`).
    pub fn operator_command_line(&self, program: &str) -> String {
        let env: Vec<String> = self
            .operator_env()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(&v)))
            .collect();
        format!("{} {program} run", env.join(" "))
    }

    /// A `trusthub-operator run` process pointed at this playground (kill on drop; stdout and
    /// stderr inherited — redirect them as needed). `binary` defaults to
    /// [`operator_binary_near`] the current executable.
    pub fn operator_command(
        &self,
        binary: Option<&Path>,
    ) -> Result<tokio::process::Command, PlaygroundError> {
        let program = match binary {
            Some(path) => path.to_path_buf(),
            None => {
                let exe = std::env::current_exe().map_err(|_| {
                    PlaygroundError::OperatorBinaryNotFound {
                        searched: Vec::new(),
                    }
                })?;
                operator_binary_near(&exe)?
            }
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg("run").kill_on_drop(true);
        for (key, value) in self.operator_env() {
            cmd.env(key, value);
        }
        Ok(cmd)
    }

    /// Every binding and trust product of the playground's namespace, as table rows.
    pub async fn snapshot(&self) -> Result<Vec<Row>, PlaygroundError> {
        let bindings: Api<BusinessProfileBinding> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let products: Api<ShakenStirTrustProduct> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let mut rows: Vec<Row> = bindings
            .list(&ListParams::default())
            .await?
            .iter()
            .map(Row::from_binding)
            .collect();
        rows.extend(
            products
                .list(&ListParams::default())
                .await?
                .iter()
                .map(Row::from_product),
        );
        rows.sort_by_key(Row::key);
        Ok(rows)
    }

    /// Stops the controllers, the simulator and the API, and removes the temporary kubeconfig
    /// directory (a kubeconfig written to a path you chose is removed too: it would point at a
    /// server that is gone).
    pub async fn shutdown(mut self) {
        self.stop_controller().await;
        self.sim.shutdown().await;
        self.api.shutdown().await;
        match &self.temp_dir {
            Some(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            None => {
                let _ = std::fs::remove_file(&self.kubeconfig_path);
            }
        }
    }
}

/// `trusthub-operator` next to `exe`, or one directory up (test binaries live in
/// `target/<profile>/deps`, the operator in `target/<profile>`).
pub fn operator_binary_near(exe: &Path) -> Result<PathBuf, PlaygroundError> {
    let name = format!("{OPERATOR_BINARY}{}", std::env::consts::EXE_SUFFIX);
    let mut searched = Vec::new();
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join(&name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(candidate);
        dir = d.parent();
    }
    Err(PlaygroundError::OperatorBinaryNotFound { searched })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Quotes `s` for a POSIX shell when it has anything but safe characters.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_leaves_plain_paths_alone_and_quotes_the_rest() {
        assert_eq!(shell_quote("/tmp/a/kubeconfig"), "/tmp/a/kubeconfig");
        assert_eq!(
            shell_quote("http://127.0.0.1:8089"),
            "http://127.0.0.1:8089"
        );
        assert_eq!(shell_quote("/my dir/k"), "'/my dir/k'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_operator_binary_is_found_beside_or_above_the_executable() {
        let root = std::env::temp_dir().join(format!("pg-bin-{}", std::process::id()));
        let deps = root.join("deps");
        std::fs::create_dir_all(&deps).expect("mkdir");
        let exe = deps.join("some-test");
        let missing = operator_binary_near(&exe).expect_err("not built yet");
        assert!(
            missing
                .to_string()
                .contains("cargo build -p trusthub-operator")
        );
        let operator = root.join(format!("{OPERATOR_BINARY}{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&operator, b"").expect("touch");
        assert_eq!(operator_binary_near(&exe).expect("found"), operator);
        let _ = std::fs::remove_dir_all(&root);
    }
}
