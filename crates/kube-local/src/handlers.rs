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
use crate::lifecycle::{self, meta_str};
use crate::patch::{self, PatchKind};
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, json_response};
use crate::store::Store;
use crate::{discovery, events, openapi, protobuf, table, watch};

#[derive(Clone)]
pub struct App {
    pub store: Arc<Store>,
    pub faults: FaultHandle,
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
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    pub warnings: RefCell<Vec<String>>,
}

impl ResourceRequest {
    fn ns(&self) -> String {
        self.namespace.clone().unwrap_or_default()
    }

    fn name(&self) -> ApiResult<String> {
        self.name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("a resource name is required"))
    }

    fn q(&self, key: &str) -> &str {
        self.query.get(key).map(String::as_str).unwrap_or_default()
    }

    fn status_write(&self) -> bool {
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
        "create" => create(app, &req, body).map(|v| (StatusCode::CREATED, v)),
        "update" => update(app, &req, body).map(|v| (StatusCode::OK, v)),
        "patch" => patch(app, &req, content_type, body),
        "delete" => delete(app, &req, body).map(|v| (StatusCode::OK, v)),
        _ => delete_collection(app, &req).map(|v| (StatusCode::OK, v)),
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
        warnings: RefCell::new(Vec::new()),
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

fn admit(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    req: &ResourceRequest,
) -> ApiResult<()> {
    let Some(schema) = &rt.schema else {
        return Ok(());
    };
    let unknown: Vec<String> = match req.q("fieldValidation") {
        "Ignore" => Vec::new(),
        _ => schema
            .unknown_fields(obj)
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect(),
    };
    if !unknown.is_empty() {
        // Strict refuses; Warn (the default) answers with one Warning header per field.
        if req.q("fieldValidation") != "Strict" {
            req.warnings.borrow_mut().extend(unknown);
        } else {
            let list = unknown;
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                rt.kind,
                rt.version,
                rt.kind,
                list.join(", ")
            )));
        }
    }
    let name = meta_str(obj, "name").to_string();
    schema
        .admit(obj, old, &rt.kind, &rt.group, &name)
        .map_err(ApiError::from_status)
}

fn parse_object(body: &[u8]) -> ApiResult<Value> {
    patch::parse_body(body, true)
}

/// The type whose rules apply to stored objects, and a request object in its stored form
/// (they differ only for events.k8s.io Events, which are stored as core Events).
fn storage_form(app: &App, rt: &Arc<ResourceType>, obj: Value) -> (Arc<ResourceType>, Value) {
    (storage_type(app, rt), to_storage(rt, obj))
}

/// Locks the store briefly: call before taking the lock for the write itself.
fn storage_type(app: &App, rt: &Arc<ResourceType>) -> Arc<ResourceType> {
    if !rt.stored_as_core_event {
        return rt.clone();
    }
    app.store
        .lock()
        .find_type("", "v1", "events")
        .unwrap_or_else(|| rt.clone())
}

fn to_storage(rt: &ResourceType, obj: Value) -> Value {
    if rt.stored_as_core_event {
        events::to_core(&obj)
    } else {
        obj
    }
}

fn dry_run(req: &ResourceRequest) -> bool {
    req.q("dryRun") == "All"
}

fn create(app: &App, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    if req.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "POST to a named object is not allowed",
        ));
    }
    let (srt, body) = storage_form(app, &req.rt, parse_object(body)?);
    let mut obj = lifecycle::prepare_create(&srt, body, &req.ns())?;
    admit(&srt, &mut obj, None, req)?;
    if dry_run(req) {
        return Ok(present(&req.rt, &obj));
    }
    let mut state = app.store.lock();
    let stored = lifecycle::commit_create(&mut state, &srt, obj)?;
    Ok(present(&req.rt, &stored))
}

