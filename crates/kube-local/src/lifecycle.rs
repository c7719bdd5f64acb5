//! Object lifecycle rules the apiserver enforces on writes: metadata defaults (uid,
//! creationTimestamp, generateName), `generation`, status-subresource isolation, optimistic
//! concurrency, finalizers and graceful deletion, namespaces, `Secret.stringData`, and
//! registration of CRDs as new resource types.

use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::names;
use crate::registry::{self, ResourceType};
use crate::status::{ApiError, ApiResult};
use crate::store::{EventType, ObjectKey, State, StorageKey};

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn new_uid() -> String {
    let mut rng = rand::rng();
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 5-character suffix the apiserver appends to `generateName` (no vowels, as upstream).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata` of an object, created if absent; an error when it is not a JSON object.
fn meta_mut(obj: &mut Value) -> ApiResult<&mut Map<String, Value>> {
    let bad = || ApiError::bad_request("the object and its metadata must be JSON objects");
    let meta = obj
        .as_object_mut()
        .ok_or_else(bad)?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut().ok_or_else(bad)
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Checks `apiVersion`/`kind` of a request body against the resource and fills them in.
fn check_type(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !kind.is_empty() && kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind of the provided object ({kind}) does not match the resource ({})",
            rt.kind
        )));
    }
    obj["kind"] = json!(rt.kind);
    obj["apiVersion"] = json!(rt.api_version());
    Ok(())
}

/// Applies what the apiserver does on create; `ns` is the namespace from the URL.
pub fn prepare_create(rt: &ResourceType, mut obj: Value, ns: &str) -> ApiResult<Value> {
    check_type(rt, &mut obj)?;
    let body_ns = meta_str(&obj, "namespace").to_string();
    let meta = meta_mut(&mut obj)?;
    if rt.namespaced {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta.insert("namespace".into(), json!(ns));
    } else {
        meta.remove("namespace");
    }
    let has_name = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_name {
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
        meta.insert("name".into(), json!(format!("{prefix}{}", random_suffix())));
    }
    for drop in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(drop);
    }
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now()));
    if rt.tracks_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if rt.status_subresource
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    type_specific_defaults(rt, &mut obj)?;
    check_names(rt, &obj)?;
    Ok(obj)
}

fn check_names(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
    names::check(obj, is_namespace).map_err(|(field, message)| {
        ApiError::invalid(&rt.kind, &rt.group, meta_str(obj, "name"), &field, &message)
    })
}

fn type_specific_defaults(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "secrets") => fold_string_data(obj),
        ("", "namespaces") => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            if !is_deleting(obj) {
                obj["status"] = json!({"phase": "Active"});
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `stringData` is write-only: its entries are base64-encoded into `data` (winning on clash).
fn fold_string_data(obj: &mut Value) -> ApiResult<()> {
    if obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        obj["type"] = json!("Opaque");
    }
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    let Some(string_data) = map.remove("stringData") else {
        return Ok(());
    };
    let Value::Object(entries) = string_data else {
        return Err(ApiError::bad_request("stringData must be a map of strings"));
    };
    if !map.get("data").is_some_and(Value::is_object) {
        map.insert("data".into(), json!({}));
    }
    if let Some(data) = map.get_mut("data").and_then(Value::as_object_mut) {
        for (k, v) in entries {
            let s = v
                .as_str()
                .ok_or_else(|| ApiError::bad_request(format!("stringData.{k} must be a string")))?;
            let enc = base64::engine::general_purpose::STANDARD.encode(s);
            data.insert(k, json!(enc));
        }
    }
    Ok(())
}

/// The parts of an object whose change bumps `generation`.
fn spec_view(rt: &ResourceType, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if rt.status_subresource {
            m.remove("status");
        }
    }
    v
}

/// Applies update rules: `new` is the requested object, `old` the stored one; `status_write`
/// marks writes through the `/status` subresource. Optimistic concurrency is checked when the
/// request carries a resourceVersion.
pub fn prepare_update(
    rt: &ResourceType,
    mut new: Value,
    old: &Value,
    status_write: bool,
    require_rv: bool,
) -> ApiResult<Value> {
    check_type(rt, &mut new)?;
    let name = meta_str(old, "name").to_string();
    let sent_rv = meta_str(&new, "resourceVersion").to_string();
    if sent_rv.is_empty() {
        if require_rv && rt.tracks_generation {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                &name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
    } else if sent_rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::conflict(&rt.group, &rt.plural, &name));
    }
    let sent_name = meta_str(&new, "name");
    if !sent_name.is_empty() && sent_name != name {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let mut result = if status_write {
        // Only .status is taken from a status write.
        let mut r = old.clone();
        match new.get("status") {
            Some(s) => r["status"] = s.clone(),
            None => {
                if let Some(m) = r.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        r
    } else {
        let mut r = new;
        if rt.status_subresource {
            match old.get("status") {
                Some(s) => r["status"] = s.clone(),
                None => {
                    if let Some(m) = r.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        r
    };
    {
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let meta = meta_mut(&mut result)?;
        for keep in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(keep) {
                Some(v) => meta.insert(keep.into(), v.clone()),
                None => meta.remove(keep),
            };
        }
        meta.remove("managedFields");
        meta.remove("selfLink");
    }
    if is_deleting(old) {
        let before = finalizers(old);
        if let Some(added) = finalizers(&result).iter().find(|f| !before.contains(f)) {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                &name,
                "metadata.finalizers",
                &format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [\"{added}\"]"
                ),
            ));
        }
    }
    if !status_write {
        type_specific_defaults(rt, &mut result)?;
        check_names(rt, &result)?;
    }
    Ok(result)
}

/// Bumps `generation` when the (admitted, so defaulted and pruned) object's spec changed.
pub fn bump_generation(rt: &ResourceType, result: &mut Value, old: &Value) -> ApiResult<()> {
    if rt.tracks_generation && spec_view(rt, result) != spec_view(rt, old) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(result)?.insert("generation".into(), json!(generation + 1));
    }
    Ok(())
}

/// Stores an update unless it changes nothing (as the apiserver does: no new resourceVersion,
/// no watch event); removes the object when a deleting object loses its last finalizer.
pub fn commit_update(
    state: &mut State,
    rt: &ResourceType,
    okey: ObjectKey,
    result: Value,
    old: &Value,
) -> ApiResult<Value> {
    if &result == old {
        return Ok(result);
    }
    let key = rt.storage_key();
    if is_deleting(&result) && finalizers(&result).is_empty() {
        // Upstream deletes instead of updating: one DELETED event, carrying the object as
        // last stored (finalizers included); the response is the patched object.
        if let Some(removed) = state.remove(&key, &okey) {
            after_remove(state, rt, &removed);
        }
        return Ok(result);
    }
    // A CRD whose new version cannot be served is refused before anything is stored.
    let types = if is_crd(rt) {
        Some(crd_types(&result)?)
    } else {
        None
    };
    check_size(&result)?;
    let stored = state.put(&key, okey, result, EventType::Modified);
    if let Some(types) = types {
        install_types(state, &stored, types);
    }
    Ok(stored)
}

/// etcd's default `--max-request-bytes`: the apiserver stores each object as one etcd value.
pub const ETCD_REQUEST_LIMIT: usize = 1536 * 1024;

/// Refuses an object etcd would refuse, with the apiserver's answer (500, etcd's words). The
/// size is that of the JSON kept here, without `managedFields`: a little under what a real
/// apiserver sends to etcd.
fn check_size(obj: &Value) -> ApiResult<()> {
    let size = serde_json::to_vec(obj).map(|b| b.len()).unwrap_or_default();
    if size <= ETCD_REQUEST_LIMIT {
        return Ok(());
    }
    Err(ApiError::for_code(500, "etcdserver: request is too large"))
}

/// Stores a new object (after checking namespace and name clashes) and runs CRD registration.
pub fn commit_create(state: &mut State, rt: &ResourceType, obj: Value) -> ApiResult<Value> {
    let ns = meta_str(&obj, "namespace").to_string();
    let name = meta_str(&obj, "name").to_string();
    if rt.namespaced {
        let ns_key: StorageKey = ("".into(), "namespaces".into());
        match state.get(&ns_key, "", &ns) {
            None => return Err(ApiError::not_found("", "namespaces", &ns)),
            Some(n) if is_deleting(n) => {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.plural
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let key = rt.storage_key();
    if state.get(&key, &ns, &name).is_some() {
        return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
    }
    let mut obj = obj;
    if is_crd(rt) {
        registry::check_crd(&obj)
            .map_err(|m| ApiError::invalid(&rt.kind, &rt.group, &name, "spec", &m))?;
        obj["status"] = registry::established_status(&obj, &now());
    }
    let types = if is_crd(rt) {
        Some(crd_types(&obj)?)
    } else {
        None
    };
    check_size(&obj)?;
    let stored = state.put(&key, (ns, name), obj, EventType::Added);
    if let Some(types) = types {
        install_types(state, &stored, types);
    }
    Ok(stored)
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

/// The resource types a CRD defines (its schemas compiled), or 422 if it cannot be served.
fn crd_types(crd: &Value) -> ApiResult<Vec<Arc<ResourceType>>> {
    registry::types_from_crd(crd).map_err(|m| {
        ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            meta_str(crd, "name"),
            "spec",
            &m,
        )
    })
}

/// Replaces the types served for this CRD.
fn install_types(state: &mut State, crd: &Value, types: Vec<Arc<ResourceType>>) {
    let name = meta_str(crd, "name");
    state.types.retain(|t| t.crd_name.as_deref() != Some(name));
    state.types.extend(types);
}

/// Cleanup after an object is gone: CRD removal drops its resource; the last object of a
/// terminating namespace completes that namespace's deletion.
fn after_remove(state: &mut State, rt: &ResourceType, removed: &Value) {
    if is_crd(rt) {
        let name = meta_str(removed, "name").to_string();
        let keys: Vec<StorageKey> = state
            .types
            .iter()
            .filter(|t| t.crd_name.as_deref() == Some(name.as_str()))
            .map(|t| t.storage_key())
            .collect();
        state
            .types
            .retain(|t| t.crd_name.as_deref() != Some(name.as_str()));
        for key in keys {
            state.drop_resource(&key);
        }
    }
    let ns = meta_str(removed, "namespace").to_string();
    if !ns.is_empty() && state.namespace_is_empty(&ns) {
        let ns_key: StorageKey = ("".into(), "namespaces".into());
        let finishing = state.get(&ns_key, "", &ns).is_some_and(is_deleting);
        if finishing {
            state.remove(&ns_key, &("".into(), ns));
        }
    }
}

/// DELETE: honours preconditions, marks objects with finalizers as deleting (keeping them),
/// removes the rest, and cascades namespace deletion to the namespace's content.
pub fn delete(
    state: &mut State,
    rt: &ResourceType,
    okey: ObjectKey,
    options: &Value,
) -> ApiResult<Value> {
    let key = rt.storage_key();
    let Some(old) = state.get(&key, &okey.0, &okey.1).cloned() else {
        return Err(ApiError::not_found(&rt.group, &rt.plural, &okey.1));
    };
    if let Some(pre) = options.get("preconditions") {
        let uid_ok = pre
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(|u| u == meta_str(&old, "uid"));
        let rv_ok = pre
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_none_or(|r| r == meta_str(&old, "resourceVersion"));
        if !uid_ok || !rv_ok {
            return Err(ApiError::conflict(&rt.group, &rt.plural, &okey.1));
        }
    }
    let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
    if is_namespace && okey.1 == "default" {
        return Err(ApiError::new(
            403,
            "Forbidden",
            "namespaces \"default\" is forbidden: this namespace may not be deleted",
        ));
    }
    if is_deleting(&old) {
        return Ok(old);
    }
    if finalizers(&old).is_empty() && !is_namespace {
        let removed = state.remove(&key, &okey).unwrap_or(old);
        after_remove(state, rt, &removed);
        return Ok(removed);
    }
    let mut marked = old;
    {
        let meta = meta_mut(&mut marked)?;
        meta.insert("deletionTimestamp".into(), json!(now()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        // Upstream (rest.BeforeDelete) bumps a set generation when deletion starts, so
        // controllers comparing observedGeneration see the deletion as a change.
        if let Some(generation) = meta.get("generation").and_then(Value::as_i64)
            && generation > 0
        {
            meta.insert("generation".into(), json!(generation + 1));
        }
    }
    if is_namespace {
        marked["status"] = json!({"phase": "Terminating"});
    }
    let stored = state.put(&key, okey.clone(), marked, EventType::Modified);
    if is_namespace {
        for (skey, obj_key) in state.keys_in_namespace(&okey.1) {
            let Some(t) = state
                .types
                .iter()
                .find(|t| t.storage_key() == skey)
                .cloned()
            else {
                continue;
            };
            // Errors cannot happen here: the object exists and there are no preconditions.
            let _ = delete(state, &t, obj_key, &Value::Null);
        }
        if state.namespace_is_empty(&okey.1) && finalizers(&stored).is_empty() {
            return Ok(state.remove(&key, &okey).unwrap_or(stored));
        }
    }
    Ok(stored)
}
