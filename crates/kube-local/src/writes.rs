//! Write verbs: create, update (PUT), patch (JSON, merge, strategic, apply), delete and
//! deletecollection, with schema admission, field validation and field ownership.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::events;
use crate::handlers::{App, ResourceRequest, present, select};
use crate::lifecycle::{self, meta_str};
use crate::ownership;
use crate::patch::{self, PatchKind};
use crate::registry::ResourceType;
use crate::status::{ApiError, ApiResult};
use crate::store::State;

/// What a request body is: an object (create, update, apply) or a patch of the stored one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Object,
    Patch,
}

fn admit(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    req: &ResourceRequest,
    body: Body,
) -> ApiResult<()> {
    if req.rt.stored_as_core_event {
        events::check_note(obj)?;
    }
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
        } else if body == Body::Patch {
            // Upstream decodes the patched object strictly and reports the failure against
            // the field `patch` of an unnamed object, quoting the whole patched object.
            let quoted = Value::String(obj.to_string()).to_string();
            return Err(ApiError::invalid(
                "",
                "",
                "",
                "patch",
                &format!(
                    "Invalid value: {quoted}: strict decoding error: {}",
                    unknown.join(", ")
                ),
            ));
        } else {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                rt.kind,
                rt.version,
                rt.kind,
                unknown.join(", ")
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

/// The field manager of a request (upstream derives a default from the user agent).
fn manager(req: &ResourceRequest) -> &str {
    match req.q("fieldManager") {
        "" => "unknown",
        m => m,
    }
}

fn subresource(req: &ResourceRequest) -> &str {
    req.subresource.as_deref().unwrap_or_default()
}

/// Gives the request's field manager ownership of what a committed write changed.
fn record_write(
    state: &mut State,
    rt: &ResourceType,
    stored: &Value,
    old: Option<&Value>,
    req: &ResourceRequest,
) {
    let key = rt.storage_key();
    let okey = (
        meta_str(stored, "namespace").to_string(),
        meta_str(stored, "name").to_string(),
    );
    if state.get(&key, &okey.0, &okey.1).is_none() {
        return;
    }
    let managers = state.managers(&key, &okey);
    let next = ownership::after_write(
        &managers,
        old,
        stored,
        manager(req),
        subresource(req),
        rt.status_subresource,
    );
    state.set_managers(&key, okey, next);
}

pub fn create(app: &App, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    if req.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "POST to a named object is not allowed",
        ));
    }
    let (srt, body) = storage_form(app, &req.rt, parse_object(body)?);
    let mut obj = lifecycle::prepare_create(&srt, body, &req.ns())?;
    admit(&srt, &mut obj, None, req, Body::Object)?;
    if dry_run(req) {
        return Ok(present(&req.rt, &obj));
    }
    let mut state = app.store.lock();
    let stored = lifecycle::commit_create(&mut state, &srt, obj)?;
    record_write(&mut state, &srt, &stored, None, req);
    Ok(present(&req.rt, &stored))
}

pub fn update(app: &App, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    let name = req.name()?;
    let (rt, body) = storage_form(app, &req.rt, parse_object(body)?);
    let rt = &rt;
    let mut state = app.store.lock();
    let old = state
        .get(&rt.storage_key(), &req.ns(), &name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, &name))?;
    let mut result = lifecycle::prepare_update(rt, body, &old, req.status_write(), true)?;
    admit(rt, &mut result, Some(&old), req, Body::Object)?;
    lifecycle::bump_generation(rt, &mut result, &old)?;
    if dry_run(req) {
        return Ok(present(&req.rt, &result));
    }
    let stored = lifecycle::commit_update(&mut state, rt, (req.ns(), name), result, &old)?;
    record_write(&mut state, rt, &stored, Some(&old), req);
    Ok(present(&req.rt, &stored))
}

pub fn patch(
    app: &App,
    req: &ResourceRequest,
    content_type: &str,
    body: &[u8],
) -> ApiResult<(StatusCode, Value)> {
    let name = req.name()?;
    let unsupported = || {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    };
    let kind = PatchKind::from_content_type(content_type).ok_or_else(unsupported)?;
    // A strategic merge patch needs the patch metadata of a compiled-in Go type: custom
    // resources have none, so upstream refuses it for them.
    if kind == PatchKind::Strategic && req.rt.crd_name.is_some() {
        return Err(unsupported());
    }
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
        admit(rt, &mut obj, None, req, Body::Object)?;
        if dry_run(req) {
            return Ok((StatusCode::CREATED, present(api_rt, &obj)));
        }
        let stored = lifecycle::commit_create(&mut state, rt, obj)?;
        record_write(&mut state, rt, &stored, None, req);
        return Ok((StatusCode::CREATED, present(api_rt, &stored)));
    };
    let okey = (req.ns(), name);
    // Apply merges with field ownership; the other kinds patch the object as served.
    let (patched, owners) = if kind == PatchKind::Apply {
        let apply = ownership::Apply {
            manager: manager(req),
            subresource: subresource(req),
            force: req.q("force") == "true",
            status_isolated: rt.status_subresource,
        };
        let managers = state.managers(&rt.storage_key(), &okey);
        let applied = to_storage(api_rt, patch_body);
        let (patched, next) = ownership::apply(&managers, &old, &applied, &apply)?;
        (patched, Some(next))
    } else {
        let patched = patch::apply_patch(kind, &present(api_rt, &old), &patch_body)?;
        (to_storage(api_rt, patched), None)
    };
    let mut result = lifecycle::prepare_update(rt, patched, &old, req.status_write(), false)?;
    let body = if kind == PatchKind::Apply {
        Body::Object
    } else {
        Body::Patch
    };
    admit(rt, &mut result, Some(&old), req, body)?;
    lifecycle::bump_generation(rt, &mut result, &old)?;
    if dry_run(req) {
        return Ok((StatusCode::OK, present(api_rt, &result)));
    }
    let stored = lifecycle::commit_update(&mut state, rt, okey.clone(), result, &old)?;
    match owners {
        Some(next) if state.get(&rt.storage_key(), &okey.0, &okey.1).is_some() => {
            state.set_managers(&rt.storage_key(), okey, next);
        }
        Some(_) => {}
        None => record_write(&mut state, rt, &stored, Some(&old), req),
    }
    Ok((StatusCode::OK, present(api_rt, &stored)))
}

pub fn delete(app: &App, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
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

pub fn delete_collection(app: &App, req: &ResourceRequest) -> ApiResult<Value> {
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
