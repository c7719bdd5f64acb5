//! Object storage: one global, monotonically increasing resourceVersion, the objects of every
//! group+resource, and a bounded history of change events that watches replay from.
//!
//! Every mutation happens under one mutex together with recording its event and publishing it
//! on a broadcast channel, so a watch that snapshots + subscribes under the same lock never
//! misses or duplicates an event.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::ownership::Managers;
use crate::registry::{self, ResourceType};

/// (group, plural): all served versions of one resource share their objects.
pub type StorageKey = (String, String);
/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub struct ChangeEvent {
    pub rv: u64,
    pub key: StorageKey,
    pub namespace: String,
    pub type_: EventType,
    pub object: Value,
    /// The object before a MODIFIED change (selector-filtered watches need it to turn a
    /// change into ADDED/DELETED when the object starts/stops matching).
    pub previous: Option<Value>,
}

pub struct Store {
    state: Mutex<State>,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (sender, _) = broadcast::channel(4096);
        let mut state = State {
            rv: 0,
            types: registry::builtin_types(),
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 0,
            managed: HashMap::new(),
            sender,
        };
        let now = crate::lifecycle::now();
        let default_ns = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "default", "uid": crate::lifecycle::new_uid(), "creationTimestamp": now},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        state.put(
            &("".into(), "namespaces".into()),
            ("".into(), "default".into()),
            default_ns,
            EventType::Added,
        );
        Store {
            state: Mutex::new(state),
        }
    }

    /// Locks the state; a poisoned lock (a panic elsewhere) still yields the data, which is
    /// consistent because every mutation is a single insert/remove.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct State {
    pub rv: u64,
    pub types: Vec<Arc<ResourceType>>,
    objects: HashMap<StorageKey, BTreeMap<ObjectKey, Value>>,
    history: VecDeque<Arc<ChangeEvent>>,
    history_limit: usize,
    /// Events with a resourceVersion <= this have been dropped from the history.
    pub compacted_rv: u64,
    /// Server-side-apply field ownership per object.
    managed: HashMap<(StorageKey, ObjectKey), Managers>,
    sender: broadcast::Sender<Arc<ChangeEvent>>,
}

impl State {
    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    pub fn get(&self, key: &StorageKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    /// Objects of one resource, in (namespace, name) order; `ns = None` means all namespaces.
    pub fn list<'a>(
        &'a self,
        key: &StorageKey,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        self.objects
            .get(key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((n, _), _)| ns.is_none_or(|want| want == n))
    }

    /// Whether any object lives in namespace `ns` (used to finish namespace deletion).
    pub fn namespace_is_empty(&self, ns: &str) -> bool {
        !self
            .objects
            .values()
            .flat_map(|m| m.keys())
            .any(|(n, _)| n == ns)
    }

    /// Keys of every namespaced object in `ns`, across resources.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<(StorageKey, ObjectKey)> {
        self.objects
            .iter()
            .flat_map(|(k, m)| {
                m.keys()
                    .filter(|(n, _)| n == ns)
                    .map(move |ok| (k.clone(), ok.clone()))
            })
            .collect()
    }

    /// Stores `obj` with a fresh resourceVersion and records the event; returns the stored object.
    pub fn put(
        &mut self,
        key: &StorageKey,
        okey: ObjectKey,
        mut obj: Value,
        type_: EventType,
    ) -> Value {
        self.rv += 1;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let ns = okey.0.clone();
        let previous = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert(okey, obj.clone());
        self.record(key, ns, type_, obj.clone(), previous);
        obj
    }

    /// Removes an object for good, recording a DELETED event at a fresh resourceVersion.
    pub fn managers(&self, key: &StorageKey, okey: &ObjectKey) -> Managers {
        self.managed
            .get(&(key.clone(), okey.clone()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn set_managers(&mut self, key: &StorageKey, okey: ObjectKey, managers: Managers) {
        self.managed.insert((key.clone(), okey), managers);
    }

    pub fn remove(&mut self, key: &StorageKey, okey: &ObjectKey) -> Option<Value> {
        let mut obj = self.objects.get_mut(key)?.remove(okey)?;
        self.managed.remove(&(key.clone(), okey.clone()));
        self.rv += 1;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        self.record(key, okey.0.clone(), EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    /// Drops a whole resource (its CRD was deleted) with DELETED events for its objects.
    pub fn drop_resource(&mut self, key: &StorageKey) {
        let keys: Vec<ObjectKey> = self
            .objects
            .get(key)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for okey in keys {
            self.remove(key, &okey);
        }
        self.objects.remove(key);
    }

    fn record(
        &mut self,
        key: &StorageKey,
        namespace: String,
        type_: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(ChangeEvent {
            rv: self.rv,
            key: key.clone(),
            namespace,
            type_,
            object,
            previous,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// Events of `key` after `from`, or `None` if part of that range has been compacted away.
    pub fn history_since(&self, key: &StorageKey, from: u64) -> Option<Vec<Arc<ChangeEvent>>> {
        if from < self.compacted_rv {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.rv > from && &e.key == key)
                .cloned()
                .collect(),
        )
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.sender.subscribe()
    }
}
