//! Where preflight's credentials come from: the environment variables Twilio's CLI and helper
//! libraries use, or a Secret read through the kubeconfig (`--secret ns/name`, with the key
//! names the custom resources default to). Errors name variables, Secrets and keys, never a
//! value.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{AuthKind, PreflightError};
use crate::api::{AuthType, CredentialsRef};
use crate::controller::{CredentialsError, credentials_from_secret};
use crate::twilio::Credentials;

pub const ENV_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
pub const ENV_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
pub const ENV_API_KEY: &str = "TWILIO_API_KEY";
pub const ENV_API_SECRET: &str = "TWILIO_API_SECRET";

fn usage(e: crate::twilio::TwilioError) -> PreflightError {
    // The client's own checks never echo a secret.
    PreflightError::Usage(e.to_string())
}

/// Credentials from the environment (`var` looks a variable up): the account SID with its
/// auth token, else with an API key and secret. The auth token wins when both are set, because
/// only it (or a Main key) may list subaccounts.
pub fn credentials_from_env(
    var: impl Fn(&str) -> Option<String>,
) -> Result<(Credentials, AuthKind), PreflightError> {
    let get = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let missing = || {
        PreflightError::Usage(format!(
            "no credentials: set {ENV_ACCOUNT_SID} with {ENV_AUTH_TOKEN} (or {ENV_API_KEY} + {ENV_API_SECRET}), or use --secret NAMESPACE/NAME"
        ))
    };
    let account = get(ENV_ACCOUNT_SID).ok_or_else(missing)?;
    if let Some(token) = get(ENV_AUTH_TOKEN) {
        let credentials = Credentials::auth_token(account, token).map_err(usage)?;
        return Ok((credentials, AuthKind::AuthToken));
    }
    match (get(ENV_API_KEY), get(ENV_API_SECRET)) {
        (Some(key), Some(secret)) => Credentials::api_key(account, key, secret)
            .map(|c| (c, AuthKind::ApiKey))
            .map_err(usage),
        _ => Err(missing()),
    }
}

/// `ns/name` → `(Some(ns), name)`; `name` → `(None, name)` (the kubeconfig's namespace).
pub fn parse_secret_ref(value: &str) -> Result<(Option<String>, String), PreflightError> {
    let bad = || {
        PreflightError::Usage(format!(
            "--secret must be NAMESPACE/NAME or NAME, got {value:?}"
        ))
    };
    let (ns, name) = match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() => (Some(ns.to_owned()), name),
        Some(_) => return Err(bad()),
        None => (None, value),
    };
    if name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    Ok((ns, name.to_owned()))
}

/// Reads the Secret `reference` (`ns/name` or `name`) with the kubeconfig's identity. The keys
/// are the custom resources' defaults; API-key credentials are used when the Secret holds no
/// auth token but an API key. Returns the namespace and name actually read, too.
pub async fn credentials_from_kube(
    reference: &str,
) -> Result<(Credentials, AuthKind, String, String), PreflightError> {
    let (ns, name) = parse_secret_ref(reference)?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| PreflightError::Kubeconfig(e.to_string()))?;
    let ns = ns.unwrap_or_else(|| client.default_namespace().to_owned());
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let Some(secret) = secrets.get_opt(&name).await? else {
        return Err(CredentialsError::SecretNotFound {
            namespace: ns,
            name,
        }
        .into());
    };
    let mut reference = CredentialsRef::new(&name);
    let has = |key: &str| secret.data.as_ref().is_some_and(|d| d.contains_key(key));
    let auth = if !has(&reference.auth_token_key) && has(&reference.api_key_key) {
        reference.auth_type = AuthType::ApiKey;
        AuthKind::ApiKey
    } else {
        AuthKind::AuthToken
    };
    let credentials = credentials_from_secret(&secret, &ns, &reference)?;
    Ok((credentials, auth, ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const SK: &str = "SK0123456789abcdef0123456789abcdef";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn environment_credentials_as_twilio_names_them() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars, Option<AuthKind>)] = &[
            (
                &[(ENV_ACCOUNT_SID, AC), (ENV_AUTH_TOKEN, "tok3n")],
                Some(AuthKind::AuthToken),
            ),
            (
                &[
                    (ENV_ACCOUNT_SID, AC),
                    (ENV_API_KEY, SK),
                    (ENV_API_SECRET, "s3cret"),
                ],
                Some(AuthKind::ApiKey),
            ),
            (
                &[
                    (ENV_ACCOUNT_SID, AC),
                    (ENV_AUTH_TOKEN, "tok3n"),
                    (ENV_API_KEY, SK),
                    (ENV_API_SECRET, "s"),
                ],
                Some(AuthKind::AuthToken),
            ),
            (&[(ENV_ACCOUNT_SID, AC)], None),
            (&[(ENV_AUTH_TOKEN, "tok3n")], None),
            (&[(ENV_ACCOUNT_SID, AC), (ENV_API_KEY, SK)], None),
            (&[(ENV_ACCOUNT_SID, AC), (ENV_AUTH_TOKEN, "  ")], None),
        ];
        for (vars, want) in cases {
            let got = credentials_from_env(env(vars));
            assert_eq!(got.as_ref().ok().map(|(_, a)| *a), *want, "{vars:?}");
            if let Err(e) = got {
                assert_eq!(e.exit_code(), crate::preflight::EXIT_USAGE);
            }
        }
    }

    #[test]
    fn malformed_credentials_are_refused_without_echoing_them() {
        let err = credentials_from_env(env(&[
            (ENV_ACCOUNT_SID, AC),
            (ENV_AUTH_TOKEN, "bad token!"),
        ]))
        .unwrap_err();
        assert!(!err.to_string().contains("bad token"), "{err}");
        assert!(
            credentials_from_env(env(&[(ENV_ACCOUNT_SID, "nope"), (ENV_AUTH_TOKEN, "t")])).is_err()
        );
    }

    #[test]
    fn secret_references() {
        assert_eq!(
            parse_secret_ref("ops/twilio").unwrap(),
            (Some("ops".into()), "twilio".into())
        );
        assert_eq!(parse_secret_ref("twilio").unwrap(), (None, "twilio".into()));
        for bad in ["", "/x", "ops/", "a/b/c"] {
            assert!(parse_secret_ref(bad).is_err(), "{bad}");
        }
    }
}
