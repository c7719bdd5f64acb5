//! A kube-runtime Controller with the finalizer helper converging on the toy CRD, including
//! after an injected failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::{Cluster, Condition, Widget, WidgetStatus, eventually, widget};

const FINALIZER: &str = "example.com/cleanup";

struct Ctx {
    client: Client,
    cleanups: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<kube::Error>>),
}

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let ns = w.namespace().unwrap_or_default();
    let api: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, w, |event| async {
        match event {
            Event::Apply(w) => {
                let status = WidgetStatus {
                    sid: Some(format!("SID-{}", w.name_any())),
                    conditions: vec![Condition {
                        type_: "Ready".into(),
                        status: "True".into(),
                    }],
                };
                api.patch_status(
                    &w.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
                Ok(Action::await_change())
            }
            Event::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
}

fn error_policy(_w: Arc<Widget>, _e: &ReconcileError, _ctx: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

fn is_ready(w: &Widget) -> bool {
    w.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

#[tokio::test]
async fn controller_with_finalizer_converges() {
    converges(Cluster::with_widgets().await, false).await;
}

/// kube-local-only: injected faults are a kube-local extra.
#[tokio::test]
async fn controller_with_finalizer_converges_through_faults() {
    converges(Cluster::local().await.and_widgets().await, true).await;
}

/// Runs the controller on `api` until widgets converge and one is cleaned up; with `faults`,
/// the first status write fails and watches are cut midway, which it must survive.
async fn converges((c, api): (Cluster, Api<Widget>), faults: bool) {
    let client = c.client.clone();
    if faults {
        c.server()
            .faults()
            .fail_next("patch", "widgets/status", 1, 500);
    }
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleanups: AtomicUsize::new(0),
    });
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    eventually("widget a ready with finalizer", || {
        let api = api.clone();
        async move {
            api.get("a")
                .await
                .is_ok_and(|w| is_ready(&w) && w.finalizers().iter().any(|f| f == FINALIZER))
        }
    })
    .await;
    let ready = api.get("a").await.unwrap();
    assert_eq!(ready.status.unwrap().sid.as_deref(), Some("SID-a"));

    // Cutting watches must not stop convergence: the controller re-watches.
    if faults {
        c.server().faults().cut_watches();
    }
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    eventually("widget b ready", || {
        let api = api.clone();
        async move { api.get("b").await.is_ok_and(|w| is_ready(&w)) }
    })
    .await;

    api.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("widget a removed after cleanup", || {
        let api = api.clone();
        async move { api.get_opt("a").await.is_ok_and(|w| w.is_none()) }
    })
    .await;
    assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1);
    running.abort();
    c.shutdown().await;
}
