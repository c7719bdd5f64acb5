//! Pruning and OpenAPI v3 validation of a structural schema, with the apiserver's messages.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value};

use crate::{Cause, SchemaError};

/// Every `pattern` of a schema, compiled once.
pub(crate) struct PatternCache(HashMap<String, Regex>);

impl PatternCache {
    pub(crate) fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let mut cache = HashMap::new();
        collect_patterns(schema, "", &mut cache)?;
        Ok(PatternCache(cache))
    }
}

fn collect_patterns(
    schema: &Value,
    path: &str,
    out: &mut HashMap<String, Regex>,
) -> Result<(), SchemaError> {
    let Some(obj) = schema.as_object() else {
        return Ok(());
    };
    if let Some(p) = obj.get("pattern").and_then(Value::as_str) {
        let re = Regex::new(p).map_err(|e| SchemaError::BadPattern {
            path: path.to_string(),
            pattern: p.to_string(),
            reason: e.to_string(),
        })?;
        out.insert(p.to_string(), re);
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            collect_patterns(sub, &join(path, name), out)?;
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get(key) {
            collect_patterns(sub, &format!("{path}[*]"), out)?;
        }
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Removes fields the schema does not declare, and `null`s of fields that are not `nullable`
/// (the apiserver drops those before defaulting).
pub(crate) fn prune(schema: &Value, value: &mut Value, is_root: bool) {
    prune_inner(schema, value, is_root, "", &mut None);
}

/// The paths of the fields [`prune`] would remove: what `fieldValidation=Strict` reports as
/// `unknown field "spec.foo"`.
pub(crate) fn unknown_fields(schema: &Value, value: &Value) -> Vec<String> {
    let mut copy = value.clone();
    let mut found = Some(Vec::new());
    prune_inner(schema, &mut copy, true, "", &mut found);
    found.unwrap_or_default()
}

fn prune_inner(
    schema: &Value,
    value: &mut Value,
    is_root: bool,
    path: &str,
    found: &mut Option<Vec<String>>,
) {
    match value {
        Value::Object(map) => {
            let keep_meta = is_root || flag(schema, "x-kubernetes-embedded-resource");
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if keep_meta && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub_schema = props.and_then(|p| p.get(&key)).or(additional);
                let child_path = join(path, &key);
                match sub_schema {
                    Some(sub) => {
                        let child = map.get_mut(&key).expect("key listed from this map");
                        if child.is_null() && !flag(sub, "nullable") {
                            map.remove(&key);
                            continue;
                        }
                        prune_inner(sub, child, false, &child_path, found);
                    }
                    None if preserve => {}
                    None => {
                        if let Some(found) = found {
                            found.push(child_path);
                        }
                        map.remove(&key);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_inner(item_schema, item, false, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => json_type(v) == other,
    }
}

/// How a value is quoted inside a message: strings in quotes, everything else as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn push(causes: &mut Vec<Cause>, reason: &str, field: &str, message: String) {
    let label = if field.is_empty() { "<nil>" } else { field };
    causes.push(Cause {
        reason: reason.into(),
        field: field.into(),
        message: format!("{label}: {message}"),
    });
}

/// Validates `value` at `path` against `schema`, appending every cause found.
pub(crate) fn validate(
    schema: &Value,
    value: &Value,
    path: &str,
    patterns: &PatternCache,
    causes: &mut Vec<Cause>,
) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            let ty = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("object");
            push(
                causes,
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"null\": {path} in body must be of type {ty}: \"null\""),
            );
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            push(
                causes,
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{0}\": {path} in body must be of type integer,string: \"{0}\"",
                    json_type(value)
                ),
            );
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_matches(ty, value)
    {
        let got = json_type(value);
        push(
            causes,
            "FieldValueTypeInvalid",
            path,
            format!("Invalid value: \"{got}\": {path} in body must be of type {ty}: \"{got}\""),
        );
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        push(
            causes,
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(value),
                list.join(", ")
            ),
        );
    }
    match value {
        Value::String(s) => validate_string(schema, s, path, patterns, causes),
        Value::Number(n) => validate_number(schema, n, path, causes),
        Value::Array(items) => validate_array(schema, items, path, patterns, causes),
        Value::Object(map) => validate_object(schema, map, path, patterns, causes),
        _ => {}
    }
}

fn validate_string(
    schema: &Value,
    s: &str,
    path: &str,
    patterns: &PatternCache,
    causes: &mut Vec<Cause>,
) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        push(
            causes,
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        );
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        push(
            causes,
            "FieldValueInvalid",
            path,
            format!("Invalid value: {s:?}: {path} in body should be at least {min} chars long"),
        );
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && let Some(re) = patterns.0.get(p)
        && !re.is_match(s)
    {
        push(
            causes,
            "FieldValueInvalid",
            path,
            format!("Invalid value: {s:?}: {path} in body should match '{p}'"),
        );
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        // The apiserver reports a format mismatch as a type error (`FieldValueTypeInvalid`),
        // which also keeps the CEL rules from running.
        push(
            causes,
            "FieldValueTypeInvalid",
            path,
            format!("Invalid value: {s:?}: {path} in body must be of type {format}: {s:?}"),
        );
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$")
        .expect("static regex")
});
static DATE_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
        .expect("static regex")
});
static DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("static regex"));
static URI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+|/[^\s]*)$").expect("static regex")
});
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
        .expect("static regex")
});

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "email" => EMAIL.is_match(s),
        "date-time" | "datetime" => DATE_TIME.is_match(s),
        "date" => DATE.is_match(s),
        "uri" => URI.is_match(s),
        "uuid" => UUID.is_match(s),
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        _ => true,
    }
}

