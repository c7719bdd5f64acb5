//! Deleting a `BusinessProfileBinding`: under `deletionPolicy: Delete`, the assignments it
//! made are removed from the profile (those recorded, and those a create left in flight made);
//! under `Orphan`, nothing. Never blocked by a bad spec or missing credentials.

use kube::runtime::controller::Action;

use super::{Context, ReconcileError};
use crate::api::{BusinessProfileBinding, DeletionPolicy};

/// Deletion: under `Delete`, remove the assignments this object made; under `Orphan`, nothing.
/// Never hangs: when the credentials are gone, a Warning Event lists what is left behind.
pub(super) async fn cleanup(
    obj: &BusinessProfileBinding,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let status = obj.status.clone().unwrap_or_default();
    let mut ours: Vec<(String, String)> = status
        .phone_numbers
        .iter()
        .filter(|n| n.created_by_operator)
        .filter_map(|n| Some((n.assignment_sid.clone()?, n.sid.clone()?)))
        .collect();
    let pending = &status.assignments_pending;
    if obj.spec.deletion_policy == DeletionPolicy::Orphan || (ours.is_empty() && pending.is_empty())
    {
        return Ok(Action::await_change());
    }
    let profile_sid = status
        .business_profile
        .as_ref()
        .map(|p| p.sid.clone())
        .unwrap_or_default();
    let mut left_behind: Vec<String> = ours
        .iter()
        .map(|(ra, pn)| format!("{ra} ({pn}) on profile {profile_sid}"))
        .collect();
    left_behind.extend(pending.iter().map(|pn| {
        format!("the assignment of {pn} to profile {profile_sid}, if its create went through")
    }));
    let Some(twilio) = super::cleanup_client(ctx, obj, &obj.spec.credentials, &left_behind).await?
    else {
        return Ok(Action::await_change());
    };
    if !pending.is_empty() {
        // Deleted while a create was in flight: what that create made is this object's.
        let found = twilio
            .list_customer_profile_channel_endpoint_assignments_among(&profile_sid, pending)
            .await
            .map_err(ReconcileError::twilio(
                "list the profile's phone number assignments",
            ))?;
        let found: Vec<(String, String)> = found
            .into_iter()
            .filter_map(|a| Some((a.sid?, a.channel_endpoint_sid?)))
            .collect();
        let claimed = crate::planner::claimed(
            pending,
            found.iter().map(|(ra, pn)| (ra.as_str(), pn.as_str())),
        );
        for (ra, pn) in found {
            if claimed.contains(&ra) && !ours.iter().any(|(o, _)| *o == ra) {
                ours.push((ra, pn));
            }
        }
    }
    let mut left = Vec::new();
    for (ra, pn) in &ours {
        match super::deleted(
            twilio
                .delete_customer_profile_channel_endpoint_assignment(&profile_sid, ra)
                .await,
        ) {
            Ok(()) => {}
            Err(e) if e.is_transient() || e.is_ambiguous() => {
                return Err(ReconcileError::twilio("unassign a phone number")(e));
            }
            Err(e) => left.push(format!("{ra} ({pn}): {e}")),
        }
    }
    super::report_cleanup(
        ctx,
        obj,
        &left,
        format!(
            "removed {} number assignments from profile {profile_sid}",
            ours.len()
        ),
        "Twilio refused to remove",
    )
    .await;
    Ok(Action::await_change())
}
