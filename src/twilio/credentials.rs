//! Twilio credentials and the hosts the client talks to.
//!
//! Modelled: Basic-auth identities (account SID + auth token, or API key SID + secret for an
//! account), the two API origins (Trust Hub v1 and API 2010-04-01), Twilio's region/edge host
//! forms, and a [`SecretString`] that never prints its content.
//!
//! Not modelled: OAuth / public-key client validation, `X-Twilio-Signature` checks (callbacks).
//! Base URLs are *origins* only (`scheme://host[:port]`): a path prefix is refused, because the
//! client rewrites Twilio's next-page links onto the configured origin (see `http.rs`).

use std::fmt;

use serde::{Deserialize, Deserializer};
use url::Url;

use super::error::TwilioError;

/// Default Trust Hub v1 origin (spec `servers`).
pub const DEFAULT_TRUST_HUB_BASE: &str = "https://trusthub.twilio.com";
/// Default API 2010-04-01 origin (spec `servers`).
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// twilio-go's default region when only an edge is given.
pub const DEFAULT_REGION: &str = "us1";

/// A string that must never appear in logs, `Debug` output or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only to put it on the wire or into a Kubernetes Secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString)
    }
}

/// Who the client authenticates as. Trust Hub paths carry no account SID: the Basic-auth
/// identity decides whose Trust Hub is read and written.
#[derive(Clone)]
pub enum Credentials {
    /// `AC…` + auth token.
    AuthToken {
        account_sid: String,
        auth_token: SecretString,
    },
    /// `SK…` + secret, acting for `account_sid` (the account that owns the key).
    ApiKey {
        account_sid: String,
        key_sid: String,
        secret: SecretString,
    },
}

