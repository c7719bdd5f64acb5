//! The operator process around the controllers: the metrics/health server, the optional
//! status-callback receiver, optional leader election, and the controllers themselves (only
//! while leading). `trusthub-operator run` parses its flags into a [`RuntimeConfig`] and calls
//! [`run`]; tests call it in-process with listeners on port 0.
//!
//! With leader election, a replica that loses the Lease (or cannot renew it in time) aborts its
//! controllers at once, in-flight reconciles included, so that it never writes to Twilio after
//! stepping down, and [`run`] returns [`RuntimeError::LostLeadership`]; the binary then exits
//! non-zero and Kubernetes restarts it as a fresh standby (the usual controller pattern: no
//! state of the lost term survives into the next). A shutdown signal instead stops the
//! controllers gracefully and then releases the Lease.

use std::sync::Arc;

use futures::FutureExt;
use futures::channel::mpsc;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::controller::{self, Context, ControllerConfig, ReconcileObserver, RunOptions};
use crate::leader::{LeaderElector, LeaseConfig};
use crate::metrics::Metrics;
use crate::server::{Health, Role};
use crate::twilio::CallObserver;
use crate::webhook::{self, WebhookState};

/// How the process runs; every field comes from a flag.
pub struct RuntimeConfig {
    /// Controller settings (with `status_callback_url` from `--webhook-public-url`).
    pub controller: ControllerConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_listener: TcpListener,
    /// Where `POST /twilio/status-callback` is served, if at all.
    pub webhook_listener: Option<TcpListener>,
    /// Leader election, if enabled.
    pub leader_election: Option<LeaseConfig>,
}

/// Why the process stopped other than by a shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Another replica took the Lease (or it could not be renewed in time).
    #[error("lost the leader election Lease; controllers stopped")]
    LostLeadership,
    /// A server could not start.
    #[error("cannot serve HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

/// Queue of reconcile requests from verified callbacks; a burst beyond it waits for polling.
const TRIGGER_QUEUE: usize = 256;

/// Runs until `shutdown` resolves (`Ok`) or leadership is lost (`Err`).
pub async fn run(
    client: kube::Client,
    config: RuntimeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    let shutdown = shutdown.boxed().shared();
    let metrics = Arc::new(Metrics::new());
    let calls: Arc<dyn CallObserver> = metrics.clone();
    let reconciles: Arc<dyn ReconcileObserver> = metrics.clone();
    let ctx = Context::with_observers(
        client.clone(),
        config.controller,
        Some(calls),
        Some(reconciles),
    );
    let health = Arc::new(Health::default());

    let router = crate::server::router(health.clone(), metrics, ctx.clone());
    tracing::info!(metrics_addr = %config.metrics_listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let metrics_server = tokio::spawn(
        axum::serve(config.metrics_listener, router)
            .with_graceful_shutdown(shutdown.clone())
            .into_future(),
    );
    let (triggers, trigger_stream) = mpsc::channel(TRIGGER_QUEUE);
    let webhook_server = match config.webhook_listener {
        Some(listener) => {
            tracing::info!(webhook_addr = %listener.local_addr()?, path = webhook::PATH, "serving the status callback receiver");
            let router = webhook::router(WebhookState::new(ctx.clone(), triggers));
            Some(tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.clone())
                    .into_future(),
            ))
        }
        None => None,
    };
    let synced_health = health.clone();
    let options = RunOptions {
        product_triggers: Some(futures::StreamExt::boxed(trigger_stream)),
        on_synced: Some(Box::new(move || synced_health.set_caches_synced(true))),
    };

    let result = match config.leader_election {
        None => {
            health.set_role(Role::Leader);
            controller::run_with(ctx, shutdown.clone(), options).await;
            Ok(())
        }
        Some(lease) => lead_then_run(client, lease, ctx, options, health, shutdown.clone()).await,
    };
    // Whether stopped by a signal or by losing the Lease, the servers stop now too.
    for server in [Some(metrics_server), webhook_server].into_iter().flatten() {
        if !server.is_finished() && shutdown.peek().is_none() {
            server.abort();
        }
        let _ = server.await;
    }
    result
}

async fn lead_then_run(
    client: kube::Client,
    lease: LeaseConfig,
    ctx: Arc<Context>,
    options: RunOptions,
    health: Arc<Health>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) -> Result<(), RuntimeError> {
    let (role_tx, mut role_rx) = watch::channel(Role::Unknown);
    // The election outlives the controllers on shutdown: the Lease is released only after the
    // last reconcile finished, so the next leader never overlaps with this one.
    let (stop_election, election_stopped) = tokio::sync::oneshot::channel::<()>();
    let elector = LeaderElector::new(client, lease);
    let election = tokio::spawn(elector.run(role_tx, async move {
        let _ = election_stopped.await;
    }));
    let mirror_health = health.clone();
    let mut mirror_rx = role_rx.clone();
    tokio::spawn(async move {
        loop {
            mirror_health.set_role(*mirror_rx.borrow_and_update());
            if mirror_rx.changed().await.is_err() {
                break;
            }
        }
    });

    let leading = role_rx.wait_for(|r| *r == Role::Leader).map(|r| r.is_ok());
    let became_leader = tokio::select! {
        ok = leading => ok,
        _ = shutdown.clone() => false,
    };
    if became_leader {
        // On a shutdown signal the controllers stop gracefully (in-flight reconciles finish,
        // then the Lease is released). On losing the Lease they are dropped at once: a
        // reconcile may be waiting out a Twilio Retry-After (up to 30 s) or blocked on a stalled
        // API server, and finishing it could write to Twilio while the next leader does.
        // Dropping the future cancels every reconcile with its Twilio call and retry wait (none
        // runs in a task of its own).
        let lost = {
            let mut rx = role_rx.clone();
            async move {
                let _ = rx.wait_for(|r| *r != Role::Leader).await;
            }
        };
        let controllers = controller::run_with(ctx, shutdown.clone(), options);
        tokio::select! {
            _ = controllers => {}
            _ = lost => {
                tracing::error!("lost the leader election Lease: controllers aborted");
            }
        }
    }
    let lost = shutdown.peek().is_none();
    let _ = stop_election.send(());
    let _ = election.await;
    if lost {
        Err(RuntimeError::LostLeadership)
    } else {
        Ok(())
    }
}
