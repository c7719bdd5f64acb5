//! Admission of custom resources against their CRD schema, behind a small trait so the
//! store and handlers do not depend on how schemas are compiled.

use std::sync::Arc;

use serde_json::Value;

/// A compiled schema of one served CRD version.
pub trait SchemaAdmitter: Send + Sync {
    /// Defaults, prunes and validates `obj` in place; `old` is the stored object on updates
    /// (for CEL transition rules). The error is a ready `meta/v1 Status` (422 Invalid).
    fn admit(
        &self,
        obj: &mut Value,
        old: Option<&Value>,
        kind: &str,
        group: &str,
        name: &str,
    ) -> Result<(), Value>;

    /// Paths of fields the schema does not declare (reported by `fieldValidation=Strict`).
    fn unknown_fields(&self, obj: &Value) -> Vec<String>;
}

/// Compiles the schema of `version` of `crd`; `Ok(None)` when the version has no schema.
pub fn compile(crd: &Value, version: &str) -> Result<Option<Arc<dyn SchemaAdmitter>>, String> {
    let has_schema = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .is_some();
    if !has_schema {
        return Ok(None);
    }
    backend::compile(crd, version)
}

mod backend {
    //! The `crd-validation` crate: structural schema (defaults, pruning, OpenAPI validation)
    //! and CEL rules, with the apiserver's messages.
    use super::*;
    use crd_validation::CrdSchema;

    struct CrdValidation(CrdSchema);

    impl SchemaAdmitter for CrdValidation {
        fn admit(
            &self,
            obj: &mut Value,
            old: Option<&Value>,
            kind: &str,
            group: &str,
            name: &str,
        ) -> Result<(), Value> {
            self.0.admit(obj, old).map_err(|invalid| {
                cause_messages_without_field(invalid.to_status(kind, group, name))
            })
        }

        fn unknown_fields(&self, obj: &Value) -> Vec<String> {
            self.0.unknown_fields(obj)
        }
    }

    /// The apiserver's `details.causes[].message` does not repeat the field (kubectl prints
    /// `field: message`), while crd-validation's messages start with it.
    fn cause_messages_without_field(mut status: Value) -> Value {
        let causes = status
            .pointer_mut("/details/causes")
            .and_then(Value::as_array_mut);
        for cause in causes.into_iter().flatten() {
            let field = cause
                .get("field")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let message = cause
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(rest) = message.strip_prefix(&format!("{field}: ")) {
                cause["message"] = Value::String(rest.to_string());
            }
        }
        status
    }

    pub fn compile(crd: &Value, version: &str) -> Result<Option<Arc<dyn SchemaAdmitter>>, String> {
        let schema = CrdSchema::from_crd(crd, version).map_err(|e| e.to_string())?;
        Ok(Some(Arc::new(CrdValidation(schema))))
    }
}
