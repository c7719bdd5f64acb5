//! Field ownership for server-side apply, kept beside the objects (not exposed as
//! `managedFields`): which field manager last set which leaf field.
//!
//! Modelled: apply conflicts (409 when another manager owns a field the applied config
//! changes, unless `force=true`), removal of fields a manager stops applying (when nobody
//! else owns them), shared ownership of equal values, and update/patch/create taking
//! ownership of the fields they change. Simplifications: lists are atomic (no
//! `x-kubernetes-list-type: map` merging by key), ownership is per leaf JSON pointer.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::patch;
use crate::status::{ApiError, ApiResult};

/// (field manager, subresource) -> owned leaf paths (JSON pointers).
pub type Managers = BTreeMap<(String, String), BTreeSet<String>>;

/// Identity and bookkeeping fields nobody owns.
const UNOWNED: [&str; 9] = [
    "/apiVersion",
    "/kind",
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/resourceVersion",
    "/metadata/uid",
    "/metadata/creationTimestamp",
    "/metadata/generation",
    "/metadata/managedFields",
];

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Leaf paths of `v`: non-empty objects are descended into, everything else is a leaf.
fn collect(v: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                collect(child, &format!("{prefix}/{}", escape(k)), out);
            }
        }
        _ if prefix.is_empty() => {}
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

/// Leaves a write through `subresource` can own: `/status/...` for status writes, the rest
/// otherwise (when the type has a status subresource).
pub fn leaves(v: &Value, subresource: &str, status_isolated: bool) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    collect(v, "", &mut out);
    out.retain(|p, _| !UNOWNED.contains(&p.as_str()));
    if subresource == "status" {
        out.retain(|p, _| p.starts_with("/status/") || p == "/status");
    } else if status_isolated {
        out.retain(|p, _| !(p.starts_with("/status/") || p == "/status"));
    }
    out
}

fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// The apply request of one manager.
pub struct Apply<'a> {
    pub manager: &'a str,
    pub subresource: &'a str,
    pub force: bool,
    pub status_isolated: bool,
}

/// Computes the object an apply produces and the new ownership, or a 409 listing conflicts.
pub fn apply(
    managers: &Managers,
    current: &Value,
    applied: &Value,
    req: &Apply<'_>,
) -> ApiResult<(Value, Managers)> {
    let me = (req.manager.to_string(), req.subresource.to_string());
    let wanted = leaves(applied, req.subresource, req.status_isolated);
    let mut conflicts = Vec::new();
    let api_version = current
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !req.force {
        for (path, value) in &wanted {
            if current.pointer(path) == Some(value) {
                continue;
            }
            for ((other, _), owned) in managers.iter().filter(|(k, _)| **k != me) {
                if owned.iter().any(|o| overlaps(o, path)) {
                    conflicts.push(format!(
                        "conflict with \"{other}\" using {api_version}: {}",
                        dotted(path)
                    ));
                }
            }
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort();
        conflicts.dedup();
        let n = conflicts.len();
        let plural = if n == 1 { "conflict" } else { "conflicts" };
        return Err(ApiError::new(
            409,
            "Conflict",
            format!("Apply failed with {n} {plural}: {}", conflicts.join("\n")),
        ));
    }
    let mut result = current.clone();
    // Fields this manager applied before but not now go, unless someone else owns them.
    if let Some(before) = managers.get(&me) {
        for path in before.iter().filter(|p| !wanted.contains_key(*p)) {
            let shared = managers
                .iter()
                .filter(|(k, _)| **k != me)
                .any(|(_, owned)| owned.iter().any(|o| overlaps(o, path)));
            if !shared {
                remove_pointer(&mut result, path);
            }
        }
    }
    let mut applied_without_nulls = applied.clone();
    strip_nulls(&mut applied_without_nulls);
    patch::merge_patch(&mut result, &applied_without_nulls);
    let mut next = managers.clone();
    if req.force {
        for (key, owned) in next.iter_mut().filter(|(k, _)| **k != me) {
            let _ = key;
            owned.retain(|o| !wanted.keys().any(|p| overlaps(o, p)));
        }
    }
    next.insert(me, wanted.into_keys().collect());
    next.retain(|_, owned| !owned.is_empty());
    Ok((result, next))
}

/// Ownership after a non-apply write (create/update/patch) by `manager`: it owns what it
/// changed; removed fields are owned by nobody.
pub fn after_write(
    managers: &Managers,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: &str,
    status_isolated: bool,
) -> Managers {
    let before = old
        .map(|o| leaves(o, subresource, status_isolated))
        .unwrap_or_default();
    let after = leaves(new, subresource, status_isolated);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p)
        .collect();
    let removed: Vec<&String> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    let me = (manager.to_string(), subresource.to_string());
    let mut next = managers.clone();
    for (key, owned) in next.iter_mut() {
        owned.retain(|o| !removed.iter().any(|r| overlaps(o, r)));
        if *key != me {
            owned.retain(|o| !changed.iter().any(|c| overlaps(o, c)));
        }
    }
    next.entry(me)
        .or_default()
        .extend(changed.into_iter().cloned());
    next.retain(|_, owned| !owned.is_empty());
    next
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        m.values_mut().for_each(strip_nulls);
    }
}

