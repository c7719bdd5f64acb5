//! Errors: [`SimError`] for the Rust API, [`ApiError`] for what goes on the wire.
//!
//! Twilio's error body (not declared in either OpenAPI document) is
//! `{"code", "message", "more_info", "status"}`; see `trusthub-api.md` §4.
//!
//! Error codes used by the simulator (HTTP status / Twilio code). Codes marked
//! *sim* are the simulator's choice from the landscape doc's table because the
//! real code for that situation is not documented:
//!
//! | situation | status | code |
//! | --- | --- | --- |
//! | missing/invalid credentials | 401 | 20003 (real) |
//! | standard API key on `/Accounts` | 403 | 20003 (*sim*) |
//! | unknown resource or another account's resource | 404 | 20404 (real) |
//! | missing required parameter | 400 | 20001 (*sim*; Twilio lists 20001 for parameter problems) |
//! | malformed parameter value (SID pattern, URL, type) | 400 | 20422 (*sim*) |
//! | unparsable `Status` value | 400 | 22203 (real title: "unable to parse status") |
//! | status transition a client may not make | 400 | 20422 (*sim*) |
//! | edit while `pending-review`/`in-review`/`twilio-approved` | 400 | 60711 (real code, *sim* HTTP status) |
//! | phone number not in the account or its subaccounts | 400 | 20423 (*sim*, "invalid SID") |
//! | number not on the linked business profile | 400 | 22218 (*sim*) |
//! | duplicate assignment | 409 | 20409 (*sim*) |
//! | number already in another SHAKEN/STIR trust product | 409 | 20409 (*sim*) |
//! | `ObjectSid` is not a usable object of this account | 400 | 22205 (real title: "invalid object_sid") |
//! | injected 429 / concurrency limit | 429 | 20429 (real) |
//! | injected 500 / 503 | 500 / 503 | 20500 / 20503 (real) |

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Errors of the Rust API (start-up, seed loading, admin actions).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read seed file {path}: {source}")]
    SeedFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse seed: {0}")]
    SeedParse(String),
    #[error("invalid seed: {0}")]
    SeedInvalid(String),
    #[error("no trust product or customer profile with SID {0}")]
    UnknownBundle(String),
    #[error("no account with SID {0}")]
    UnknownAccount(String),
    #[error(
        "{sid} is {status}; only pending-review or in-review objects can be approved or rejected"
    )]
    NotUnderReview { sid: String, status: String },
    #[error("no phone number with SID {0}")]
    UnknownNumber(String),
    #[error("phone number {0} already exists")]
    NumberExists(String),
    #[error("{0} is not an E.164 phone number (+ and up to 15 digits)")]
    InvalidNumber(String),
}

/// A Twilio-style error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

/// The JSON body Twilio sends with an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioErrorBody {
    pub code: u32,
    pub message: String,
    pub more_info: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
    }

    pub fn permission_denied(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            20003,
            format!("Permission Denied: {what}"),
        )
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    pub fn missing_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!("Missing required parameter {name} in the post body"),
        )
    }

    pub fn invalid_param(name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            20422,
            format!("Invalid parameter {name}: {why}"),
        )
    }

    pub fn locked(sid: &str, status: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            60711,
            format!("Business status does not allow updates: {sid} is {status}"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, 20409, message)
    }

    pub fn too_many_requests(retry_after: Option<u64>) -> Self {
        ApiError {
            retry_after,
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service Unavailable",
        )
    }

    pub fn body(&self) -> TwilioErrorBody {
        TwilioErrorBody {
            code: self.code,
            message: self.message.clone(),
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status.as_u16(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
