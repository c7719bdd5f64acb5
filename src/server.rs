//! The operator's HTTP endpoints for Kubernetes and Prometheus, on `--metrics-addr`:
//! `GET /metrics` (OpenMetrics text; the Prometheus text format 0.0.4 to a client that asks
//! for `text/plain` and not for OpenMetrics), `GET /healthz` (the process serves HTTP: always 200) and
//! `GET /readyz` (200 once the operator knows its role and, as the active replica, its
//! informer caches are synced; 503 with the reason otherwise).
//!
//! Readiness rule: a standby replica (leader election on, another replica holds the Lease) is
//! ready, because it is healthy and ready to take over; counting it unready would stall rolling
//! updates of a two-replica Deployment. A replica whose role is not known yet (no answer from
//! the API about the Lease) is not ready. Without leader election the process is the active
//! replica from the start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::controller::Context;
use crate::metrics::{CONTENT_TYPE, Metrics, TEXT_CONTENT_TYPE};

/// This replica's part in leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not known yet (the Lease was not read successfully so far).
    Unknown,
    /// Runs the controllers (also the role without leader election).
    Leader,
    /// Another replica holds the Lease; this one waits.
    Standby,
}

/// Liveness and readiness state, shared by the election loop, the controllers and the server.
#[derive(Debug, Default)]
pub struct Health {
    role: AtomicU8,
    caches_synced: AtomicBool,
}

impl Health {
    /// Records this replica's role.
    pub fn set_role(&self, role: Role) {
        let value = match role {
            Role::Unknown => 0,
            Role::Leader => 1,
            Role::Standby => 2,
        };
        self.role.store(value, Ordering::SeqCst);
    }

    /// This replica's role.
    pub fn role(&self) -> Role {
        match self.role.load(Ordering::SeqCst) {
            1 => Role::Leader,
            2 => Role::Standby,
            _ => Role::Unknown,
        }
    }

    /// Records whether the controllers' informer caches hold their initial lists.
    pub fn set_caches_synced(&self, synced: bool) {
        self.caches_synced.store(synced, Ordering::SeqCst);
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        match self.role() {
            Role::Unknown => Err("leader election role not known yet"),
            Role::Standby => Ok(()),
            Role::Leader if self.caches_synced.load(Ordering::SeqCst) => Ok(()),
            Role::Leader => Err("informer caches not synced yet"),
        }
    }
}

#[derive(Clone)]
struct ServerState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    ctx: Arc<Context>,
}

/// The router of `/metrics`, `/healthz` and `/readyz`.
pub fn router(health: Arc<Health>, metrics: Arc<Metrics>, ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(ServerState {
            health,
            metrics,
            ctx,
        })
}

async fn metrics_handler(
    State(state): State<ServerState>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let body = state.metrics.render(
        state.health.role() == Role::Leader,
        state.ctx.products.get(),
        state.ctx.bindings.get(),
    );
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if crate::metrics::wants_prometheus_text(accept) {
        let text = crate::metrics::to_prometheus_text(&body);
        ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], text)
    } else {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
    }
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    match state.health.readiness() {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_a_role_and_synced_caches_when_leading() {
        let health = Health::default();
        assert!(health.readiness().is_err());
        health.set_role(Role::Standby);
        assert_eq!(health.readiness(), Ok(()));
        health.set_role(Role::Leader);
        assert!(health.readiness().is_err());
        health.set_caches_synced(true);
        assert_eq!(health.readiness(), Ok(()));
    }
}