fn remove_pointer(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
        m.remove(&key);
    }
}

/// `/spec/holderIdentity` -> `.spec.holderIdentity`, as apply conflict messages print paths.
fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|k| format!(".{}", k.replace("~1", "/").replace("~0", "~")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply_as(
        m: &Managers,
        cur: &Value,
        cfg: Value,
        who: &str,
        force: bool,
    ) -> ApiResult<(Value, Managers)> {
        let req = Apply {
            manager: who,
            subresource: "",
            force,
            status_isolated: true,
        };
        apply(m, cur, &cfg, &req)
    }

    #[test]
    fn conflicts_removal_and_force() {
        let empty = Managers::new();
        let obj =
            json!({"apiVersion": "v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}});
        let (obj, m) = apply_as(
            &empty,
            &obj,
            json!({"spec": {"holder": "a", "ttl": 5}}),
            "a",
            false,
        )
        .unwrap_or_default();
        assert_eq!(obj["spec"], json!({"holder": "a", "ttl": 5}));
        // b changing a's field conflicts; applying the same value is shared ownership.
        let err = apply_as(&m, &obj, json!({"spec": {"holder": "b"}}), "b", false)
            .err()
            .map(|e| e.message);
        assert_eq!(
            err.as_deref(),
            Some("Apply failed with 1 conflict: conflict with \"a\" using v1: .spec.holder")
        );
        let (obj, m) =
            apply_as(&m, &obj, json!({"spec": {"ttl": 5}}), "b", false).unwrap_or_default();
        // a stops applying ttl: b still owns it, so it stays; a's holder is dropped when a
        // stops applying it.
        let (obj, m) =
            apply_as(&m, &obj, json!({"spec": {"holder": "a"}}), "a", false).unwrap_or_default();
        assert_eq!(obj["spec"]["ttl"], 5);
        let (obj, m) = apply_as(&m, &obj, json!({"spec": {}}), "a", false).unwrap_or_default();
        assert!(obj["spec"].get("holder").is_none());
        // Forcing takes ownership.
        let (obj, m) =
            apply_as(&m, &obj, json!({"spec": {"ttl": 9}}), "c", true).unwrap_or_default();
        assert_eq!(obj["spec"]["ttl"], 9);
        assert!(!m.contains_key(&("b".to_string(), String::new())));
    }

    #[test]
    fn updates_take_ownership_of_changes() {
        let old = json!({"spec": {"a": 1, "b": 2}});
        let m = after_write(&Managers::new(), None, &old, "creator", "", true);
        let new = json!({"spec": {"a": 3, "b": 2}});
        let m = after_write(&m, Some(&old), &new, "editor", "", true);
        let editor = m
            .get(&("editor".to_string(), String::new()))
            .cloned()
            .unwrap_or_default();
        assert!(editor.contains("/spec/a") && !editor.contains("/spec/b"));
        let err = apply_as(&m, &new, json!({"spec": {"a": 4}}), "creator", false);
        assert!(err.is_err());
    }
}
