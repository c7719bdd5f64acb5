//! Fault injection for tests: fail the next N requests of a verb+resource, cut every open
//! watch, add latency to every request. Usable from Rust ([`FaultHandle`]) and over HTTP
//! under `/_local/faults/...` (a prefix no Kubernetes path can have).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct FailRule {
    verb: String,
    resource: String,
    remaining: u32,
    status: u16,
}

#[derive(Debug)]
struct FaultState {
    rules: Mutex<Vec<FailRule>>,
    latency: Mutex<Duration>,
    cut: watch::Sender<u64>,
}

/// Handle to the server's fault injection; cheap to clone.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    inner: Arc<FaultState>,
}

impl Default for FaultHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultHandle {
    pub fn new() -> Self {
        FaultHandle {
            inner: Arc::new(FaultState {
                rules: Mutex::new(Vec::new()),
                latency: Mutex::new(Duration::ZERO),
                cut: watch::channel(0).0,
            }),
        }
    }

    /// The next `n` requests with this verb (`get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, or `*`) on this resource (plural such as `secrets`, with
    /// `/status` for the subresource, or `*`) fail with `status` (e.g. 409 or 500).
    pub fn fail_next(&self, verb: &str, resource: &str, n: u32, status: u16) {
        if n == 0 {
            return;
        }
        self.rules().push(FailRule {
            verb: verb.to_string(),
            resource: resource.to_string(),
            remaining: n,
            status,
        });
    }

    /// Ends every watch stream that is open now (clients see the connection close).
    pub fn cut_watches(&self) {
        self.inner.cut.send_modify(|n| *n += 1);
    }

    /// Delay added before every API request is handled.
    pub fn set_latency(&self, d: Duration) {
        *self.inner.latency.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }

    /// Removes all pending failures and latency.
    pub fn clear(&self) {
        self.rules().clear();
        self.set_latency(Duration::ZERO);
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<FailRule>> {
        self.inner.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn latency(&self) -> Duration {
        *self.inner.latency.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Consumes one pending failure matching this request, returning its status code.
    pub(crate) fn take_failure(&self, verb: &str, resource: &str) -> Option<u16> {
        let mut rules = self.rules();
        let idx = rules.iter().position(|r| {
            (r.verb == "*" || r.verb == verb) && (r.resource == "*" || r.resource == resource)
        })?;
        let status = rules[idx].status;
        rules[idx].remaining -= 1;
        if rules[idx].remaining == 0 {
            rules.remove(idx);
        }
        Some(status)
    }

    pub(crate) fn cut_signal(&self) -> watch::Receiver<u64> {
        self.inner.cut.subscribe()
    }
}

#[derive(Debug, Deserialize)]
struct FailNextBody {
    verb: String,
    resource: String,
    #[serde(default = "one")]
    count: u32,
    #[serde(default = "five_hundred")]
    status: u16,
}

fn one() -> u32 {
    1
}

fn five_hundred() -> u16 {
    500
}

#[derive(Debug, Deserialize)]
struct LatencyBody {
    millis: u64,
}

/// Admin routes: `POST /_local/faults/fail-next {verb, resource, count, status}`,
/// `POST /_local/faults/cut-watches`, `POST /_local/faults/latency {millis}`,
/// `POST /_local/faults/clear`.
pub fn admin_routes(faults: FaultHandle) -> Router {
    Router::new()
        .route(
            "/_local/faults/fail-next",
            post(
                |State(f): State<FaultHandle>, Json(b): Json<FailNextBody>| async move {
                    f.fail_next(&b.verb, &b.resource, b.count, b.status);
                    Json(ok())
                },
            ),
        )
        .route(
            "/_local/faults/cut-watches",
            post(|State(f): State<FaultHandle>| async move {
                f.cut_watches();
                Json(ok())
            }),
        )
        .route(
            "/_local/faults/latency",
            post(
                |State(f): State<FaultHandle>, Json(b): Json<LatencyBody>| async move {
                    f.set_latency(Duration::from_millis(b.millis));
                    Json(ok())
                },
            ),
        )
        .route(
            "/_local/faults/clear",
            post(|State(f): State<FaultHandle>| async move {
                f.clear();
                Json(ok())
            }),
        )
        .with_state(faults)
}

fn ok() -> Value {
    json!({"ok": true})
}
