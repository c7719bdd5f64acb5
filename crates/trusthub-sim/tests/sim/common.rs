//! Shared helpers: start a simulator, make authenticated requests, run Prism proxies, read
//! the official spec.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use trusthub_sim::{SimConfig, SimServer};

pub const PARENT: &str = "AC11111111111111111111111111111111";
pub const PARENT_TOKEN: &str = "parentauthtoken0000000000000000001";
pub const EAST: &str = "AC22222222222222222222222222222222";
pub const EAST_TOKEN: &str = "eastauthtoken00000000000000000002";
pub const WEST: &str = "AC33333333333333333333333333333333";
pub const STANDARD_KEY: &str = "SK44444444444444444444444444444444";
pub const STANDARD_SECRET: &str = "standardkeysecret000000000000004";
pub const MAIN_KEY: &str = "SK55555555555555555555555555555555";
pub const MAIN_SECRET: &str = "mainkeysecret0000000000000000005";
pub const PRIMARY: &str = "BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
pub const PARENT_NUMBER: &str = "PN10000000000000000000000000000001";
pub const EAST_NUMBER_1: &str = "PN20000000000000000000000000000001";
pub const EAST_NUMBER_2: &str = "PN20000000000000000000000000000002";
pub const WEST_NUMBER: &str = "PN30000000000000000000000000000001";
pub const SHAKEN: &str = "RN7a97559effdf62d00f4298208492a5ea";

pub async fn start() -> SimServer {
    start_with(SimConfig::default()).await
}

pub async fn start_with(cfg: SimConfig) -> SimServer {
    SimServer::start(cfg).await.expect("simulator starts")
}