fn update(app: &App, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    let name = req.name()?;
    let (rt, body) = storage_form(app, &req.rt, parse_object(body)?);
    let rt = &rt;
    let mut state = app.store.lock();
    let old = state
        .get(&rt.storage_key(), &req.ns(), &name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, &name))?;
    let mut result = lifecycle::prepare_update(rt, body, &old, req.status_write(), true)?;
    admit(rt, &mut result, Some(&old), req)?;
    lifecycle::bump_generation(rt, &mut result, &old)?;
    if dry_run(req) {
        return Ok(present(&req.rt, &result));
    }
    let stored = lifecycle::commit_update(&mut state, rt, (req.ns(), name), result, &old)?;
    Ok(present(&req.rt, &stored))
}

fn patch(
    app: &App,
    req: &ResourceRequest,
    content_type: &str,
    body: &[u8],
) -> ApiResult<(StatusCode, Value)> {
    let name = req.name()?;
    let kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"),
        )
    })?;
    if kind == PatchKind::Apply && req.q("fieldManager").is_empty() {
        return Err(ApiError::bad_request(
            "PATCH, fieldManager: Required value: is required for apply patch",
        ));
    }
    let patch_body = patch::parse_body(body, kind == PatchKind::Apply)?;
    let api_rt = &req.rt;
    let rt = &storage_type(app, api_rt);
    let mut state = app.store.lock();
    let Some(old) = state.get(&rt.storage_key(), &req.ns(), &name).cloned() else {
        if kind != PatchKind::Apply || req.status_write() {
            return Err(ApiError::not_found(&api_rt.group, &api_rt.plural, &name));
        }
        // Server-side apply creates missing objects.
        if meta_str(&patch_body, "name") != name {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let mut obj = lifecycle::prepare_create(rt, to_storage(api_rt, patch_body), &req.ns())?;
        admit(rt, &mut obj, None, req)?;
        if dry_run(req) {
            return Ok((StatusCode::CREATED, present(api_rt, &obj)));
        }
        let stored = lifecycle::commit_create(&mut state, rt, obj)?;
        return Ok((StatusCode::CREATED, present(api_rt, &stored)));
    };
    let patched = patch::apply_patch(kind, &present(api_rt, &old), &patch_body)?;
    let patched = to_storage(api_rt, patched);
    let mut result = lifecycle::prepare_update(rt, patched, &old, req.status_write(), false)?;
    admit(rt, &mut result, Some(&old), req)?;
    lifecycle::bump_generation(rt, &mut result, &old)?;
    if dry_run(req) {
        return Ok((StatusCode::OK, present(api_rt, &result)));
    }
    let stored = lifecycle::commit_update(&mut state, rt, (req.ns(), name), result, &old)?;
    Ok((StatusCode::OK, present(api_rt, &stored)))
}

fn delete(app: &App, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    let name = req.name()?;
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        patch::parse_body(body, false)?
    };
    if let Some(policy) = options.get("propagationPolicy").and_then(Value::as_str)
        && !matches!(policy, "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{policy}\""
        )));
    }
    if dry_run(req) {
        let state = app.store.lock();
        return state
            .get(&req.rt.storage_key(), &req.ns(), &name)
            .map(|o| present(&req.rt, o))
            .ok_or_else(|| ApiError::not_found(&req.rt.group, &req.rt.plural, &name));
    }
    let mut state = app.store.lock();
    let obj = lifecycle::delete(&mut state, &req.rt, (req.ns(), name), &options)?;
    Ok(present(&req.rt, &obj))
}

fn delete_collection(app: &App, req: &ResourceRequest) -> ApiResult<Value> {
    let mut state = app.store.lock();
    let victims = select(&state, req)?;
    let mut items = Vec::new();
    for obj in victims {
        let okey = (
            meta_str(&obj, "namespace").to_string(),
            meta_str(&obj, "name").to_string(),
        );
        if let Ok(deleted) = lifecycle::delete(&mut state, &req.rt, okey, &Value::Null) {
            items.push(present(&req.rt, &deleted));
        }
    }
    Ok(json!({
        "kind": format!("{}List", req.rt.kind),
        "apiVersion": req.rt.api_version(),
        "metadata": {"resourceVersion": state.rv.to_string()},
        "items": items,
    }))
}
