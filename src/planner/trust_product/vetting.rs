//! The vetting conditions of a Trust Product: what its Twilio status means for `Submitted`,
//! `Approved` and `Ready`, and when to look again.

use super::{EvaluationMemo, TrustProductInputs};
use crate::api::twilio_status as ts;
use crate::planner::{ConditionSpec, PollSchedule, Requeue, text};

/// The vetting conditions (`Submitted`, `Approved`, `Ready`) of the product's Twilio status,
/// when to look again, and whether a rejection is seen for the first time.
pub(super) struct Vetting {
    pub submitted: ConditionSpec,
    pub approved: ConditionSpec,
    pub ready: ConditionSpec,
    pub requeue: Requeue,
    pub record_rejection: bool,
}

impl Vetting {
    /// The three conditions, looking again on the next change only.
    fn of(submitted: ConditionSpec, approved: ConditionSpec, ready: ConditionSpec) -> Self {
        Self {
            submitted,
            approved,
            ready,
            requeue: Requeue::OnChange,
            record_rejection: false,
        }
    }

    fn requeue(self, requeue: Requeue) -> Self {
        Self { requeue, ..self }
    }
}

/// The vetting of `inputs`' product.
pub(super) fn vetting(
    inputs: &TrustProductInputs<'_>,
    // The profile and every number are attached.
    in_place: bool,
    memo: Option<&EvaluationMemo>,
) -> Vetting {
    let status = inputs.product.status.as_str();
    match status {
        ts::DRAFT => draft_vetting(inputs.submit, in_place, memo),
        ts::PENDING_REVIEW | ts::IN_REVIEW => {
            let reason = if status == ts::IN_REVIEW {
                "InReview"
            } else {
                "PendingReview"
            };
            Vetting::of(
                submitted(),
                ConditionSpec::not("Approved", reason, format!("Twilio status is {status}")),
                ConditionSpec::not(
                    "Ready",
                    reason,
                    format!("waiting for Twilio's vetting ({status})"),
                ),
            )
            .requeue(Requeue::After(PollSchedule::growing(
                inputs.poll.review_initial,
                inputs.poll.review_max,
                inputs.submitted_at,
                inputs.now,
            )))
        }
        ts::TWILIO_APPROVED => {
            let ready = if in_place {
                ConditionSpec::ok("Ready", "Approved", "approved by Twilio; numbers attached")
            } else {
                ConditionSpec::not(
                    "Ready",
                    "Attaching",
                    "approved; attaching the remaining numbers",
                )
            };
            let approved = ConditionSpec::ok("Approved", "Approved", "twilio-approved");
            Vetting::of(submitted(), approved, ready).requeue(Requeue::After(
                inputs.poll.approved(inputs.product.valid_until, inputs.now),
            ))
        }
        ts::TWILIO_REJECTED => rejected_vetting(inputs),
        other => Vetting::of(
            ConditionSpec::unknown(
                "Submitted",
                "UnknownStatus",
                format!("Twilio status {other:?} is not known to this operator"),
            ),
            ConditionSpec::unknown(
                "Approved",
                "UnknownStatus",
                format!("Twilio status {other:?}"),
            ),
            ConditionSpec::not(
                "Ready",
                "UnknownStatus",
                format!("Twilio reports status {other:?}"),
            ),
        )
        .requeue(Requeue::After(inputs.poll.review_max)),
    }
}

/// `Submitted` once Twilio has the product (in review, approved or rejected).
fn submitted() -> ConditionSpec {
    ConditionSpec::ok("Submitted", "Submitted", "submitted for vetting")
}

/// A draft: submitted once ready (`submit`), else held for review.
fn draft_vetting(submit: bool, in_place: bool, memo: Option<&EvaluationMemo>) -> Vetting {
    if submit {
        return Vetting::of(
            ConditionSpec::not(
                "Submitted",
                "Draft",
                "in draft; submitted once attached and compliant",
            ),
            ConditionSpec::not("Approved", "Draft", "not submitted yet"),
            ConditionSpec::not(
                "Ready",
                "Submitting",
                "attaching, evaluating and submitting",
            ),
        );
    }
    Vetting::of(
        ConditionSpec::not(
            "Submitted",
            "HeldInDraft",
            "spec.submit is false: the product stays in draft for review",
        ),
        ConditionSpec::not(
            "Approved",
            "HeldInDraft",
            "not submitted (spec.submit is false)",
        ),
        if in_place && memo.is_some_and(|m| m.compliant) {
            ConditionSpec::ok(
                "Ready",
                "HeldInDraft",
                "attached and compliant; held in draft because spec.submit is false",
            )
        } else {
            ConditionSpec::not("Ready", "Preparing", "attaching and evaluating the draft")
        },
    )
}

/// Rejected: resubmitted when allowed, else waiting for the user; the rejection is recorded
/// the first time it is seen.
fn rejected_vetting(inputs: &TrustProductInputs<'_>) -> Vetting {
    let codes: Vec<String> = inputs.product.errors.iter().map(i64::to_string).collect();
    let codes = if codes.is_empty() {
        "none given".to_string()
    } else {
        text::listed(&codes, ", ")
    };
    let message = if inputs.submit && inputs.resubmit_allowed() {
        format!("rejected by Twilio (error codes: {codes}); resubmitting")
    } else {
        format!(
            "rejected by Twilio (error codes: {codes}); fix the cause, then change the spec or set the annotation trusthub.stir.dev/resubmit to a new value"
        )
    };
    Vetting {
        record_rejection: inputs.rejected_generation.is_none(),
        ..Vetting::of(
            submitted(),
            ConditionSpec::not("Approved", "Rejected", message.clone()),
            ConditionSpec::not("Ready", "Rejected", message),
        )
    }
}
