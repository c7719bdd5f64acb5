use serde_json::{Value, json};

use crate::{CrdSchema, NOT_CHECKED};

fn schema() -> CrdSchema {
    CrdSchema::from_schema(json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 5},
                    "sid": {"type": "string", "pattern": "^BU[0-9a-f]{32}$", "nullable": true},
                    "mail": {"type": "string", "format": "email"},
                    "mode": {"type": "string", "enum": ["Orphan", "Delete"], "default": "Orphan"},
                    "count": {"type": "integer", "minimum": 1},
                    "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "fixed": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "fixed is immutable"}]}
                },
                "x-kubernetes-validations": [{"rule": "!has(self.sid) || self.name != 'x'", "message": "name x cannot have a sid"}]
            }
        }
    }))
    .expect("schema compiles")
}

fn admit(obj: Value) -> Result<Value, Vec<String>> {
    admit_update(obj, None)
}

fn admit_update(mut obj: Value, old: Option<Value>) -> Result<Value, Vec<String>> {
    match schema().admit(&mut obj, old.as_ref()) {
        Ok(()) => Ok(obj),
        Err(invalid) => Err(invalid.causes.into_iter().map(|c| c.message).collect()),
    }
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "x.dev/v1", "kind": "T", "metadata": {"name": "t"}, "spec": spec})
}

#[test]
fn defaults_and_prunes_like_the_apiserver() {
    let out = admit(object(
        json!({"name": "a", "unknown": 1, "sid": null, "free": {"any": {"thing": 1}}}),
    ))
    .unwrap();
    assert_eq!(
        out["spec"],
        json!({"name": "a", "mode": "Orphan", "sid": null, "free": {"any": {"thing": 1}}})
    );
    assert_eq!(out["metadata"]["name"], "t");
    assert_eq!(
        schema().unknown_fields(&object(json!({"name": "a", "bogus": 2}))),
        vec!["spec.bogus"]
    );
}

#[test]
fn messages_match_the_apiserver() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "spec.name: Required value"),
        (
            json!({"name": ""}),
            "spec.name: Invalid value: \"\": spec.name in body should be at least 1 chars long",
        ),
        (
            json!({"name": "toolong"}),
            "spec.name: Too long: may not be more than 5 bytes",
        ),
        (
            json!({"name": "a", "sid": "XX1"}),
            "spec.sid: Invalid value: \"XX1\": spec.sid in body should match '^BU[0-9a-f]{32}$'",
        ),
        (
            json!({"name": "a", "mail": "nope"}),
            "spec.mail: Invalid value: \"nope\": spec.mail in body must be of type email: \"nope\"",
        ),
        (
            json!({"name": "a", "mode": "Keep"}),
            "spec.mode: Unsupported value: \"Keep\": supported values: \"Orphan\", \"Delete\"",
        ),
        (
            json!({"name": "a", "count": "3"}),
            "spec.count: Invalid value: \"string\": spec.count in body must be of type integer: \"string\"",
        ),
        (
            json!({"name": "a", "count": 0}),
            "spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1",
        ),
        (
            json!({"name": "a", "tags": ["a", "b", "c"]}),
            "spec.tags: Too many: 3: must have at most 2 items",
        ),
        (
            json!({"name": "a", "tags": ["a", "a"]}),
            "spec.tags[1]: Duplicate value: \"a\"",
        ),
        (
            json!({"name": "x", "sid": "BU0123456789abcdef0123456789abcdef"}),
            "spec: Invalid value: name x cannot have a sid",
        ),
    ];
    for (spec, want) in cases {
        let got = admit(object(spec.clone())).expect_err(&format!("{spec} must be refused"));
        // Missing, unsupported, too long, too many and mistyped values block the CEL rules.
        let blocking = [
            ": Required value",
            ": Too long",
            ": Unsupported value",
            ": Too many",
        ]
        .iter()
        .any(|b| want.contains(b))
            || want.contains("must be of type");
        let mut wanted = vec![want.to_string()];
        if blocking {
            wanted.push(format!("<nil>: Invalid value: null: {NOT_CHECKED}"));
        }
        assert_eq!(got, wanted, "for {spec}");
    }
}

#[test]
fn transition_rules_run_only_on_update() {
    admit(object(json!({"name": "a", "fixed": "one"}))).unwrap();
    admit_update(
        object(json!({"name": "a", "fixed": "one"})),
        Some(object(json!({"name": "a", "fixed": "one"}))),
    )
    .unwrap();
    let err = admit_update(
        object(json!({"name": "a", "fixed": "two"})),
        Some(object(json!({"name": "a", "fixed": "one"}))),
    )
    .unwrap_err();
    assert_eq!(
        err,
        vec!["spec.fixed: Invalid value: \"two\": fixed is immutable".to_string()]
    );
}

#[test]
fn status_is_a_kubernetes_invalid_status() {
    let mut obj = object(json!({}));
    let invalid = schema().admit(&mut obj, None).unwrap_err();
    let status = invalid.to_status("T", "x.dev", "t");
    assert_eq!(status["code"], 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        format!(
            "T.x.dev \"t\" is invalid: [spec.name: Required value, <nil>: Invalid value: null: \
             {NOT_CHECKED}]"
        )
    );
    assert_eq!(status["details"]["causes"][0]["field"], "spec.name");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueRequired"
    );
}

#[test]
fn name_or_generate_name_is_required() {
    let mut obj =
        json!({"apiVersion": "x.dev/v1", "kind": "T", "metadata": {}, "spec": {"name": "a"}});
    let invalid = schema().admit(&mut obj, None).unwrap_err();
    assert_eq!(invalid.causes[0].field, "metadata.name");
}

#[test]
fn a_bad_pattern_or_rule_is_a_schema_error() {
    assert!(CrdSchema::from_schema(json!({"type": "string", "pattern": "("})).is_err());
    let bad_rule = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.(("}]});
    assert!(CrdSchema::from_schema(bad_rule).is_err());
}
