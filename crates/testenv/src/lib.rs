//! A real Kubernetes control plane for tests: `etcd` and `kube-apiserver`, built from their Go
//! modules by `scripts/build-controlplane.sh`, run as plain processes on 127.0.0.1 with ports
//! picked at run time (the shape of controller-runtime's envtest).
//!
//! The apiserver runs with TLS (a CA generated per run), `--authorization-mode=RBAC`, an admin
//! bearer token in `system:masters`, service-account token signing (so a test can act as a
//! ServiceAccount with exactly a chart's RBAC) and a JSON audit log of every request. There is no
//! controller-manager, scheduler or kubelet: namespaces stay `Terminating`, nothing is garbage
//! collected and no Pod runs. Use a fresh namespace per test ([`ControlPlane::namespace`]).
//!
//! One control plane per test binary: [`ControlPlane::shared`] starts it on first use and stops
//! it when the binary exits. [`ControlPlane::start`] gives a private one that stops on drop.
//!
//! Where the binaries are: `TRUSTHUB_CONTROLPLANE_BIN` (a directory with `kube-apiserver` and
//! `etcd`), which `scripts/test.sh` sets. Which backend the suites use: [`backend`].

mod audit;
mod pki;
mod process;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use audit::AuditEvent;
use base64::Engine;
use pki::Pki;
use process::Process;

/// The environment variable naming the directory with `kube-apiserver` and `etcd`.
pub const BIN_ENV: &str = "TRUSTHUB_CONTROLPLANE_BIN";
/// The environment variable that picks the Kubernetes backend of the test suites.
pub const BACKEND_ENV: &str = "TRUSTHUB_KUBE_BACKEND";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no real control plane: {BIN_ENV} is not set. Run the tests with `bash scripts/test.sh` \
         (it builds kube-apiserver and etcd once, with Go), or set {BACKEND_ENV}=kube-local to \
         run against kube-local only"
    )]
    NoBinaries,
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("key material: {0}")]
    Pki(String),
    #[error("control plane did not start: {0}")]
    Start(String),
    #[error("kube client: {0}")]
    Kube(#[from] kube::Error),
}

/// The Kubernetes API the suites run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A real kube-apiserver and etcd (the default).
    Real,
    /// The in-repository `kube-local` server (`TRUSTHUB_KUBE_BACKEND=kube-local`).
    KubeLocal,
}

/// The backend chosen by `TRUSTHUB_KUBE_BACKEND` (`real`, the default, or `kube-local`).
/// An unknown value is an error rather than a silent default.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("") | Ok("real") => Backend::Real,
        Ok("kube-local") => Backend::KubeLocal,
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected `real` or `kube-local`"),
    }
}

/// Where the binaries and this run's files are.
#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    /// Extra kube-apiserver flags (`--name=value`), appended last.
    pub apiserver_flags: Vec<String>,
}

impl Options {
    /// The binaries from `TRUSTHUB_CONTROLPLANE_BIN`.
    pub fn from_env() -> Result<Options, Error> {
        let bin_dir = std::env::var_os(BIN_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or(Error::NoBinaries)?;
        Ok(Options {
            bin_dir,
            apiserver_flags: Vec::new(),
        })
    }
}

/// How long start-up took and what the processes use once ready.
#[derive(Debug, Clone, Copy)]
pub struct StartupReport {
    pub elapsed: Duration,
    pub etcd_rss_kib: u64,
    pub apiserver_rss_kib: u64,
}

/// A running etcd + kube-apiserver pair.
pub struct ControlPlane {
    dir: PathBuf,
    url: String,
    pki: Pki,
    audit_log: PathBuf,
    processes: Mutex<Vec<Process>>,
    report: StartupReport,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token stays out of Debug output.
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();

extern "C" fn stop_shared_at_exit() {
    if let Some(cp) = SHARED.get() {
        cp.stop();
    }
}

impl ControlPlane {
    /// The test binary's one control plane, started on first use (from `TRUSTHUB_CONTROLPLANE_BIN`)
    /// and stopped when the process exits. Panics with what to do when it cannot start.
    pub fn shared() -> &'static ControlPlane {
        SHARED.get_or_init(|| {
            let started = std::thread::spawn(|| {
                let options = Options::from_env()?;
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Io("tokio runtime".into(), e))?
                    .block_on(ControlPlane::start(options))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Start("the start-up thread panicked".into())));
            match started {
                Ok(cp) => {
                    // SAFETY: registers a plain extern "C" fn with no captured state.
                    unsafe { libc::atexit(stop_shared_at_exit) };
                    cp
                }
                Err(e) => panic!("{e}"),
            }
        })
    }

