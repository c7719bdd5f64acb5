//! Coverage: how many of an object's numbers are on a `twilio-approved` SHAKEN/STIR Trust
//! Product, i.e. can have their calls signed with A-level attestation. No existing tool reports
//! it; it is what a voice platform team actually wants to know.

use std::collections::{BTreeSet, HashSet};

use kube::ResourceExt;

use super::Context;
use super::book::Abridge;
use crate::api::{BusinessProfileBinding, twilio_status as ts};

/// How many of `assigned` (the binding's numbers on its profile) are attached to a
/// `twilio-approved` Trust Product of this cluster that takes its numbers from `binding`, as the
/// informer cache shows those products now.
pub(super) fn binding_covered(
    ctx: &Context,
    binding: &BusinessProfileBinding,
    assigned: &HashSet<&str>,
) -> u32 {
    let Some(store) = ctx.products.get() else {
        return 0;
    };
    let (namespace, name) = (binding.namespace(), binding.name_any());
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut fallback = 0;
    for product in store.state() {
        let uses_binding = product.namespace() == namespace
            && product
                .spec
                .business_profile_binding_ref
                .as_ref()
                .is_some_and(|r| r.name == name);
        let Some(stored) = product.status.as_ref().filter(|_| uses_binding) else {
            continue;
        };
        let status = ctx
            .books
            .products
            .recall_ref(product.metadata.uid.as_deref(), Some(stored));
        if status.twilio_status.as_deref() != Some(ts::TWILIO_APPROVED) {
            continue;
        }
        if status.is_abridged() {
            // Read before this process rebuilt the product's record (after a restart): its
            // count stands in until then.
            let counted = status.numbers.as_ref().map_or(0, |n| n.covered as usize);
            fallback = fallback.max(counted.min(assigned.len()));
            continue;
        }
        covered.extend(
            status
                .phone_numbers
                .iter()
                .filter(|n| n.assignment_sid.is_some())
                .filter_map(|n| assigned.get(&*n.sid).copied()),
        );
    }
    u32::try_from(covered.len().max(fallback)).unwrap_or(u32::MAX)
}

/// A Trust Product covers the numbers attached to it while it is approved.
pub fn product_covered(twilio_status: &str, attached: u32) -> u32 {
    if twilio_status == ts::TWILIO_APPROVED {
        attached
    } else {
        0
    }
}
