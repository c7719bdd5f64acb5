//! HTTP entry point: parses Kubernetes API paths, applies injected faults, and dispatches to
//! discovery, OpenAPI, CRUD (get/list/create/update/patch/delete/deletecollection) and watch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::faults::FaultHandle;
use crate::lifecycle::meta_str;
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, json_response};
use crate::store::Store;
use crate::{discovery, events, openapi, protobuf, table, watch, writes};

#[derive(Clone)]
pub struct App {
    pub store: Arc<Store>,
    pub faults: FaultHandle,
    /// Requests served, by verb and resource.
    pub requests: crate::requests::RequestLog,
    /// `host:port` the server is reachable at (for discovery's serverAddressByClientCIDRs).
    pub address: String,
}

/// A request for a resource collection or object.
pub struct ResourceRequest {
    pub rt: Arc<ResourceType>,
    /// Namespace from the path; `None` for cluster-scoped paths and all-namespace lists.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub query: HashMap<String, String>,
    pub wants_table: bool,
    /// `Accept: ...;as=PartialObjectMetadata[List]`: metadata-only objects (what kube-rs'
    /// `metadata_watcher` and `list_metadata` ask for).
    pub wants_metadata: bool,
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    pub warnings: RefCell<Vec<String>>,
}

impl ResourceRequest {
    pub fn ns(&self) -> String {
        self.namespace.clone().unwrap_or_default()
    }

    pub fn name(&self) -> ApiResult<String> {
        self.name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("a resource name is required"))
    }

    pub fn q(&self, key: &str) -> &str {
        self.query.get(key).map(String::as_str).unwrap_or_default()
    }

    pub fn status_write(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }
}

pub async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = uri.path().to_string();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    tracing::debug!(%method, %path, "request");
    match segs.as_slice() {
        ["version"] => json_ok(&discovery::version()),
        ["healthz" | "readyz" | "livez"] => (StatusCode::OK, "ok").into_response(),
        ["openapi", "v2"] => openapi::v2(&app.store.lock()),
        ["openapi", "v3"] => json_ok(&openapi::v3_root(&app.store.lock())),
        ["openapi", "v3", rest @ ..] => openapi::v3_group_version(&app.store.lock(), rest),
        ["api"] | ["apis"] if discovery::wants_aggregated(&accept) => {
            let body = discovery::aggregated(&app.store.lock(), segs == ["api"]);
            let mut resp = json_ok(&body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
            );
            resp
        }
        ["api"] => json_ok(&discovery::core_versions(&app.address)),
        ["apis"] => json_ok(&discovery::group_list(&app.store.lock())),
        ["apis", group] => match discovery::group(&app.store.lock(), group) {
            Some(g) => json_ok(&g),
            None => ApiError::not_found("", "", group).into_response(),
        },
        ["api", "v1"] => json_ok(&discovery::resource_list(&app.store.lock(), "", "v1")),
        ["apis", group, version] => {
            let list = discovery::resource_list(&app.store.lock(), group, version);
            if list["resources"].as_array().is_some_and(|r| r.is_empty()) {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
                .into_response()
            } else {
                json_ok(&list)
            }
        }
        ["api", "v1", rest @ ..] => {
            resource(
                &app,
                "",
                "v1",
                rest,
                &method,
                query,
                &accept,
                &content_type,
                &body,
            )
            .await
        }
        ["apis", group, version, rest @ ..] => {
            let (g, v) = (group.to_string(), version.to_string());
            resource(
                &app,
                &g,
                &v,
                rest,
                &method,
                query,
                &accept,
                &content_type,
                &body,
            )
            .await
        }
        _ => ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .into_response(),
    }
}

