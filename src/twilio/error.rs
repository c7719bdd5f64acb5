//! Errors of the Twilio client and how the caller should react to them.
//!
//! Every error says which operation failed and, where Twilio answered, the HTTP status and
//! Twilio's error body (`code`, `message`, `more_info`, `status`). The classification:
//! - transient: HTTP 429, 5xx, timeouts, connection errors — worth trying again later;
//! - terminal: other 4xx (400/401/403/404/409/…) and bad arguments — retrying won't help;
//! - ambiguous: a non-idempotent POST whose fate is unknown (5xx, timeout or connection lost
//!   after sending). It is also transient, but the caller must *look* (list/fetch) before
//!   creating again, or it may create a duplicate Trust Product.
//!
//! Nothing here holds credentials: messages are built from the operation id, status, Twilio's
//! body and the transport error (whose URL has no user info, see `credentials.rs`).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// Twilio's legacy error body (both spec files declare `apiStandards: v0.1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TwilioErrorBody {
    #[serde(default, deserialize_with = "super::types::lenient::opt_u32")]
    pub code: Option<u32>,
    #[serde(default, deserialize_with = "super::types::lenient::opt_string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "super::types::lenient::opt_string")]
    pub more_info: Option<String>,
    #[serde(default, deserialize_with = "super::types::lenient::opt_u32")]
    pub status: Option<u32>,
}

impl TwilioErrorBody {
    /// Decodes a body leniently: an HTML or empty error page gives an empty body, not a failure.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Could not connect (refused, DNS, TLS handshake): the request was never sent.
    Connect,
    /// Connect or whole-request timeout.
    Timeout,
    /// Anything else (connection reset mid-request, broken body, …).
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with a non-success status.
    #[error("{operation}: Twilio answered HTTP {status}{}", describe(body))]
    Api {
        operation: &'static str,
        status: u16,
        /// Boxed to keep `Result<_, TwilioError>` small on the success path.
        body: Box<TwilioErrorBody>,
        retry_after: Option<Duration>,
    },
    /// A non-idempotent request (POST create/update) may or may not have been processed.
    #[error(
        "{operation}: outcome unknown, Twilio may have processed the request ({reason}); look before creating again"
    )]
    Ambiguous {
        operation: &'static str,
        /// The status Twilio answered, when it did (5xx).
        status: Option<u16>,
        body: Option<Box<TwilioErrorBody>>,
        reason: String,
    },
    /// No HTTP answer (and, for POSTs, provably not sent: see `Ambiguous` otherwise).
    #[error("{operation}: {kind:?} error talking to Twilio: {detail}")]
    Transport {
        operation: &'static str,
        kind: TransportKind,
        detail: String,
    },
    /// A success status whose body did not decode.
    #[error("{operation}: could not decode Twilio's HTTP {status} answer: {detail}")]
    Decode {
        operation: &'static str,
        status: u16,
        detail: String,
    },
    /// Refused before sending: a malformed SID, credential or base URL.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Setup(String),
}

fn describe(body: &TwilioErrorBody) -> String {
    let mut out = String::new();
    if let Some(code) = body.code {
        out.push_str(&format!(", code {code}"));
    }
    if let Some(message) = &body.message {
        out.push_str(&format!(": {message}"));
    }
    if let Some(more) = &body.more_info {
        out.push_str(&format!(" ({more})"));
    }
    out
}

