//! Writing `.status` and Events.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::book::{Book, Booked, BookedObject, Recalled};
use super::events::EventNote;
use super::{Context, ErrorClass, ReconcileError};
use crate::api::{find_condition, set_condition};
use crate::planner::{ConditionSpec, expiry, text};

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
                message: text::bounded(c.message.as_str(), text::CONDITION_MESSAGE_MAX),
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

/// The merge patch writing `new` over `old` as the status of the object at
/// `resource_version`: the version is a precondition, so the API refuses the write (409
/// Conflict) once anyone else has changed the object since.
pub fn status_patch(resource_version: Option<&str>, old: &Value, new: &Value) -> Value {
    let mut patch = serde_json::json!({ "status": merge_diff(old, new) });
    if let Some(rv) = resource_version {
        patch["metadata"] = serde_json::json!({ "resourceVersion": rv });
    }
    patch
}

/// Writes `new` as the status of `obj` (whose current status is `old`), through the status
/// subresource, on the condition that `obj` is still at `resource_version`; does nothing when
/// they are equal. Returns the stored object when it wrote.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    obj: &K,
    resource_version: Option<&str>,
    old: &S,
    new: &S,
) -> Result<Option<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if old == new {
        return Ok(None);
    }
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    let patch = status_patch(resource_version, &old, &new);
    let stored = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(Some(stored))
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
        note: &text::bounded(note, text::EVENT_NOTE_MAX),
    };
    if let Err(e) = ctx.events.publish(&obj.object_ref(&()), &ev).await {
        tracing::debug!(error = %e, reason, "could not publish event");
    }
}

