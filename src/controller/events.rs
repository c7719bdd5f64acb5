//! Publishing Kubernetes Events (`events.k8s.io/v1`) about the operator's objects, with an
//! Event repeated within a few minutes folded into one Event's `series` (count and last time),
//! the way client-go's recorder does.
//!
//! Why not kube's `Recorder`: it keeps every Event it published, whole, for six minutes, keyed by
//! the object reference *including its resourceVersion* (so a status write between two repeats
//! defeats the folding anyway). An onboarding of 1,000 Trust Products publishes about 13,000
//! Events; that cache then took 35 MB, more than everything else the controller holds
//! (`docs/benchmarks.md`). Here a repeat is recognised by a 64-bit hash of what makes two Events
//! the same, and only the name and count of the Event to patch are kept, in a map bounded both
//! in age ([`SERIES_TTL`]) and in size ([`SERIES_CAPACITY`]). Forgetting a series early costs
//! nothing but a new Event object instead of a patched count.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Client};

/// How long a published Event can still be folded into (client-go uses the same six minutes).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);
/// At most this many series are remembered; beyond it the oldest is forgotten.
pub const SERIES_CAPACITY: usize = 4096;
/// Expired series are swept at most this often (a sweep walks the whole map).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// One Event to publish about an object.
#[derive(Clone, Debug)]
pub struct EventNote<'a> {
    /// Normal or Warning.
    pub type_: EventType,
    /// Machine-readable, CamelCase (`NumberAttached`).
    pub reason: &'a str,
    /// What the controller did or tried (`AttachNumber`).
    pub action: &'a str,
    /// For people; never holds a secret.
    pub note: &'a str,
}

/// A published Event that a repeat patches instead of creating another.
#[derive(Clone, Debug, PartialEq)]
struct Series {
    namespace: String,
    name: String,
    count: i32,
    last: Instant,
}

/// The remembered series, bounded in age and size. Pure bookkeeping, no I/O.
#[derive(Debug)]
struct SeriesCache {
    entries: HashMap<u64, Series>,
    last_sweep: Instant,
    ttl: Duration,
    capacity: usize,
}

impl SeriesCache {
    fn new(ttl: Duration, capacity: usize, now: Instant) -> Self {
        Self {
            entries: HashMap::new(),
            last_sweep: now,
            ttl,
            capacity,
        }
    }

    /// The live series under `key`, if any.
    fn get(&mut self, key: u64, now: Instant) -> Option<Series> {
        self.sweep(now);
        self.entries
            .get(&key)
            .filter(|s| now.duration_since(s.last) < self.ttl)
            .cloned()
    }