impl TwilioError {
    /// Worth trying again later (429, 5xx, timeouts, connection errors, ambiguous outcomes).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => is_transient_status(*status),
            Self::Ambiguous { .. } => true,
            Self::Transport { .. } => true,
            Self::Decode { .. } | Self::InvalidArgument(_) | Self::Setup(_) => false,
        }
    }

    /// A POST whose effect is unknown: list/fetch before creating again.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Ambiguous { .. })
    }

    /// Twilio's `Retry-After`, when it sent one (not capped here; the retry loop caps it).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Twilio's error number, e.g. 20404, 20003, 20429.
    pub fn twilio_code(&self) -> Option<u32> {
        match self {
            Self::Api { body, .. } => body.code,
            Self::Ambiguous { body, .. } => body.as_ref().and_then(|b| b.code),
            _ => None,
        }
    }

    /// The HTTP status Twilio answered, when it answered (also for undecodable 2xx bodies).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Ambiguous { status, .. } => *status,
            _ => None,
        }
    }

    /// HTTP 404 (Twilio code 20404). After a DELETE it means the object is gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// The credentials were refused (401) or lack the permission (403 / code 20003).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::Api {
                status: 401 | 403,
                ..
            }
        ) || (matches!(self, Self::Api { .. }) && self.twilio_code() == Some(20003))
    }

    /// Short, secret-free class for metrics and observers.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Api { status: 429, .. } => "throttled",
            Self::Api { status, .. } if *status >= 500 => "server_error",
            Self::Api { .. } => "client_error",
            Self::Ambiguous { .. } => "ambiguous",
            Self::Transport {
                kind: TransportKind::Connect,
                ..
            } => "connect",
            Self::Transport {
                kind: TransportKind::Timeout,
                ..
            } => "timeout",
            Self::Transport { .. } => "transport",
            Self::Decode { .. } => "decode",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Setup(_) => "setup",
        }
    }
}

/// The SID of the object a create answered with. The client already refuses answers without
/// one (see `TwilioClient::post`); a caller holding a created object's `Option` still gets an
/// ambiguous error, never an empty SID in status.
pub fn created_sid(sid: Option<String>, operation: &'static str) -> Result<String, TwilioError> {
    sid.filter(|s| !s.is_empty())
        .ok_or_else(|| TwilioError::Ambiguous {
            operation,
            status: None,
            body: None,
            reason: "the answer carries no sid".into(),
        })
}

pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past means "now" (zero); anything unparsable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is an RFC 2822 date with zone GMT.
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<u32>) -> TwilioError {
        TwilioError::Api {
            operation: "Test",
            status,
            body: Box::new(TwilioErrorBody {
                code,
                message: Some("msg".into()),
                more_info: None,
                status: Some(status.into()),
            }),
            retry_after: None,
        }
    }

    #[test]
    fn classification() {
        for s in [429, 500, 502, 503] {
            assert!(api(s, None).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert!(!api(s, None).is_transient(), "{s}");
        }
        assert!(api(404, Some(20404)).is_not_found());
        assert!(!api(400, None).is_not_found());
        assert!(api(401, Some(20003)).is_auth());
        assert!(api(403, None).is_auth());
        assert!(api(400, Some(20003)).is_auth());
        assert!(!api(404, None).is_auth());
        assert_eq!(api(409, Some(20409)).twilio_code(), Some(20409));
        assert_eq!(api(409, None).http_status(), Some(409));
        let amb = TwilioError::Ambiguous {
            operation: "CreateTrustProduct",
            status: Some(503),
            body: Some(Box::new(TwilioErrorBody {
                code: Some(20503),
                ..Default::default()
            })),
            reason: "HTTP 503".into(),
        };
        assert!(amb.is_transient() && amb.is_ambiguous());
        assert_eq!(
            (amb.http_status(), amb.twilio_code()),
            (Some(503), Some(20503))
        );
        let t = TwilioError::Transport {
            operation: "X",
            kind: TransportKind::Timeout,
            detail: "timed out".into(),
        };
        assert!(t.is_transient() && !t.is_ambiguous());
        assert_eq!(t.class(), "timeout");
        assert_eq!(api(429, None).class(), "throttled");
    }

    #[test]
    fn error_body_decodes_leniently() {
        let b = TwilioErrorBody::parse(
            br#"{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#,
        );
        assert_eq!(b.code, Some(20404));
        assert_eq!(b.status, Some(404));
        assert_eq!(
            TwilioErrorBody::parse(b"<html>bad gateway</html>"),
            TwilioErrorBody::default()
        );
        let b = TwilioErrorBody::parse(br#"{"code": "20429", "message": null, "status": "429"}"#);
        assert_eq!(
            (b.code, b.status, b.message),
            (Some(20429), Some(429), None)
        );
        // Callers embed this error in their own; keep it small.
        assert!(std::mem::size_of::<TwilioError>() <= 64);
        let text = api(404, Some(20404)).to_string();
        assert!(
            text.contains("404") && text.contains("20404") && text.contains("msg"),
            "{text}"
        );
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37Z
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