    /// Starts a private control plane in a new temporary directory; it stops on drop.
    pub async fn start(options: Options) -> Result<ControlPlane, Error> {
        let began = Instant::now();
        let dir = std::env::temp_dir().join(format!(
            "testenv-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("mkdir {}", dir.display()), e))?;
        let pki = Pki::write(&dir)?;
        let audit_log = dir.join("audit.log");
        let mut cp = ControlPlane {
            url: String::new(),
            audit_log,
            pki,
            processes: Mutex::new(Vec::new()),
            report: StartupReport {
                elapsed: Duration::ZERO,
                etcd_rss_kib: 0,
                apiserver_rss_kib: 0,
            },
            dir,
        };
        let etcd_url = cp.start_etcd(&options).await?;
        let port = free_port()?;
        cp.url = format!("https://127.0.0.1:{port}");
        cp.start_apiserver(&options, &etcd_url, port)?;
        cp.wait_ready().await?;
        let processes = cp.processes.lock().unwrap_or_else(|e| e.into_inner());
        let rss = |name: &str| {
            processes
                .iter()
                .find(|p| p.name == name)
                .and_then(Process::rss_kib)
                .unwrap_or(0)
        };
        let report = StartupReport {
            elapsed: began.elapsed(),
            etcd_rss_kib: rss("etcd"),
            apiserver_rss_kib: rss("kube-apiserver"),
        };
        drop(processes);
        cp.report = report;
        eprintln!(
            "testenv: kube-apiserver and etcd ready at {} in {:.1}s (RSS: kube-apiserver {} MiB, etcd {} MiB)",
            cp.url,
            report.elapsed.as_secs_f64(),
            report.apiserver_rss_kib / 1024,
            report.etcd_rss_kib / 1024
        );
        Ok(cp)
    }

    async fn start_etcd(&self, options: &Options) -> Result<String, Error> {
        let client = free_port()?;
        let peer = free_port()?;
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut command = Command::new(options.bin_dir.join("etcd"));
        command.args([
            "--name=testenv",
            &format!("--data-dir={}", self.dir.join("etcd").display()),
            &format!("--listen-client-urls={client_url}"),
            &format!("--advertise-client-urls={client_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=testenv={peer_url}"),
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]);
        let process = Process::spawn("etcd", command, self.dir.join("etcd.log"))?;
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(process);
        let http = reqwest::Client::new();
        self.poll_until("etcd /health", Duration::from_secs(30), || {
            let http = http.clone();
            let url = format!("{client_url}/health");
            async move { matches!(http.get(url).send().await, Ok(r) if r.status().is_success()) }
        })
        .await?;
        Ok(client_url)
    }

    fn start_apiserver(&self, options: &Options, etcd_url: &str, port: u16) -> Result<(), Error> {
        let policy = self.dir.join("audit-policy.yaml");
        std::fs::write(&policy, AUDIT_POLICY)
            .map_err(|e| Error::Io(format!("write {}", policy.display()), e))?;
        let cert_dir = self.dir.join("cert-dir");
        std::fs::create_dir_all(&cert_dir)
            .map_err(|e| Error::Io(format!("mkdir {}", cert_dir.display()), e))?;
        let path = |p: &Path| p.display().to_string();
        let mut flags = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", path(&cert_dir)),
            format!("--tls-cert-file={}", path(&self.pki.serving_cert)),
            format!("--tls-private-key-file={}", path(&self.pki.serving_key)),
            format!("--client-ca-file={}", path(&self.pki.ca_cert)),
            format!("--token-auth-file={}", path(&self.pki.token_file)),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!(
                "--service-account-key-file={}",
                path(&self.pki.service_account_public_key)
            ),
            format!(
                "--service-account-signing-key-file={}",
                path(&self.pki.service_account_key)
            ),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            // No controller-manager mints legacy token Secrets, and no Pod ever runs.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--audit-policy-file={}", path(&policy)),
            format!("--audit-log-path={}", path(&self.audit_log)),
            "--audit-log-format=json".into(),
            "--audit-log-mode=blocking".into(),
            "--audit-log-maxsize=0".into(),
            "--v=0".into(),
        ];
        flags.extend(options.apiserver_flags.iter().cloned());
        let mut command = Command::new(options.bin_dir.join("kube-apiserver"));
        command.args(flags);
        let process = Process::spawn(
            "kube-apiserver",
            command,
            self.dir.join("kube-apiserver.log"),
        )?;
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(process);
        Ok(())
    }

    /// `/readyz` answers 200 to the admin, and the `default` namespace exists.
    async fn wait_ready(&self) -> Result<(), Error> {
        let http = self.http_client()?;
        let token = self.pki.admin_token.clone();
        for (what, path) in [
            ("kube-apiserver /readyz", "/readyz"),
            ("the default namespace", "/api/v1/namespaces/default"),
        ] {
            let url = format!("{}{path}", self.url);
            self.poll_until(what, Duration::from_secs(90), || {
                let request = http.get(url.clone()).bearer_auth(token.clone());
                async move { matches!(request.send().await, Ok(r) if r.status().is_success()) }
            })
            .await?;
        }
        Ok(())
    }

    async fn poll_until<F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        mut check: F,
    ) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if check().await {
                return Ok(());
            }
            if let Some(dead) = self.dead_process() {
                return Err(Error::Start(format!("waiting for {what}: {dead}")));
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!(
                    "{what} not ready within {limit:?}\n{}",
                    self.log_tails()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn dead_process(&self) -> Option<String> {
        let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes.iter_mut().find_map(|p| {
            p.exited()
                .map(|status| format!("{} exited ({status}):\n{}", p.name, p.log_tail(30)))
        })
    }

    fn log_tails(&self) -> String {
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(30)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An HTTP client that trusts this control plane's CA (no credentials attached).
    pub fn http_client(&self) -> Result<reqwest::Client, Error> {
        let ca = reqwest::Certificate::from_pem(self.pki.ca_pem.as_bytes())
            .map_err(|e| Error::Pki(e.to_string()))?;
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .map_err(|e| Error::Pki(e.to_string()))
    }

    /// The run's directory (certificates, logs, audit log, etcd data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn report(&self) -> StartupReport {
        self.report
    }

    /// The admin bearer token (group `system:masters`: bypasses RBAC).
    pub fn admin_token(&self) -> &str {
        &self.pki.admin_token
    }

    /// A kubeconfig for `token` with this control plane's CA, default namespace `namespace`.
    pub fn kubeconfig_yaml(&self, token: &str, namespace: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.pki.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: testenv\n  user:\n    token: {token}\ncontexts:\n- name: testenv\n  context:\n    cluster: testenv\n    user: testenv\n    namespace: {namespace}\ncurrent-context: testenv\n",
            url = self.url
        )
    }

    /// Writes the admin kubeconfig (namespace `namespace`) to `path`, mode 0600.
    pub fn write_kubeconfig(
        &self,
        path: &Path,
        token: &str,
        namespace: &str,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        std::io::Write::write_all(&mut file, self.kubeconfig_yaml(token, namespace).as_bytes())
    }

    /// A kube client for `token`. Build one per tokio runtime (each `#[tokio::test]` has its own).
    pub async fn client_for_token(&self, token: &str) -> Result<kube::Client, Error> {
        let kubeconfig: kube::config::Kubeconfig =
            serde_yaml::from_str(&self.kubeconfig_yaml(token, "default"))
                .map_err(|e| Error::Start(format!("kubeconfig: {e}")))?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| Error::Start(format!("kubeconfig: {e}")))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// An admin kube client (bypasses RBAC).
    pub async fn admin_client(&self) -> Result<kube::Client, Error> {
        self.client_for_token(&self.pki.admin_token).await
    }

    /// Creates a fresh namespace `prefix-xxxxx` and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String, Error> {
        use k8s_openapi::api::core::v1::Namespace;
        let client = self.admin_client().await?;
        let api: kube::Api<Namespace> = kube::Api::all(client);
        let mut ns = Namespace::default();
        ns.metadata.generate_name = Some(format!("{prefix}-"));
        let created = api.create(&kube::api::PostParams::default(), &ns).await?;
        Ok(created.metadata.name.unwrap_or_default())
    }

