//! A Trust Product's evaluation as recorded in `.status.lastEvaluation`, and as the planner
//! reads it back.

use k8s_openapi::jiff::Timestamp;

use super::super::status::now;
use crate::api::{EvaluationStatus, FailedRequirement};
use crate::planner::text;
use crate::planner::trust_product::EvaluationMemo;
use crate::twilio::{Evaluation, EvaluationStatus as TwilioEvaluationStatus};

pub(super) fn memo_of(e: &EvaluationStatus) -> EvaluationMemo {
    EvaluationMemo {
        compliant: e.status == "compliant",
        key: e.key.clone(),
        at: e
            .evaluated_at
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH),
        noncompliant_since: e.noncompliant_since.as_ref().map(|t| t.0),
        failures: e
            .failed_requirements
            .iter()
            .map(|f| {
                let mut s = f.requirement.clone();
                if let Some(field) = &f.field {
                    s.push_str(&format!(" ({field})"));
                }
                if let Some(reason) = &f.reason {
                    s.push_str(&format!(": {reason}"));
                }
                if let Some(code) = f.error_code {
                    s.push_str(&format!(" [{code}]"));
                }
                s
            })
            .collect(),
    }
}

/// How many failed requirements `.status.lastEvaluation` keeps: Twilio's evaluation can fail
/// once per number, and the status must stay far under etcd's object limit.
const FAILED_REQUIREMENTS_MAX: usize = 100;

fn bounded_reason(reason: &str) -> String {
    text::bounded(reason, text::NUMBER_MESSAGE_MAX)
}

pub(super) fn evaluation_status(
    evaluation: &Evaluation,
    key: String,
    previous: Option<&EvaluationStatus>,
) -> EvaluationStatus {
    let compliant = matches!(evaluation.status, Some(TwilioEvaluationStatus::Compliant));
    let mut failed = Vec::new();
    for r in evaluation.failed_requirements() {
        let requirement = r
            .requirement_name
            .clone()
            .or(r.requirement_friendly_name.clone())
            .unwrap_or_else(|| "unnamed".into());
        if r.invalid.is_empty() {
            failed.push(FailedRequirement {
                requirement: requirement.clone(),
                field: None,
                reason: r.failure_reason.as_deref().map(bounded_reason),
                error_code: r.error_code.map(i64::from),
            });
        }
        for f in &r.invalid {
            failed.push(FailedRequirement {
                requirement: requirement.clone(),
                field: f.object_field.clone(),
                reason: f
                    .failure_reason
                    .as_deref()
                    .or(r.failure_reason.as_deref())
                    .map(bounded_reason),
                error_code: f.error_code.or(r.error_code).map(i64::from),
            });
        }
    }
    failed.truncate(FAILED_REQUIREMENTS_MAX);
    let at = now();
    let noncompliant_since = (!compliant).then(|| {
        previous
            .filter(|p| p.key == key && p.status != "compliant")
            .and_then(|p| p.noncompliant_since.clone())
            .unwrap_or_else(|| at.clone())
    });
    EvaluationStatus {
        sid: evaluation.sid.clone().unwrap_or_default(),
        key,
        status: if compliant {
            "compliant".into()
        } else {
            "noncompliant".into()
        },
        failed_requirements: failed,
        evaluated_at: Some(at),
        noncompliant_since,
    }
}
