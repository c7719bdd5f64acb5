//! Writing `.status` and Events.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::events::EventNote;
use super::{Context, ErrorClass, ReconcileError};
use crate::api::set_condition;
use crate::planner::ConditionSpec;

/// Now, as a Kubernetes `Time`.
pub fn now() -> Time {
    Time(Timestamp::now())
}

/// Sets each planned condition (plus its `observedGeneration`), keeping transition times of
/// conditions whose status did not change.
pub fn apply_conditions(
    conditions: &mut Vec<Condition>,
    planned: &[ConditionSpec],
    generation: Option<i64>,
) {
    let at = now();
    for c in planned {
        set_condition(
            conditions,
            Condition {
                type_: c.type_.to_string(),
                status: c.status.to_string(),
                reason: c.reason.to_string(),
                message: c.message.clone(),
                observed_generation: generation,
                last_transition_time: at.clone(),
            },
        );
    }
}

/// A JSON merge patch turning `old` into `new`: fields that disappeared are sent as `null`
/// (a plain merge patch of `new` would leave them in place), arrays are replaced whole.
pub fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) => {
                        out.insert(k.clone(), merge_diff(ov, v));
                    }
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        (_, n) => n.clone(),
    }
}

/// Writes `new` as the status of `obj` (whose current status is `old`), through the status
/// subresource; does nothing when they are equal. Returns the stored object's new
/// resourceVersion when it wrote.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    obj: &K,
    old: &S,
    new: &S,
) -> Result<Option<String>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if old == new {
        return Ok(None);
    }
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    let patch = serde_json::json!({ "status": merge_diff(&old, &new) });
    let stored = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(stored.meta().resource_version.clone())
}

/// The resourceVersion of each object's last status write by this process, by UID.
///
/// A reconcile starts from the informer cache, which can lag behind the status the previous
/// reconcile of the same object wrote (a trigger queued meanwhile runs as soon as that reconcile
/// ends, before the watch delivers its writes). Planning from such a copy would repeat Twilio
/// look-ups the status already answers, and could record a product this object created as
/// adopted. So a cached object older than our own last write is read afresh instead.
/// resourceVersions are compared as numbers, which they are on every API server in use
/// (etcd revisions) though the API calls them opaque; anything else is never called stale.
#[derive(Debug, Default)]
pub struct WrittenVersions(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl WrittenVersions {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the status write to object `uid` produced `resource_version`.
    pub fn note(&self, uid: Option<&str>, resource_version: Option<&str>) {
        let (Some(uid), Some(rv)) = (uid, resource_version.and_then(|v| v.parse::<u64>().ok()))
        else {
            return;
        };
        let mut versions = self.lock();
        let entry = versions.entry(uid.to_string()).or_insert(rv);
        *entry = (*entry).max(rv);
    }

    /// Whether `meta` is older than this process's last status write to the same object.
    pub fn is_stale(&self, meta: &kube::core::ObjectMeta) -> bool {
        let (Some(uid), Some(rv)) = (
            meta.uid.as_deref(),
            meta.resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
        ) else {
            return false;
        };
        self.lock().get(uid).is_some_and(|written| rv < *written)
    }

    /// Forgets object `uid` (it is gone).
    pub fn forget(&self, uid: Option<&str>) {
        if let Some(uid) = uid {
            self.lock().remove(uid);
        }
    }
}

/// Publishes an Event about `obj`; failures to publish are logged, never fatal.
pub async fn event<K>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    let ev = EventNote {
        type_,
        reason,
        action,
        note: &note,
    };
    if let Err(e) = ctx.events.publish(&obj.object_ref(&()), &ev).await {
        tracing::debug!(error = %e, reason, "could not publish event");
    }
}

/// A status with conditions: what [`StatusWriter`] and [`report_error`] need.
pub trait Conditioned: Default + Clone + Serialize + PartialEq + Send + Sync {
    /// `.status.conditions`.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Sets `.status.observedGeneration` and `.status.lastSyncTime`.
    fn mark_synced(&mut self, generation: Option<i64>);
}

impl Conditioned for crate::api::BusinessProfileBindingStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn mark_synced(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
        self.last_sync_time = Some(now());
    }
}

