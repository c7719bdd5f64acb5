//! Twilio client: every effect the operator has on Twilio goes through here.
//!
//! - [`TrustHub`]: the object-safe trait of all operations (Trust Hub v1 CustomerProfiles,
//!   TrustProducts and their assignments/evaluations, Policies; API 2010 Accounts and
//!   IncomingPhoneNumbers); [`TwilioClient`] implements it over HTTP.
//! - [`Credentials`] / [`Endpoints`]: who we are and which hosts we talk to (defaults, explicit
//!   origins for a simulator, or Twilio region/edge hosts).
//! - [`TwilioError`]: typed errors classed transient / terminal / ambiguous (see `error.rs`).
//! - Retries, the in-flight limit and pagination live in `http.rs`; its docs explain which
//!   requests are retried and why a create never is after it may have reached Twilio.
//!
//! This module has no Kubernetes types. Limits: EndUsers, SupportingDocuments and
//! CustomerProfile create/update are not modelled (profiles are made in the Console); only the
//! legacy Twilio error shape (`apiStandards: v0.1`) is decoded.

mod credentials;
mod error;
mod http;
mod page;
mod trust_hub;
mod types;

pub use credentials::{
    Credentials, DEFAULT_API_BASE, DEFAULT_REGION, DEFAULT_TRUST_HUB_BASE, Endpoints, SecretString,
    is_sid,
};
pub use error::{TransportKind, TwilioError, TwilioErrorBody, created_sid, parse_retry_after};
pub use http::{CallObserver, CallOutcome, CallRecord, ClientConfig, RetryPolicy};
pub use trust_hub::{TrustHub, TwilioClient};
pub use types::{
    Account, AccountFilter, AccountStatus, AccountType, Bundle, BundleError, BundleFilter,
    BundleStatus, ChannelEndpointAssignment, CreateTrustProduct, CustomerProfile, EntityAssignment,
    Evaluation, EvaluationFieldResult, EvaluationResult, EvaluationStatus, IncomingPhoneNumber,
    NumberCapabilities, PHONE_NUMBER_ENDPOINT, Policy, TrustProduct, UpdateTrustProduct,
};
