//! Deleting a `BusinessProfileBinding`: under `deletionPolicy: Delete`, the assignments it
//! made are removed from the profile (those recorded, and those a create left in flight made);
//! under `Orphan`, nothing. Never blocked by a bad spec or missing credentials.

use std::collections::BTreeSet;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::batch::{self, Outcome};
use super::book::Abridge;
use super::{Context, ReconcileError};
use crate::api::{BusinessProfileBinding, BusinessProfileBindingStatus, DeletionPolicy, Sid};
use crate::planner::provenance::{self, Dated};
use crate::twilio::TrustHub;

/// Deletion: under `Delete`, remove the assignments this object made; under `Orphan`, nothing.
/// Never hangs: when the credentials are gone, a Warning Event lists what is left behind.
pub(super) async fn cleanup(
    obj: &BusinessProfileBinding,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    if obj.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(Action::await_change());
    }
    // The full record when this process wrote it; after a restart, the stored status, which
    // above a few hundred numbers lists only those needing attention.
    let status = ctx
        .books
        .bindings
        .recall(obj.metadata.uid.as_deref(), obj.status.as_ref());
    let recorded = recorded_assignments(&status);
    let pending = &status.assignments_pending;
    let derive = status.is_abridged() && status.ownership.is_some();
    if recorded.is_empty() && pending.is_empty() && !derive {
        return Ok(Action::await_change());
    }
    let profile_sid = status
        .business_profile
        .as_ref()
        .map(|p| p.sid.clone())
        .unwrap_or_default();
    let mut left_behind: Vec<String> = recorded
        .iter()
        .map(|(ra, pn)| format!("{ra} ({pn}) on profile {profile_sid}"))
        .collect();
    left_behind.extend(pending.iter().map(|pn| {
        format!("the assignment of {pn} to profile {profile_sid}, if its create went through")
    }));
    if derive {
        left_behind.push(format!(
            "the assignments of its other numbers to profile {profile_sid}"
        ));
    }
    let Some(twilio) = super::cleanup_client(ctx, obj, &obj.spec.credentials, &left_behind).await?
    else {
        return Ok(Action::await_change());
    };
    let mut ours = recorded;
    if !pending.is_empty() || derive {
        let scope = scope(obj, ctx, twilio.as_ref(), &status, derive).await;
        let listed =
            super::binding::list_assignments(twilio.as_ref(), &profile_sid, &scope).await?;
        for (ra, pn) in found_ours(&status, &listed, derive) {
            if !ours.iter().any(|(o, _)| *o == ra) {
                ours.push((ra, pn));
            }
        }
    }
    let left = unassign_all(ctx, twilio.as_ref(), &profile_sid, &ours).await?;
    super::report_cleanup(
        ctx,
        obj,
        &left,
        format!(
            "removed {} from profile {profile_sid}",
            batch::counted(ours.len(), "number assignment", "number assignments")
        ),
        "Twilio refused to remove",
    )
    .await;
    Ok(Action::await_change())
}

/// `(RA…, PN…)` of the assignments the status records as made by this object.
fn recorded_assignments(status: &BusinessProfileBindingStatus) -> Vec<(Sid, Sid)> {
    status
        .phone_numbers
        .iter()
        .filter(|n| n.created_by_operator)
        .filter_map(|n| Some((n.assignment_sid.clone()?, n.sid.clone()?)))
        .collect()
}

