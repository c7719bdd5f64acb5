//! Watch streams: initial events, replay from a resourceVersion, 410 Gone, timeouts,
//! bookmarks, and kube-runtime watchers in both initial-list strategies.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube_local::ServerOptions;
use serde_json::json;

use crate::{Cluster, Widget, local_rv, rv_of, widget};

fn describe(e: &WatchEvent<Widget>) -> String {
    match e {
        WatchEvent::Added(w) => format!("ADDED {}", w.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Modified(w) => format!("MODIFIED {}", w.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Deleted(w) => format!("DELETED {}", w.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(s) => format!("ERROR {}", s.code),
    }
}

/// The next event other than a bookmark: an apiserver sends bookmarks when it likes (a real
/// one soon after a watch starts and before its timeout), and clients must take them anywhere.
async fn next(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Widget>>> + Unpin),
) -> String {
    describe(&next_event(stream).await)
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Widget>>> + Unpin),
) -> WatchEvent<Widget> {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("watch event within 5s")
            .expect("watch stream ok")
            .expect("watch stream still open");
        if !matches!(item, WatchEvent::Bookmark(_)) {
            return item;
        }
    }
}

#[tokio::test]
async fn watch_from_zero_sends_current_objects_then_changes() {
    let (c, api) = Cluster::with_widgets().await;
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut stream).await, "ADDED a");
    api.create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    assert_eq!(next(&mut stream).await, "ADDED b");
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 2}})),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut stream).await, "MODIFIED b");
    api.delete("b", &DeleteParams::default()).await.unwrap();
    assert_eq!(next(&mut stream).await, "DELETED b");
    c.shutdown().await;
}

#[tokio::test]
async fn watch_from_version_replays_history_and_filters() {
    let (c, api) = Cluster::with_widgets().await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut b = widget("b", 1);
    b.metadata.labels = Some([("pick".to_string(), "yes".to_string())].into());
    api.create(&PostParams::default(), &b).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let from = rv_of(&a);
    let mut all = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut all).await, "ADDED b");
    assert_eq!(next(&mut all).await, "DELETED a");

    let picked = WatchParams::default().labels("pick=yes");
    let mut some = api.watch(&picked, &from).await.unwrap().boxed();
    assert_eq!(next(&mut some).await, "ADDED b");

    // Objects that stop (start) matching the selector are DELETED (ADDED) for this watcher.
    let pp = PatchParams::default();
    let relabel = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"pick": v}}}));
    api.patch("b", &pp, &relabel("no")).await.unwrap();
    assert_eq!(next(&mut some).await, "DELETED b");
    api.patch("b", &pp, &relabel("yes")).await.unwrap();
    assert_eq!(next(&mut some).await, "ADDED b");
    c.shutdown().await;
}

/// kube-local-only: it needs kube-local's `history_limit`; a real apiserver answers 410 once
/// etcd has compacted the version away, which no test can provoke quickly.
#[tokio::test]
async fn too_old_resource_version_is_410_gone() {
    let (c, api) = Cluster::local_with(ServerOptions {
        history_limit: 3,
        ..ServerOptions::default()
    })
    .await
    .and_widgets()
    .await;
    let first = api
        .create(&PostParams::default(), &widget("w0", 1))
        .await
        .unwrap();
    for i in 1..6 {
        api.create(&PostParams::default(), &widget(&format!("w{i}"), 1))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&first))
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut stream).await, "ERROR 410");
    c.shutdown().await;
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream() {
    let (c, api) = Cluster::with_widgets().await;
    let started = std::time::Instant::now();
    let params = WatchParams::default().timeout(1);
    let stream = api.watch(&params, "0").await.unwrap();
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("stream ended by timeoutSeconds");
    // No object exists, so nothing but bookmarks.
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Ok(WatchEvent::Bookmark(_)))),
        "{events:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    c.shutdown().await;
}

/// kube-local-only: it sends bookmarks every 2s; a real apiserver about once a minute, too
/// slow for a test.
#[tokio::test]
async fn bookmarks_arrive() {
    let (c, api) = Cluster::local().await.and_widgets().await;
    let mut with_bookmarks = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), with_bookmarks.try_next())
        .await
        .expect("a bookmark within 5s")
        .unwrap()
        .expect("stream open");
    assert_eq!(describe(&first), "BOOKMARK");
    c.shutdown().await;
}

