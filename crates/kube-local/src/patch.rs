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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_operations() {
        let doc = json!({"a": [1, 2, 3], "b": {"c": "x"}, "k~/": 1});
        let ops = json!([
            {"op": "remove", "path": "/a/0"},
            {"op": "add", "path": "/a/-", "value": 4},
            {"op": "move", "from": "/b/c", "path": "/d"},
            {"op": "copy", "from": "/d", "path": "/b/e"},
            {"op": "replace", "path": "/k~0~1", "value": 2},
            {"op": "test", "path": "/missing", "value": null},
        ]);
        let out = json_patch(&doc, &ops).unwrap_or_default();
        assert_eq!(
            out,
            json!({"a": [2, 3, 4], "b": {"e": "x"}, "d": "x", "k~/": 2})
        );
        // Failing operations leave nothing half-applied (the caller keeps the original).
        let failing =
            json!([{"op": "add", "path": "/z", "value": 1}, {"op": "remove", "path": "/nope"}]);
        assert_eq!(
            json_patch(&doc, &failing).map_err(|e| e.code).err(),
            Some(422)
        );
        assert!(json_patch(&doc, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [9]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [9]}));
        let strategic = apply_patch(
            PatchKind::Strategic,
            &doc,
            &json!({"$setElementOrder/l": [9], "a": {"$patch": "replace", "e": 1}}),
        )
        .unwrap_or_default();
        assert_eq!(strategic["a"], json!({"c": 2, "d": 3, "e": 1}));
    }

    #[test]
    fn apply_bodies_may_be_yaml() {
        let v = parse_body(b"kind: Widget\nspec:\n  size: 3\n", true).unwrap_or_default();
        assert_eq!(v["spec"]["size"], 3);
        assert!(parse_body(b"kind: Widget\n", false).is_err());
    }
}
