//! The apiserver's JSON audit log, read back for tests that check who did what (RBAC).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// One audited request (Metadata level).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: String,
    pub verb: String,
    #[serde(default, rename = "requestURI")]
    pub request_uri: String,
    pub user: AuditUser,
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub api_group: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: u16,
}

impl AuditEvent {
    /// The HTTP status of the response, when it was logged.
    pub fn code(&self) -> Option<u16> {
        self.response_status.as_ref().map(|s| s.code)
    }

    /// `resource` or `resource/subresource`, with the API group (`""` for core).
    pub fn resource(&self) -> Option<(String, String)> {
        let o = self.object_ref.as_ref()?;
        let resource = match &o.subresource {
            Some(sub) if !sub.is_empty() => format!("{}/{sub}", o.resource),
            _ => o.resource.clone(),
        };
        Some((o.api_group.clone().unwrap_or_default(), resource))
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object_ref.as_ref()?.namespace.as_deref()
    }
}

/// Every request in the log, one event each (the latest stage seen), in log order.
pub fn read(path: &Path) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut order = Vec::new();
    let mut latest: BTreeMap<String, AuditEvent> = BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<AuditEvent>(line) else {
            continue; // a line being written as we read
        };
        if !latest.contains_key(&event.audit_id) {
            order.push(event.audit_id.clone());
        }
        latest.insert(event.audit_id.clone(), event);
    }
    order
        .into_iter()
        .filter_map(|id| latest.remove(&id))
        .collect()
}
