//! Reconcile errors, classified: transient ones are retried with per-object backoff, terminal
//! ones become a `Ready=False` condition with a specific reason and a Warning Event, and wait
//! for the spec, the Secret or Twilio to change.

use std::time::Duration;

use super::credentials::CredentialsError;
use crate::twilio::TwilioError;

/// How an error is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry with backoff.
    Transient,
    /// Record a condition and an Event; do not retry quickly.
    Terminal,
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Kubernetes API failed (conflict, timeout, unavailable): always retried.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A Twilio call failed; its class decides.
    #[error("Twilio {operation}: {source}")]
    Twilio {
        /// What the operator was doing.
        operation: &'static str,
        /// The client's error (never carries credentials).
        source: TwilioError,
    },
    /// The credentials Secret is missing, incomplete or malformed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Something only the user can fix.
    #[error("{message}")]
    Terminal {
        /// CamelCase condition reason.
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// Waiting for something in the cluster (a binding to resolve its profile, a number to be
    /// assigned); a watch re-triggers the reconcile, so it is not retried and raises no Warning.
    #[error("{message}")]
    Waiting {
        /// CamelCase condition reason.
        reason: &'static str,
        /// What is awaited.
        message: String,
    },
    /// Waiting for this process to read another object again (its full record of a binding's
    /// numbers, after a restart): retried with backoff, as no watch event may come.
    #[error("{message}")]
    Recalling {
        /// CamelCase condition reason.
        reason: &'static str,
        /// What is awaited.
        message: String,
    },
    /// The object changed (someone else wrote it) since the version this reconcile planned
    /// from, so its status write was refused: planned again from the newer copy.
    #[error("the object changed during the reconcile; planning again from the newer copy")]
    Superseded,
    /// The finalizer helper failed to add or remove the finalizer.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A terminal error already recorded in status (a condition and, for a failure, a Warning
    /// Event): the controller looks again after `--terminal-recheck`, without backoff. Returned
    /// as a value so the metrics see the failure without a side channel.
    #[error("recorded in status: {reason}")]
    Recorded {
        /// The condition reason recorded.
        reason: &'static str,
        /// A failure; `false` when waiting for something in the cluster (not a failure).
        failure: bool,
    },
}

impl ReconcileError {
    /// Wraps a Twilio error with what the operator was doing.
    pub fn twilio(operation: &'static str) -> impl FnOnce(TwilioError) -> ReconcileError {
        move |source| ReconcileError::Twilio { operation, source }
    }

    /// A terminal error with `reason`.
    pub fn terminal(reason: &'static str, message: impl Into<String>) -> Self {
        ReconcileError::Terminal {
            reason,
            message: message.into(),
        }
    }

    /// Transient or terminal.
    pub fn class(&self) -> ErrorClass {
        match self {
            ReconcileError::Kube(_)
            | ReconcileError::Finalizer(_)
            | ReconcileError::Recalling { .. }
            | ReconcileError::Superseded => ErrorClass::Transient,
            ReconcileError::Twilio { source, .. }
                if source.is_transient() || source.is_ambiguous() =>
            {
                ErrorClass::Transient
            }
            ReconcileError::Twilio { .. }
            | ReconcileError::Credentials(_)
            | ReconcileError::Terminal { .. }
            | ReconcileError::Waiting { .. }
            | ReconcileError::Recorded { .. } => ErrorClass::Terminal,
        }
    }

    /// The condition reason shown to the user.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KubernetesApiError",
            ReconcileError::Finalizer(_) => "FinalizerError",
            ReconcileError::Superseded => "Superseded",
            ReconcileError::Credentials(e) => e.reason(),
            ReconcileError::Terminal { reason, .. }
            | ReconcileError::Waiting { reason, .. }
            | ReconcileError::Recalling { reason, .. }
            | ReconcileError::Recorded { reason, .. } => reason,
            ReconcileError::Twilio { source, .. } => {
                if source.is_auth() {
                    "TwilioAuthenticationFailed"
                } else if source.http_status() == Some(429) {
                    "TwilioRateLimited"
                } else if source.is_ambiguous() {
                    "TwilioOutcomeUnknown"
                } else if source.is_transient() {
                    "TwilioUnavailable"
                } else {
                    "TwilioRequestRefused"
                }
            }
        }
    }

    /// A wait for something in the cluster, with `reason`.
    pub fn waiting(reason: &'static str, message: impl Into<String>) -> Self {
        ReconcileError::Waiting {
            reason,
            message: message.into(),
        }
    }

    /// How long Twilio asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::Twilio { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}