    fn put(&mut self, key: u64, series: Series, now: Instant) {
        self.sweep(now);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, series);
    }

    fn forget(&mut self, key: u64) {
        self.entries.remove(&key);
    }

    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        let ttl = self.ttl;
        self.entries.retain(|_, s| now.duration_since(s.last) < ttl);
        if self.entries.capacity() > 2 * self.entries.len() + 64 {
            self.entries.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What makes two Events the same one: the object (by UID, not resourceVersion, which every
/// status write changes), type, reason, action and note.
fn series_key(regarding: &ObjectReference, event: &EventNote<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &regarding.api_version,
        &regarding.kind,
        &regarding.namespace,
        &regarding.name,
        &regarding.uid,
    )
        .hash(&mut h);
    matches!(event.type_, EventType::Warning).hash(&mut h);
    (event.reason, event.action, event.note).hash(&mut h);
    h.finish()
}

/// Publishes Events as `reporting_controller` / `reporting_instance`.
pub struct EventPublisher {
    client: Client,
    controller: String,
    instance: String,
    series: Mutex<SeriesCache>,
}

impl EventPublisher {
    /// A publisher reporting as `controller` (e.g. `trusthub-operator`) from `instance` (the
    /// pod name; the controller name when unknown).
    pub fn new(client: Client, controller: String, instance: Option<String>) -> Self {
        let instance = instance.unwrap_or_else(|| controller.clone());
        Self {
            client,
            controller,
            instance,
            series: Mutex::new(SeriesCache::new(
                SERIES_TTL,
                SERIES_CAPACITY,
                Instant::now(),
            )),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `event` about `regarding`, in the object's namespace: a repeat within
    /// [`SERIES_TTL`] patches the earlier Event's series, anything else creates an Event.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event: &EventNote<'_>,
    ) -> Result<(), kube::Error> {
        let key = series_key(regarding, event);
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let at = Timestamp::now();
        let earlier = self.cache().get(key, Instant::now());
        if let Some(series) = earlier {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &series.namespace);
            let count = series.count.saturating_add(1);
            let patch = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(at) },
            });
            match api
                .patch(&series.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    let now = Instant::now();
                    self.cache().put(
                        key,
                        Series {
                            count,
                            last: now,
                            ..series
                        },
                        now,
                    );
                    return Ok(());
                }
                // Expired or deleted meanwhile: start a new Event.
                Err(kube::Error::Api(status)) if status.code == 404 => self.cache().forget(key),
                Err(e) => return Err(e),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            at.as_nanosecond()
        );
        let created = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(at)),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            reason: Some(event.reason.into()),
            action: Some(event.action.into()),
            note: Some(event.note.into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &created).await?;
        let now = Instant::now();
        self.cache().put(
            key,
            Series {
                namespace,
                name,
                count: 1,
                last: now,
            },
            now,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, last: Instant) -> Series {
        Series {
            namespace: "ns".into(),
            name: name.into(),
            count: 1,
            last,
        }
    }

    fn reference(name: &str, uid: &str, rv: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("trusthub.twilio.com/v1alpha1".into()),
            kind: Some("ShakenStirTrustProduct".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        }
    }

    fn note<'a>(reason: &'a str, text: &'a str) -> EventNote<'a> {
        EventNote {
            type_: EventType::Normal,
            reason,
            action: "Act",
            note: text,
        }
    }

    #[test]
    fn the_same_event_keys_alike_across_resource_versions() {
        let a = series_key(&reference("p", "u1", "10"), &note("R", "n"));
        let b = series_key(&reference("p", "u1", "11"), &note("R", "n"));
        assert_eq!(a, b);
    }

    #[test]
    fn a_different_note_object_or_reason_is_a_different_event() {
        let base = series_key(&reference("p", "u1", "1"), &note("R", "n"));
        for other in [
            series_key(&reference("p", "u1", "1"), &note("R", "other note")),
            series_key(&reference("p", "u1", "1"), &note("Other", "n")),
            series_key(&reference("q", "u2", "1"), &note("R", "n")),
            series_key(&reference("p", "u3", "1"), &note("R", "n")),
        ] {
            assert_ne!(base, other);
        }
        let warning = EventNote {
            type_: EventType::Warning,
            ..note("R", "n")
        };
        assert_ne!(base, series_key(&reference("p", "u1", "1"), &warning));
    }

    #[test]
    fn a_series_expires_after_the_ttl() {
        let t0 = Instant::now();
        let mut cache = SeriesCache::new(Duration::from_secs(60), 10, t0);
        cache.put(1, series("e1", t0), t0);
        assert_eq!(
            cache.get(1, t0 + Duration::from_secs(59)),
            Some(series("e1", t0))
        );
        assert_eq!(cache.get(1, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn the_sweep_drops_expired_series() {
        let t0 = Instant::now();
        let mut cache = SeriesCache::new(Duration::from_secs(60), 100, t0);
        for k in 0..50 {
            cache.put(k, series("e", t0), t0);
        }
        let later = t0 + Duration::from_secs(30);
        cache.put(99, series("fresh", later), later);
        assert_eq!(cache.len(), 51);
        let past_ttl = t0 + Duration::from_secs(61);
        assert_eq!(
            cache.get(99, past_ttl).map(|s| s.name),
            Some("fresh".into())
        );
        assert_eq!(cache.len(), 1, "the 50 expired series are swept");
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity_and_forgets_the_oldest() {
        let t0 = Instant::now();
        let mut cache = SeriesCache::new(Duration::from_secs(3600), 3, t0);
        for k in 0..10u64 {
            let at = t0 + Duration::from_millis(k);
            cache.put(k, series(&format!("e{k}"), at), at);
            assert!(cache.len() <= 3);
        }
        let now = t0 + Duration::from_millis(20);
        assert_eq!(cache.get(9, now).map(|s| s.name), Some("e9".into()));
        assert_eq!(cache.get(8, now).map(|s| s.name), Some("e8".into()));
        assert_eq!(cache.get(0, now), None);
    }

    #[test]
    fn replacing_a_series_at_capacity_evicts_nothing() {
        let t0 = Instant::now();
        let mut cache = SeriesCache::new(Duration::from_secs(3600), 2, t0);
        cache.put(1, series("a", t0), t0);
        cache.put(2, series("b", t0), t0);
        cache.put(1, series("a2", t0), t0);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(2, t0).map(|s| s.name), Some("b".into()));
    }
}
