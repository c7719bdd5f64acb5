//! One owner per number assignment: a number assigned to a profile belongs to one
//! `BusinessProfileBinding`. A second binding naming it (say in another namespace, same account)
//! gets a terminal condition naming the first instead of sharing, and later fighting over, the
//! assignment (one would unassign what the other relies on).

use std::collections::HashSet;

use kube::{Resource, ResourceExt};

use super::{Context, ReconcileError};
use crate::api::{BusinessProfileBinding, NumberState, Sid};
use crate::planner::binding::NumberTarget;
use crate::planner::ownership::{Claimant, owner_other_than_me};

fn claimant(obj: &BusinessProfileBinding, recorded: bool) -> Claimant<'_> {
    Claimant {
        namespace: obj.meta().namespace.as_deref().unwrap_or_default(),
        name: obj.meta().name.as_deref().unwrap_or_default(),
        created: obj.meta().creation_timestamp.as_ref().map(|t| t.0),
        recorded,
    }
}

/// The numbers `binding` records as assigned to `profile` (from its full record when this
/// process wrote one, else its status, which above a few hundred numbers lists none).
fn recorded_on(ctx: &Context, binding: &BusinessProfileBinding, profile: &str) -> HashSet<Sid> {
    let status = ctx
        .books
        .bindings
        .recall_ref(binding.meta().uid.as_deref(), binding.status.as_ref());
    if status
        .business_profile
        .as_ref()
        .is_none_or(|p| p.sid != profile)
    {
        return HashSet::new();
    }
    status
        .phone_numbers
        .iter()
        .filter(|n| n.state == NumberState::Assigned && n.assignment_sid.is_some())
        .filter_map(|n| n.sid.clone())
        .collect()
}

/// Refuses the numbers of `targets` that another binding of the cluster (informer cache, not
/// being deleted) owns on `profile`. No Twilio call; one pass over each binding's numbers.
pub(super) fn check_numbers_unclaimed(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    profile: &str,
    targets: &[NumberTarget],
) -> Result<(), ReconcileError> {
    let Some(store) = ctx.bindings.get() else {
        return Ok(());
    };
    let me = obj.uid();
    let others: Vec<_> = store
        .state()
        .into_iter()
        .filter(|o| o.uid() != me && o.meta().deletion_timestamp.is_none())
        .map(|o| {
            let numbers = recorded_on(ctx, &o, profile);
            (o, numbers)
        })
        .filter(|(_, numbers)| !numbers.is_empty())
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let mine = recorded_on(ctx, obj, profile);
    for target in targets {
        let NumberTarget::Resolved {
            number_sid,
            phone_number,
            ..
        } = target
        else {
            continue;
        };
        let claims: Vec<Claimant<'_>> = others
            .iter()
            .filter(|(_, numbers)| numbers.contains(number_sid))
            .map(|(o, _)| claimant(o, true))
            .collect();
        if claims.is_empty() {
            continue;
        }
        let me = claimant(obj, mine.contains(number_sid));
        if let Some(owner) = owner_other_than_me(&me, &claims) {
            return Err(ReconcileError::terminal(
                "NumberInAnotherBinding",
                format!(
                    "{} ({number_sid}) is assigned to Business Profile {profile} by BusinessProfileBinding {}/{}; a number's assignment has one owning binding (leave it out here)",
                    phone_number.as_deref().unwrap_or(number_sid),
                    owner.namespace,
                    owner.name
                ),
            ));
        }
    }
    Ok(())
}
