//! `trusthub-operator preflight`: a read-only look at a Twilio account before onboarding.
//!
//! - [`gather`] reads everything it needs through the [`crate::twilio::TrustHub`] client (GETs
//!   only: preflight never writes to Twilio), into [`Facts`].
//! - [`evaluate`] turns the facts into [`Report`]: one [`Finding`] per line of the table, in a
//!   fixed order, and the exit code. It is pure (the clock is part of the facts) and unit-tested
//!   with tables.
//! - [`render`] prints the report as a table or JSON; [`manifests`] prints the
//!   BusinessProfileBinding and ShakenStirTrustProduct that would onboard what was found.
//! - [`source`] finds the credentials (environment or a Secret through the kubeconfig) and the
//!   Twilio hosts.
//!
//! Exit codes ([`Problem::exit_code`]) are stable: scripts may depend on them. When several
//! checks fail, every failing line is printed and the exit code is that of the first failing
//! check in table order.

mod coverage;
pub mod evaluate;
pub mod gather;
pub mod manifests;
pub mod render;
pub mod run;
pub mod source;

#[cfg(test)]
mod evaluate_tests;

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::twilio::{Account, CustomerProfile, IncomingPhoneNumber, Policy, TrustProduct};

pub use evaluate::evaluate;
pub use gather::gather;
pub use run::{Output, PreflightOptions, run};

/// Policy of the Primary Customer Profile of type Business (the profile SHAKEN/STIR needs).
pub const PRIMARY_PROFILE_POLICY_SID: &str = "RN6433641899984f951173ef1738c3bdd0";

/// Exit code when everything needed to onboard is in place.
pub const EXIT_OK: i32 = 0;
/// Exit code when preflight could not finish (Twilio unreachable, an unexpected answer).
pub const EXIT_ERROR: i32 = 1;
/// Exit code for bad usage: flags, missing or malformed credentials, an unreadable Secret.
pub const EXIT_USAGE: i32 = 2;

/// Why onboarding cannot proceed. Declared in table order; the first one found decides the
/// exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Twilio refused the credentials (401), or they may not read Accounts (403: a standard
    /// API key).
    CredentialsRefused,
    /// The parent account is suspended or closed.
    ParentNotActive,
    /// A subaccount is suspended: its numbers cannot be onboarded until it is active again.
    SubaccountSuspended,
    /// No twilio-approved (and unexpired) Primary Business Profile.
    NoApprovedProfile,
    /// The SHAKEN/STIR policy is not served to this account.
    PolicyMissing,
    /// A SHAKEN/STIR Trust Product already uses the profile: adopt it
    /// (`spec.trustProductSid`) instead of creating a second one.
    ProductExists,
    /// Numbers are already on a SHAKEN/STIR Trust Product other than the one to use.
    NumbersOnAnotherProduct,
    /// No voice-capable number in any active account: nothing to onboard.
    NoVoiceNumbers,
}

impl Problem {
    /// Every problem, in table order.
    pub const ALL: [Problem; 8] = [
        Problem::CredentialsRefused,
        Problem::ParentNotActive,
        Problem::SubaccountSuspended,
        Problem::NoApprovedProfile,
        Problem::PolicyMissing,
        Problem::ProductExists,
        Problem::NumbersOnAnotherProduct,
        Problem::NoVoiceNumbers,
    ];

    /// The process exit code (stable; documented in the README).
    pub fn exit_code(self) -> i32 {
        match self {
            Problem::CredentialsRefused => 3,
            Problem::ParentNotActive => 4,
            Problem::SubaccountSuspended => 5,
            Problem::NoApprovedProfile => 6,
            Problem::PolicyMissing => 7,
            Problem::ProductExists => 8,
            Problem::NumbersOnAnotherProduct => 9,
            Problem::NoVoiceNumbers => 10,
        }
    }

    /// A short reason for the last line and the JSON `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Problem::CredentialsRefused => "Twilio refused the credentials",
            Problem::ParentNotActive => "the parent account is not active",
            Problem::SubaccountSuspended => "a subaccount is suspended",
            Problem::NoApprovedProfile => "no approved Primary Business Profile",
            Problem::PolicyMissing => "the SHAKEN/STIR policy is missing",
            Problem::ProductExists => {
                "a SHAKEN/STIR Trust Product already exists for the profile: adopt it"
            }
            Problem::NumbersOnAnotherProduct => {
                "numbers are already on another SHAKEN/STIR Trust Product"
            }
            Problem::NoVoiceNumbers => "no voice-capable numbers to onboard",
        }
    }
}

/// The rows of the table, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Credentials,
    ParentAccount,
    Subaccounts,
    BusinessProfile,
    Policy,
    TrustProducts,
    Numbers,
}

impl Check {
    pub fn label(self) -> &'static str {
        match self {
            Check::Credentials => "credentials",
            Check::ParentAccount => "parent account",
            Check::Subaccounts => "subaccounts",
            Check::BusinessProfile => "business profile",
            Check::Policy => "shaken/stir policy",
            Check::TrustProducts => "shaken/stir product",
            Check::Numbers => "numbers",
        }
    }
}

