//! An in-memory Kubernetes API server for tests and the playground.
//!
//! [`LocalApiServer::start`] serves plain HTTP on a loopback port enough of the Kubernetes API
//! for kube-rs 5 (`Client`, `Api`, `kube::runtime::Controller`/`watcher`/`finalizer`) and
//! kubectl 1.35 (`apply`, `get` with printer columns, `describe`, `wait`, `delete`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kube_local::{LocalApiServer, ServerOptions};
//! let server = LocalApiServer::start(ServerOptions::default()).await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kube-local.kubeconfig"))?; // for kubectl
//! let client = server.client().await; // or build one from the kubeconfig
//! server.faults().fail_next("patch", "widgets/status", 1, 500);
//! # let _ = client;
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The `kube-local` binary runs the same server until Ctrl-C:
//! `kube-local --listen 127.0.0.1:6443 --kubeconfig /tmp/kube-local.kubeconfig`.
//!
//! # What is modelled
//! Checked against kube-apiserver v1.36.3 by the conformance suite
//! (`tests/conformance`, which runs on either backend: `TRUSTHUB_KUBE_BACKEND=real|kube-local`).
//! - Discovery (`/version`, `/api`, `/apis`, group and group-version resource lists, and
//!   aggregated discovery v2) for the
//!   built-ins core/v1 `namespaces` (a `default` one exists), `secrets`, `events`,
//!   `events.k8s.io/v1` `events`, `coordination.k8s.io/v1` `leases`,
//!   `apiextensions.k8s.io/v1` `customresourcedefinitions`, and every served version of each
//!   CRD once it is created (CRDs get `NamesAccepted`/`Established` conditions immediately).
//! - CRUD with apiserver-shaped `meta/v1 Status` errors: create (409 AlreadyExists,
//!   `generateName`, uid, creationTimestamp), get (404), list (label selectors, field selectors
//!   on any dotted path, all namespaces, `limit`/`continue`), update (409 Conflict on a stale
//!   resourceVersion), JSON patch, merge patch, strategic merge patch (as a merge patch;
//!   built-ins only: custom resources answer 415 as upstream), server-side apply with field ownership (conflicts unless `force`, removal of fields a
//!   manager stops applying; creates missing objects), delete and deletecollection
//!   (propagation options accepted), `dryRun=All`. Object names and labels are validated.
//! - One global monotonically increasing resourceVersion; `generation` starting at 1 and bumped
//!   on changes outside metadata (and outside status when the status subresource is on);
//!   status subresource isolation both ways; no-op writes do not bump the resourceVersion;
//!   finalizers (deletionTimestamp and a generation bump when deletion starts, removal with
//!   the last finalizer as one DELETED event, no new finalizers while deleting); namespace deletion cascades to its content; `Secret.stringData` folded into
//!   `data`.
//! - Watches from a resourceVersion with a bounded replay history (410 Expired ERROR event
//!   beyond it), initial ADDED events when no version (or "0") is given, `sendInitialEvents`
//!   with the initial-events-end bookmark, periodic bookmarks, `timeoutSeconds`, label/field
//!   selectors (an object that starts/stops matching is sent as ADDED/DELETED).
//! - Custom resources are admitted through their CRD schema with `crd-validation` (defaults,
//!   pruning, OpenAPI and CEL validation, 422 Invalid); unknown fields are refused (400) under
//!   `fieldValidation=Strict` (a patch's as 422 Invalid on the field `patch`, as upstream;
//!   server-side apply's error shape is not checked against upstream), reported in `Warning` headers under `Warn` (the default) and
//!   silently pruned under `Ignore`.
//! - Metadata-only gets, lists and watches (`Accept: ...;as=PartialObjectMetadata[List]`).
//! - `Table` responses from printer columns (CRD `additionalPrinterColumns` with simple
//!   JSONPaths, dates as ages), OpenAPI v3 documents that advertise server-side field
//!   validation, a JSON OpenAPI v2 document.
//! - Fault injection (see [`FaultHandle`]) in Rust and under `/_local/faults/`.
//! - A count of the requests served by verb and resource ([`LocalApiServer::requests`]), for
//!   tests that pin how much a client reads.
//!
//! # Limits (what a real apiserver does that this does not)
//! - Only the built-ins listed above exist: no pods, configmaps, services, deployments, RBAC
//!   (so no `kubectl get all`), and no controllers run besides the namespace cascade.
//! - No authentication, authorization, admission webhooks, TLS, HTTP/2 or CBOR. Protobuf
//!   request bodies are decoded for Secrets and Namespaces only (what imperative
//!   `kubectl create secret|namespace` sends); responses are always JSON.
//! - Field ownership is tracked per leaf field internally and not exposed: `managedFields`
//!   are dropped from objects. Lists are atomic for apply and strategic merge patch (no
//!   `x-kubernetes-list-type: map` / patch-merge-key merging): lists are replaced. Requests
//!   without `fieldManager` are attributed to manager `unknown` (upstream: the user agent).
//!   Apply does not build structured-merge-diff typed values, so a schema that upstream cannot
//!   type is applied here while a real apiserver answers 500: `x-kubernetes-list-type: set`
//!   with object items ("associative list without keys has an element that's a map type").
//!   The operator's CRDs have no such list any more, and its e2e suite server-side applies
//!   every example on the real apiserver, where this would fail.
//! - No garbage collector: ownerReferences and propagation policies are accepted but
//!   dependents are not deleted, and `Foreground`/`Orphan` deletes remove the object at once
//!   (upstream adds the `foregroundDeletion`/`orphan` finalizer for the garbage collector to
//!   clear; the operator deletes nothing with them). Namespaces have no `kubernetes`
//!   finalizer phase. Deleting a CRD removes its objects at once, even those with finalizers
//!   (upstream waits for them).
//! - No version conversion: all served versions of a CRD share objects (as with
//!   `strategy: None`). (`events.k8s.io/v1` Events are the exception: they are stored as
//!   core Events, so both APIs see the same events.)
//! - Lists are always served from the latest state (`resourceVersion`/`resourceVersionMatch`
//!   are not honoured for lists); continue tokens are not snapshot-consistent.
//! - Bookmarks are sent every 2s rather than ~1 min (upstream also sends one soon after a
//!   watch starts and shortly before its `timeoutSeconds`); clients take them anywhere.
//! - Built-in types are not schema-validated, with one exception the operator's Event
//!   bounds rely on: an events.k8s.io/v1 note over 1 KiB is refused with upstream's 422. (Other
//!   refusals upstream makes, e.g. an Event whose `regarding.namespace` differs from its own,
//!   are not made here: the operator's Event publisher is exercised on the real apiserver.)
//!   Table columns of built-ins are simplified.
//! - There is no etcd, but its request limit is kept: an object over 1.5 MiB (as JSON, without
//!   `managedFields`, so a little more than a real apiserver would let through) is refused with
//!   500 `etcdserver: request is too large`; between 2 and 3 MiB upstream's gRPC client answers
//!   first with other words (still a 500).
//! - No `/openapi/v2` protobuf (kubectl uses v3), no subresources other than `status` (no
//!   scale, no exec/logs), no `v2beta1` aggregated discovery (v2 only).

