//! What this process last knew of each object's status, so a reconcile never plans from an
//! informer copy older than its own last status write.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use kube::Resource;
use serde::Serialize;

/// An object as this process last saw it stored: after its own status write, or a fresh read.
#[derive(Debug)]
struct Known {
    resource_version: String,
    status: u64,
}

/// The object each status write by this process stored (its resourceVersion and status), by
/// UID.
///
/// A reconcile starts from the informer cache, which can lag behind the status the previous
/// reconcile of the same object wrote (a trigger queued meanwhile runs as soon as that reconcile
/// ends, before the watch delivers its writes). Planning from such a copy would repeat Twilio
/// look-ups the status already answers, and could record a product this object created as
/// adopted. So such a copy is read afresh instead.
///
/// resourceVersions are opaque strings (API conventions): they tell equal from different, never
/// older from newer. A cached copy with the resourceVersion of our write is the cache caught
/// up, and so is every later copy: the entry goes. A copy with another resourceVersion is older
/// or newer (someone else wrote since); its status tells which matters: showing the status we
/// wrote, it plans like the stored object (a spec edit is just the next change to reconcile);
/// showing another, it predates our write (only this operator writes the status) and is stale.
/// The steady state (a copy at our own last write, or no write at all) costs no extra read.
#[derive(Debug, Default)]
pub struct WrittenVersions(Mutex<HashMap<String, Known>>);

/// A hash of `obj`'s `.status` as JSON (the same for a cached copy and a write's response).
fn status_hash<K: Serialize>(obj: &K) -> Option<u64> {
    let value = serde_json::to_value(obj).ok()?;
    let mut h = DefaultHasher::new();
    value
        .get("status")
        .unwrap_or(&serde_json::Value::Null)
        .to_string()
        .hash(&mut h);
    Some(h.finish())
}

impl WrittenVersions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `stored`: the object as this process's status write returned it, or as a fresh
    /// read returned it (then it is the newest known state).
    pub fn note<K: Resource + Serialize>(&self, stored: &K) {
        let meta = stored.meta();
        let (Some(uid), Some(resource_version), Some(status)) = (
            meta.uid.as_deref(),
            meta.resource_version.clone(),
            status_hash(stored),
        ) else {
            return;
        };
        let known = Known {
            resource_version,
            status,
        };
        self.lock().insert(uid.to_string(), known);
    }

    /// Whether `cached` may predate the last state noted for it, so must be read afresh.
    pub fn is_stale<K: Resource + Serialize>(&self, cached: &K) -> bool {
        let meta = cached.meta();
        let Some(uid) = meta.uid.as_deref() else {
            return false;
        };
        let expected = {
            let mut known = self.lock();
            let Some(k) = known.get(uid) else {
                return false;
            };
            if meta.resource_version.as_deref() == Some(k.resource_version.as_str()) {
                known.remove(uid);
                return false;
            }
            k.status
        };
        status_hash(cached) != Some(expected)
    }

    /// Forgets object `uid` (it is gone).
    pub fn forget(&self, uid: Option<&str>) {
        if let Some(uid) = uid {
            self.lock().remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Namespace, NamespaceStatus};

    use super::WrittenVersions;

    /// An object with an opaque resourceVersion and a status (a Namespace: any type with a
    /// status serves).
    fn object(uid: &str, rv: &str, phase: &str) -> Namespace {
        let mut ns = Namespace::default();
        ns.metadata.uid = Some(uid.into());
        ns.metadata.resource_version = Some(rv.into());
        ns.status = Some(NamespaceStatus {
            phase: Some(phase.into()),
            ..NamespaceStatus::default()
        });
        ns
    }

    #[test]
    fn opaque_resource_versions_are_compared_for_equality_only() {
        let versions = WrittenVersions::default();
        assert!(
            !versions.is_stale(&object("a", "v-old", "Before")),
            "never written"
        );

        // Our write stored status "Ours" at "v-ours"; none of these versions parse as numbers.
        versions.note(&object("a", "v-ours", "Ours"));
        assert!(
            versions.is_stale(&object("a", "v-old", "Before")),
            "an older copy: another version, another status"
        );
        assert!(
            !versions.is_stale(&object("a", "zz-spec-edit", "Ours")),
            "a newer copy (someone else's write after ours) shows our status"
        );
        assert!(
            !versions.is_stale(&object("b", "v-old", "Before")),
            "another object"
        );

        // The cache at our write: caught up, and the entry goes (later copies are newer).
        assert!(!versions.is_stale(&object("a", "v-ours", "Ours")));
        assert!(!versions.is_stale(&object("a", "v-other", "Before")));
    }

    #[test]
    fn a_fresh_read_becomes_the_state_to_catch_up_with() {
        let versions = WrittenVersions::default();
        versions.note(&object("a", "w1", "Ours"));
        assert!(versions.is_stale(&object("a", "w0", "Before")));
        // The fresh read finds our status at a newer version (a spec edit since).
        versions.note(&object("a", "w2", "Ours"));
        assert!(versions.is_stale(&object("a", "w0", "Before")));
        assert!(!versions.is_stale(&object("a", "w1", "Ours")));
        assert!(!versions.is_stale(&object("a", "w2", "Ours")));
        assert!(
            !versions.is_stale(&object("a", "w0", "Before")),
            "caught up: forgotten"
        );

        versions.note(&object("a", "w3", "Ours"));
        versions.forget(Some("a"));
        assert!(!versions.is_stale(&object("a", "w0", "Before")));
    }
}
