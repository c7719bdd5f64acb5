//! Admission of custom resources against a CustomResourceDefinition, the way a kube-apiserver
//! does it, for the project's tests and its local API server (never the production path: a real
//! cluster does this itself).
//!
//! [`CrdSchema::admit`] runs, in the apiserver's order:
//! 1. pruning of fields the structural schema does not declare (kept under
//!    `x-kubernetes-preserve-unknown-fields`; `apiVersion`, `kind` and `metadata` always kept);
//! 2. defaulting from `default` values;
//! 3. OpenAPI v3 validation: `type` (with `nullable`, `x-kubernetes-int-or-string`), `required`,
//!    `enum`, `pattern`, `format` (email, date-time, date, uri, byte, uuid), string length, item
//!    counts, numeric bounds, `x-kubernetes-list-type` `set` / `map` uniqueness;
//! 4. when the object is structurally valid, the CEL rules (`x-kubernetes-validations`, with
//!    `oldSelf` transition rules on update) through the `kube-cel` crate.
//!
//! Messages follow the apiserver's field errors word for word where we know them, e.g.
//! `spec.email: Required value` or
//! `spec.sid: Invalid value: "XX": spec.sid in body should match '^BU[0-9a-f]{32}$'`.
//!
//! Limits (what a real apiserver does that this does not): no `metadata` validation beyond
//! `name`/`generateName`; no `allOf`/`anyOf`/`oneOf`/`not`; no CEL cost budgets; formats other
//! than those listed are accepted unchecked; `x-kubernetes-embedded-resource` content is not
//! validated; the `messageExpression` of a rule is not evaluated (its `message` is used).

mod structural;

use std::fmt;

use kube_cel::{CompiledSchema, Validator};
use serde_json::{Value, json};

/// The CRD could not be compiled into a validator.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The CRD has no such served version.
    #[error("CRD has no version {0:?}")]
    NoSuchVersion(String),
    /// The version has no `schema.openAPIV3Schema`.
    #[error("version {0:?} has no openAPIV3Schema")]
    NoSchema(String),
    /// A `pattern` is not a valid regular expression.
    #[error("invalid pattern {pattern:?} at {path}: {reason}")]
    BadPattern {
        path: String,
        pattern: String,
        reason: String,
    },
    /// A CEL rule does not compile.
    #[error("CEL rule does not compile: {0}")]
    Cel(String),
}

/// The apiserver's words when schema errors kept the CEL rules from running.
pub const NOT_CHECKED: &str = "some validation rules were not checked because the object was \
     invalid; correct the existing errors to complete validation";

/// One reason an object was refused, in the apiserver's `StatusCause` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueTooLong`, `FieldValueTooMany`, `FieldValueTypeInvalid`.
    pub reason: String,
    /// Dotted path of the field, e.g. `spec.phoneNumbers[1]`.
    pub field: String,
    /// The full message, starting with the field path.
    pub message: String,
}

/// An object the schema refuses; `Display` gives the apiserver's aggregate message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Every cause, in the order found.
    pub causes: Vec<Cause>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.causes.as_slice() {
            [one] => f.write_str(&one.message),
            many => {
                let joined: Vec<&str> = many.iter().map(|c| c.message.as_str()).collect();
                write!(f, "[{}]", joined.join(", "))
            }
        }
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    /// The message `kubectl` prints: `Kind.group "name" is invalid: <causes>`.
    pub fn message_for(&self, kind: &str, group: &str, name: &str) -> String {
        format!("{kind}.{group} \"{name}\" is invalid: {self}")
    }

    /// A `meta/v1` `Status` with code 422 and reason `Invalid`, as the apiserver answers.
    pub fn to_status(&self, kind: &str, group: &str, name: &str) -> Value {
        let causes: Vec<Value> = self
            .causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message_for(kind, group, name),
            "reason": "Invalid",
            "details": {"name": name, "group": group, "kind": kind, "causes": causes},
            "code": 422
        })
    }
}

/// The compiled schema of one served version of a CRD.
pub struct CrdSchema {
    schema: Value,
    compiled_cel: CompiledSchema,
    /// Whether any `x-kubernetes-validations` rule exists (the apiserver has a CEL validator).
    has_rules: bool,
    patterns: structural::PatternCache,
}

impl fmt::Debug for CrdSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrdSchema").finish_non_exhaustive()
    }
}