fn json_ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    app: &App,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    query: HashMap<String, String>,
    accept: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    let req = match parse_resource_path(app, group, version, rest, query, accept) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let verb = match (method.as_str(), req.name.is_some()) {
        ("GET", false) if matches!(req.q("watch"), "true" | "1") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return ApiError::method_not_allowed("method not allowed").into_response(),
    };
    let fault_resource = match &req.subresource {
        Some(s) => format!("{}/{s}", req.rt.plural),
        None => req.rt.plural.clone(),
    };
    app.requests.record(verb, &fault_resource);
    if let Some(code) = app.faults.take_failure(verb, &fault_resource) {
        return ApiError::for_code(code, format!("injected fault for {verb} {fault_resource}"))
            .into_response();
    }
    if verb == "watch" {
        return watch::watch(app, &req);
    }
    let decoded;
    let body = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        match protobuf::decode(body) {
            Ok(obj) => {
                decoded = obj.to_string().into_bytes();
                decoded.as_slice()
            }
            Err(e) => {
                return ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("{e}; kube-local otherwise accepts JSON/YAML bodies (use `kubectl apply -f`)"),
                )
                .into_response();
            }
        }
    } else {
        body
    };
    let result = match verb {
        "list" => list(app, &req),
        "get" => get(app, &req),
        "create" => writes::create(app, &req, body).map(|v| (StatusCode::CREATED, v)),
        "update" => writes::update(app, &req, body).map(|v| (StatusCode::OK, v)),
        "patch" => writes::patch(app, &req, content_type, body),
        "delete" => writes::delete(app, &req, body).map(|v| (StatusCode::OK, v)),
        _ => writes::delete_collection(app, &req).map(|v| (StatusCode::OK, v)),
    };
    let mut resp = match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => e.into_response(),
    };
    for warning in req.warnings.borrow().iter() {
        // RFC 7234 warn-code 299 with the text quoted, as the apiserver sends it.
        let text = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = header::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn parse_resource_path(
    app: &App,
    group: &str,
    version: &str,
    rest: &[&str],
    query: HashMap<String, String>,
    accept: &str,
) -> ApiResult<ResourceRequest> {
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let state = app.store.lock();
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && state
            .find_type(group, version, rest[2])
            .is_some_and(|t| t.namespaced);
    let (namespace, rest) = if namespaced {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(not_found()),
    };
    let rt = state
        .find_type(group, version, plural)
        .ok_or_else(not_found)?;
    if rt.namespaced && namespace.is_none() && name.is_some() {
        return Err(not_found());
    }
    if let Some(s) = &sub
        && (s != "status" || !rt.status_subresource)
    {
        return Err(not_found());
    }
    Ok(ResourceRequest {
        rt,
        namespace,
        name,
        subresource: sub,
        query,
        wants_table: table::wants_table(accept),
        wants_metadata: wants_metadata(accept),
        warnings: RefCell::new(Vec::new()),
    })
}

fn wants_metadata(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
}

/// `obj` as a `meta.k8s.io/v1 PartialObjectMetadata`: its metadata only.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The object as served at the requested version (no conversion: versions share a schema).
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = if rt.stored_as_core_event {
        events::from_core(obj)
    } else {
        obj.clone()
    };
    if o.is_object() {
        o["apiVersion"] = json!(rt.api_version());
        o["kind"] = json!(rt.kind);
    }
    o
}

fn get(app: &App, req: &ResourceRequest) -> ApiResult<(StatusCode, Value)> {
    let name = req.name()?;
    let state = app.store.lock();
    let obj = state
        .get(&req.rt.storage_key(), &req.ns(), &name)
        .ok_or_else(|| ApiError::not_found(&req.rt.group, &req.rt.plural, &name))?;
    let obj = present(&req.rt, obj);
    if req.wants_metadata {
        return Ok((StatusCode::OK, partial(&obj)));
    }
    if req.wants_table {
        return Ok((
            StatusCode::OK,
            table::table(&req.rt, &[obj], &state.rv.to_string(), req),
        ));
    }
    Ok((StatusCode::OK, obj))
}

/// Selected objects of a collection request, presented at the requested version.
pub fn select(state: &crate::store::State, req: &ResourceRequest) -> ApiResult<Vec<Value>> {
    let labels = LabelSelector::parse(req.q("labelSelector"))?;
    let fields = FieldSelector::parse(req.q("fieldSelector"))?;
    Ok(state
        .list(&req.rt.storage_key(), req.namespace.as_deref())
        .map(|(_, o)| present(&req.rt, o))
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect())
}

fn list(app: &App, req: &ResourceRequest) -> ApiResult<(StatusCode, Value)> {
    let state = app.store.lock();
    let mut items = select(&state, req)?;
    let rv = state.rv.to_string();
    drop(state);
    // Pagination: the continue token is the (namespace, name) of the last item returned.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if !req.q("continue").is_empty() {
        let after: (String, String) = b64
            .decode(req.q("continue"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
        items.retain(|o| {
            (
                meta_str(o, "namespace").to_string(),
                meta_str(o, "name").to_string(),
            ) > after
        });
    }
    let mut metadata = json!({"resourceVersion": rv});
    let limit: usize = req.q("limit").parse().unwrap_or(0);
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            let token = json!([meta_str(last, "namespace"), meta_str(last, "name")]);
            metadata["continue"] = json!(b64.encode(token.to_string()));
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    if req.wants_table {
        let mut t = table::table(&req.rt, &items, &rv, req);
        t["metadata"] = metadata;
        return Ok((StatusCode::OK, t));
    }
    if req.wants_metadata {
        let items: Vec<Value> = items.iter().map(partial).collect();
        return Ok((
            StatusCode::OK,
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items,
            }),
        ));
    }
    Ok((
        StatusCode::OK,
        json!({
            "kind": format!("{}List", req.rt.kind),
            "apiVersion": req.rt.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    ))
}
