//! Planner for a `ShakenStirTrustProduct` whose Trust Product exists (its identity is settled by
//! [`decide_identity`]): attach the profile, attach the numbers, keep the editable fields in
//! line, evaluate, submit, follow the vetting.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::expiry::Expiry;
use super::{ConditionSpec, PollSchedule, Requeue, text};
use crate::api::{DeletionPolicy, Sid, twilio_status as ts};
use vetting::{Vetting, vetting};

mod vetting;

/// How the operator knows which Trust Product is this object's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Use this SID (recorded in status, adopted from the spec, or the one product found).
    Use(String),
    /// Nothing exists yet: mark the create as pending in status, then create.
    Create,
    /// Several products carry the name and policy: refuse to guess (terminal).
    Ambiguous(Vec<String>),
}

/// Inputs of [`decide_identity`]: what status and spec say, and what the look-up by
/// FriendlyName + PolicySid found (only performed when neither names a SID).
#[derive(Clone, Debug, Default)]
pub struct IdentityInputs<'a> {
    /// `status.trustProductSid`.
    pub recorded_sid: Option<&'a str>,
    /// `spec.trustProductSid`.
    pub adopt_sid: Option<&'a str>,
    /// SIDs of the products listed with the spec's FriendlyName and PolicySid.
    pub found_by_name: &'a [String],
}

/// The Trust Product's identity. A recorded SID wins, then the one to adopt, then the look-up:
/// a create happens only when the look-up found nothing, which is what makes a crash between
/// Twilio's 201 and the status write harmless (the next look-up finds and adopts the product).
pub fn decide_identity(inputs: &IdentityInputs<'_>) -> Identity {
    if let Some(sid) = inputs.recorded_sid.or(inputs.adopt_sid) {
        return Identity::Use(sid.to_string());
    }
    match inputs.found_by_name {
        [] => Identity::Create,
        [one] => Identity::Use(one.clone()),
        many => Identity::Ambiguous(many.to_vec()),
    }
}

/// The Trust Product as fetched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductView {
    /// `BU…`.
    pub sid: String,
    /// Twilio status string.
    pub status: String,
    /// Current friendly name.
    pub friendly_name: Option<String>,
    /// Current e-mail.
    pub email: Option<String>,
    /// Current status callback.
    pub status_callback: Option<String>,
    /// Rejection codes.
    pub errors: Vec<i64>,
    /// Approval expiry.
    pub valid_until: Option<Timestamp>,
}

/// One number attached to the product (a TrustProduct ChannelEndpointAssignment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// `RA…`.
    pub assignment_sid: Sid,
    /// `PN…`.
    pub number_sid: Sid,
}

/// The last evaluation the operator recorded, with what it was computed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluationMemo {
    /// Whether Twilio answered `compliant`.
    pub compliant: bool,
    /// [`TrustProductInputs::evaluation_key`] at the time.
    pub key: String,
    /// When it ran.
    pub at: Timestamp,
    /// When the product was first found noncompliant for this key (retries back off from it).
    pub noncompliant_since: Option<Timestamp>,
    /// Failed requirements, rendered for the condition message.
    pub failures: Vec<String>,
}

