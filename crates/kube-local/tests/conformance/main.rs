//! Conformance suite for kube-local: every behaviour is exercised over HTTP with a kube-rs
//! `Client` (and kubectl where the issue lists it).

mod controller;
mod crud;
mod discovery;
mod faults;
mod kubectl;
mod semantics;
mod validation;
mod watch;

use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::{Client, CustomResource, CustomResourceExt};
use kube_local::{LocalApiServer, ServerOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The toy CRD every test uses. (Clippy mistakes the repeated `printcolumn(type_ = ...)`
/// derive arguments for duplicated attributes.)
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    printcolumn(name = "Sid", type_ = "string", json_path = ".status.sid"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    validation = "self.spec.size <= 100"
)]
pub struct WidgetSpec {
    #[schemars(range(min = 0))]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

pub async fn start() -> LocalApiServer {
    start_with(ServerOptions::default()).await
}

pub async fn start_with(opts: ServerOptions) -> LocalApiServer {
    // RUST_LOG=kube=debug,kube_local=debug shows both sides of the conversation.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match LocalApiServer::start(opts).await {
        Ok(s) => s,
        Err(e) => panic!("kube-local failed to start: {e}"),
    }
}

/// Creates the Widget CRD through the API, as `kubectl apply` would on a real cluster.
pub async fn install_crd(client: &Client) {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .expect("creating the Widget CRD");
}

pub fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, color: None })
}

/// A started server with the Widget CRD installed, plus a client and the default-namespace Api.
pub async fn with_widgets() -> (LocalApiServer, Client, Api<Widget>) {
    let server = start().await;
    let client = server.client().await;
    install_crd(&client).await;
    let api = Api::namespaced(client.clone(), "default");
    (server, client, api)
}

pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API Status error, got {other:?}"),
    }
}

pub fn rv_of<K: kube::Resource>(obj: &K) -> u64 {
    obj.meta()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("numeric resourceVersion")
}

/// Polls `check` until it returns true or 10 seconds pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}
