//! Twilio clients built from the credentials Secret named in a custom resource, read only from
//! the resource's own namespace and cached per Secret version (a rotated Secret has a new
//! `resourceVersion`, so the next reconcile builds a new client).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
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

/// One Twilio client per (namespace, Secret) at its current version.
pub struct CredentialsCache {
    client: Client,
    twilio: ClientConfig,
    observer: Option<Arc<dyn CallObserver>>,
    cached: Mutex<ClientsBySecret>,
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
        }
    }

    /// The Twilio client for `reference` in `namespace`.
    pub async fn client_for(
        &self,
        namespace: &str,
        reference: &CredentialsRef,
    ) -> Result<Arc<dyn TrustHub>, ReconcileError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let name = reference.secret_name.clone();
        let Some(secret) = secrets.get_opt(&name).await? else {
            return Err(CredentialsError::SecretNotFound {
                namespace: namespace.into(),
                name,
            }
            .into());
        };
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        // The reference's key names and auth type are part of the key: two objects may read
        // the same Secret differently.
        let key = (
            namespace.to_string(),
            name.clone(),
            format!("{reference:?}"),
        );
        if let Some((cached_version, client)) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && *cached_version == version
        {
            return Ok(client.clone());
        }
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
        let invalid = |e: crate::twilio::TwilioError| CredentialsError::Invalid {
            namespace: namespace.into(),
            name: name.clone(),
            reason: e.to_string(),
        };
        let credentials = match reference.auth_type {
            AuthType::AuthToken => {
                Credentials::auth_token(account_sid, value(&reference.auth_token_key)?)
            }
            AuthType::ApiKey => Credentials::api_key(
                account_sid,
                value(&reference.api_key_key)?,
                value(&reference.api_secret_key)?,
            ),
        }
        .map_err(invalid)?;
        // Check and fill under one lock: reconciles starting together must share one client,
        // hence one in-flight limit, rather than each building its own.
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_version, client)) = cached.get(&key)
            && *cached_version == version
        {
            return Ok(client.clone());
        }
        let mut twilio = TwilioClient::new(credentials, self.twilio.clone()).map_err(invalid)?;
        if let Some(observer) = &self.observer {
            twilio = twilio.with_observer(observer.clone());
        }
        let twilio: Arc<dyn TrustHub> = Arc::new(twilio);
        cached.insert(key, (version, twilio.clone()));
        Ok(twilio)
    }
}
