//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! (treated as a merge patch) and server-side apply (treated as a merge of the applied
//! configuration; field ownership is not tracked).

use serde_json::{Map, Value};

use crate::status::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Parses a request body that may be JSON or (for apply) YAML.
pub fn parse_body(body: &[u8], yaml: bool) -> ApiResult<Value> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) if !yaml => Err(ApiError::bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))),
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(422, "Invalid", msg)
}

fn tokens(pointer: &str) -> ApiResult<Vec<String>> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("invalid JSON pointer {pointer:?}")))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> ApiResult<&'a mut Value> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| bad(format!("path element {t:?} not found")))?,
            Value::Array(a) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| bad(format!("invalid array index {t:?}")))?;
                a.get_mut(i)
                    .ok_or_else(|| bad(format!("array index {i} out of bounds")))?
            }
            _ => return Err(bad(format!("cannot traverse into {t:?}"))),
        };
    }
    Ok(cur)
}

fn get_at(doc: &Value, pointer: &str) -> ApiResult<Value> {
    let toks = tokens(pointer)?;
    let mut cur = doc;
    for t in &toks {
        cur = match cur {
            Value::Object(m) => m.get(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| bad(format!("path {pointer:?} not found")))?;
    }
    Ok(cur.clone())
}

fn add_at(doc: &mut Value, pointer: &str, value: Value) -> ApiResult<()> {
    let toks = tokens(pointer)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| bad(format!("invalid array index {last:?}")))?;
                if i > a.len() {
                    return Err(bad(format!("array index {i} out of bounds")));
                }
                a.insert(i, value);
            }
        }
        _ => return Err(bad(format!("cannot add at {pointer:?}"))),
    }
    Ok(())
}

fn remove_at(doc: &mut Value, pointer: &str) -> ApiResult<Value> {
    let toks = tokens(pointer)?;
    let Some((last, parents)) = toks.split_last() else {
        return Err(bad("cannot remove the whole document"));
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| bad(format!("path {pointer:?} not found"))),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| bad(format!("invalid array index {last:?}")))?;
            if i >= a.len() {
                return Err(bad(format!("array index {i} out of bounds")));
            }
            Ok(a.remove(i))
        }
        _ => Err(bad(format!("cannot remove {pointer:?}"))),
    }
}

/// RFC 6902 operations, applied atomically (on a copy).
pub fn json_patch(target: &Value, ops: &Value) -> ApiResult<Value> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("JSON patch operation without a path"))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| bad(format!("{name} operation without a value")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{name} operation without from")))
        };
        match name {
            "add" => add_at(&mut doc, path, value()?)?,
            "remove" => {
                remove_at(&mut doc, path)?;
            }
            "replace" => {
                remove_at(&mut doc, path)?;
                add_at(&mut doc, path, value()?)?;
            }
            "move" => {
                let v = remove_at(&mut doc, from()?)?;
                add_at(&mut doc, path, v)?;
            }
            "copy" => {
                let v = get_at(&doc, from()?)?;
                add_at(&mut doc, path, v)?;
            }
            "test" => {
                // A missing path tests equal to null (kube-runtime's finalizer helper relies
                // on this, as does the apiserver's json-patch implementation).
                let actual = get_at(&doc, path).unwrap_or(Value::Null);
                if actual != value()? {
                    return Err(bad(format!(
                        "the server rejected our request due to an error in our request: testing value {path} failed"
                    )));
                }
            }
            other => return Err(bad(format!("unknown JSON patch operation {other:?}"))),
        }
    }
    Ok(doc)
}

/// Applies a patch of `kind` to the stored object (or to `{}` for an apply that creates).
pub fn apply_patch(kind: PatchKind, target: &Value, patch: &Value) -> ApiResult<Value> {
    match kind {
        PatchKind::Json => json_patch(target, patch),
        PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = target.clone();
            let mut patch = patch.clone();
            if kind == PatchKind::Strategic {
                strip_directives(&mut patch);
            }
            merge_patch(&mut doc, &patch);
            Ok(doc)
        }
    }
}

/// Strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`) have no meaning
/// in a plain merge; drop them so they are not stored as fields.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}