async fn watcher_sees_lifecycle(config: watcher::Config) {
    let (c, api) = Cluster::with_widgets().await;
    api.create(&PostParams::default(), &widget("before", 1))
        .await
        .unwrap();
    let mut events = watcher(api.clone(), config).boxed();
    let mut seen = Vec::new();
    let mut created_after = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("watcher event within 5s")
        else {
            panic!("watcher stream ended");
        };
        match event {
            watcher::Event::InitApply(w) => seen.push(format!("init {}", w.metadata.name.unwrap())),
            watcher::Event::InitDone => {
                seen.push("done".into());
                if !created_after {
                    created_after = true;
                    api.create(&PostParams::default(), &widget("after", 1))
                        .await
                        .unwrap();
                }
            }
            watcher::Event::Apply(w) => {
                seen.push(format!("apply {}", w.metadata.name.unwrap()));
                break;
            }
            watcher::Event::Delete(_) | watcher::Event::Init => {}
        }
    }
    assert_eq!(seen, ["init before", "done", "apply after"]);
    c.shutdown().await;
}

#[tokio::test]
async fn runtime_watcher_list_watch() {
    watcher_sees_lifecycle(watcher::Config::default()).await;
}

#[tokio::test]
async fn runtime_watcher_streaming_list() {
    watcher_sees_lifecycle(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_reach_a_watcher_in_resource_version_order() {
    let (c, api) = Cluster::with_widgets().await;
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                api.create(&PostParams::default(), &widget(&format!("w{i}"), 1))
                    .await
            })
        })
        .collect();
    let mut written = Vec::new();
    for w in writers {
        written.push(rv_of(&w.await.unwrap().unwrap()));
    }
    let mut versions = Vec::new();
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("event within 5s")
            .unwrap()
            .expect("stream open");
        if let WatchEvent::Added(w) = event {
            seen.push(rv_of(&w));
            if !c.is_real() {
                versions.push(local_rv(&w));
            }
        }
        if seen.len() == 20 {
            break;
        }
    }
    // Each write arrives once, with the version its create returned.
    written.sort();
    seen.sort();
    assert_eq!(seen, written);
    // Ordering is visible only in kube-local's numeric versions (real ones are opaque).
    assert!(versions.windows(2).all(|p| p[0] < p[1]), "{versions:?}");
    c.shutdown().await;
}

#[tokio::test]
async fn removing_the_last_finalizer_is_one_deleted_event() {
    let (c, api) = Cluster::with_widgets().await;
    let mut w = widget("a", 1);
    w.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&created))
        .await
        .unwrap()
        .boxed();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(next(&mut stream).await, "MODIFIED a");
    let response = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    // Upstream the write that empties the finalizers deletes instead of updating: one
    // DELETED event, carrying the object as last stored (finalizer still listed).
    let item = next_event(&mut stream).await;
    let WatchEvent::Deleted(gone) = item else {
        panic!("expected DELETED, got {}", describe(&item));
    };
    assert_eq!(
        gone.metadata.finalizers,
        Some(vec!["example.com/cleanup".to_string()])
    );
    assert!(gone.metadata.deletion_timestamp.is_some());
    // The write's response is the object as patched, finalizers gone.
    assert_eq!(response.metadata.finalizers, None);
    // Nothing else follows (a bookmark may).
    let after = tokio::time::timeout(Duration::from_millis(500), next_event(&mut stream)).await;
    assert!(after.is_err(), "{:?}", after.map(|e| describe(&e)));
    c.shutdown().await;
}

/// What the operator's Secret watch uses: metadata-only lists and watches.
#[tokio::test]
async fn metadata_only_lists_and_watches() {
    use k8s_openapi::api::core::v1::Secret;
    let c = Cluster::new().await;
    let secrets: Api<Secret> = c.api();
    let created = secrets
        .create(
            &PostParams::default(),
            &crate::semantics::secret("s", &[("k", "v")]),
        )
        .await
        .unwrap();
    let request = axum::http::Request::get(format!("/api/v1/namespaces/{}/secrets", c.ns))
        .header(
            "accept",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let raw: serde_json::Value = c.client.request(request).await.unwrap();
    assert_eq!(
        (&raw["kind"], &raw["apiVersion"]),
        (
            &json!("PartialObjectMetadataList"),
            &json!("meta.k8s.io/v1")
        )
    );
    let item = &raw["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["metadata"]["name"], "s");
    assert!(item.get("data").is_none(), "{item}");

    let listed = secrets.list_metadata(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let mut stream = secrets
        .watch_metadata(&WatchParams::default(), &rv_of(&created))
        .await
        .unwrap()
        .boxed();
    secrets.delete("s", &DeleteParams::default()).await.unwrap();
    let event = loop {
        let item = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("watch event within 5s")
            .unwrap()
            .expect("stream open");
        if !matches!(item, WatchEvent::Bookmark(_)) {
            break item;
        }
    };
    let WatchEvent::Deleted(gone) = event else {
        panic!("expected DELETED, got {event:?}");
    };
    assert_eq!(gone.metadata.name.as_deref(), Some("s"));
    c.shutdown().await;
}