mod discovery;
mod events;
mod faults;
mod handlers;
mod kubeconfig;
mod lifecycle;
mod names;
mod openapi;
mod ownership;
mod patch;
mod protobuf;
mod registry;
mod requests;
mod selectors;
mod status;
mod store;
mod table;
mod validation;
mod watch;
mod writes;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::FaultHandle;
pub use requests::RequestLog;

/// How to start a [`LocalApiServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen; the default `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// How many change events are kept for watches to resume from; older resourceVersions
    /// get 410 Expired.
    pub history_limit: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            history_limit: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("invalid server url {0}")]
    Url(String),
    #[error("cannot build a kube client for the local server: {0}")]
    Client(#[from] kube::Error),
}

/// A running in-memory API server.
pub struct LocalApiServer {
    addr: SocketAddr,
    faults: FaultHandle,
    requests: RequestLog,
    client: kube::Client,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for LocalApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LocalApiServer {
    pub async fn start(opts: ServerOptions) -> Result<LocalApiServer, Error> {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: opts.listen,
            source,
        })?;
        let faults = FaultHandle::new();
        let requests = RequestLog::default();
        let app = handlers::App {
            store: Arc::new(store::Store::new(opts.history_limit)),
            faults: faults.clone(),
            requests: requests.clone(),
            address: addr.to_string(),
        };
        let router = faults::admin_routes(faults.clone()).merge(
            axum::Router::new()
                .fallback(handlers::handle)
                // The apiserver's request size limit (3 MiB) rather than axum's 2 MiB.
                .layer(axum::extract::DefaultBodyLimit::max(3 * 1024 * 1024))
                .with_state(app),
        );
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "kube-local server stopped");
            }
        });
        let url = format!("http://{addr}");
        let uri: axum::http::Uri = url.parse().map_err(|_| Error::Url(url.clone()))?;
        let client = kube::Client::try_from(kube::Config::new(uri))?;
        Ok(LocalApiServer {
            addr,
            faults,
            requests,
            client,
            shutdown,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::kubeconfig_yaml(&self.url())
    }

    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        kubeconfig::write_kubeconfig(&self.url(), path)
    }

    /// A kube client pointed at this server (default namespace `default`).
    pub async fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn faults(&self) -> FaultHandle {
        self.faults.clone()
    }

    /// Requests served so far, by verb and resource (see [`RequestLog`]).
    pub fn requests(&self) -> RequestLog {
        self.requests.clone()
    }

    /// Ends open watches, stops accepting requests and waits (up to 5s) for the server task.
    pub async fn shutdown(self) {
        self.faults.cut_watches();
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
