//! Deletion of a `ShakenStirTrustProduct`: under `Delete`, remove what this object created in
//! reverse order (number attachments, the profile attachment, the product); under `Orphan`,
//! nothing. A deletion never hangs: if the credentials are gone or Twilio refuses, a Warning
//! Event lists the SIDs left behind and the finalizer is released.

use kube::runtime::controller::Action;

use super::super::{Context, ReconcileError};
use crate::api::{DeletionPolicy, ShakenStirTrustProduct, ShakenStirTrustProductStatus};
use crate::planner::{claimed, text};
use crate::twilio::{BundleFilter, TwilioError};

/// One thing to delete, in order.
enum Target {
    Number { assignment_sid: String },
    Profile { assignment_sid: String },
    Product,
}

impl Target {
    fn describe(&self, product: &str) -> String {
        match self {
            Target::Number { assignment_sid } => format!("number attachment {assignment_sid}"),
            Target::Profile { assignment_sid } => format!("profile attachment {assignment_sid}"),
            Target::Product => format!("Trust Product {product}"),
        }
    }
}

pub(super) async fn cleanup(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let mut status = obj.status.clone().unwrap_or_default();
    if obj.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(Action::await_change());
    }
    if status.trust_product_sid.is_none() && status.create_pending_since.is_some() {
        // Deleted while the product's create was in flight: a product it made is this object's.
        let what = format!(
            "the Trust Product {:?}, if its create went through",
            obj.spec.friendly_name
        );
        let Some(twilio) =
            super::super::cleanup_client(ctx, obj, &obj.spec.credentials, &[what]).await?
        else {
            return Ok(Action::await_change());
        };
        let filter = BundleFilter {
            friendly_name: Some(obj.spec.friendly_name.clone()),
            policy_sid: Some(obj.spec.policy_sid.clone()),
            ..Default::default()
        };
        let found: Vec<String> = twilio
            .list_trust_products(&filter)
            .await
            .map_err(ReconcileError::twilio("look up the Trust Product by name"))?
            .into_iter()
            .filter(|p| p.friendly_name.as_deref() == Some(obj.spec.friendly_name.as_str()))
            .filter_map(|p| p.sid)
            .collect();
        // Exactly one, as the reconcile would have adopted it; with several, none is known
        // to be ours, and none is deleted.
        if let [sid] = found.as_slice() {
            status.trust_product_sid = Some(sid.clone());
            status.trust_product_created = true;
        }
    }
    let Some(product) = status.trust_product_sid.clone() else {
        return Ok(Action::await_change());
    };
    let mut targets: Vec<Target> = Vec::new();
    if !status.attachments_pending.is_empty() && !status.trust_product_created {
        // Deleted while an attachment create was in flight (an adopted product keeps its
        // attachments, so those this object made must go one by one).
        targets.extend(pending_attachments(ctx, obj, &product, &status).await?);
    }
    targets.extend(
        status
            .phone_numbers
            .iter()
            .filter(|n| n.created_by_operator)
            .filter_map(|n| n.assignment_sid.clone())
            .map(|assignment_sid| Target::Number { assignment_sid }),
    );
    if status.entity_assignment_created
        && let Some(assignment_sid) = status.entity_assignment_sid.clone()
    {
        targets.push(Target::Profile { assignment_sid });
    }
    if status.trust_product_created {
        targets.push(Target::Product);
    }
    // Numbers, then the profile, then the product (a stable sort keeps each group's order).
    targets.sort_by_key(|t| match t {
        Target::Number { .. } => 0,
        Target::Profile { .. } => 1,
        Target::Product => 2,
    });
    if targets.is_empty() {
        return Ok(Action::await_change());
    }
    let left_behind: Vec<String> = targets.iter().map(|t| t.describe(&product)).collect();
    let Some(twilio) =
        super::super::cleanup_client(ctx, obj, &obj.spec.credentials, &left_behind).await?
    else {
        return Ok(Action::await_change());
    };
    let mut removed = Vec::new();
    let mut refused = Vec::new();
    for target in &targets {
        let result: Result<(), TwilioError> = match target {
            Target::Number { assignment_sid } => {
                twilio
                    .delete_trust_product_channel_endpoint_assignment(&product, assignment_sid)
                    .await
            }
            Target::Profile { assignment_sid } => {
                twilio
                    .delete_trust_product_entity_assignment(&product, assignment_sid)
                    .await
            }
            Target::Product => twilio.delete_trust_product(&product).await,
        };
        match super::super::deleted(result) {
            Ok(()) => removed.push(target.describe(&product)),
            Err(e) if e.is_transient() || e.is_ambiguous() => {
                return Err(ReconcileError::twilio("clean up the Trust Product")(e));
            }
            // An approved product may refuse edits (60711) yet allow its own deletion, which takes
            // its assignments with it: carry on to the product before reporting.
            Err(e) => refused.push((target, e)),
        }
    }
    let product_deleted = removed.iter().any(|r| r.starts_with("Trust Product"));
    let left: Vec<String> = if product_deleted {
        Vec::new()
    } else {
        refused
            .iter()
            .map(|(t, e)| format!("{} ({e})", t.describe(&product)))
            .collect()
    };
    super::super::report_cleanup(
        ctx,
        obj,
        &left,
        format!("removed {}", text::listed(&removed, ", ")),
        "Twilio refused to delete; left in Trust Hub",
    )
    .await;
    Ok(Action::await_change())
}

