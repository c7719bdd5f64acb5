//! Shared server state, the connection listener (with a per-connection "drop" switch), the
//! request gate (counters, concurrency limit, faults) and the authentication extractor.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State as AxState};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};

use crate::counters::{Counters, operation};
use crate::error::ApiError;
use crate::faults::{FaultAction, FaultEngine};
use crate::rules::StatusChange;
use crate::seed::{Secret, Seed};
use crate::state::{Caller, State};

/// A successful create/update/delete made through the API. Sent after the state changed
/// and before the response is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteEvent {
    /// The spec's operationId, e.g. `CreateTrustProductChannelEndpointAssignment`.
    pub operation_id: String,
    /// SID of the object created, updated or deleted.
    pub sid: String,
    /// The account whose Trust Hub was written.
    pub account_sid: String,
    /// The request's `User-Agent`, to tell writers apart (e.g. two operator replicas).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// `api` for a client's request; `admin` for a change made through the admin API or
    /// [`crate::SimServer`] (buying/releasing numbers, creating subaccounts), whose
    /// `operation_id`s start with `Sim` and which the counters never count.
    #[serde(default)]
    pub origin: WriteOrigin,
}

/// Who made a [`WriteEvent`]'s change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteOrigin {
    /// A request to the Twilio API (the operator, a test client).
    #[default]
    Api,
    /// The admin API or a `SimServer` method: Twilio acting outside the client's requests.
    Admin,
}

tokio::task_local! {
    /// The `User-Agent` of the API request being served (set by [`gate`]), for [`WriteEvent`].
    static USER_AGENT: Option<String>;
}

pub(crate) struct AppInner {
    pub state: Mutex<State>,
    pub seed: Seed,
    pub base_url: String,
    pub review_delay: Option<Duration>,
    pub approve_delay: Option<Duration>,
    pub faults: Mutex<FaultEngine>,
    pub counters: Mutex<Counters>,
    pub writes: broadcast::Sender<WriteEvent>,
    pub callbacks: mpsc::UnboundedSender<StatusChange>,
    pub in_flight: AtomicUsize,
    pub admin_token: Option<Secret>,
    /// How long approvals last; `None`: 365 days.
    pub approval_validity: Option<chrono::Duration>,
    pub shutdown: watch::Sender<bool>,
}

pub(crate) type App = Arc<AppInner>;

/// Lock a mutex, recovering the data if a thread panicked while holding it (the state is
/// plain data and stays consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AppInner {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        lock(&self.counters)
    }

    /// Record a successful write: counters (for creates) and the write broadcast.
    pub fn wrote(&self, operation_id: &str, sid: &str, account_sid: &str) {
        if let Some(object_type) = operation_id.strip_prefix("Create") {
            self.counters().record_created(object_type);
        }
        // No receiver is fine: nobody is watching writes.
        let _ = self.writes.send(WriteEvent {
            operation_id: operation_id.to_string(),
            sid: sid.to_string(),
            account_sid: account_sid.to_string(),
            user_agent: USER_AGENT.try_with(Clone::clone).ok().flatten(),
            origin: WriteOrigin::Api,
        });
    }

    /// Record a change made through the admin API: announced on the write broadcast with
    /// origin [`WriteOrigin::Admin`], never counted (it is no client's API write).
    pub fn admin_wrote(&self, operation_id: &str, sid: &str, account_sid: &str) {
        let _ = self.writes.send(WriteEvent {
            operation_id: operation_id.to_string(),
            sid: sid.to_string(),
            account_sid: account_sid.to_string(),
            user_agent: None,
            origin: WriteOrigin::Admin,
        });
    }
}

/// TCP listener whose connections can be closed from a handler without a response.
pub(crate) struct DroppableListener(pub TcpListener);

pub(crate) struct DroppableStream {
    inner: TcpStream,
    dropped: Arc<AtomicBool>,
}

/// Connection info given to handlers: the connection's drop switch.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    pub dropped: Arc<AtomicBool>,
}

impl Listener for DroppableListener {
    type Io = DroppableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Best effort: Nagle only adds latency to small JSON responses.
                    let _ = stream.set_nodelay(true);
                    let io = DroppableStream {
                        inner: stream,
                        dropped: Arc::new(AtomicBool::new(false)),
                    };
                    return (io, addr);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, DroppableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, DroppableListener>) -> Self {
        ConnHandle {
            dropped: stream.io().dropped.clone(),
        }
    }
}

fn dropped_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by fault injection",
    )
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dropped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(dropped_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dropped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(dropped_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dropped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(dropped_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Decrements the in-flight count when a request finishes (or is cancelled).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Middleware for the API routes: count, enforce the concurrency limit, inject faults.
pub(crate) async fn gate(AxState(app): AxState<App>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let (route, op) = match matched.as_deref().and_then(|m| operation(&method, m)) {
        Some((template, op)) => (template.to_string(), Some(op)),
        None => (format!("{method} UNMATCHED"), None),
    };
    app.counters().record_request(&route, op);
    let arrived = std::time::Instant::now();

    let in_flight = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&app.in_flight);
    let (over_limit, plan) = {
        let mut faults = lock(&app.faults);
        let over = faults.max_in_flight().is_some_and(|max| in_flight > max);
        (over, (!over).then(|| faults.decide(&method, &path)))
    };
    let Some(plan) = plan.filter(|_| !over_limit) else {
        app.counters().record_fault("concurrency_429");
        let mut response = ApiError::too_many_requests(None).into_response();
        response
            .headers_mut()
            .insert("Twilio-Concurrent-Requests", HeaderValue::from(in_flight));
        return response;
    };
    if let Some(label) = plan.label {
        app.counters().record_fault(label);
    }
    if plan.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
    }
    let mut response = match plan.action {
        Some(FaultAction::Respond(error)) => error.into_response(),
        Some(FaultAction::Drop) => {
            match req.extensions().get::<ConnectInfo<ConnHandle>>() {
                Some(ConnectInfo(conn)) => conn.dropped.store(true, Ordering::SeqCst),
                None => tracing::warn!("no connection handle; cannot drop the connection"),
            }
            // Never written: the connection fails on the first write.
            ApiError::internal().into_response()
        }
        None => {
            let user_agent = req
                .headers()
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            USER_AGENT.scope(user_agent, next.run(req)).await
        }
    };
    // Twilio reports the account's concurrency on every response.
    response
        .headers_mut()
        .insert("Twilio-Concurrent-Requests", HeaderValue::from(in_flight));
    app.counters().record_served(arrived.elapsed());
    response
}

/// Middleware for `/_sim`: require `Authorization: Bearer <admin token>` when one is set.
pub(crate) async fn admin_gate(AxState(app): AxState<App>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.admin_token {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.expose()) {
            return ApiError::unauthenticated().into_response();
        }
    }
    next.run(req).await
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let encoded = header
            .strip_prefix("Basic ")
            .ok_or_else(ApiError::unauthenticated)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(ApiError::unauthenticated)?;
        app.state()
            .authenticate(user, pass)
            .ok_or_else(ApiError::unauthenticated)
    }
}