/// A Warning Event when the `ExpiringSoon` condition enters `ExpiringSoon` or `Expired` (from
/// `before`, the conditions at the start of the reconcile, to `after`, those just written), and
/// a Normal one when a lapsing approval is renewed; nothing while it stays where it was.
pub async fn announce_expiry<K>(ctx: &Context, obj: &K, before: &[Condition], after: &[Condition])
where
    K: Resource<DynamicType = ()>,
{
    let reason_of = |conditions: &[Condition]| {
        find_condition(conditions, expiry::CONDITION).map(|c| (c.reason.clone(), c.message.clone()))
    };
    let (Some((now, message)), was) = (reason_of(after), reason_of(before)) else {
        return;
    };
    let was = was.map(|(reason, _)| reason);
    if was.as_deref() == Some(now.as_str()) {
        return;
    }
    let lapsing = |r: Option<&str>| matches!(r, Some("ExpiringSoon" | "Expired"));
    if lapsing(Some(&now)) {
        event(ctx, obj, EventType::Warning, &now, "Vetting", message).await;
    } else if now == "Valid" && lapsing(was.as_deref()) {
        event(
            ctx,
            obj,
            EventType::Normal,
            "ApprovalRenewed",
            "Vetting",
            message,
        )
        .await;
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
/// against what it last wrote, on the condition that nobody else changed the object since the
/// version the reconcile planned from (then the write fails with [`ReconcileError::Superseded`]
/// and the next reconcile plans from the newer copy). The API gets the abridged copy
/// ([`Abridge`]); the full status is kept in the operator's [`Book`].
pub struct StatusWriter<'a, K: BookedObject, S> {
    api: &'a Api<K>,
    obj: &'a K,
    book: &'a Book<S>,
    /// The informer cache of `K`: the book keeps a run of writes only while it lags.
    cache: Option<&'a Store<K>>,
    /// The resourceVersion the next write is based on: the planned copy's, then each write's.
    resource_version: Option<String>,
    /// The status as the API holds it.
    stored: Arc<S>,
    /// The full status as last written (or as recalled at the start of the reconcile: from the
    /// book, else the API's copy, then possibly abridged), shared with the book: at 50,000
    /// numbers a copy is tens of MiB.
    pub written: Arc<S>,
    /// When the reconcile began (this writer is made at its start): observations made since
    /// then are this reconcile's.
    pub started: std::time::Instant,
}

impl<'a, K, S> StatusWriter<'a, K, S>
where
    K: BookedObject<Status = S> + DeserializeOwned + Serialize + Debug,
    S: Booked,
{
    /// A writer for `obj` (as [`super::book::Books::caught_up`] returned it), whose stored
    /// status is `stored`; each write is kept in the context's books.
    pub fn new(api: &'a Api<K>, obj: &'a K, stored: Option<&S>, ctx: &'a Context) -> Self {
        let book = S::book(&ctx.books);
        let stored_copy = Arc::new(stored.cloned().unwrap_or_default());
        // The stored status is the full one unless it is abridged: then one copy serves both.
        let written = match book.recall_ref(obj.meta().uid.as_deref(), stored) {
            Recalled::Kept(full) => full,
            Recalled::Stored(_) | Recalled::Empty(_) => stored_copy.clone(),
        };
        Self {
            api,
            obj,
            book,
            cache: K::cache(ctx),
            resource_version: obj.meta().resource_version.clone(),
            stored: stored_copy,
            written,
            started: std::time::Instant::now(),
        }
    }

    /// Writes `new` (a no-op for the API when its abridged copy did not change).
    pub async fn write(&mut self, mut new: S) -> Result<(), ReconcileError> {
        let stored = Arc::new(new.abridged());
        // Kept before the write, so the watch event of the write never finds the book older
        // than itself; a write that fails puts back what the API still holds.
        let uid = self.obj.meta().uid.as_deref();
        // A status stored whole is its own full record: one copy, not two, for each of
        // 1,000 small objects.
        let full = if stored.is_abridged() {
            Arc::new(new)
        } else {
            stored.clone()
        };
        self.book.keep(uid, &stored, &full);
        let rv = self.resource_version.as_deref();
        match patch_status(self.api, self.obj, rv, &*self.stored, &*stored).await {
            Ok(Some(written)) => {
                let written_rv = written.meta().resource_version.clone();
                if let (Some(base), Some(now)) = (rv, written_rv.clone()) {
                    let cached = || self.cached_version();
                    self.book.confirm(uid, base, now, stored.clone(), cached);
                }
                self.resource_version = written_rv;
            }
            Ok(None) => {}
            Err(e) => {
                self.book.keep(uid, &self.stored, &self.written);
                return Err(superseded_or(e));
            }
        }
        self.stored = stored;
        self.written = full;
        Ok(())
    }
}

impl<K, S> StatusWriter<'_, K, S>
where
    K: BookedObject<Status = S>,
{
    /// The resourceVersion of the informer cache's copy of the object.
    fn cached_version(&self) -> Option<String> {
        let cached = self.cache?.get(&ObjectRef::from_obj(self.obj))?;
        cached.meta().resource_version.clone()
    }
}

/// A status write's failure: [`ReconcileError::Superseded`] when the object changed since the
/// version the write was based on.
fn superseded_or(e: kube::Error) -> ReconcileError {
    match &e {
        kube::Error::Api(status) if status.code == 409 => ReconcileError::Superseded,
        _ => ReconcileError::Kube(e),
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
    K: BookedObject<Status = S> + DeserializeOwned + Serialize + Debug,
    S: Booked,
{
    if let ReconcileError::Superseded = err {
        // The object changed under this reconcile: any write would be refused too.
        return Err(err);
    }
    let generation = writer.obj.meta().generation;
    let mut status = S::clone(&writer.written);
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
        let failure = !matches!(err, ReconcileError::Waiting { .. });
        if failure {
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
        Err(ReconcileError::Recorded { reason, failure })
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{merge_diff, status_patch};

    #[test]
    fn removed_fields_become_null_and_unchanged_fields_are_left_out() {
        let old = json!({"a": 1, "gone": "x", "nested": {"keep": 1, "drop": 2}, "list": [1, 2]});
        let new = json!({"a": 2, "nested": {"keep": 1}, "list": [1], "added": true});
        assert_eq!(
            merge_diff(&old, &new),
            json!({"a": 2, "gone": null, "nested": {"drop": null}, "list": [1], "added": true})
        );
    }

    #[test]
    fn a_status_patch_carries_the_version_it_was_planned_from() {
        let (old, new) = (json!({"a": 1}), json!({"a": 2}));
        assert_eq!(
            status_patch(Some("41"), &old, &new),
            json!({"metadata": {"resourceVersion": "41"}, "status": {"a": 2}})
        );
        assert_eq!(status_patch(None, &old, &new), json!({"status": {"a": 2}}));
    }
}
