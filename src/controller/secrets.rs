//! How the controllers learn that a credentials Secret changed (rotation, or created after the
//! object that names it), in one of two modes:
//!
//! - [`SecretAccess::Get`] (the default): only `get` on Secrets, by name. Every `recheck` the
//!   operator reads the metadata of each Secret a custom resource names (never the Secrets it
//!   has no business with) and reports the ones whose `resourceVersion` changed, appeared or
//!   disappeared: their resources are reconciled within `recheck` of a rotation.
//! - [`SecretAccess::Watch`]: a metadata watch of the Secrets (`list` and `watch`), in the
//!   watched namespace or cluster-wide, optionally only those matching a label selector: a
//!   rotation is seen at once. A Secret outside the selector still works, read by name at
//!   every reconcile, but its rotation waits for the object's next reconcile.
//!
//! Either way the result is a stream of watcher events of Secret metadata, which wakes the
//! resources using a changed Secret. Only a watch's versions are current enough for the
//! credentials cache to skip reading a Secret; in `get` mode every reconcile reads its Secret
//! by name (so a deleted or rotated Secret is never used past its change), reusing the Twilio
//! client while the `resourceVersion` is unchanged.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::{BusinessProfileBinding, ShakenStirTrustProduct};

/// How the operator may read Secrets (`--secret-access`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretAccess {
    /// `get` by name only; changes seen by re-reading each named Secret's metadata this often.
    Get {
        /// How often the named Secrets are checked.
        recheck: Duration,
    },
    /// `list` + `watch` of Secret metadata, optionally only the Secrets matching a selector.
    Watch {
        /// Label selector of the watched Secrets.
        label_selector: Option<String>,
    },
}

impl Default for SecretAccess {
    fn default() -> Self {
        SecretAccess::Get {
            recheck: Duration::from_secs(60),
        }
    }
}

/// The `(namespace, name)` of every credentials Secret the cached objects refer to.
pub(super) fn named_secrets(
    bindings: &Store<BusinessProfileBinding>,
    products: &Store<ShakenStirTrustProduct>,
) -> BTreeSet<(String, String)> {
    let binding_secrets = bindings.state().into_iter().map(|b| {
        let ns = b.namespace().unwrap_or_default();
        (ns, b.spec.credentials.secret_name.clone())
    });
    let product_secrets = products.state().into_iter().map(|p| {
        let ns = p.namespace().unwrap_or_default();
        (ns, p.spec.credentials.secret_name.clone())
    });
    binding_secrets.chain(product_secrets).collect()
}

pub(super) type SecretMeta = PartialObjectMeta<Secret>;
type SecretEvents = BoxStream<'static, Result<watcher::Event<SecretMeta>, watcher::Error>>;

/// The Secret metadata events of `access`. `named` lists the `(namespace, name)` of every
/// Secret a custom resource currently refers to (read at each check in `Get` mode); `known`
/// tells whether a version of a Secret was already read by the objects naming it (`Get` mode).
pub(super) fn secret_events(
    client: &Client,
    namespace: &Option<String>,
    access: &SecretAccess,
    named: impl Fn() -> BTreeSet<(String, String)> + Send + Sync + 'static,
    known: impl Fn(&str, &str, &str) -> bool + Send + Sync + 'static,
) -> SecretEvents {
    match access {
        SecretAccess::Watch { label_selector } => {
            let api: Api<SecretMeta> = match namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let mut config = watcher::Config::default();
            if let Some(selector) = label_selector {
                config = config.labels(selector);
            }
            watcher(api, config).default_backoff().boxed()
        }
        SecretAccess::Get { recheck } => poll_named(client.clone(), *recheck, named, known),
    }
}

/// Every `recheck`, the metadata of each named Secret: `Apply` when new or changed, `Delete`
/// when gone since the last check. A Secret that cannot be read now is left as last seen. A
/// Secret seen for the first time in a version its objects already read (`known`: they read
/// their Secret at every reconcile) is recorded without an event: otherwise the first check after
/// start-up would wake every object once, for nothing.
fn poll_named(
    client: Client,
    recheck: Duration,
    named: impl Fn() -> BTreeSet<(String, String)> + Send + Sync + 'static,
    known: impl Fn(&str, &str, &str) -> bool + Send + Sync + 'static,
) -> SecretEvents {
    let named = std::sync::Arc::new(named);
    let known = std::sync::Arc::new(known);
    let mut ticks = tokio::time::interval(recheck);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (ticks, HashMap::<(String, String), SecretMeta>::new());
    futures::stream::unfold(state, move |(mut ticks, mut seen)| {
        let (client, named, known) = (client.clone(), named.clone(), known.clone());
        async move {
            ticks.tick().await;
            let wanted = named();
            let mut events = Vec::new();
            for (ns, name) in &wanted {
                let api: Api<Secret> = Api::namespaced(client.clone(), ns);
                let key = (ns.clone(), name.clone());
                match api.get_metadata_opt(name).await {
                    Ok(Some(meta)) => {
                        let version = |m: &SecretMeta| m.metadata.resource_version.clone();
                        let now = version(&meta);
                        let news = match seen.get(&key) {
                            Some(before) => version(before) != now,
                            None => !known(ns, name, now.as_deref().unwrap_or_default()),
                        };
                        seen.insert(key, meta.clone());
                        if news {
                            events.push(watcher::Event::Apply(meta));
                        }
                    }
                    Ok(None) => {
                        if let Some(gone) = seen.remove(&key) {
                            events.push(watcher::Event::Delete(gone));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %ns, secret = %name, error = %e, "cannot check a credentials Secret; retrying at the next check")
                    }
                }
            }
            // Secrets no longer named by anything are forgotten (re-reported if named again).
            seen.retain(|key, _| wanted.contains(key));
            Some((futures::stream::iter(events.into_iter().map(Ok)), (ticks, seen)))
        }
    })
    .flatten()
    .boxed()
}
