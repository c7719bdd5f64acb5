//! Twilio clients built from the credentials Secret named in a custom resource, read only from
//! the resource's own namespace and cached per Secret version (a rotated Secret has a new
//! `resourceVersion`, so the next reconcile builds a new client). With `--secret-access=watch` the
//! version is taken from the watched Secrets' metadata, so an unchanged Secret is not read again;
//! otherwise each call reads the Secret by name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use super::error::ReconcileError;
use crate::api::{AuthType, CredentialsRef};
use crate::twilio::{CallObserver, ClientConfig, Credentials, TrustHub, TwilioClient};

/// Why the credentials could not be used. Messages name Secrets and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The Secret does not exist in the object's namespace.
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Namespace looked in (the object's own).
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// A key the credentials reference names is absent or empty.
    #[error("Secret {namespace}/{name} has no key {key:?} (or it is empty)")]
    KeyMissing {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// The values are not usable credentials (e.g. the account SID does not start with AC).
    #[error("Secret {namespace}/{name} holds invalid credentials: {reason}")]
    Invalid {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong (from the client's own checks, which never echo a secret).
        reason: String,
    },
}

impl CredentialsError {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialsError::SecretNotFound { .. } => "SecretNotFound",
            CredentialsError::KeyMissing { .. } => "SecretKeyMissing",
            CredentialsError::Invalid { .. } => "InvalidCredentials",
        }
    }
}

/// `(namespace, Secret name, how it is read)` → `(Secret resourceVersion, client built from it)`.
type ClientsBySecret = HashMap<(String, String, String), (String, Arc<dyn TrustHub>)>;

/// A client not asked for this long is dropped at the next build: longer than the approved
/// resync (12 h by default), so the clients of healthy objects stay.
const CLIENT_IDLE: Duration = Duration::from_secs(48 * 3600);

/// When each cached client was last handed out, by the same key as the clients.
type LastUsed = HashMap<(String, String, String), Instant>;

/// Drops the clients of Secrets the watch no longer shows (`secret_exists` answers `false`),
/// and those not handed out for [`CLIENT_IDLE`] (a Secret renamed in a spec, a reference read
/// differently, a namespace gone): without it the cache grows with every Secret ever used.
fn sweep(
    cached: &mut ClientsBySecret,
    used: &mut LastUsed,
    now: Instant,
    secret_exists: impl Fn(&str, &str) -> bool,
) {
    cached.retain(|key, _| {
        let fresh = used
            .get(key)
            .is_some_and(|at| now.saturating_duration_since(*at) <= CLIENT_IDLE);
        fresh && secret_exists(&key.0, &key.1)
    });
    used.retain(|key, _| cached.contains_key(key));
}

/// One Twilio client per (namespace, Secret) at its current version.
pub struct CredentialsCache {
    client: Client,
    twilio: ClientConfig,
    observer: Option<Arc<dyn CallObserver>>,
    cached: Mutex<ClientsBySecret>,
    /// When each cached client was last handed out (for [`sweep`]).
    used: Mutex<LastUsed>,
    /// The watched Secrets' metadata (set when the controllers start): a client built from the
    /// version the cache shows is reused without reading the Secret again.
    versions: OnceLock<Store<PartialObjectMeta<Secret>>>,
}

impl CredentialsCache {
    pub(super) fn new(
        client: Client,
        twilio: ClientConfig,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Self {
        Self {
            client,
            twilio,
            observer,
            cached: Mutex::new(HashMap::new()),
            used: Mutex::new(HashMap::new()),
            versions: OnceLock::new(),
        }
    }

    /// Uses `store` (the watched Secrets' metadata) to tell whether a Secret changed.
    pub(super) fn watch_versions(&self, store: Store<PartialObjectMeta<Secret>>) {
        let _ = self.versions.set(store);
    }

    /// The cached client for `key` if it was built from `version`.
    /// Whether a client was built from this version of the Secret `namespace/name`: the objects
    /// naming it have read it, so seeing that version for the first time is no news to them.
    pub(super) fn built_from(&self, namespace: &str, name: &str, version: &str) -> bool {
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|((ns, n, _), (built_from, _))| {
                ns == namespace && n == name && built_from == version
            })
    }

    fn cached_at(
        &self,
        key: &(String, String, String),
        version: &str,
    ) -> Option<Arc<dyn TrustHub>> {
        let client = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .filter(|(built_from, _)| built_from == version)
            .map(|(_, client)| client.clone());
        if client.is_some() {
            self.note_used(key);
        }
        client
    }

