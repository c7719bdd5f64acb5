//! `events.k8s.io/v1` Events are stored as core `v1` Events (as on a real apiserver, the two
//! APIs are views of one storage), so events a controller records through the new API show
//! up in `kubectl describe`, which reads core Events by `involvedObject`.

use serde_json::{Map, Value};

use crate::status::{ApiError, ApiResult};

/// Longest `note` of an events.k8s.io/v1 Event (upstream's `NoteLengthLimit`).
pub const NOTE_LENGTH_LIMIT: usize = 1024;

/// Refuses an events.k8s.io/v1 Event (in its stored, core form: `note` is `message`) whose note
/// is over [`NOTE_LENGTH_LIMIT`] bytes, with upstream's 422 (word for word).
pub fn check_note(core: &Value) -> ApiResult<()> {
    let note = core
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if note.len() <= NOTE_LENGTH_LIMIT {
        return Ok(());
    }
    let name = core
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Upstream validates the stored core Event, so it names the core kind and field.
    Err(ApiError::invalid(
        "Event",
        "",
        name,
        "message",
        &format!("Invalid value: \"\": can have at most {NOTE_LENGTH_LIMIT} characters"),
    ))
}

/// (core v1 field, events.k8s.io/v1 field) pairs that differ only by name.
const RENAMES: [(&str, &str); 8] = [
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Fields with the same name in both versions.
const SAME: [&str; 7] = [
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "type",
];

fn convert(obj: &Value, from_new: bool) -> Value {
    let Some(src) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for key in SAME {
        if let Some(v) = src.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    for (core, new) in RENAMES {
        let (from, to) = if from_new { (new, core) } else { (core, new) };
        if let Some(v) = src.get(from) {
            out.insert(to.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// events.k8s.io/v1 -> core v1 (apiVersion/kind are set by the caller).
pub fn to_core(obj: &Value) -> Value {
    let mut core = convert(obj, true);
    // Older readers (kubectl describe's "From" column) look at source.component.
    if core.get("source").is_none()
        && let Some(controller) = core.get("reportingComponent").cloned()
    {
        core["source"] = serde_json::json!({"component": controller});
    }
    core
}

/// core v1 -> events.k8s.io/v1 (apiVersion/kind are set by the caller).
pub fn from_core(obj: &Value) -> Value {
    convert(obj, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_renamed_fields() {
        let new = json!({
            "metadata": {"name": "e"}, "regarding": {"kind": "Widget", "name": "w"},
            "note": "hello", "reason": "Created", "type": "Normal",
            "reportingController": "ctl", "reportingInstance": "pod-1",
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Reconcile",
        });
        let core = to_core(&new);
        assert_eq!(core["involvedObject"]["name"], "w");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["source"]["component"], "ctl");
        let back = from_core(&core);
        for k in [
            "regarding",
            "note",
            "reason",
            "type",
            "reportingController",
            "eventTime",
            "action",
        ] {
            assert_eq!(back[k], new[k], "{k}");
        }
    }
}
