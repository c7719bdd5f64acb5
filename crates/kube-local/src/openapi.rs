//! OpenAPI documents, just enough for kubectl: `/openapi/v3` lists one document per
//! group-version; each declares the PATCH operation of every resource with the
//! `fieldValidation` query parameter and `x-kubernetes-group-version-kind`, which is how
//! kubectl decides that the server validates fields itself (so it sends
//! `fieldValidation=Strict` and needs no client-side schema). CRD schemas are included as
//! component schemas (for `kubectl explain`); built-in types get permissive schemas.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::status::{ApiError, json_response};
use crate::store::State;

/// `api/v1` or `apis/{group}/{version}`: the keys of the v3 root document.
fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

fn schema_name(t: &ResourceType) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    let group = if t.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        reversed.join(".")
    };
    format!("{group}.{}.{}", t.version, t.kind)
}

fn type_schema(state: &State, t: &ResourceType) -> Value {
    let gvk = json!([{"group": t.group, "version": t.version, "kind": t.kind}]);
    let crd_schema = t.crd_name.as_ref().and_then(|crd_name| {
        let key = (
            "apiextensions.k8s.io".to_string(),
            "customresourcedefinitions".to_string(),
        );
        let crd = state.get(&key, "", crd_name)?;
        crd.pointer("/spec/versions")?
            .as_array()?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(t.version.as_str()))?
            .pointer("/schema/openAPIV3Schema")
            .cloned()
    });
    let mut schema = crd_schema
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if let Some(map) = schema.as_object_mut() {
        map.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
    schema
}

fn gv_document(state: &State, path: &str) -> Option<Value> {
    let types: Vec<_> = state.types.iter().filter(|t| gv_path(t) == path).collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let param = |name: &str, location: &str| json!({"name": name, "in": location, "schema": {"type": "string", "uniqueItems": true}});
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let name = schema_name(t);
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let content = |types: &[&str]| {
            let mut m = serde_json::Map::new();
            for ct in types {
                m.insert((*ct).to_string(), json!({"schema": reference}));
            }
            Value::Object(m)
        };
        let ok = json!({"200": {"description": "OK", "content": content(&["application/json"])}});
        let base = if t.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("/{path}/{}", t.plural)
        };
        let mut item_params = vec![param("name", "path")];
        if t.namespaced {
            item_params.push(param("namespace", "path"));
        }
        let op = |action: &str, extra: Vec<Value>, body: Option<Value>| {
            let mut o = json!({
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": extra,
                "responses": ok,
            });
            if let Some(b) = body {
                o["requestBody"] = json!({"content": b});
            }
            o
        };
        let write_params = vec![
            param("dryRun", "query"),
            param("fieldManager", "query"),
            param("fieldValidation", "query"),
        ];
        let mut patch_params = write_params.clone();
        patch_params.push(param("force", "query"));
        let patch_types = [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ];
        paths.insert(
            base.clone(),
            json!({
                "parameters": if t.namespaced { vec![param("namespace", "path")] } else { vec![] },
                "get": op("list", vec![param("labelSelector", "query"), param("fieldSelector", "query")], None),
                "post": op("post", write_params.clone(), Some(content(&["application/json", "application/yaml"]))),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "parameters": item_params,
                "get": op("get", vec![], None),
                "put": op("put", write_params, Some(content(&["application/json", "application/yaml"]))),
                "patch": op("patch", patch_params, Some(content(&patch_types))),
                "delete": op("delete", vec![], None),
            }),
        );
        schemas.insert(name, type_schema(state, t));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash_of(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

pub fn v3_root(state: &State) -> Value {
    let mut paths = BTreeMap::new();
    for t in &state.types {
        let p = gv_path(t);
        if paths.contains_key(&p) {
            continue;
        }
        if let Some(doc) = gv_document(state, &p) {
            let url = format!("/openapi/v3/{p}?hash={}", hash_of(&doc));
            paths.insert(p, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

pub fn v3_group_version(state: &State, rest: &[&str]) -> Response {
    let path = rest.join("/");
    match gv_document(state, &path) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => ApiError::not_found("", "", &path).into_response(),
    }
}

/// OpenAPI v2 is only served as JSON (no protobuf): a Swagger document with the same
/// definitions, for tools that still read v2.
pub fn v2(state: &State) -> Response {
    let mut definitions = serde_json::Map::new();
    for t in &state.types {
        definitions.insert(schema_name(t), type_schema(state, t));
    }
    let doc = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": {},
        "definitions": definitions,
    });
    json_response(StatusCode::OK, &doc)
}
