//! The watches behind the controllers: what in a custom resource triggers a reconcile, the
//! caches shared by two subscribers, what is trimmed from cached objects, and which objects a
//! Secret or a binding change wakes up.

use std::collections::HashMap;
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

use crate::api::{BusinessProfileBinding, ShakenStirTrustProduct};

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
/// subscribers, each of which sees an object only once the cache holds it; `cached` sees each
/// event once the cache has applied it. The future drives the watch; it ends only if the watch
/// does. `None` if the cache cannot be subscribed to.
pub(super) fn shared_watch<K>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    trim: fn(&mut K),
    cached: impl Fn(&watcher::Event<K>) + Send + 'static,
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
        .for_each(move |event| {
            if let Ok(event) = &event {
                cached(event);
            }
            futures::future::ready(())
        });
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

/// Like [`changed_only`], without the first sight of each object: the objects its changes wake
/// are reconciled at start-up anyway, and the initial listing would wake each of them once more.
/// An object being deleted is forgotten.
pub(super) fn changed_after_first<K>(
    changes: impl futures::Stream<Item = Arc<K>> + Send + 'static,
    hash: fn(&K) -> Option<u64>,
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource + Send + Sync + 'static,
{
    let mut seen: HashMap<String, u64> = HashMap::new();
    changes.filter_map(move |obj| {
        let meta = obj.meta();
        let emit = match (meta.uid.clone(), hash(&obj)) {
            (Some(uid), _) if meta.deletion_timestamp.is_some() => {
                seen.remove(&uid);
                false
            }
            (Some(uid), Some(h)) => seen.insert(uid, h).is_some_and(|before| before != h),
            _ => false,
        };
        futures::future::ready(emit.then_some(obj))
    })
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

/// What a binding counts of a Trust Product that uses it: how many of its numbers the product
/// covers (attached while approved). Its other status changes, a batch attached during the
/// onboarding among them, leave the binding asleep.
pub(super) fn product_coverage_hash(product: &ShakenStirTrustProduct) -> Option<u64> {
    let mut h = DefaultHasher::new();
    product.metadata.uid.hash(&mut h);
    product
        .spec
        .business_profile_binding_ref
        .as_ref()
        .map(|r| &r.name)
        .hash(&mut h);
    // No count yet is no coverage: the product's first status write wakes nobody.
    let counts = product.status.as_ref().and_then(|s| s.numbers.as_ref());
    counts.map_or(0, |n| n.covered).hash(&mut h);
    Some(h.finish())
}

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

/// The Trust Products of the cache that take their profile and numbers from `binding`.
pub(super) fn products_using(
    products: &Store<ShakenStirTrustProduct>,
    binding: &BusinessProfileBinding,
) -> Vec<ObjectRef<ShakenStirTrustProduct>> {
    let (ns, name) = (binding.namespace(), binding.name_any());
    products
        .state()
        .into_iter()
        .filter(|p| {
            p.namespace() == ns
                && p.spec
                    .business_profile_binding_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// The binding a Trust Product takes its numbers from: woken when the product's coverage
/// changes, to count it again (a binding counts the numbers on approved products using it).
pub(super) fn binding_of(
    product: &ShakenStirTrustProduct,
) -> Option<ObjectRef<BusinessProfileBinding>> {
    let name = &product.spec.business_profile_binding_ref.as_ref()?.name;
    let binding = ObjectRef::new(name);
    Some(match product.namespace() {
        Some(ns) => binding.within(&ns),
        None => binding,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::changed_after_first;

    fn object(uid: &str, value: &str, deleting: bool) -> Arc<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.uid = Some(uid.into());
        cm.metadata.deletion_timestamp =
            deleting.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        cm.data = Some([("v".to_string(), value.to_string())].into());
        Arc::new(cm)
    }

    fn value_hash(cm: &ConfigMap) -> Option<u64> {
        cm.data.as_ref()?.get("v")?.parse().ok()
    }

    #[tokio::test]
    async fn only_changes_after_the_first_sight_pass() {
        // (uid, value, deleting, passes)
        let table = [
            ("a", "1", false, false), // first sight: the start-up reconcile covers it
            ("b", "1", false, false),
            ("a", "1", false, false), // unchanged
            ("a", "2", false, true),  // changed
            ("b", "3", false, true),
            ("a", "2", true, false),  // being deleted: forgotten
            ("a", "5", false, false), // seen again as new
            ("a", "6", false, true),
        ];
        let input: Vec<_> = table.iter().map(|(u, v, d, _)| object(u, v, *d)).collect();
        let passed: Vec<_> = changed_after_first(futures::stream::iter(input), value_hash)
            .map(|cm| (cm.metadata.uid.clone().unwrap(), value_hash(&cm).unwrap()))
            .collect()
            .await;
        let expected: Vec<_> = table
            .iter()
            .filter(|row| row.3)
            .map(|(u, v, _, _)| (u.to_string(), v.parse::<u64>().unwrap()))
            .collect();
        assert_eq!(passed, expected);
    }
}
