//! The watches behind the controllers: what in a custom resource triggers a reconcile, the
//! caches shared by two subscribers, what is trimmed from cached objects, and which objects a
//! Secret or a binding change wakes up.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::BusinessProfileBinding;

/// What makes a custom resource worth reconciling again: its spec (generation), the resubmit
/// and discover annotations, a status callback recorded by a standby replica, its finalizers and deletion.
/// Status writes, the operator's own, are left out, so recording `lastSyncTime` never
/// re-triggers a reconcile (and another round of Twilio reads).
pub(super) fn trigger_hash<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.uid.hash(&mut h);
    meta.generation.hash(&mut h);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(crate::api::RESUBMIT_ANNOTATION))
        .hash(&mut h);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(crate::api::CALLBACK_ANNOTATION))
        .hash(&mut h);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(crate::api::DISCOVER_ANNOTATION))
        .hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Objects a shared cache's subscriber can queue before the watch waits for it.
const SHARED_BUFFER: usize = 256;

/// One watch (`events`), its objects trimmed by `trim`, feeding one cache shared by two
/// subscribers, each of which sees an object only once the cache holds it. The future drives
/// the watch; it ends only if the watch does. `None` if the cache cannot be subscribed to.
pub(super) fn shared_watch<K>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    trim: fn(&mut K),
) -> Option<(
    Store<K>,
    [ReflectHandle<K>; 2],
    impl std::future::Future<Output = ()> + Send,
)>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store_shared(SHARED_BUFFER);
    let subscribers = [writer.subscribe()?, writer.subscribe()?];
    let watch = events
        .modify(trim)
        .reflect_shared(writer)
        .for_each(|_| futures::future::ready(()));
    Some((reader, subscribers, watch))
}

/// The objects of a shared-cache subscription whose `hash` changed since last seen (what
/// `predicate_filter` does for a plain watch stream), as shared references again.
pub(super) fn changed_only<K>(
    changes: impl futures::Stream<Item = Arc<K>> + Send + 'static,
    hash: fn(&K) -> Option<u64>,
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource + Clone + Send + Sync + 'static,
{
    changes
        .map(|obj| Ok::<K, watcher::Error>(obj.as_ref().clone()))
        .predicate_filter(hash, PredicateConfig::default())
        .filter_map(|changed| futures::future::ready(changed.ok().map(Arc::new)))
}

/// Drops what the controllers never read from the objects they cache: `managedFields` (a real
/// API server records one entry per field manager, often as large as the object itself) and the
/// client-side `kubectl apply` annotation (a second copy of the whole manifest). Status writes
/// are merge patches of the status alone, so nothing dropped here is ever written back.
pub(super) fn trim_for_cache<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// Keeps only the identity and version of a watched Secret: a Secret's labels and annotations
/// are of no use here, and a client-side `kubectl apply` annotation would hold its data.
pub(super) fn trim_secret_meta(secret: &mut PartialObjectMeta<Secret>) {
    let meta = &mut secret.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
    meta.owner_references = None;
}

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a Trust Product needs from its binding: the profile and the assigned numbers.
pub(super) fn binding_outcome_hash(binding: &BusinessProfileBinding) -> Option<u64> {
    let mut h = DefaultHasher::new();
    binding.metadata.uid.hash(&mut h);
    if let Some(status) = &binding.status {
        status
            .business_profile
            .as_ref()
            .map(|p| &p.sid)
            .hash(&mut h);
        // The digest covers every assigned number, also those an abridged status leaves out.
        status.numbers_digest.hash(&mut h);
        for n in &status.phone_numbers {
            (
                &n.sid,
                &n.phone_number,
                &n.assignment_sid,
                format!("{:?}", n.state),
            )
                .hash(&mut h);
        }
    }
    Some(h.finish())
}

pub(super) fn api_for<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The objects of `store` in `namespace` whose credentials name `secret`.
pub(super) fn using_secret<K>(
    store: &Store<K>,
    secret: &PartialObjectMeta<Secret>,
    credentials: fn(&K) -> &str,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (ns, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .into_iter()
        .filter(|o| o.namespace() == ns && credentials(o) == name)
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}