/// Everything the planner needs, observed or recorded.
#[derive(Clone, Debug)]
pub struct TrustProductInputs<'a> {
    /// Now.
    pub now: Timestamp,
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec.friendlyName`.
    pub friendly_name: &'a str,
    /// `spec.email`.
    pub email: &'a str,
    /// `spec.statusCallback`.
    pub status_callback: Option<&'a str>,
    /// `spec.submit`.
    pub submit: bool,
    /// `spec.deletionPolicy`.
    pub deletion_policy: DeletionPolicy,
    /// The profile the product must be attached to.
    pub profile_sid: &'a str,
    /// The `PN…` SIDs to attach, every one checked to be on the profile.
    pub desired_numbers: &'a BTreeSet<Sid>,
    /// The product as fetched.
    pub product: &'a ProductView,
    /// `(BV…, object SID)` entity assignments of the product.
    pub entity_assignments: &'a [(String, String)],
    /// Numbers attached to the product.
    pub attachments: &'a [Attachment],
    /// `RA…` SIDs of attachments this object created (only those are ever removed).
    pub owned_attachments: &'a BTreeSet<Sid>,
    /// Last recorded evaluation.
    pub evaluation: Option<&'a EvaluationMemo>,
    /// Generation at which a rejection was recorded.
    pub rejected_generation: Option<i64>,
    /// The resubmit annotation holds a value not acted on yet.
    pub resubmit_requested: bool,
    /// The resubmit annotation's current value: each new value is a new submission round,
    /// which needs an evaluation of its own.
    pub resubmit_annotation: Option<&'a str>,
    /// When the operator submitted the product.
    pub submitted_at: Option<Timestamp>,
    /// Polling intervals.
    pub poll: &'a PollSchedule,
    /// How many number writes the plan lists at most (see
    /// [`crate::planner::binding::BindingInputs::actions_max`]).
    pub actions_max: usize,
}

/// A Twilio write the controller must perform next.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrustProductAction {
    /// EntityAssignments create with `ObjectSid` = the profile (seed step 4).
    AttachProfile { profile_sid: String },
    /// ChannelEndpointAssignments create (seed step 5).
    AttachNumber { number_sid: Sid },
    /// ChannelEndpointAssignments delete of an attachment this object made.
    DetachNumber {
        assignment_sid: Sid,
        number_sid: Sid,
    },
    /// Update the editable fields that drifted (draft or rejected products only).
    UpdateFields {
        friendly_name: Option<String>,
        email: Option<String>,
        status_callback: Option<String>,
    },
    /// Evaluations create; the result is recorded under `key`.
    Evaluate { key: String },
    /// Update `Status=pending-review` (seed step 6).
    Submit,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustProductPlan {
    /// The next writes: empty when nothing is left, else one step (attach the profile, update,
    /// evaluate, submit) or every number attach (or detach) still needed, which are independent
    /// of each other and may run concurrently. Perform them and plan again.
    pub actions: Vec<TrustProductAction>,
    /// Step conditions, `Ready` and `ExpiringSoon`.
    pub conditions: Vec<ConditionSpec>,
    /// When to look again once no write is left.
    pub requeue: Requeue,
    /// A rejection seen for the first time: record the generation it applies to.
    pub record_rejection: bool,
}

/// The annotation's value as it goes into the evaluation key (kept in status): short values
/// as they are, longer ones as a stable 64-bit FNV-1a hash, so the key stays small whatever
/// the annotation holds.
fn round_tag(value: &str) -> String {
    const SHORT: usize = 64;
    if value.len() <= SHORT {
        return value.to_string();
    }
    let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("#{hash:016x}")
}

/// The numbers as they go into the evaluation key (kept in status): a short list as it is, a
/// long one as its count and a 64-bit FNV-1a hash, so the key stays small at 50,000 numbers.
fn numbers_tag(numbers: &BTreeSet<Sid>) -> String {
    const SHORT: usize = 256;
    let joined: Vec<&str> = numbers.iter().map(|n| &**n).collect();
    let joined = joined.join(",");
    if joined.len() <= SHORT {
        return joined;
    }
    format!("{} numbers {}", numbers.len(), round_tag(&joined))
}

fn editable(status: &str) -> bool {
    status == ts::DRAFT || status == ts::TWILIO_REJECTED
}

impl TrustProductInputs<'_> {
    /// What an evaluation depends on: the attached profile and numbers, and which submission it
    /// is for (a resubmission after a rejection needs a fresh evaluation). A resubmission is
    /// told apart by the generation and the annotation's value, so a second resubmit at the
    /// same generation (a new value after a second rejection) is evaluated again.
    pub fn evaluation_key(&self) -> String {
        let numbers = numbers_tag(self.desired_numbers);
        let round = if self.product.status == ts::TWILIO_REJECTED {
            match self.resubmit_annotation {
                Some(value) => format!("resubmit-g{}-a:{}", self.generation, round_tag(value)),
                None => format!("resubmit-g{}", self.generation),
            }
        } else {
            "first".to_string()
        };
        format!("{}|{}|{}", self.profile_sid, numbers, round)
    }

    fn resubmit_allowed(&self) -> bool {
        let rejected_at = self.rejected_generation.unwrap_or(self.generation);
        self.generation > rejected_at || self.resubmit_requested
    }

    /// `attached`: the `PN…` SIDs attached now (made once per plan: a set of 50,000).
    fn next_writes(&self, attached: &BTreeSet<&str>) -> Vec<TrustProductAction> {
        if let Some(profile) = self.attach_profile() {
            return vec![profile];
        }
        let numbers = self.number_writes(attached);
        if !numbers.is_empty() {
            return numbers;
        }
        self.next_step().into_iter().collect()
    }

    fn attach_profile(&self) -> Option<TrustProductAction> {
        (!self.profile_attached() && editable(self.product.status.as_str())).then(|| {
            TrustProductAction::AttachProfile {
                profile_sid: self.profile_sid.to_string(),
            }
        })
    }

    fn profile_attached(&self) -> bool {
        self.entity_assignments
            .iter()
            .any(|(_, object)| object == self.profile_sid)
    }

    /// Every missing number's attach, else every detach of a number this object attached and
    /// no longer wants (`Delete` only).
    fn number_writes(&self, attached: &BTreeSet<&str>) -> Vec<TrustProductAction> {
        let attach: Vec<TrustProductAction> = self
            .desired_numbers
            .iter()
            .filter(|n| !attached.contains(&***n))
            .take(self.actions_max)
            .map(|n| TrustProductAction::AttachNumber {
                number_sid: n.clone(),
            })
            .collect();
        if !attach.is_empty() || self.deletion_policy != DeletionPolicy::Delete {
            return attach;
        }
        self.attachments
            .iter()
            .filter(|a| {
                !self.desired_numbers.contains(&a.number_sid)
                    && self.owned_attachments.contains(&a.assignment_sid)
            })
            .take(self.actions_max)
            .map(|extra| TrustProductAction::DetachNumber {
                assignment_sid: extra.assignment_sid.clone(),
                number_sid: extra.number_sid.clone(),
            })
            .collect()
    }

    /// The next single step once the profile and numbers are in place.
    fn next_step(&self) -> Option<TrustProductAction> {
        let status = self.product.status.as_str();
        let profile_attached = self.profile_attached();
        if editable(status) {
            let differs = |want: &str, have: &Option<String>| {
                (have.as_deref() != Some(want)).then(|| want.to_string())
            };
            let friendly_name = differs(self.friendly_name, &self.product.friendly_name);
            let email = differs(self.email, &self.product.email);
            let status_callback = self
                .status_callback
                .and_then(|cb| differs(cb, &self.product.status_callback));
            if friendly_name.is_some() || email.is_some() || status_callback.is_some() {
                return Some(TrustProductAction::UpdateFields {
                    friendly_name,
                    email,
                    status_callback,
                });
            }
        }
        let wants_submission = self.submit
            && (status == ts::DRAFT || (status == ts::TWILIO_REJECTED && self.resubmit_allowed()));
        let wants_check = wants_submission || (!self.submit && status == ts::DRAFT);
        if !wants_check || !profile_attached {
            return None;
        }
        let key = self.evaluation_key();
        match self.evaluation.filter(|memo| memo.key == key) {
            None => Some(TrustProductAction::Evaluate { key }),
            Some(memo) if memo.compliant => wants_submission.then_some(TrustProductAction::Submit),
            Some(memo) => {
                let wait = self.noncompliant_retry(memo);
                let due = Duration::try_from(self.now.duration_since(memo.at))
                    .is_ok_and(|waited| waited >= wait);
                due.then_some(TrustProductAction::Evaluate { key })
            }
        }
    }

    /// Wait after a noncompliant evaluation: grows with how long the product has been
    /// noncompliant for this key, so retries come at about 30 s, 1, 2, 4 … minutes.
    fn noncompliant_retry(&self, memo: &EvaluationMemo) -> Duration {
        PollSchedule::growing(
            self.poll.noncompliant_initial,
            self.poll.noncompliant_max,
            memo.noncompliant_since,
            memo.at,
        )
    }
}

/// Plans the next step for a Trust Product whose identity is settled.
pub fn plan(inputs: &TrustProductInputs<'_>) -> TrustProductPlan {
    let status = inputs.product.status.as_str();
    let profile_attached = inputs.profile_attached();
    let attached: BTreeSet<&str> = inputs.attachments.iter().map(|a| &*a.number_sid).collect();
    let missing: Vec<&str> = inputs
        .desired_numbers
        .iter()
        .map(|n| &**n)
        .filter(|n| !attached.contains(n))
        .collect();
    let key = inputs.evaluation_key();
    let memo = inputs
        .evaluation
        .filter(|m| m.key == key)
        .or(inputs.evaluation);
    let mut conditions = vec![
        profile_condition(inputs, profile_attached),
        numbers_condition(inputs.desired_numbers.len(), &missing),
        compliance_condition(memo, status),
    ];

    let Vetting {
        submitted,
        approved,
        ready,
        mut requeue,
        record_rejection,
    } = vetting(inputs, profile_attached && missing.is_empty(), memo);
    let expiry = Expiry::of(
        status == ts::TWILIO_APPROVED,
        inputs.product.valid_until,
        inputs.now,
        inputs.poll.expiry_warning,
    );
    let what = format!("Trust Product {}", inputs.product.sid);
    let ready = expiry.ready_override(&what).unwrap_or(ready);
    conditions.extend([
        submitted,
        approved,
        ready,
        expiry.condition(&what, inputs.now),
    ]);

    let actions = inputs.next_writes(&attached);
    if actions.is_empty()
        && let Some(m) = memo.filter(|m| !m.compliant && m.key == key)
        && editable(status)
    {
        let wait = inputs.noncompliant_retry(m);
        let waited = Duration::try_from(inputs.now.duration_since(m.at)).unwrap_or(Duration::ZERO);
        requeue = Requeue::After(wait.saturating_sub(waited).max(Duration::from_secs(1)));
    }
    TrustProductPlan {
        actions,
        conditions,
        requeue,
        record_rejection,
    }
}

/// `ProfileAttached`: attached, attaching, or locked while Twilio reviews the product.
fn profile_condition(inputs: &TrustProductInputs<'_>, attached: bool) -> ConditionSpec {
    let status = inputs.product.status.as_str();
    let profile = inputs.profile_sid;
    if attached {
        ConditionSpec::ok(
            "ProfileAttached",
            "Attached",
            format!("attached to Business Profile {profile}"),
        )
    } else if editable(status) {
        ConditionSpec::not(
            "ProfileAttached",
            "Attaching",
            format!("attaching Business Profile {profile}"),
        )
    } else {
        ConditionSpec::not(
            "ProfileAttached",
            "LockedByReview",
            format!(
                "the product is {status} and cannot be attached to Business Profile {profile} until Twilio finishes"
            ),
        )
    }
}

/// `NumbersAttached`: all of `desired` attached, or the first of those `missing`.
fn numbers_condition(desired: usize, missing: &[&str]) -> ConditionSpec {
    if missing.is_empty() {
        ConditionSpec::ok(
            "NumbersAttached",
            "Attached",
            format!("{desired} of {desired} numbers attached"),
        )
    } else {
        ConditionSpec::not(
            "NumbersAttached",
            "Attaching",
            format!("not attached yet: {}", text::listed(missing, ", ")),
        )
    }
}

/// `Compliant`: what the last evaluation (`memo`) found.
fn compliance_condition(memo: Option<&EvaluationMemo>, status: &str) -> ConditionSpec {
    match memo {
        Some(m) if m.compliant => ConditionSpec::ok(
            "Compliant",
            "Compliant",
            "the last evaluation found the product compliant",
        ),
        Some(m) => ConditionSpec::not(
            "Compliant",
            "Noncompliant",
            format!("evaluation failed: {}", text::listed(&m.failures, "; ")),
        ),
        None if !editable(status) => ConditionSpec::unknown(
            "Compliant",
            "NotEvaluated",
            "submitted without an evaluation by this operator",
        ),
        None => ConditionSpec::unknown("Compliant", "NotEvaluated", "not evaluated yet"),
    }
}

#[cfg(test)]
#[path = "trust_product_tests.rs"]
mod tests;
