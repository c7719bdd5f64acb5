//! Helpers for the operator-process tests: start `trusthub-operator run` with its HTTP servers
//! on port 0 and learn the bound addresses from its JSON logs, read its endpoints, and pick
//! values out of the Prometheus text.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use crate::support::{Env, PATIENCE};

/// One running operator process.
pub struct Operator {
    pub child: Child,
    pub metrics_addr: SocketAddr,
    /// Every log line so far (JSON), e.g. to check that no secret is ever logged.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Operator {
    /// Starts `trusthub-operator run` for `env` with `args`, JSON logs at info level and
    /// `--metrics-addr 127.0.0.1:0`; waits until it logged where it serves metrics.
    pub async fn start(env: &Env, pod_name: &str, args: &[&str]) -> Operator {
        Operator::spawn(env.operator_command(), pod_name, args).await
    }

    /// Like [`Operator::start`] with a prepared command (e.g. another kubeconfig).
    pub async fn spawn(
        mut cmd: tokio::process::Command,
        pod_name: &str,
        args: &[&str],
    ) -> Operator {
        cmd.args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "info")
            .env("POD_NAME", pod_name)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start the operator binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            // Keeps draining after the address is found, so the process never blocks on a full
            // pipe.
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let metrics_addr = loop {
            let line = tokio::time::timeout_at(deadline.into(), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{pod_name} did not log its metrics address"))
                .unwrap_or_else(|| panic!("{pod_name} exited before serving metrics"));
            if let Some(addr) = log_field(&line, "metrics_addr") {
                break addr.parse().expect("metrics_addr is a socket address");
            }
        };
        drop(rx);
        Operator {
            child,
            metrics_addr,
            logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.metrics_addr)
    }

    /// `(status, body)` of a GET on the metrics server.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(self.url(path))
            .await
            .expect("GET the operator");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// All log lines so far, joined.
    pub fn log_text(&self) -> String {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "/metrics answers 200");
        body
    }

    /// `/metrics` in the Prometheus text format 0.0.4 (asked for with `Accept: text/plain`).
    pub async fn metrics_prometheus_text(&self) -> String {
        let response = reqwest::Client::new()
            .get(self.url("/metrics"))
            .header("accept", "text/plain;version=0.0.4;q=0.9,*/*;q=0.1")
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status().as_u16(), 200, "/metrics answers 200");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.expect("body")
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            let (status, body) = self.get("/readyz").await;
            if status == 200 {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "operator never became ready: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A string field of a JSON log line's `fields`.
pub fn log_field(line: &str, name: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value["fields"][name].as_str().map(str::to_string)
}

/// The value of the sample `series` (name with its labels, exactly as printed), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The sum of every sample of metric `name` (any labels).
pub fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The Lease's current holder, if the Lease exists.
pub async fn lease_holder(env: &Env, name: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

/// Waits until `name`'s holder is `who`; returns how long that took.
pub async fn wait_holder(env: &Env, name: &str, who: &str, patience: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let holder = lease_holder(env, name).await;
        if holder.as_deref() == Some(who) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < patience,
            "{who} did not take Lease {name} within {patience:?} (holder: {holder:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy in front of the API server for one operator process, which the test can make
/// stall: while stalled, bytes already in flight and new connections are held (neither
/// forwarded nor refused), as a hung API server or a silent network partition does. The API
/// server's TLS passes through untouched (its certificate names 127.0.0.1, whatever the port).
pub struct StallingProxy {
    pub addr: SocketAddr,
    stalled: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StallingProxy {
    /// Listens on 127.0.0.1 (a port picked by the system) and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> StallingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (stalled, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, watch.clone()),
                        pump(server_read, client_write, watch),
                    );
                });
            }
        });
        StallingProxy {
            addr,
            stalled,
            task,
        }
    }

    /// Holds every byte from now on until [`StallingProxy::resume`].
    pub fn stall(&self) {
        let _ = self.stalled.send(true);
    }

    /// Forwards again, what was held first.
    pub fn resume(&self) {
        let _ = self.stalled.send(false);
    }

    /// `kubeconfig` with its server's `127.0.0.1:<port>` replaced by this proxy's address.
    pub fn rewrite_kubeconfig(&self, kubeconfig: &str, upstream: SocketAddr) -> String {
        assert!(
            kubeconfig.contains(&upstream.to_string()),
            "the kubeconfig names {upstream}"
        );
        kubeconfig.replace(&upstream.to_string(), &self.addr.to_string())
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
