//! Server-side printing: `meta.k8s.io/v1 Table` responses (what `kubectl get` asks for) built
//! from a resource's printer columns, with a small JSONPath evaluator for CRD
//! `additionalPrinterColumns` (`.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.k=="v")].b`).

use serde_json::{Value, json};

use crate::handlers::ResourceRequest;
use crate::registry::{ColumnSource, ResourceType};

pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// Whether the table starts with the implicit Name column (unless the type places it).
fn implicit_name(rt: &ResourceType) -> bool {
    !rt.columns
        .iter()
        .any(|c| matches!(c.source, ColumnSource::Name))
}

fn column_definitions(rt: &ResourceType) -> Vec<Value> {
    let mut cols = Vec::new();
    if implicit_name(rt) {
        cols.push(json!({
            "name": "Name", "type": "string", "format": "name", "priority": 0,
            "description": "Name must be unique within a namespace.",
        }));
    }
    for c in &rt.columns {
        cols.push(json!({
            "name": c.name, "type": if c.type_ == "date" { "string" } else { c.type_.as_str() },
            "format": c.format, "description": c.description, "priority": c.priority,
        }));
    }
    cols
}

fn cells(rt: &ResourceType, obj: &Value) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells = Vec::new();
    if implicit_name(rt) {
        cells.push(name.clone());
    }
    for c in &rt.columns {
        let cell = match &c.source {
            ColumnSource::Name => name.clone(),
            ColumnSource::EventObject => {
                let target = obj.get("involvedObject").or_else(|| obj.get("regarding"));
                let field = |f: &str| {
                    target
                        .and_then(|t| t.get(f))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                json!(format!(
                    "{}/{}",
                    field("kind").to_lowercase(),
                    field("name")
                ))
            }
            ColumnSource::EventLastSeen => {
                let seen = [
                    "/lastTimestamp",
                    "/deprecatedLastTimestamp",
                    "/series/lastObservedTime",
                    "/eventTime",
                    "/metadata/creationTimestamp",
                ]
                .iter()
                .find_map(|p| obj.pointer(p).and_then(Value::as_str));
                seen.map_or(Value::Null, |ts| json!(age(ts)))
            }
            ColumnSource::DataCount => json!(
                obj.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            ),
            ColumnSource::JsonPath(path) => {
                let found = eval(obj, path).into_iter().next();
                match (c.type_.as_str(), found) {
                    (_, None) => Value::Null,
                    ("date", Some(Value::String(ts))) => json!(age(&ts)),
                    ("string", Some(Value::String(s))) => json!(s),
                    ("string", Some(other)) => json!(other.to_string()),
                    (_, Some(v)) => v,
                }
            }
        };
        cells.push(cell);
    }
    cells
}

fn row_object(obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

pub fn table(rt: &ResourceType, objs: &[Value], rv: &str, req: &ResourceRequest) -> Value {
    let include = req
        .query
        .get("includeObject")
        .map(String::as_str)
        .unwrap_or("Metadata");
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| json!({"cells": cells(rt, o), "object": row_object(o, include)}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": column_definitions(rt),
        "rows": rows,
    })
}

/// A one-row table, as `kubectl get --watch` receives per event.
pub fn table_for_watch(rt: &ResourceType, obj: &Value, rv: &str) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": column_definitions(rt),
        "rows": [{"cells": cells(rt, obj), "object": row_object(obj, "Metadata")}],
    })
}

/// Age as kubectl prints it (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`).
pub fn age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<invalid>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (minutes, hours) = (secs / 60, secs / 3600);
    let two = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if minutes < 10 => two(minutes, "m", secs % 60, "s"),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 => two(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 24 * 8 => two(hours / 24, "d", hours % 24, "h"),
        _ if hours < 24 * 365 * 2 => format!("{}d", hours / 24),
        _ if hours < 24 * 365 * 8 => two(hours / 24 / 365, "y", (hours / 24) % 365, "d"),
        _ => format!("{}y", hours / 24 / 365),
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.path op "value")]`; `op` is `==` or `!=`.
    Filter(Vec<String>, bool, String),
}

/// Parses a simple JSONPath (optionally wrapped in `{...}`); unsupported syntax yields None.
fn parse(path: &str) -> Option<Vec<Step>> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut steps = Vec::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let start = i + 1;
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let inner: String = chars.get(start..i)?.iter().collect();
                i += 1;
                steps.push(parse_bracket(inner.trim())?);
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(n) = inner.parse::<usize>() {
        return Some(Step::Index(n));
    }
    if let Some(quoted) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(Step::Field(quoted.to_string()));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, equal, rhs) = if let Some((l, r)) = expr.split_once("!=") {
        (l, false, r)
    } else {
        let (l, r) = expr.split_once("==")?;
        (l, true, r)
    };
    let field_path = lhs.trim().strip_prefix("@.")?;
    let value = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
    Some(Step::Filter(
        field_path.split('.').map(str::to_string).collect(),
        equal,
        value.to_string(),
    ))
}

/// All values `path` selects in `obj` (empty when nothing matches or the path is unsupported).
pub fn eval(obj: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![obj.clone()];
    for step in &steps {
        let mut next = Vec::new();
        for v in &current {
            match step {
                Step::Field(f) => next.extend(v.get(f).cloned()),
                Step::Index(i) => next.extend(v.get(*i).cloned()),
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter().cloned()),
                    Value::Object(m) => next.extend(m.values().cloned()),
                    _ => {}
                },
                Step::Filter(field, equal, want) => {
                    for item in v.as_array().into_iter().flatten() {
                        let mut cur = Some(item);
                        for f in field {
                            cur = cur.and_then(|c| c.get(f));
                        }
                        let actual = match cur {
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(other) => Some(other.to_string()),
                            None => None,
                        };
                        if actual.is_some() && (actual.as_deref() == Some(want)) == *equal {
                            next.push(item.clone());
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_condition_filter() {
        let obj = json!({"status": {"conditions": [
            {"type": "Synced", "status": "False"},
            {"type": "Ready", "status": "True"},
        ]}});
        assert_eq!(
            eval(&obj, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![json!("True")]
        );
        assert_eq!(
            eval(&obj, ".status.conditions[0].type"),
            vec![json!("Synced")]
        );
        assert_eq!(eval(&obj, ".status.conditions[*].type").len(), 2);
        assert!(eval(&obj, ".status.missing").is_empty());
    }

    #[test]
    fn formats_age_like_kubectl() {
        let ts = (chrono::Utc::now() - chrono::Duration::seconds(90))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        assert_eq!(age(&ts), "90s");
        let ts = (chrono::Utc::now() - chrono::Duration::hours(50))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        assert_eq!(age(&ts), "2d2h");
    }
}
