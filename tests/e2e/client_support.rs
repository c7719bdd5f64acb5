//! Test helpers: tool lookup, a Prism mock process, and a tiny scripted HTTP/1.1 server that
//! records every request and can answer with any status, delay, or drop the connection.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use trusthub_operator::twilio::{
    CallObserver, CallRecord, ClientConfig, Credentials, Endpoints, RetryPolicy, TwilioClient,
};

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "TopSecretAuthToken0123456789";

/// A client for `base` with fast retries (tests should not sleep for seconds).
pub fn client_for(base: &str, max_attempts: u32) -> TwilioClient {
    let config = ClientConfig {
        endpoints: Endpoints::single(base).expect("test base URL"),
        retry: RetryPolicy {
            max_attempts,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(2),
        },
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    TwilioClient::new(
        Credentials::auth_token(ACCOUNT, TOKEN).expect("test credentials"),
        config,
    )
    .expect("client")
}

/// Records every attempt the client reports.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<CallRecord>>);

impl CallObserver for Recorder {
    fn observe(&self, call: &CallRecord) {
        self.0.lock().expect("recorder lock").push(*call);
    }
}

/// `<workspace>/.tools/bin/<name>` or `$TRUSTHUB_TOOLS_DIR/<name>`; panics with the fix if absent.
pub fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRUSTHUB_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `bash scripts/install-tools.sh` (or set TRUSTHUB_TOOLS_DIR)",
        path.display()
    );
    path
}

/// The official OpenAPI files: `$TRUSTHUB_OAI_DIR`, else `shared/twilio-oai` beside the
/// workspace (as on the developer machines and in CI).
pub fn oai_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRUSTHUB_OAI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/twilio-oai"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: set TRUSTHUB_OAI_DIR to the folder holding Twilio's OpenAPI files",
        path.display()
    );
    path
}

/// A running `prism mock --errors` on a port picked at run time; killed on drop.
pub struct Prism {
    pub base_url: String,
    _child: Child,
}

impl Prism {
    /// A running `prism mock --errors` serving `spec`.
    pub async fn start(spec: &str) -> Prism {
        Prism::spawn("mock", spec, None).await
    }

    /// A running `prism proxy --errors` in front of `upstream` (e.g. the simulator): Prism
    /// checks each request and each answer against `spec` and reports answers that break it in
    /// `sl-violations`.
    pub async fn proxy(spec: &str, upstream: &str) -> Prism {
        Prism::spawn("proxy", spec, Some(upstream)).await
    }

    async fn spawn(mode: &str, spec: &str, upstream: Option<&str>) -> Prism {
        let port = free_port().await;
        let child = Command::new(tool("prism"))
            .arg(mode)
            .arg(oai_file(spec))
            .args(upstream)
            .args(["--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn prism {mode}: {e}"));
        let base_url = format!("http://127.0.0.1:{port}");
        // Prism (node) needs a few seconds to load the spec; much more on a busy machine.
        for _ in 0..240 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Prism {
                    base_url,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("prism {mode} did not listen on port {port} within 60 s");
    }
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One request as the scripted server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub body: String,
}

/// How the scripted server answers one request.
pub enum Reply {
    Json(u16, String),
    WithHeaders(u16, Vec<(&'static str, String)>, String),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Wait, then answer.
    After(Duration, Box<Reply>),
}

type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// Scripted HTTP/1.1 server on 127.0.0.1:0. `script(request, n)` gets the request and its
/// 0-based index among all requests.
pub struct ScriptedServer {
    pub base_url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let (s, i, m) = (seen.clone(), in_flight.clone(), max_in_flight.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, i, m, script) = (s.clone(), i.clone(), m.clone(), script.clone());
                tokio::spawn(async move { serve(stream, s, i, m, script).await });
            }
        });
        ScriptedServer {
            base_url,
            seen,
            max_in_flight,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    script: Script,
) {
    // Keep-alive loop: the client's pool reuses connections.
    loop {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        max_in_flight.fetch_max(now, Ordering::SeqCst);
        let index = {
            let mut all = seen.lock().expect("seen lock");
            all.push(request.clone());
            all.len() - 1
        };
        let mut reply = script(&request, index);
        while let Reply::After(wait, next) = reply {
            tokio::time::sleep(wait).await;
            reply = *next;
        }
        in_flight.fetch_sub(1, Ordering::SeqCst);
        let (status, headers, body) = match reply {
            Reply::Json(status, body) => (status, Vec::new(), body),
            Reply::WithHeaders(status, headers, body) => (status, headers, body),
            Reply::Drop | Reply::After(..) => return,
        };
        let mut head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    read_request_with_headers(stream)
        .await
        .map(|(seen, _)| seen)
}

async fn read_request_with_headers(
    stream: &mut TcpStream,
) -> Option<(Seen, Vec<(String, String)>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[header_end..header_end + length]).to_string();
    Some((
        Seen {
            method,
            target,
            body,
        },
        headers,
    ))
}

/// A Trust Product JSON body for `sid`.
pub fn trust_product_json(sid: &str) -> String {
    serde_json::json!({
        "sid": sid,
        "account_sid": ACCOUNT,
        "policy_sid": "RN7a97559effdf62d00f4298208492a5ea",
        "friendly_name": "acme",
        "status": "draft",
        "errors": null
    })
    .to_string()
}

/// One request/answer pair seen by a [`RecordingProxy`].
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub target: String,
    pub status: u16,
    /// Prism's `sl-violations` header (JSON list), when present.
    pub violations: Option<String>,
}

/// Forwards every request to `upstream` and records the answer, so a test can tell Prism's
/// request-validation errors (422) from its own response-example violations (500 with
/// `sl-violations` located in `response`).
pub struct RecordingProxy {
    pub base_url: String,
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RecordingProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let (log, upstream) = (exchanges.clone(), upstream.to_owned());
        let http = reqwest::Client::new();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, upstream, http) = (log.clone(), upstream.clone(), http.clone());
                tokio::spawn(async move { forward(stream, &upstream, &http, log).await });
            }
        });
        RecordingProxy {
            base_url,
            exchanges,
            task,
        }
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().expect("exchanges lock").clone()
    }
}

async fn forward(
    mut stream: TcpStream,
    upstream: &str,
    http: &reqwest::Client,
    log: Arc<Mutex<Vec<Exchange>>>,
) {
    while let Some((request, headers)) = read_request_with_headers(&mut stream).await {
        let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
            return;
        };
        let mut outgoing = http
            .request(method, format!("{upstream}{}", request.target))
            .body(request.body.clone());
        for (name, value) in headers {
            if !["host", "content-length", "connection"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                outgoing = outgoing.header(name, value);
            }
        }
        let Ok(response) = outgoing.send().await else {
            return;
        };
        let status = response.status().as_u16();
        let violations = response
            .headers()
            .get("sl-violations")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.unwrap_or_default();
        log.lock().expect("exchanges lock").push(Exchange {
            method: request.method,
            target: request.target,
            status,
            violations,
        });
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&body).await.is_err()
        {
            return;
        }
    }
}
