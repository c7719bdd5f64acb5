//! The committed CRDs are exactly what `crdgen` generates from the Rust types, and they are
//! valid apiextensions.k8s.io/v1 CRDs with structural schemas.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use trusthub_operator::api;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds")
}

#[test]
fn committed_crds_match_crdgen_byte_for_byte() {
    let generated = api::crds();
    let mut committed: Vec<String> = std::fs::read_dir(crds_dir())
        .expect("crds/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    committed.sort();
    let mut expected: Vec<String> = generated.iter().map(|(f, _)| (*f).to_string()).collect();
    expected.sort();
    assert_eq!(committed, expected, "crds/ holds exactly one file per CRD");
    for (file, crd) in generated {
        let on_disk = std::fs::read_to_string(crds_dir().join(file)).expect("read CRD file");
        assert!(
            on_disk == api::crd_yaml(&crd).expect("serialize"),
            "crds/{file} is stale: run `cargo run --bin crdgen` and commit the result"
        );
    }
}

#[test]
fn crds_parse_as_apiextensions_v1() {
    for (file, _) in api::crds() {
        let text = std::fs::read_to_string(crds_dir().join(file)).expect("read CRD file");
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("parses as a CRD");
        assert_eq!(crd.spec.group, api::GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["trusthub".to_string()][..])
        );
        assert_eq!(crd.spec.versions.len(), 1);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, api::VERSION);
        assert!(version.served && version.storage);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{file}: status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for wanted in ["Numbers", "Ready", "Age"] {
            assert!(
                columns.contains(&wanted),
                "{file}: printer column {wanted} in {columns:?}"
            );
        }
        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .expect("schema to JSON");
        let mut problems = Vec::new();
        check_structural(&schema, "", &mut problems);
        assert!(
            problems.is_empty(),
            "{file} is not structural: {problems:#?}"
        );
    }
}

#[test]
fn short_names_are_bpb_and_sstp() {
    let names: Vec<(String, Vec<String>)> = api::crds()
        .into_iter()
        .map(|(_, crd)| {
            (
                crd.spec.names.kind,
                crd.spec.names.short_names.unwrap_or_default(),
            )
        })
        .collect();
    assert!(names.contains(&("BusinessProfileBinding".into(), vec!["bpb".into()])));
    assert!(names.contains(&("ShakenStirTrustProduct".into(), vec!["sstp".into()])));
}

/// The apiserver's structural-schema rules that matter for generated schemas: every node has a
/// type (unless it preserves unknown fields or is int-or-string), `properties` only on objects,
/// `items` only on arrays, no junctors or references, list-map keys required, descriptions
/// everywhere under `spec` (they are what `kubectl explain` prints).
fn check_structural(node: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        problems.push(format!("{path}: schema node is not an object"));
        return;
    };
    for forbidden in [
        "$ref",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "definitions",
        "$defs",
    ] {
        if obj.contains_key(forbidden) {
            problems.push(format!("{path}: uses {forbidden}"));
        }
    }
    let ty = obj.get("type").and_then(Value::as_str);
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if ty.is_none() && !preserve && !int_or_string {
        problems.push(format!("{path}: no type"));
    }
    if path.starts_with(".spec") && !obj.contains_key("description") && !path.ends_with("[]") {
        problems.push(format!("{path}: no description"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        if ty != Some("object") {
            problems.push(format!("{path}: properties on a non-object"));
        }
        for (name, sub) in props {
            check_structural(sub, &format!("{path}.{name}"), problems);
        }
    }
    if let Some(items) = obj.get("items") {
        if ty != Some("array") {
            problems.push(format!("{path}: items on a non-array"));
        }
        check_structural(items, &format!("{path}[]"), problems);
    }
    if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let required: Vec<&str> = node
            .pointer("/items/required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for key in obj
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !key.as_str().is_some_and(|k| required.contains(&k)) {
                problems.push(format!("{path}: list-map key {key} is not required"));
            }
        }
    }
}
