//! Planner for a `BusinessProfileBinding`: which numbers to assign to the Primary Business
//! Profile, which assignments to remove, and what the conditions say.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use super::expiry::Expiry;
use super::{ConditionSpec, PollSchedule, Requeue, text};
use crate::api::{
    DeletionPolicy, NumberCounts, NumberState, PhoneNumberAssignmentStatus, Sid,
    twilio_status as ts,
};

/// The profile as fetched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileView {
    /// `BU…`.
    pub sid: String,
    /// Twilio status.
    pub status: String,
    /// Approval expiry.
    pub valid_until: Option<Timestamp>,
}

/// One spec entry after resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberTarget {
    /// The `PN…` SID is known.
    Resolved {
        /// `PN…`.
        number_sid: Sid,
        /// E.164, when known.
        phone_number: Option<Sid>,
        /// Owning (sub)account, when known.
        subaccount_sid: Option<Sid>,
    },
    /// The number could not be found; the message says where it was looked for.
    Unresolvable {
        /// E.164 or SID as written in the spec.
        shown: String,
        /// Subaccount the number was looked up in.
        subaccount_sid: Option<Sid>,
        /// Why.
        message: String,
    },
}

impl NumberTarget {
    /// The `PN…` SID, once resolved.
    pub fn number_sid(&self) -> Option<&Sid> {
        match self {
            NumberTarget::Resolved { number_sid, .. } => Some(number_sid),
            NumberTarget::Unresolvable { .. } => None,
        }
    }
}

/// A number recorded in status that the spec no longer lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// `PN…`.
    pub number_sid: Sid,
    /// The assignment, when one exists.
    pub assignment_sid: Option<Sid>,
    /// Whether this object made it.
    pub created_by_operator: bool,
}

/// Everything the binding planner needs.
#[derive(Clone, Debug)]
pub struct BindingInputs<'a> {
    /// Now.
    pub now: Timestamp,
    /// The resolved profile.
    pub profile: &'a ProfileView,
    /// Spec entries, in spec order, resolved.
    pub targets: &'a [NumberTarget],
    /// `(RA…, PN…)` assignments on the profile, as listed.
    pub assignments: &'a [(Sid, Sid)],
    /// `RA…` SIDs this object created.
    pub owned: &'a BTreeSet<Sid>,
    /// Numbers recorded in status that the spec dropped.
    pub released: &'a [Released],
    /// `spec.deletionPolicy`.
    pub deletion_policy: DeletionPolicy,
    /// Since when the profile has not been approved (the `ProfileApproved` condition's
    /// transition time), for polling with growing intervals.
    pub unapproved_since: Option<Timestamp>,
    /// Failures of earlier assignment attempts, by `PN…`.
    pub failures: &'a BTreeMap<Sid, String>,
    /// Since when some number has been refused or unresolvable (the `NumbersAssigned`
    /// condition's transition time while it reports problems): retries back off from it.
    pub failing_since: Option<Timestamp>,
    /// Polling intervals.
    pub poll: &'a PollSchedule,
    /// How many writes the plan lists at most: the controller runs one batch of those it has
    /// not tried yet, so it passes the batch size plus the writes already tried
    /// (`controller::batch::planned_max`).
    pub actions_max: usize,
}

/// A Twilio write for the binding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BindingAction {
    /// CustomerProfile ChannelEndpointAssignments create (seed step 2).
    Assign { number_sid: Sid },
    /// CustomerProfile ChannelEndpointAssignments delete (a dropped number, `Delete` policy).
    Unassign {
        assignment_sid: Sid,
        number_sid: Sid,
    },
}

/// The binding planner's answer: every write still needed (independent of each other), the
/// per-number status, the conditions and when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingPlan {
    /// Writes to perform, in order: the first [`BindingInputs::actions_max`] of them.
    pub actions: Vec<BindingAction>,
    /// `.status.phoneNumbers`, spec order, then numbers being released.
    pub numbers: Vec<PhoneNumberAssignmentStatus>,
    /// `ProfileApproved`, `NumbersAssigned`, `Ready`, `ExpiringSoon`.
    pub conditions: Vec<ConditionSpec>,
    /// `assigned/requested`.
    pub summary: String,
    /// Numbers by state (`covered` is left 0: the controller counts it).
    pub counts: NumberCounts,
    /// When to look again.
    pub requeue: Requeue,
}

/// What makes two spec entries one number: the `PN…` SID once resolved, else the number as
/// written and the account it was looked up in.
fn target_key(target: &NumberTarget) -> (&str, Option<&str>) {
    match target {
        NumberTarget::Resolved { number_sid, .. } => (number_sid, None),
        NumberTarget::Unresolvable {
            shown,
            subaccount_sid,
            ..
        } => (shown, subaccount_sid.as_deref().or(Some(""))),
    }
}

