//! One owner per number assignment: a number assigned to a profile belongs to one
//! `BusinessProfileBinding`. A second binding naming it (say in another namespace, same account)
//! gets a terminal condition naming the first instead of sharing, and later fighting over, the
//! assignment (one would unassign what the other relies on).

use kube::{Resource, ResourceExt};

use super::{Context, ReconcileError};
use crate::api::{BusinessProfileBinding, NumberState};
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

/// Whether `binding`'s status records `number` as assigned to `profile`.
fn records(binding: &BusinessProfileBinding, profile: &str, number: &str) -> bool {
    binding.status.as_ref().is_some_and(|s| {
        s.business_profile
            .as_ref()
            .is_some_and(|p| p.sid == profile)
            && s.phone_numbers.iter().any(|n| {
                n.sid.as_deref() == Some(number)
                    && n.state == NumberState::Assigned
                    && n.assignment_sid.is_some()
            })
    })
}

/// Refuses the numbers of `targets` that another binding of the cluster (informer cache, not
/// being deleted) owns on `profile`. No Twilio call.
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
        .collect();
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
            .filter(|o| records(o, profile, number_sid))
            .map(|o| claimant(o, true))
            .collect();
        let mine = claimant(obj, records(obj, profile, number_sid));
        if let Some(owner) = owner_other_than_me(&mine, &claims) {
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
