//! Discovery: `/version`, `/api`, `/apis`, `/apis/{group}` and the per-group-version
//! `APIResourceList`s, plus aggregated discovery (`apidiscovery.k8s.io/v2`
//! `APIGroupDiscoveryList` on `/api` and `/apis`, what kubectl 1.35 and kube-rs'
//! `Discovery::run_aggregated` ask for). CRD-defined resources appear as soon as their CRD
//! exists.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::store::State;

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "gitVersion": "v1.36.0-kube-local",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

/// Group name -> versions in registration order (first is preferred).
fn groups(state: &State) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in state.types.iter().filter(|t| !t.group.is_empty()) {
        let versions = groups.entry(t.group.clone()).or_default();
        if !versions.contains(&t.version) {
            versions.push(t.version.clone());
        }
    }
    groups
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

pub fn group_list(state: &State) -> Value {
    let groups: Vec<Value> = groups(state)
        .iter()
        .map(|(name, versions)| group_doc(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(state: &State, name: &str) -> Option<Value> {
    let groups = groups(state);
    let versions = groups.get(name)?;
    let mut doc = group_doc(name, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": VERBS,
        "shortNames": t.short_names,
        "categories": t.categories,
    })];
    if t.status_subresource {
        out.push(json!({
            "name": format!("{}/status", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}

pub fn resource_list(state: &State, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = state
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(|t| resource_entries(t))
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// The media type of aggregated discovery v2 responses.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header prefers aggregated discovery v2 (kubectl lists it first).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let response_kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let mut resource = json!({
        "resource": t.plural,
        "responseKind": response_kind,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": VERBS,
    });
    if !t.short_names.is_empty() {
        resource["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        resource["categories"] = json!(t.categories);
    }
    if t.status_subresource {
        resource["subresources"] = json!([{
            "subresource": "status",
            "responseKind": response_kind,
            "verbs": ["get", "patch", "update"],
        }]);
    }
    resource
}

/// `APIGroupDiscoveryList` of the core group (`core = true`, for `/api`) or of all named
/// groups (for `/apis`); versions are listed preferred first.
pub fn aggregated(state: &State, core: bool) -> Value {
    let mut order: Vec<String> = Vec::new();
    let mut by_group: BTreeMap<String, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    for t in state.types.iter().filter(|t| t.group.is_empty() == core) {
        if !order.contains(&t.group) {
            order.push(t.group.clone());
        }
        let versions = by_group.entry(t.group.clone()).or_default();
        let idx = match versions.iter().position(|(v, _)| v == &t.version) {
            Some(i) => i,
            None => {
                versions.push((t.version.clone(), Vec::new()));
                versions.len() - 1
            }
        };
        versions[idx].1.push(aggregated_resource(t));
    }
    let items: Vec<Value> = order
        .iter()
        .map(|group| {
            let versions: Vec<Value> = by_group
                .remove(group)
                .unwrap_or_default()
                .into_iter()
                .map(|(version, resources)| {
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