/// The attachments of `product` made by a create still marked in flight (`attachmentsPending`).
async fn pending_attachments(
    ctx: &Context,
    obj: &ShakenStirTrustProduct,
    product: &str,
    status: &ShakenStirTrustProductStatus,
) -> Result<Vec<Target>, ReconcileError> {
    let pending = &status.attachments_pending;
    let what: Vec<String> = pending
        .iter()
        .map(|p| format!("the attachment of {p} to Trust Product {product}, if made"))
        .collect();
    let Some(twilio) = super::super::cleanup_client(ctx, obj, &obj.spec.credentials, &what).await?
    else {
        return Ok(Vec::new());
    };
    let numbers = twilio
        .list_trust_product_channel_endpoint_assignments(product, None)
        .await
        .map_err(ReconcileError::twilio(
            "list the Trust Product's phone numbers",
        ))?;
    let entities = twilio
        .list_trust_product_entity_assignments(product)
        .await
        .map_err(ReconcileError::twilio(
            "list the Trust Product's entity assignments",
        ))?;
    let recorded = |sid: &String| {
        status
            .phone_numbers
            .iter()
            .any(|n| n.assignment_sid.as_ref() == Some(sid))
            || status.entity_assignment_sid.as_ref() == Some(sid)
    };
    let numbers: Vec<(String, String)> = numbers
        .into_iter()
        .filter_map(|a| Some((a.sid?, a.channel_endpoint_sid?)))
        .filter(|(ra, _)| !recorded(ra))
        .collect();
    let entities: Vec<(String, String)> = entities
        .into_iter()
        .filter_map(|a| Some((a.sid?, a.object_sid?)))
        .filter(|(bv, _)| !recorded(bv))
        .collect();
    let claimed_numbers = claimed(
        pending,
        numbers.iter().map(|(a, b)| (a.as_str(), b.as_str())),
    );
    let claimed_entities = claimed(
        pending,
        entities.iter().map(|(a, b)| (a.as_str(), b.as_str())),
    );
    let mut targets: Vec<Target> = claimed_numbers
        .into_iter()
        .map(|assignment_sid| Target::Number { assignment_sid })
        .collect();
    targets.extend(
        claimed_entities
            .into_iter()
            .map(|assignment_sid| Target::Profile { assignment_sid }),
    );
    Ok(targets)
}