impl Conditioned for crate::api::ShakenStirTrustProductStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn mark_synced(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
        self.last_sync_time = Some(now());
    }
}

/// Writes an object's status as it evolves during one reconcile, each time as a merge patch
/// against what it last wrote.
pub struct StatusWriter<'a, K, S> {
    api: &'a Api<K>,
    obj: &'a K,
    versions: &'a WrittenVersions,
    /// The status as last written (or as read at the start of the reconcile).
    pub written: S,
}

impl<'a, K, S> StatusWriter<'a, K, S>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    S: Conditioned,
{
    /// A writer for `obj`, whose stored status is `current`; each write is noted in `versions`.
    pub fn new(api: &'a Api<K>, obj: &'a K, current: S, versions: &'a WrittenVersions) -> Self {
        Self {
            api,
            obj,
            versions,
            written: current,
        }
    }

    /// Writes `new` (a no-op when nothing changed).
    pub async fn write(&mut self, new: S) -> Result<(), kube::Error> {
        if let Some(rv) = patch_status(self.api, self.obj, &self.written, &new).await? {
            self.versions
                .note(self.obj.meta().uid.as_deref(), Some(rv.as_str()));
        }
        self.written = new;
        Ok(())
    }
}

/// Records a failed reconcile: `Synced=False` always; for a terminal error also `Ready=False`
/// with the error's reason and a Warning Event, then a slow recheck. Transient errors are
/// returned so the controller backs off.
pub async fn report_error<K, S>(
    ctx: &Context,
    writer: &mut StatusWriter<'_, K, S>,
    err: ReconcileError,
) -> Result<kube::runtime::controller::Action, ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Conditioned,
{
    let generation = writer.obj.meta().generation;
    let mut status = writer.written.clone();
    let reason = err.reason();
    let message = err.to_string();
    let terminal = err.class() == ErrorClass::Terminal;
    let mut planned = vec![ConditionSpec::not("Synced", reason, message.clone())];
    if terminal {
        planned.push(ConditionSpec::not("Ready", reason, message.clone()));
    }
    apply_conditions(status.conditions_mut(), &planned, generation);
    status.mark_synced(generation);
    if let Err(e) = writer.write(status).await {
        tracing::warn!(error = %e, "could not record the error in status");
    }
    if terminal {
        // Waiting for the cluster is not a failure; everything else terminal is.
        if !matches!(err, ReconcileError::Waiting { .. }) {
            super::note_recorded_failure(reason);
            event(
                ctx,
                writer.obj,
                EventType::Warning,
                reason,
                "Reconcile",
                message,
            )
            .await;
        }
        Ok(kube::runtime::controller::Action::requeue(
            ctx.config.terminal_recheck,
        ))
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_diff;

    #[test]
    fn a_cached_object_older_than_our_last_write_is_stale() {
        use super::WrittenVersions;
        use kube::core::ObjectMeta;
        let meta = |uid: &str, rv: &str| ObjectMeta {
            uid: Some(uid.into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        };
        let versions = WrittenVersions::default();
        assert!(!versions.is_stale(&meta("a", "5")), "never written");
        versions.note(Some("a"), Some("10"));
        versions.note(Some("a"), Some("7"));
        assert!(versions.is_stale(&meta("a", "9")));
        assert!(!versions.is_stale(&meta("a", "10")));
        assert!(!versions.is_stale(&meta("a", "12")), "a newer spec edit");
        assert!(!versions.is_stale(&meta("b", "1")), "another object");
        assert!(!versions.is_stale(&meta("a", "opaque")), "non-numeric");
        versions.forget(Some("a"));
        assert!(!versions.is_stale(&meta("a", "9")));
    }

    #[test]
    fn removed_fields_become_null_and_unchanged_fields_are_left_out() {
        let old = json!({"a": 1, "gone": "x", "nested": {"keep": 1, "drop": 2}, "list": [1, 2]});
        let new = json!({"a": 2, "nested": {"keep": 1}, "list": [1], "added": true});
        assert_eq!(
            merge_diff(&old, &new),
            json!({"a": 2, "gone": null, "nested": {"drop": null}, "list": [1], "added": true})
        );
    }
}