/// What the planner decides number by number: the writes, the per-number status, and the tally.
struct NumberPlan {
    actions: Vec<BindingAction>,
    numbers: Vec<PhoneNumberAssignmentStatus>,
    assigned: usize,
    total: usize,
    problems: Vec<String>,
    counts: NumberCounts,
}

/// Each wanted number (assigned, to assign, refused, unresolvable), then each dropped number
/// this object assigned (to unassign under `Delete`).
fn plan_numbers(inputs: &BindingInputs<'_>) -> NumberPlan {
    let by_number: BTreeMap<&str, &Sid> = inputs
        .assignments
        .iter()
        .map(|(ra, pn)| (&**pn, ra))
        .collect();
    let mut actions = Vec::new();
    // Sized up front: grown by doubling, the list of 50,000 entries held up to twice its size.
    let mut numbers = Vec::with_capacity(inputs.targets.len() + inputs.released.len());
    let mut assigned = 0usize;
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut counts = NumberCounts::default();
    // Twilio's reason for the first problem numbers only (`text::NUMBER_MESSAGES_MAX`).
    let mut reasons_left = text::NUMBER_MESSAGES_MAX;
    let mut reason = |message: &str| {
        let shown = reasons_left > 0;
        reasons_left = reasons_left.saturating_sub(1);
        shown.then(|| text::bounded(message, text::NUMBER_MESSAGE_MAX))
    };
    for target in inputs.targets {
        if !seen.insert(target_key(target)) {
            continue;
        }
        match target {
            NumberTarget::Resolved {
                number_sid,
                phone_number,
                subaccount_sid,
            } => {
                let assignment = by_number.get(&**number_sid).map(|ra| Sid::clone(ra));
                let failure = inputs.failures.get(number_sid);
                let state = match (&assignment, failure) {
                    (Some(_), _) => NumberState::Assigned,
                    (None, Some(_)) => NumberState::Failed,
                    (None, None) => NumberState::Resolved,
                };
                if assignment.is_some() {
                    assigned += 1;
                } else {
                    if actions.len() < inputs.actions_max {
                        actions.push(BindingAction::Assign {
                            number_sid: number_sid.clone(),
                        });
                    }
                    if let Some(f) = failure {
                        counts.refused += 1;
                        problems.push(format!(
                            "{}: {f}",
                            phone_number.as_deref().unwrap_or(&**number_sid)
                        ));
                    }
                }
                numbers.push(PhoneNumberAssignmentStatus {
                    phone_number: phone_number.clone(),
                    sid: Some(number_sid.clone()),
                    subaccount_sid: subaccount_sid.clone(),
                    created_by_operator: assignment
                        .as_ref()
                        .is_some_and(|ra| inputs.owned.contains(ra)),
                    assignment_sid: assignment,
                    state,
                    message: failure.and_then(|f| reason(f)),
                });
            }
            NumberTarget::Unresolvable {
                shown,
                subaccount_sid,
                message,
            } => {
                counts.unresolvable += 1;
                problems.push(format!("{shown}: {message}"));
                numbers.push(PhoneNumberAssignmentStatus {
                    phone_number: shown.starts_with('+').then(|| shown.as_str().into()),
                    sid: (!shown.starts_with('+')).then(|| shown.as_str().into()),
                    subaccount_sid: subaccount_sid.clone(),
                    state: NumberState::Unresolvable,
                    message: reason(message),
                    ..Default::default()
                });
            }
        }
    }
    release(inputs, &by_number, &mut actions, &mut numbers, &mut counts);
    NumberPlan {
        actions,
        numbers,
        assigned,
        total: seen.len(),
        problems,
        counts,
    }
}

/// Each dropped number this object assigned, still assigned: unassigned under `Delete`.
fn release(
    inputs: &BindingInputs<'_>,
    by_number: &BTreeMap<&str, &Sid>,
    actions: &mut Vec<BindingAction>,
    numbers: &mut Vec<PhoneNumberAssignmentStatus>,
    counts: &mut NumberCounts,
) {
    if inputs.deletion_policy != DeletionPolicy::Delete {
        return;
    }
    for released in inputs.released.iter().filter(|r| r.created_by_operator) {
        let live = released
            .assignment_sid
            .as_ref()
            .filter(|ra| by_number.get(&*released.number_sid) == Some(ra));
        let Some(ra) = live else { continue };
        if actions.len() < inputs.actions_max {
            actions.push(BindingAction::Unassign {
                assignment_sid: ra.clone(),
                number_sid: released.number_sid.clone(),
            });
        }
        numbers.push(PhoneNumberAssignmentStatus {
            sid: Some(released.number_sid.clone()),
            assignment_sid: Some(ra.clone()),
            created_by_operator: true,
            state: NumberState::Releasing,
            message: Some("removed from the spec; unassigning (deletionPolicy: Delete)".into()),
            ..Default::default()
        });
        counts.releasing += 1;
    }
}