fn validate_number(schema: &Value, n: &serde_json::Number, path: &str, causes: &mut Vec<Cause>) {
    let Some(v) = n.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && v < min
    {
        push(
            causes,
            "FieldValueInvalid",
            path,
            format!("Invalid value: {n}: {path} in body should be greater than or equal to {min}"),
        );
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && v > max
    {
        push(
            causes,
            "FieldValueInvalid",
            path,
            format!("Invalid value: {n}: {path} in body should be less than or equal to {max}"),
        );
    }
}

fn validate_array(
    schema: &Value,
    items: &[Value],
    path: &str,
    patterns: &PatternCache,
    causes: &mut Vec<Cause>,
) {
    let len = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && len > max
    {
        push(
            causes,
            "FieldValueTooMany",
            path,
            format!("Too many: {len}: must have at most {max} items"),
        );
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && len < min
    {
        push(
            causes,
            "FieldValueInvalid",
            path,
            format!("Invalid value: {len}: {path} in body should have at least {min} items"),
        );
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    push(
                        causes,
                        "FieldValueDuplicate",
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {item}"),
                    );
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| -> Value {
                Value::Object(
                    keys.iter()
                        .map(|k| {
                            (
                                (*k).to_string(),
                                item.get(*k).cloned().unwrap_or(Value::Null),
                            )
                        })
                        .collect(),
                )
            };
            for (i, item) in items.iter().enumerate() {
                let key = key_of(item);
                if items[..i].iter().any(|earlier| key_of(earlier) == key) {
                    push(
                        causes,
                        "FieldValueDuplicate",
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {key}"),
                    );
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), patterns, causes);
        }
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    patterns: &PatternCache,
    causes: &mut Vec<Cause>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if map.get(name).is_none_or(Value::is_null) {
                push(
                    causes,
                    "FieldValueRequired",
                    &join(path, name),
                    "Required value".into(),
                );
            }
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map {
        if let Some(sub) = props.and_then(|p| p.get(key)) {
            validate(sub, child, &join(path, key), patterns, causes);
        } else if let Some(sub) = additional {
            validate(sub, child, &format!("{path}[{key}]"), patterns, causes);
        }
    }
}
