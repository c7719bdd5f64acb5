//! The resource types the server serves: a fixed set of built-ins (namespaces, secrets,
//! events, leases, CRDs) plus one entry per served version of every established CRD.

use std::sync::Arc;

use serde_json::Value;

use crate::validation::{self, SchemaAdmitter};

/// Where a printer column's cell comes from.
#[derive(Debug, Clone)]
pub enum ColumnSource {
    /// A (simple) JSONPath evaluated on the object, as CRD `additionalPrinterColumns` do.
    JsonPath(String),
    /// Number of keys under `.data` (the built-in Secret `Data` column).
    DataCount,
    /// `metadata.name`; when a type lists it, the table does not prepend its own Name column.
    Name,
    /// `kind/name` of the object an Event is about (`involvedObject` or `regarding`).
    EventObject,
    /// Age of an Event's last occurrence (last timestamp, series, event time or creation).
    EventLastSeen,
}

#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub source: ColumnSource,
}

impl PrinterColumn {
    fn path(name: &str, type_: &str, json_path: &str) -> Self {
        PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            source: ColumnSource::JsonPath(json_path.into()),
        }
    }

    /// The `Age` column every built-in type ends with.
    pub fn age() -> Self {
        Self::path("Age", "date", ".metadata.creationTimestamp")
    }
}

pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// `/status` is a separate subresource and main-resource writes ignore `.status`.
    pub status_subresource: bool,
    /// `metadata.generation` is maintained (custom resources and CRDs).
    pub tracks_generation: bool,
    pub columns: Vec<PrinterColumn>,
    pub schema: Option<Arc<dyn SchemaAdmitter>>,
    /// Name of the CRD that defines this type, if any.
    pub crd_name: Option<String>,
    /// events.k8s.io/v1 Events: stored as core v1 Events and converted on the way in and out.
    pub stored_as_core_event: bool,
}

impl std::fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceType")
            .field("group", &self.group)
            .field("version", &self.version)
            .field("plural", &self.plural)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key: all versions of one group+resource share their objects.
    pub fn storage_key(&self) -> (String, String) {
        if self.stored_as_core_event {
            return (String::new(), "events".into());
        }
        (self.group.clone(), self.plural.clone())
    }

    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            status_subresource: false,
            tracks_generation: false,
            columns: vec![PrinterColumn::age()],
            schema: None,
            crd_name: None,
            stored_as_core_event: false,
        }
    }
}

pub fn builtin_types() -> Vec<Arc<ResourceType>> {
    let mut namespaces = ResourceType::builtin("", "v1", "namespaces", "Namespace", false);
    namespaces.short_names = vec!["ns".into()];
    namespaces.status_subresource = true;
    namespaces.columns = vec![
        PrinterColumn::path("Status", "string", ".status.phase"),
        PrinterColumn::age(),
    ];

    let mut secrets = ResourceType::builtin("", "v1", "secrets", "Secret", true);
    secrets.columns = vec![
        PrinterColumn::path("Type", "string", ".type"),
        PrinterColumn {
            source: ColumnSource::DataCount,
            ..PrinterColumn::path("Data", "string", "")
        },
        PrinterColumn::age(),
    ];

    // The columns `kubectl get events` prints on a real cluster (Name only with -o wide).
    let event_columns = |message: &str, message_path: &str| {
        let computed = |name: &str, source: ColumnSource, priority: i64| PrinterColumn {
            source,
            priority,
            ..PrinterColumn::path(name, "string", "")
        };
        vec![
            computed("Last Seen", ColumnSource::EventLastSeen, 0),
            PrinterColumn::path("Type", "string", ".type"),
            PrinterColumn::path("Reason", "string", ".reason"),
            computed("Object", ColumnSource::EventObject, 0),
            PrinterColumn::path(message, "string", message_path),
            PrinterColumn {
                format: "name".into(),
                ..computed("Name", ColumnSource::Name, 1)
            },
        ]
    };
    let mut core_events = ResourceType::builtin("", "v1", "events", "Event", true);
    core_events.short_names = vec!["ev".into()];
    core_events.columns = event_columns("Message", ".message");

    let mut events = ResourceType::builtin("events.k8s.io", "v1", "events", "Event", true);
    events.stored_as_core_event = true;
    events.short_names = vec!["ev".into()];
    events.columns = event_columns("Note", ".note");

    let mut leases = ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease", true);
    leases.columns = vec![
        PrinterColumn::path("Holder", "string", ".spec.holderIdentity"),
        PrinterColumn::age(),
    ];

    let mut crds = ResourceType::builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    );
    crds.short_names = vec!["crd".into(), "crds".into()];
    crds.status_subresource = true;
    crds.tracks_generation = true;
    crds.columns = vec![PrinterColumn::path(
        "Created At",
        "string",
        ".metadata.creationTimestamp",
    )];

    [namespaces, secrets, core_events, events, leases, crds]
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// Checks the parts of a CRD the server needs and that a real apiserver would refuse if missing.
pub fn check_crd(crd: &Value) -> Result<(), String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = str_at(spec, &["group"]);
    let plural = str_at(spec, &["names", "plural"]);
    let kind = str_at(spec, &["names", "kind"]);
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err("spec.group, spec.names.plural and spec.names.kind are required".into());
    }
    let expected = format!("{plural}.{group}");
    let name = str_at(crd, &["metadata", "name"]);
    if name != expected {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions: Required value")?;
    if versions.is_empty() {
        return Err(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        return Err(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    Ok(())
}

/// The resource types (one per served version) a CRD defines; compiles each version's schema.
pub fn types_from_crd(crd: &Value) -> Result<Vec<Arc<ResourceType>>, String> {
    check_crd(crd)?;
    let spec = &crd["spec"];
    let names = &spec["names"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = str_at(names, &["kind"]);
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let vname = str_at(version, &["name"]);
        let columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| cols.iter().map(column_from_crd).collect::<Vec<_>>())
            .unwrap_or_else(|| vec![PrinterColumn::age()]);
        let schema = validation::compile(crd, &vname)?;
        let singular = match str_at(names, &["singular"]) {
            s if s.is_empty() => kind.to_lowercase(),
            s => s,
        };
        out.push(Arc::new(ResourceType {
            group: str_at(spec, &["group"]),
            version: vname,
            plural: str_at(names, &["plural"]),
            singular,
            kind: kind.clone(),
            namespaced: str_at(spec, &["scope"]) != "Cluster",
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource: version.pointer("/subresources/status").is_some(),
            tracks_generation: true,
            columns,
            schema,
            crd_name: Some(str_at(crd, &["metadata", "name"])),
            stored_as_core_event: false,
        }));
    }
    Ok(out)
}

fn column_from_crd(col: &Value) -> PrinterColumn {
    PrinterColumn {
        name: str_at(col, &["name"]),
        type_: str_at(col, &["type"]),
        format: str_at(col, &["format"]),
        description: str_at(col, &["description"]),
        priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0),
        source: ColumnSource::JsonPath(str_at(col, &["jsonPath"])),
    }
}

/// The status a CRD gets once it is registered: names accepted and established.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let spec = &crd["spec"];
    let stored: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let condition = |type_: &str, reason: &str, message: &str| {
        serde_json::json!({
            "type": type_, "status": "True", "lastTransitionTime": now,
            "reason": reason, "message": message,
        })
    };
    serde_json::json!({
        "acceptedNames": spec["names"].clone(),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

pub fn str_at(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return String::new(),
        }
    }
    cur.as_str().unwrap_or_default().to_string()
}