    fn note_used(&self, key: &(String, String, String)) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), Instant::now());
    }

    /// Whether the watch shows Secret `namespace/name` (`true` until the watch has listed).
    fn secret_watched(&self, namespace: &str, name: &str) -> bool {
        match self.versions.get() {
            Some(store) if store.wait_until_ready().now_or_never().is_some() => store
                .get(&ObjectRef::<PartialObjectMeta<Secret>>::new(name).within(namespace))
                .is_some(),
            _ => true,
        }
    }

    /// The Twilio client for `reference` in `namespace`.
    pub async fn client_for(
        &self,
        namespace: &str,
        reference: &CredentialsRef,
    ) -> Result<Arc<dyn TrustHub>, ReconcileError> {
        let name = reference.secret_name.clone();
        // The reference's key names and auth type are part of the key: two objects may read
        // the same Secret differently.
        let key = (
            namespace.to_string(),
            name.clone(),
            format!("{reference:?}"),
        );
        // Unchanged since the client was built (by the watch's account): no need to read it.
        // A rotation shows up in the cache before the reconcile it triggers.
        let watched_version = self.versions.get().and_then(|store| {
            store
                .get(&ObjectRef::<PartialObjectMeta<Secret>>::new(&name).within(namespace))
                .and_then(|meta| meta.metadata.resource_version.clone())
        });
        if let Some(client) = watched_version.and_then(|v| self.cached_at(&key, &v)) {
            return Ok(client);
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let Some(secret) = secrets.get_opt(&name).await? else {
            return Err(CredentialsError::SecretNotFound {
                namespace: namespace.into(),
                name,
            }
            .into());
        };
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        if let Some(client) = self.cached_at(&key, &version) {
            return Ok(client);
        }
        let credentials = credentials_from_secret(&secret, namespace, reference)?;
        let invalid = |e: crate::twilio::TwilioError| CredentialsError::Invalid {
            namespace: namespace.into(),
            name: name.clone(),
            reason: e.to_string(),
        };
        // Check and fill under one lock: reconciles starting together must share one client,
        // hence one in-flight limit, rather than each building its own.
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_version, client)) = cached.get(&key)
            && *cached_version == version
        {
            let client = client.clone();
            drop(cached);
            self.note_used(&key);
            return Ok(client);
        }
        let mut twilio = TwilioClient::new(credentials, self.twilio.clone()).map_err(invalid)?;
        if let Some(observer) = &self.observer {
            twilio = twilio.with_observer(observer.clone());
        }
        let twilio: Arc<dyn TrustHub> = Arc::new(twilio);
        // Only when building (rare): the sweep is linear in the cache.
        {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            sweep(&mut cached, &mut used, Instant::now(), |ns, name| {
                self.secret_watched(ns, name)
            });
            used.insert(key.clone(), Instant::now());
        }
        cached.insert(key, (version, twilio.clone()));
        Ok(twilio)
    }
}

/// The credentials in `secret` (of `namespace`), read with the key names and auth type of
/// `reference`. Values are trimmed; errors name the Secret and the key, never a value.
pub fn credentials_from_secret(
    secret: &Secret,
    namespace: &str,
    reference: &CredentialsRef,
) -> Result<Credentials, CredentialsError> {
    let name = &reference.secret_name;
    let value = |key: &str| -> Result<String, CredentialsError> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CredentialsError::KeyMissing {
                namespace: namespace.into(),
                name: name.clone(),
                key: key.into(),
            })
    };
    let account_sid = value(&reference.account_sid_key)?;
    match reference.auth_type {
        AuthType::AuthToken => {
            Credentials::auth_token(account_sid, value(&reference.auth_token_key)?)
        }
        AuthType::ApiKey => Credentials::api_key(
            account_sid,
            value(&reference.api_key_key)?,
            value(&reference.api_secret_key)?,
        ),
    }
    .map_err(|e| CredentialsError::Invalid {
        namespace: namespace.into(),
        name: name.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Arc<dyn TrustHub> {
        let credentials = Credentials::auth_token(
            "AC00000000000000000000000000000001",
            "token0000000000000000000000000001",
        )
        .expect("valid credentials");
        Arc::new(TwilioClient::new(credentials, ClientConfig::default()).expect("client"))
    }

    fn key(ns: &str, name: &str) -> (String, String, String) {
        (ns.into(), name.into(), "ref".into())
    }

    /// Finding K11: clients of Secrets that are gone, or not asked for in a long time, leave
    /// the cache; the others stay.
    #[test]
    fn the_sweep_drops_clients_of_deleted_or_idle_secrets() {
        let now = Instant::now() + 2 * CLIENT_IDLE;
        let mut cached = ClientsBySecret::new();
        let mut used = LastUsed::new();
        for (name, idle) in [
            ("live", Duration::ZERO),
            ("deleted", Duration::ZERO),
            ("idle", CLIENT_IDLE + Duration::from_secs(1)),
        ] {
            cached.insert(key("ns", name), ("1".into(), client()));
            used.insert(key("ns", name), now - idle);
        }
        sweep(&mut cached, &mut used, now, |_, name| name != "deleted");
        let left: Vec<&str> = cached.keys().map(|k| k.1.as_str()).collect();
        assert_eq!(left, vec!["live"]);
        assert_eq!(used.len(), 1);
    }
}
