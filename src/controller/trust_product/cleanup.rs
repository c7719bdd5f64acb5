//! Deletion of a `ShakenStirTrustProduct`: under `Delete`, remove what this object created in
//! reverse order (number attachments, the profile attachment, the product); under `Orphan`,
//! nothing. A deletion never hangs: if the credentials are gone or Twilio refuses, a Warning
//! Event lists the SIDs left behind and the finalizer is released.

use kube::runtime::controller::Action;

use super::super::{Context, ReconcileError};
use crate::api::{DeletionPolicy, ShakenStirTrustProduct};
use crate::planner::text;
use crate::twilio::TwilioError;

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
    let status = obj.status.clone().unwrap_or_default();
    let Some(product) = status.trust_product_sid.clone() else {
        return Ok(Action::await_change());
    };
    if obj.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(Action::await_change());
    }
    let mut targets: Vec<Target> = status
        .phone_numbers
        .iter()
        .filter(|n| n.created_by_operator)
        .filter_map(|n| n.assignment_sid.clone())
        .map(|assignment_sid| Target::Number { assignment_sid })
        .collect();
    if status.entity_assignment_created
        && let Some(assignment_sid) = status.entity_assignment_sid.clone()
    {
        targets.push(Target::Profile { assignment_sid });
    }
    if status.trust_product_created {
        targets.push(Target::Product);
    }
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