/// Plans a binding.
pub fn plan(inputs: &BindingInputs<'_>) -> BindingPlan {
    let NumberPlan {
        actions,
        numbers,
        assigned,
        total,
        problems,
        mut counts,
    } = plan_numbers(inputs);
    let summary = format!("{assigned}/{total}");
    counts.selected = u32::try_from(total).unwrap_or(u32::MAX);
    counts.done = u32::try_from(assigned).unwrap_or(u32::MAX);
    let approved = inputs.profile.status == ts::TWILIO_APPROVED;
    let profile_condition = profile_condition(inputs.profile);
    let numbers_condition = numbers_condition(assigned, total, &problems);
    let expiry = Expiry::of(
        approved,
        inputs.profile.valid_until,
        inputs.now,
        inputs.poll.expiry_warning,
    );
    let what = format!("Business Profile {}", inputs.profile.sid);
    let ready = match (approved, assigned == total) {
        (true, true) => ConditionSpec::ok(
            "Ready",
            "Ready",
            format!("profile approved; {assigned} of {total} numbers assigned"),
        ),
        (false, _) => ConditionSpec::not(
            "Ready",
            profile_condition.reason,
            profile_condition.message.clone(),
        ),
        (true, false) => ConditionSpec::not(
            "Ready",
            numbers_condition.reason,
            numbers_condition.message.clone(),
        ),
    };
    let ready = expiry.ready_override(&what).unwrap_or(ready);
    BindingPlan {
        actions,
        numbers,
        conditions: vec![
            profile_condition,
            numbers_condition,
            ready,
            expiry.condition(&what, inputs.now),
        ],
        summary,
        counts,
        requeue: requeue(inputs, approved, !problems.is_empty()),
    }
}

/// `ProfileApproved`: approved, rejected (only the Console fixes it), or still in review.
fn profile_condition(profile: &ProfileView) -> ConditionSpec {
    if profile.status == ts::TWILIO_APPROVED {
        ConditionSpec::ok(
            "ProfileApproved",
            "Approved",
            format!("Business Profile {} is twilio-approved", profile.sid),
        )
    } else if profile.status == ts::TWILIO_REJECTED {
        ConditionSpec::not(
            "ProfileApproved",
            "Rejected",
            format!(
                "Business Profile {} was rejected by Twilio; fix it in the Console",
                profile.sid
            ),
        )
    } else {
        ConditionSpec::not(
            "ProfileApproved",
            "NotApproved",
            format!("Business Profile {} is {}", profile.sid, profile.status),
        )
    }
}

/// `NumbersAssigned`: all assigned, some refused or unresolvable (listed), or still assigning.
fn numbers_condition(assigned: usize, total: usize, problems: &[String]) -> ConditionSpec {
    if assigned == total {
        ConditionSpec::ok(
            "NumbersAssigned",
            "Assigned",
            format!("{assigned} of {total} numbers assigned"),
        )
    } else if !problems.is_empty() {
        ConditionSpec::not(
            "NumbersAssigned",
            "NumbersUnresolvable",
            text::listed(problems, "; "),
        )
    } else {
        ConditionSpec::not(
            "NumbersAssigned",
            "Assigning",
            format!("{assigned} of {total} numbers assigned"),
        )
    }
}

/// When to look again: growing intervals while the profile is in review or numbers keep
/// failing, else the approved resync (sooner as the approval nears expiry).
fn requeue(inputs: &BindingInputs<'_>, approved: bool, failing: bool) -> Requeue {
    if !approved {
        Requeue::After(PollSchedule::growing(
            inputs.poll.review_initial,
            inputs.poll.review_max,
            inputs.unapproved_since,
            inputs.now,
        ))
    } else if failing {
        // Growing and capped, like a noncompliant evaluation: a number Twilio keeps refusing
        // is not retried every minute for ever (a spec change still retries at once).
        Requeue::After(PollSchedule::growing(
            inputs.poll.review_initial,
            inputs.poll.review_max,
            inputs.failing_since,
            inputs.now,
        ))
    } else {
        Requeue::After(inputs.poll.approved(inputs.profile.valid_until, inputs.now))
    }
}

#[cfg(test)]
#[path = "binding_tests.rs"]
mod tests;