impl Credentials {
    /// Account SID + auth token. Refuses empty or non-alphanumeric values (as twilio-go does),
    /// so a stray newline from a Secret never reaches Twilio as a confusing 401.
    pub fn auth_token(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> Result<Self, TwilioError> {
        let account_sid = account_sid.into();
        let auth_token = SecretString::new(auth_token);
        check_sid("account SID", &account_sid, "AC")?;
        check_secret("auth token", &auth_token)?;
        Ok(Self::AuthToken {
            account_sid,
            auth_token,
        })
    }

    /// API key SID + secret, for the account `account_sid`.
    pub fn api_key(
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<Self, TwilioError> {
        let account_sid = account_sid.into();
        let key_sid = key_sid.into();
        let secret = SecretString::new(secret);
        check_sid("account SID", &account_sid, "AC")?;
        check_sid("API key SID", &key_sid, "SK")?;
        check_secret("API key secret", &secret)?;
        Ok(Self::ApiKey {
            account_sid,
            key_sid,
            secret,
        })
    }

    /// The account the credentials act for (used in 2010 paths).
    pub fn account_sid(&self) -> &str {
        match self {
            Self::AuthToken { account_sid, .. } | Self::ApiKey { account_sid, .. } => account_sid,
        }
    }

    /// Basic-auth username and password.
    pub(crate) fn basic_auth(&self) -> (&str, &str) {
        match self {
            Self::AuthToken {
                account_sid,
                auth_token,
            } => (account_sid, auth_token.expose()),
            Self::ApiKey {
                key_sid, secret, ..
            } => (key_sid, secret.expose()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthToken { account_sid, .. } => f
                .debug_struct("Credentials::AuthToken")
                .field("account_sid", account_sid)
                .field("auth_token", &"<redacted>")
                .finish(),
            Self::ApiKey {
                account_sid,
                key_sid,
                ..
            } => f
                .debug_struct("Credentials::ApiKey")
                .field("account_sid", account_sid)
                .field("key_sid", key_sid)
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}

fn check_sid(what: &'static str, sid: &str, prefix: &str) -> Result<(), TwilioError> {
    if is_sid(sid, prefix) {
        Ok(())
    } else {
        Err(TwilioError::InvalidArgument(format!(
            "{what} must be {prefix} followed by 32 hex digits, got {sid:?}"
        )))
    }
}

fn check_secret(what: &'static str, secret: &SecretString) -> Result<(), TwilioError> {
    let value = secret.expose();
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        // Never echo the value: say only what is wrong with it.
        return Err(TwilioError::InvalidArgument(format!(
            "{what} must be non-empty and alphanumeric ({} characters given)",
            value.chars().count()
        )));
    }
    Ok(())
}

/// True for a Twilio SID: `prefix` + 32 hex digits (spec pattern `^XX[0-9a-fA-F]{32}$`).
pub fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// The two origins the client calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub(crate) trust_hub: Url,
    pub(crate) api: Url,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::new(DEFAULT_TRUST_HUB_BASE, DEFAULT_API_BASE)
            .expect("the built-in default origins are valid")
    }
}

impl Endpoints {
    /// Explicit origins, e.g. a simulator or a proxy. Each must be `http(s)://host[:port]`
    /// without user info, path, query or fragment.
    pub fn new(trust_hub: &str, api: &str) -> Result<Self, TwilioError> {
        Ok(Self {
            trust_hub: parse_origin(trust_hub)?,
            api: parse_origin(api)?,
        })
    }

    /// One origin serving both `/v1` and `/2010-04-01` (the simulator does).
    pub fn single(base: &str) -> Result<Self, TwilioError> {
        Self::new(base, base)
    }

    /// Twilio's regional/edge hosts, built like twilio-go's `BuildHost`:
    /// `product.{edge}.{region}.twilio.com`, region `us1` when only an edge is given,
    /// `product.{region}.twilio.com` when only a region is given.
    pub fn twilio_region(region: Option<&str>, edge: Option<&str>) -> Result<Self, TwilioError> {
        for (what, value) in [("region", region), ("edge", edge)] {
            if let Some(v) = value
                && (v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            {
                return Err(TwilioError::InvalidArgument(format!(
                    "Twilio {what} must be lowercase letters, digits and '-', got {v:?}"
                )));
            }
        }
        let suffix = match (edge, region) {
            (None, None) => String::new(),
            (None, Some(region)) => format!(".{region}"),
            (Some(edge), region) => format!(".{edge}.{}", region.unwrap_or(DEFAULT_REGION)),
        };
        Self::new(
            &format!("https://trusthub{suffix}.twilio.com"),
            &format!("https://api{suffix}.twilio.com"),
        )
    }

    /// The hosts as the command line gives them: an explicit origin wins, else the
    /// region/edge host (Twilio's default hosts when neither is set).
    pub fn from_flags(
        trust_hub_url: Option<&str>,
        api_url: Option<&str>,
        region: Option<&str>,
        edge: Option<&str>,
    ) -> Result<Self, TwilioError> {
        let regional = Self::twilio_region(region, edge)?;
        let origin = |u: &Url| u.as_str().trim_end_matches('/').to_string();
        let trust_hub = trust_hub_url.map_or_else(|| origin(&regional.trust_hub), str::to_owned);
        let api = api_url.map_or_else(|| origin(&regional.api), str::to_owned);
        Self::new(&trust_hub, &api)
    }

    pub fn trust_hub(&self) -> &Url {
        &self.trust_hub
    }

    pub fn api(&self) -> &Url {
        &self.api
    }
}

fn parse_origin(raw: &str) -> Result<Url, TwilioError> {
    let invalid = |why: &str| TwilioError::InvalidArgument(format!("base URL {raw:?}: {why}"));
    let url = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(invalid("a host is required"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials belong in `Credentials`, where they are redacted; a URL gets logged.
        return Err(invalid("user info is not allowed"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "only an origin (scheme://host[:port]) is allowed, without path, query or fragment",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const SK: &str = "SK0123456789abcdef0123456789abcdef";

    #[test]
    fn debug_never_shows_secrets() {
        let token = Credentials::auth_token(AC, "supersecrettoken123").unwrap();
        let key = Credentials::api_key(AC, SK, "keysecretvalue456").unwrap();
        for text in [format!("{token:?}"), format!("{key:?}")] {
            assert!(!text.contains("supersecrettoken123"), "{text}");
            assert!(!text.contains("keysecretvalue456"), "{text}");
            assert!(text.contains(AC), "{text}");
        }
        assert_eq!(
            format!("{:?}", SecretString::new("abc")),
            "SecretString(<redacted>)"
        );
    }

    #[test]
    fn basic_auth_uses_key_sid_for_api_keys() {
        let key = Credentials::api_key(AC, SK, "s3cret").unwrap();
        assert_eq!(key.basic_auth(), (SK, "s3cret"));
        assert_eq!(key.account_sid(), AC);
        let token = Credentials::auth_token(AC, "t0ken").unwrap();
        assert_eq!(token.basic_auth(), (AC, "t0ken"));
    }

    #[test]
    fn bad_credentials_are_refused_without_echoing_the_secret() {
        let err = Credentials::auth_token(AC, "tok en\n").unwrap_err();
        assert!(!err.to_string().contains("tok en"));
        assert!(Credentials::auth_token(AC, "").is_err());
        assert!(Credentials::auth_token("SK0123456789abcdef0123456789abcdef", "t").is_err());
        assert!(Credentials::api_key(AC, AC, "t").is_err());
    }

    #[test]
    fn region_and_edge_hosts() {
        let e = Endpoints::twilio_region(None, Some("sydney")).unwrap();
        assert_eq!(
            e.trust_hub.as_str(),
            "https://trusthub.sydney.us1.twilio.com/"
        );
        assert_eq!(e.api.as_str(), "https://api.sydney.us1.twilio.com/");
        let e = Endpoints::twilio_region(Some("au1"), Some("sydney")).unwrap();
        assert_eq!(
            e.trust_hub.as_str(),
            "https://trusthub.sydney.au1.twilio.com/"
        );
        let e = Endpoints::twilio_region(Some("ie1"), None).unwrap();
        assert_eq!(e.api.as_str(), "https://api.ie1.twilio.com/");
        assert_eq!(
            Endpoints::twilio_region(None, None).unwrap(),
            Endpoints::default()
        );
        assert!(Endpoints::twilio_region(Some("evil.com/x"), None).is_err());
    }

    #[test]
    fn flags_override_the_regional_hosts() {
        let e = Endpoints::from_flags(Some("http://127.0.0.1:9"), None, Some("ie1"), None).unwrap();
        assert_eq!(e.trust_hub.as_str(), "http://127.0.0.1:9/");
        assert_eq!(e.api.as_str(), "https://api.ie1.twilio.com/");
        assert_eq!(
            Endpoints::from_flags(None, None, None, None).unwrap(),
            Endpoints::default()
        );
    }

    #[test]
    fn base_urls_must_be_origins() {
        assert!(Endpoints::single("http://127.0.0.1:8080").is_ok());
        assert!(Endpoints::single("http://127.0.0.1:8080/").is_ok());
        assert!(Endpoints::single("http://127.0.0.1:8080/prefix").is_err());
        assert!(Endpoints::single("http://user:pw@127.0.0.1").is_err());
        assert!(Endpoints::single("ftp://host").is_err());
        assert!(Endpoints::single("not a url").is_err());
    }
}