/// A response: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> u64 {
        self.body["code"].as_u64().unwrap_or(0)
    }

    /// Assert a Twilio error response: HTTP status, code and the full error body shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: u64) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(
            self.body["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// An authenticated client for one base URL.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub user: String,
    pub pass: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, user: &str, pass: &str) -> Api {
        Api {
            base: base.to_string(),
            user: user.to_string(),
            pass: pass.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub fn parent(sim: &SimServer) -> Api {
        Api::new(&sim.base_url(), PARENT, PARENT_TOKEN)
    }

    pub fn with_base(&self, base: &str) -> Api {
        Api {
            base: base.to_string(),
            ..self.clone()
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req
            .basic_auth(&self.user, Some(&self.pass))
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

/// Workspace root (two levels above this crate).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn spec_dir() -> PathBuf {
    match std::env::var_os("TRUSTHUB_SPEC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/twilio-oai"),
    }
}

pub fn tools_dir() -> PathBuf {
    match std::env::var_os("TRUSTHUB_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join(".tools/bin"),
    }
}

pub fn load_spec(file: &str) -> Value {
    let path = spec_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read spec {} ({e}); set TRUSTHUB_SPEC_DIR to the twilio-oai directory",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("spec is JSON")
}

/// The property names of a schema in `components.schemas`, sorted.
pub fn spec_properties(spec: &Value, schema: &str) -> Vec<String> {
    let props = spec["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema} not in spec"));
    let mut names: Vec<String> = props.keys().cloned().collect();
    names.sort();
    names
}

/// Assert that `value` has exactly the properties the spec schema lists.
#[track_caller]
pub fn assert_schema_fields(spec: &Value, schema: &str, value: &Value) {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(keys, spec_properties(spec, schema), "fields of {schema}");
}

/// A Stoplight Prism validating proxy in front of the simulator; killed on drop.
pub struct Prism {
    child: Child,
    pub base: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Prism {
    /// Start `prism proxy <spec> <upstream>` on a free port and wait until it listens.
    /// `errors` adds `--errors` (violations turn into error responses).
    pub fn start(spec_file: &str, upstream: &str, errors: bool) -> Prism {
        let prism = tools_dir().join("prism");
        assert!(
            prism.exists(),
            "Prism not found at {}: run scripts/install-tools.sh (or set TRUSTHUB_TOOLS_DIR)",
            prism.display()
        );
        let spec = spec_dir().join(spec_file);
        assert!(
            spec.exists(),
            "spec {} missing; set TRUSTHUB_SPEC_DIR",
            spec.display()
        );
        let port = free_port();
        let mut cmd = Command::new(&prism);
        cmd.arg("proxy")
            .arg(&spec)
            .arg(upstream)
            .arg("--port")
            .arg(port.to_string())
            .arg("--host")
            .arg("127.0.0.1");
        if errors {
            cmd.arg("--errors");
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().expect("prism starts");
        let mut guard = Prism {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return guard;
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("prism exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "prism did not listen on {port} within 180 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Violations Prism reported for a response (`sl-violations` header).
pub fn violations(resp: &Resp) -> Vec<Value> {
    resp.headers
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Vec<Value>>(v).ok())
        .unwrap_or_default()
}

/// Steps 2–5 of the walkthrough with one number: put `number` on the Primary profile,
/// create a SHAKEN/STIR trust product, link it to the profile and assign the number.
/// Returns the trust product SID.
pub async fn ready_trust_product(api: &Api, number: &str) -> String {
    let r = api
        .post(
            &format!("/v1/CustomerProfiles/{PRIMARY}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", number),
            ],
        )
        .await;
    assert!(
        r.status == 201 || r.code() == 20409,
        "profile assignment: {}",
        r.body
    );
    let tp = create_trust_product(api, "tp").await;
    let r = api
        .post(
            &format!("/v1/TrustProducts/{tp}/EntityAssignments"),
            &[("ObjectSid", PRIMARY)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .post(
            &format!("/v1/TrustProducts/{tp}/ChannelEndpointAssignments"),
            &[
                ("ChannelEndpointType", "phone-number"),
                ("ChannelEndpointSid", number),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    tp
}

pub async fn create_trust_product(api: &Api, name: &str) -> String {
    let r = api
        .post(
            "/v1/TrustProducts",
            &[
                ("FriendlyName", name),
                ("Email", "ops@acme.example"),
                ("PolicySid", SHAKEN),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["sid"].as_str().expect("sid").to_string()
}

/// A captured webhook request.
#[derive(Clone, Debug)]
pub struct Captured {
    pub url: String,
    pub signature: Option<String>,
    pub params: Vec<(String, String)>,
}

/// An HTTP server that records every POST it gets (status callback receiver).
pub struct CallbackSink {
    pub url: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CallbackSink {
    pub async fn start() -> CallbackSink {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Uri};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received: std::sync::Arc<std::sync::Mutex<Vec<Captured>>> = Default::default();
        let sink = received.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let params = url::form_urlencoded::parse(&body).into_owned().collect();
                let signature = headers
                    .get("X-Twilio-Signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                sink.lock().expect("sink lock").push(Captured {
                    url: format!("http://{addr}{uri}"),
                    signature,
                    params,
                });
                "ok"
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CallbackSink {
            url: format!("http://{addr}/status?tenant=acme"),
            received,
            task,
        }
    }

    pub fn captured(&self) -> Vec<Captured> {
        self.received.lock().expect("sink lock").clone()
    }

    /// Wait until at least `n` callbacks arrived (up to 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        for _ in 0..200 {
            let got = self.captured();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} callbacks, got {:?}", self.captured());
    }
}

impl Drop for CallbackSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Poll a trust product until its status is `status` (up to 10 s).
pub async fn wait_status(api: &Api, path: &str, status: &str) -> Value {
    for _ in 0..200 {
        let r = api.get(path).await;
        if r.body["status"] == status {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never reached {status}");
}

/// Trust Hub responses through `prism proxy --errors`: no violation at all.
#[track_caller]
pub fn strict(resp: &Resp, status: u16) {
    assert_eq!(
        violations(resp),
        Vec::<Value>::new(),
        "Prism violations; body {}",
        resp.body
    );
    assert_eq!(resp.status, status, "body: {}", resp.body);
}

pub fn iso(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z'))
}

pub fn rfc2822(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc2822(s).is_ok() && s.ends_with("+0000"))
}

pub async fn proxies(sim: &SimServer) -> (Prism, Prism) {
    let upstream = sim.base_url();
    let up2 = upstream.clone();
    let th = tokio::task::spawn_blocking(move || {
        Prism::start("twilio_trusthub_v1.json", &upstream, true)
    });
    let v2010 =
        tokio::task::spawn_blocking(move || Prism::start("twilio_api_v2010.json", &up2, true));
    let (th, v2010) = tokio::join!(th, v2010);
    (th.expect("prism thread"), v2010.expect("prism thread"))
}