impl CrdSchema {
    /// Compiles the `openAPIV3Schema` of `version` of `crd` (the whole CRD object as JSON).
    pub fn from_crd(crd: &Value, version: &str) -> Result<CrdSchema, SchemaError> {
        let versions = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .ok_or_else(|| SchemaError::NoSuchVersion(version.to_string()))?;
        let v = versions
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
            .ok_or_else(|| SchemaError::NoSuchVersion(version.to_string()))?;
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .ok_or_else(|| SchemaError::NoSchema(version.to_string()))?;
        Self::from_schema(schema)
    }

    /// Compiles a bare `openAPIV3Schema`.
    pub fn from_schema(schema: Value) -> Result<CrdSchema, SchemaError> {
        let patterns = structural::PatternCache::compile(&schema)?;
        let compiled_cel = kube_cel::compile_schema(&schema);
        if let Some(err) = compiled_cel.compilation_errors().first() {
            return Err(SchemaError::Cel(err.to_string()));
        }
        let has_rules = schema.to_string().contains("\"x-kubernetes-validations\"");
        Ok(CrdSchema {
            schema,
            compiled_cel,
            has_rules,
            patterns,
        })
    }

    /// The paths of fields the schema does not declare (what pruning would drop): what a
    /// `fieldValidation=Strict` request reports as `unknown field "spec.foo"`.
    pub fn unknown_fields(&self, obj: &Value) -> Vec<String> {
        structural::unknown_fields(&self.schema, obj)
    }

    /// Prunes, defaults and validates `obj` in place; `old` is the stored object on update
    /// (transition rules run only then). On `Err`, `obj` may be partly pruned and defaulted.
    pub fn admit(&self, obj: &mut Value, old: Option<&Value>) -> Result<(), Invalid> {
        structural::prune(&self.schema, obj, true);
        *obj = kube_cel::apply_defaults(&self.schema, obj);
        let mut causes = Vec::new();
        if obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                field: "metadata.name".into(),
                message: "metadata.name: Required value: name or generateName is required".into(),
            });
        }
        structural::validate(&self.schema, obj, "", &self.patterns, &mut causes);
        // As the apiserver's `hasBlockingErr`: a missing, unsupported, too long, too many or
        // mistyped value keeps the CEL rules from running and says so in one more cause; other
        // schema errors (patterns, minimums, duplicates) leave the rules to run.
        let blocking = causes.iter().any(|c| {
            matches!(
                c.reason.as_str(),
                "FieldValueNotSupported"
                    | "FieldValueRequired"
                    | "FieldValueTooLong"
                    | "FieldValueTooMany"
                    | "FieldValueTypeInvalid"
            )
        });
        if blocking && self.has_rules {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                field: "<nil>".into(),
                message: format!("<nil>: Invalid value: null: {NOT_CHECKED}"),
            });
        } else if !blocking {
            causes.extend(self.cel_causes(obj, old));
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(Invalid { causes })
        }
    }

    fn cel_causes(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let old = old.map(|o| {
            let mut o = o.clone();
            structural::prune(&self.schema, &mut o, true);
            o
        });
        let Err(errors) = Validator::new().validate_compiled(&self.compiled_cel, obj, old.as_ref())
        else {
            return Vec::new();
        };
        errors
            .into_vec()
            .into_iter()
            .map(|e| {
                let field = e.field_path.clone();
                let value = value_at(obj, &field);
                // kube-apiserver 1.36 shows a scalar's value and omits an object's or a list's.
                let shown = match value {
                    Some(Value::Object(_) | Value::Array(_)) => String::new(),
                    Some(Value::String(s)) => format!("{s:?}: "),
                    Some(Value::Number(n)) => format!("{n}: "),
                    Some(Value::Bool(b)) => format!("{b}: "),
                    _ => "null: ".to_string(),
                };
                let label = if field.is_empty() {
                    "<nil>".to_string()
                } else {
                    field.clone()
                };
                Cause {
                    reason: e
                        .reason
                        .clone()
                        .unwrap_or_else(|| "FieldValueInvalid".into()),
                    message: format!("{label}: Invalid value: {shown}{}", e.message),
                    field,
                }
            })
            .collect()
    }
}

/// The value at a dotted field path such as `spec.phoneNumbers[1].sid`.
fn value_at<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
    let mut cur = obj;
    if field.is_empty() {
        return Some(cur);
    }
    for part in field.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            cur = match idx.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(idx.trim_matches('"'))?,
            };
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests;
