//! Drift: assignments removed in the Console (or by anything but this operator) while the
//! object's spec and Twilio status stayed the same. Reconciles trust what they recorded and skip
//! listing the assignments, except once a resync period has passed since the last listing
//! (`status.assignmentsListedAt`): then they list, and an assignment recorded but no longer
//! listed is announced here before the planner assigns the number again.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::events::EventType;

use super::Context;
use super::status::event;
use crate::api::{
    BusinessProfileBinding, BusinessProfileBindingStatus, NumberState, ShakenStirTrustProduct,
    ShakenStirTrustProductStatus, Sid,
};
use crate::planner::text;
use crate::planner::trust_product::Attachment;

/// Whether this reconcile must list the assignments: never listed, or listed at least a resync
/// period ago (less the 10 % jitter of the requeue, so the resync itself lists). Otherwise the
/// recorded assignments stand, which keeps the cost at one listing per object per period.
pub(super) fn listing_due(ctx: &Context, listed_at: Option<&Time>, now: Timestamp) -> bool {
    crate::planner::listing_due(ctx.config.poll.approved_resync, listed_at.map(|t| t.0), now)
}

/// The recorded `(PN…, RA…)` pairs whose assignment the listing no longer shows.
pub(super) fn removed<'a>(
    recorded: impl IntoIterator<Item = (&'a str, &'a str)>,
    listed: &[(&str, &str)],
) -> Vec<String> {
    // A set, not a scan per recorded pair: 50,000 numbers made that 2.5 billion comparisons.
    let listed: std::collections::HashSet<&str> = listed.iter().map(|(ra, _)| *ra).collect();
    recorded
        .into_iter()
        .filter(|(_, ra)| !listed.contains(ra))
        .map(|(pn, ra)| format!("{pn} ({ra})"))
        .collect()
}

/// A Warning Event naming the assignments removed outside the operator, if any.
pub(super) async fn announce<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    removed: &[String],
    from: &str,
) {
    if removed.is_empty() {
        return;
    }
    let note = format!(
        "removed from {from} outside the operator: {}; restoring them",
        text::listed(removed, ", ")
    );
    event(
        ctx,
        obj,
        EventType::Warning,
        "DriftDetected",
        "Resync",
        note,
    )
    .await;
}

/// Announces assignments recorded as `Assigned` that the listing no longer shows (removed in
/// the Console); the planner assigns those numbers again.
pub(super) async fn announce_unassigned(
    ctx: &Context,
    obj: &BusinessProfileBinding,
    recorded: &BusinessProfileBindingStatus,
    listed: &[(Sid, Sid)],
) {
    let listed: Vec<(&str, &str)> = listed.iter().map(|(ra, pn)| (&**ra, &**pn)).collect();
    let was_assigned = recorded.phone_numbers.iter().filter_map(|n| {
        (n.state == NumberState::Assigned)
            .then_some((n.sid.as_deref()?, n.assignment_sid.as_deref()?))
    });
    let removed = removed(was_assigned, &listed);
    let profile = recorded
        .business_profile
        .as_ref()
        .map_or("", |p| p.sid.as_str());
    announce(ctx, obj, &removed, &format!("Business Profile {profile}")).await;
}

/// Announces attachments recorded in status that the listing no longer shows (detached in
/// the Console); the planner attaches those numbers again.
pub(super) async fn announce_detached(
    ctx: &Context,
    obj: &ShakenStirTrustProduct,
    recorded: &ShakenStirTrustProductStatus,
    sid: &str,
    listed: &[Attachment],
) {
    // Attachments recorded for another product (a new identity) are not drift.
    if recorded.trust_product_sid.as_deref() != Some(sid) {
        return;
    }
    let listed: Vec<(&str, &str)> = listed
        .iter()
        .map(|a| (&*a.assignment_sid, &*a.number_sid))
        .collect();
    let was_attached = recorded
        .phone_numbers
        .iter()
        .filter_map(|n| Some((&*n.sid, n.assignment_sid.as_deref()?)));
    let removed = removed(was_attached, &listed);
    announce(ctx, obj, &removed, &format!("Trust Product {sid}")).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_lists_recorded_assignments_missing_from_the_listing() {
        let recorded = [("PN1", "RA1"), ("PN2", "RA2"), ("PN3", "RA3")];
        let listed = [("RA1", "PN1"), ("RA9", "PN3")];
        assert_eq!(
            removed(recorded, &listed),
            vec!["PN2 (RA2)".to_string(), "PN3 (RA3)".to_string()]
        );
        assert!(removed(recorded, &[("RA1", "PN1"), ("RA2", "PN2"), ("RA3", "PN3")]).is_empty());
    }
}