/// How one line came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Worth knowing; does not stop onboarding.
    Warn,
    /// Stops onboarding; carries a [`Problem`].
    Fail,
    /// Not checked because an earlier check failed.
    Skipped,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skip",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    pub detail: String,
}

/// How the credentials authenticate (never the secret itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    AuthToken,
    ApiKey,
}

/// Twilio's answer to the first request, when it refused the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: Option<u32>,
    pub message: Option<String>,
}

/// A SHAKEN/STIR Trust Product with what is attached to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductFacts {
    pub product: TrustProduct,
    /// `ObjectSid`s of its EntityAssignments (the profile is one of them).
    pub entities: Vec<String>,
    /// `PN…` SIDs of its ChannelEndpointAssignments.
    pub numbers: Vec<String>,
}

/// The numbers of one account (the parent or a subaccount).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountNumbers {
    pub account_sid: String,
    pub numbers: Vec<IncomingPhoneNumber>,
}

/// Everything preflight read from Twilio. Later fields stay empty when gathering stopped early
/// (credentials refused, parent not active).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// When the facts were read (decides whether a `valid_until` has passed).
    pub now: DateTime<Utc>,
    pub account_sid: String,
    pub auth: Option<AuthKind>,
    /// `Some` when the first request was refused (401/403); nothing else was read.
    pub refused: Option<Refusal>,
    pub parent: Option<Account>,
    /// The parent's subaccounts (the parent itself left out).
    pub subaccounts: Vec<Account>,
    pub profiles: Vec<CustomerProfile>,
    /// The SHAKEN/STIR policy, `None` when Twilio answered 404.
    pub policy: Option<Policy>,
    /// Whether the policy was looked up at all.
    pub policy_checked: bool,
    pub products: Vec<ProductFacts>,
    /// `PN…` SIDs assigned to the chosen Primary profile (see [`evaluate::primary_profile`]).
    pub profile_numbers: Vec<String>,
    /// Numbers per account: the parent first, then active or suspended subaccounts.
    pub numbers: Vec<AccountNumbers>,
}

/// One account's row of the coverage table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub account_sid: String,
    pub friendly_name: String,
    pub status: String,
    pub voice_numbers: usize,
    pub on_profile: usize,
    pub on_product: usize,
}

/// One profile's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileRow {
    pub sid: String,
    pub friendly_name: String,
    pub policy_sid: String,
    pub primary: bool,
    pub status: String,
    pub valid_until: Option<String>,
}

/// One SHAKEN/STIR product's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductRow {
    pub sid: String,
    pub friendly_name: String,
    pub status: String,
    /// The profile(s) attached, `BU…`.
    pub profiles: Vec<String>,
    pub numbers: usize,
    /// The product to adopt (attached to the chosen Primary profile).
    pub adopt: bool,
}

/// A number the manifests would list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedNumber {
    pub sid: String,
    pub phone_number: Option<String>,
    pub account_sid: String,
}

/// What `--manifests` would onboard: the profile, the product to adopt, the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub profile_sid: String,
    pub profile_friendly_name: String,
    pub email: String,
    /// An existing product to adopt (`spec.trustProductSid`) and its friendly name.
    pub adopt: Option<(String, String)>,
    pub numbers: Vec<PlannedNumber>,
}

/// The evaluated facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub account_sid: String,
    pub exit_code: i32,
    /// `None` when onboarding can proceed.
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    pub profiles: Vec<ProfileRow>,
    pub products: Vec<ProductRow>,
    pub coverage: Vec<Coverage>,
    #[serde(skip)]
    pub plan: Option<Plan>,
}

impl Report {
    /// The first problem in table order, if any.
    pub fn problem(&self) -> Option<Problem> {
        self.findings.iter().filter_map(|f| f.problem).min()
    }
}

/// Why preflight could not run to the end (its exit code: [`PreflightError::exit_code`]).
/// Messages never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Secret(#[from] crate::controller::CredentialsError),
    #[error("reading the Secret through the kubeconfig: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error(transparent)]
    Twilio(#[from] crate::twilio::TwilioError),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("rendering: {0}")]
    Render(String),
}

impl PreflightError {
    pub fn exit_code(&self) -> i32 {
        match self {
            PreflightError::Usage(_)
            | PreflightError::Secret(_)
            | PreflightError::Twilio(crate::twilio::TwilioError::InvalidArgument(_)) => EXIT_USAGE,
            _ => EXIT_ERROR,
        }
    }
}

/// Where gathering reports what it is doing (pages through large accounts take a while).
pub trait Progress: Send + Sync {
    fn step(&self, what: &str);
    /// Clears what `step` showed (called once gathering ended, however it ended).
    fn done(&self) {}
}

/// Progress on stderr, only when stderr is a terminal (one line, rewritten in place).
pub struct TerminalProgress {
    enabled: bool,
}

impl TerminalProgress {
    pub fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn step(&self, what: &str) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2Kpreflight: {what}");
            let _ = err.flush();
        }
    }

    fn done(&self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// No progress output (tests, libraries).
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _what: &str) {}
}