/// The numbers whose assignments may be this object's beyond those recorded: those marked in
/// flight and, for an abridged status, every number it wants now (resolved or selected again).
/// A spec that no longer resolves leaves only the recorded ones, and says so: cleanup is never
/// blocked by a bad spec.
async fn scope(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    twilio: &dyn TrustHub,
    status: &BusinessProfileBindingStatus,
    derive: bool,
) -> Vec<Sid> {
    let mut numbers: BTreeSet<Sid> = status
        .assignments_pending
        .iter()
        .map(|p| Sid::from(p.as_str()))
        .collect();
    numbers.extend(status.phone_numbers.iter().filter_map(|n| n.sid.clone()));
    if derive {
        let now = k8s_openapi::jiff::Timestamp::now();
        match super::binding_numbers::wanted(obj, ctx, twilio, status, now).await {
            Ok(wanted) => numbers.extend(
                wanted
                    .targets
                    .iter()
                    .filter_map(|t| t.number_sid().cloned()),
            ),
            Err(e) => {
                let note = format!(
                    "could not tell this binding's numbers again ({e}); only the assignments its status lists are removed"
                );
                super::status::event(
                    ctx,
                    obj,
                    EventType::Warning,
                    "CleanupPartial",
                    "Delete",
                    note,
                )
                .await;
            }
        }
    }
    numbers.into_iter().collect()
}

/// The listed assignments that are this object's: those a create left in flight made and,
/// for an abridged status, those its `ownership` tells.
fn found_ours(
    status: &BusinessProfileBindingStatus,
    listed: &[Dated],
    derive: bool,
) -> Vec<(Sid, Sid)> {
    let mut ours = crate::planner::claimed(
        &status.assignments_pending,
        listed.iter().map(|a| (&*a.assignment_sid, &*a.number_sid)),
    );
    if derive {
        ours.extend(provenance::derived_owned(status.ownership.as_ref(), listed));
    }
    listed
        .iter()
        .filter(|a| ours.contains(&a.assignment_sid))
        .map(|a| (a.assignment_sid.clone(), a.number_sid.clone()))
        .collect()
}

/// Removes `ours` concurrently (at most `--max-in-flight` at once); returns what Twilio refused.
async fn unassign_all(
    ctx: &Context,
    twilio: &dyn TrustHub,
    profile_sid: &str,
    ours: &[(Sid, Sid)],
) -> Result<Vec<String>, ReconcileError> {
    let limit = ctx.config.twilio.max_in_flight;
    let outcomes = batch::run(ours.to_vec(), limit, |(ra, _)| async move {
        let deleted = twilio
            .delete_customer_profile_channel_endpoint_assignment(profile_sid, &ra)
            .await;
        super::deleted(deleted)
    })
    .await;
    let mut left = Vec::new();
    for ((ra, pn), outcome) in outcomes {
        match outcome {
            Outcome::Done(()) => {}
            Outcome::Retry(e) => return Err(ReconcileError::twilio("unassign a phone number")(e)),
            Outcome::Refused(e) => left.push(format!("{ra} ({pn}): {e}")),
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::api::Ownership;

    fn dated(ra: &str, pn: &str, secs: i64) -> Dated {
        Dated {
            assignment_sid: ra.into(),
            number_sid: pn.into(),
            created: Some(Timestamp::from_second(1_800_000_000 + secs).unwrap()),
        }
    }

    #[test]
    fn an_abridged_status_finds_its_own_by_date_and_its_in_flight_by_marker() {
        let listed = [
            dated("RA-before", "PN1", -100),
            dated("RA-mine", "PN2", 10),
            dated("RA-hand", "PN3", 20),
            dated("RA-inflight", "PN4", -200),
        ];
        let status = BusinessProfileBindingStatus {
            numbers_abridged: true,
            assignments_pending: vec!["PN4".into()],
            ownership: Some(Ownership {
                since: Some(Time(Timestamp::from_second(1_800_000_000).unwrap())),
                adopted: vec!["RA-hand".into()],
                adopted_omitted: 0,
            }),
            ..Default::default()
        };
        let mut got = found_ours(&status, &listed, true);
        got.sort();
        assert_eq!(
            got,
            [
                (Sid::from("RA-inflight"), Sid::from("PN4")),
                (Sid::from("RA-mine"), Sid::from("PN2"))
            ]
        );
        // A full record: only the marker adds anything.
        assert_eq!(
            found_ours(&status, &listed, false),
            [(Sid::from("RA-inflight"), Sid::from("PN4"))]
        );
    }
}