    /// Creates ServiceAccount `name` in `namespace` (if missing) and mints a token for it
    /// through the TokenRequest API.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, Error> {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        use k8s_openapi::api::core::v1::ServiceAccount;
        let client = self.admin_client().await?;
        let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(client, namespace);
        if accounts.get_opt(name).await?.is_none() {
            let mut account = ServiceAccount::default();
            account.metadata.name = Some(name.to_string());
            accounts
                .create(&kube::api::PostParams::default(), &account)
                .await?;
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let minted = accounts
            .create_token_request(name, &kube::api::PostParams::default(), &request)
            .await?;
        minted
            .status
            .map(|s| s.token)
            .ok_or_else(|| Error::Start("TokenRequest returned no token".into()))
    }

    /// Every request audited so far, one event per request (its latest stage).
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        audit::read(&self.audit_log)
    }

    /// Stops kube-apiserver, then etcd, and removes the run's directory. Idempotent.
    pub fn stop(&self) {
        let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        // The apiserver first: etcd going away under it only adds noise to its shutdown.
        while let Some(mut process) = processes.pop() {
            process.stop(Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> Result<u16, Error> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Io("bind 127.0.0.1:0".into(), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Io("local_addr".into(), e))
}

/// Metadata for every request. `ResponseStarted` stays so a watch still open is seen too.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
";
