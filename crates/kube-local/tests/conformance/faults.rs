//! Fault injection: failing requests, cutting watches, latency; Rust API and admin HTTP routes.
//! kube-local-only (a real apiserver has none of it): every test starts its own kube-local.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{PostParams, WatchParams};

use crate::{Cluster, Widget, api_error, widget};

#[tokio::test]
async fn fail_next_fails_exactly_n_matching_requests() {
    let (c, api) = Cluster::local().await.and_widgets().await;
    let server = c.server();
    server.faults().fail_next("create", "widgets", 2, 409);
    for _ in 0..2 {
        let e = api
            .create(&PostParams::default(), &widget("a", 1))
            .await
            .unwrap_err();
        assert_eq!(api_error(e).code, 409);
    }
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();

    server.faults().fail_next("get", "widgets", 1, 500);
    assert_eq!(api_error(api.get("a").await.unwrap_err()).code, 500);
    api.get("a").await.unwrap();
    c.shutdown().await;
}

#[tokio::test]
async fn cut_watches_ends_open_streams() {
    let (c, api) = Cluster::local().await.and_widgets().await;
    let server = c.server();
    let stream = api.watch(&WatchParams::default(), "0").await.unwrap();
    let collected = tokio::spawn(async move { stream.collect::<Vec<_>>().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.faults().cut_watches();
    let events = tokio::time::timeout(Duration::from_secs(5), collected)
        .await
        .expect("watch ended after cut")
        .unwrap();
    assert!(events.is_empty());
    c.shutdown().await;
}

#[tokio::test]
async fn latency_and_admin_routes() {
    let (c, api) = Cluster::local().await.and_widgets().await;
    let (server, client) = (c.server(), c.client.clone());
    server.faults().set_latency(Duration::from_millis(300));
    let t = Instant::now();
    api.list(&Default::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    server.faults().clear();

    let post = |path: &str, body: &str| {
        axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    client
        .request_text(post(
            "/_local/faults/fail-next",
            r#"{"verb":"list","resource":"widgets","count":1,"status":500}"#,
        ))
        .await
        .unwrap();
    let err = api.list(&Default::default()).await.unwrap_err();
    assert_eq!(api_error(err).code, 500);
    let ok: kube::core::ObjectList<Widget> = api.list(&Default::default()).await.unwrap();
    assert!(ok.items.is_empty());

    client
        .request_text(post("/_local/faults/latency", r#"{"millis":200}"#))
        .await
        .unwrap();
    let t = Instant::now();
    api.get_opt("x").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    c.shutdown().await;
}
