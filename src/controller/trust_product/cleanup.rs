//! Deletion of a `ShakenStirTrustProduct`: under `Delete`, remove what this object created in
//! reverse order (number attachments, the profile attachment, the product); under `Orphan`,
//! nothing. A deletion never hangs: if the credentials are gone or Twilio refuses, a Warning
//! Event lists the SIDs left behind and the finalizer is released.

use kube::runtime::controller::Action;

use super::super::{Context, ReconcileError};
use crate::api::{DeletionPolicy, ShakenStirTrustProduct, ShakenStirTrustProductStatus, Sid};
use std::collections::HashSet;

use super::super::batch::{self, Outcome};
use super::super::book::Abridge;
use crate::planner::provenance::{self, Dated};
use crate::planner::{claimed, text};
use crate::twilio::TwilioError;

/// One thing to delete, in order.
enum Target {
    Number { assignment_sid: Sid },
    Profile { assignment_sid: Sid },
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
    if obj.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(Action::await_change());
    }
    // The full record when this process wrote it; after a restart, the stored status, which
    // above a few hundred numbers lists only the numbers not attached.
    let mut status = std::sync::Arc::unwrap_or_clone(
        ctx.books
            .products
            .recall(obj.metadata.uid.as_deref(), obj.status.as_ref()),
    );
    if status.trust_product_sid.is_none() && status.create_pending_since.is_some() {
        // Deleted while the product's create was in flight: a product it made is this object's.
        match product_made_in_flight(ctx, obj).await? {
            Some(sid) => {
                status.trust_product_sid = Some(sid);
                status.trust_product_created = true;
            }
            None => return Ok(Action::await_change()),
        }
    }
    let Some(product) = status.trust_product_sid.clone() else {
        return Ok(Action::await_change());
    };
    let targets = targets(ctx, obj, &product, &status).await?;
    if targets.is_empty() {
        return Ok(Action::await_change());
    }
    let left_behind: Vec<String> = targets.iter().map(|t| t.describe(&product)).collect();
    let Some(twilio) =
        super::super::cleanup_client(ctx, obj, &obj.spec.credentials, &left_behind).await?
    else {
        return Ok(Action::await_change());
    };
    let (removed, refused) = delete_all(ctx, twilio.as_ref(), &product, &targets).await?;
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
        format!("removed {}", removed_summary(&removed)),
        "Twilio refused to delete; left in Trust Hub",
    )
    .await;
    Ok(Action::await_change())
}

/// The product a create left in flight made, looked up by name: exactly one, as the reconcile
/// would have adopted it; with several, none is known to be ours, and none is deleted. `None`
/// also when the credentials are gone (reported by `cleanup_client`).
async fn product_made_in_flight(
    ctx: &Context,
    obj: &ShakenStirTrustProduct,
) -> Result<Option<String>, ReconcileError> {
    let what = format!(
        "the Trust Product {:?}, if its create went through",
        obj.spec.friendly_name
    );
    let Some(twilio) =
        super::super::cleanup_client(ctx, obj, &obj.spec.credentials, &[what]).await?
    else {
        return Ok(None);
    };
    let found: Vec<String> = super::observe::products_named(twilio.as_ref(), &obj.spec)
        .await?
        .into_iter()
        .filter_map(|p| p.sid)
        .collect();
    Ok(match found.as_slice() {
        [sid] => Some(sid.clone()),
        _ => None,
    })
}

/// What this object made, in the order it goes: numbers, then the profile, then the product.
async fn targets(
    ctx: &Context,
    obj: &ShakenStirTrustProduct,
    product: &str,
    status: &ShakenStirTrustProductStatus,
) -> Result<Vec<Target>, ReconcileError> {
    let mut targets: Vec<Target> = Vec::new();
    let derive = status.is_abridged() && status.ownership.is_some();
    if (!status.attachments_pending.is_empty() && !status.trust_product_created) || derive {
        // Deleted while an attachment create was in flight (an adopted product keeps its
        // attachments, so those this object made must go one by one), or after a restart
        // with an abridged status: the attachments are listed and this object's told apart.
        targets.extend(listed_attachments(ctx, obj, product, status, derive).await?);
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
        && let Some(assignment_sid) = status.entity_assignment_sid.as_deref().map(Sid::from)
    {
        targets.push(Target::Profile { assignment_sid });
    }
    if status.trust_product_created {
        targets.push(Target::Product);
    }
    // A stable sort keeps each group's order.
    targets.sort_by_key(|t| match t {
        Target::Number { .. } => 0,
        Target::Profile { .. } => 1,
        Target::Product => 2,
    });
    Ok(targets)
}

/// Deletes `targets`: the numbers concurrently (at most `--max-in-flight` at once), then the
/// profile and the product one at a time. Returns what was removed and what Twilio refused;
/// a transient or ambiguous failure ends the cleanup, to be retried.
async fn delete_all<'t>(
    ctx: &Context,
    twilio: &dyn crate::twilio::TrustHub,
    product: &str,
    targets: &'t [Target],
) -> Result<(Vec<String>, Vec<(&'t Target, TwilioError)>), ReconcileError> {
    let mut removed = Vec::new();
    let mut refused = Vec::new();
    let (numbers, steps): (Vec<&Target>, Vec<&Target>) = targets
        .iter()
        .partition(|t| matches!(t, Target::Number { .. }));
    let limit = ctx.config.twilio.max_in_flight;
    let outcomes = batch::run(numbers, limit, |target| delete_one(twilio, product, target)).await;
    for (target, outcome) in outcomes {
        match outcome {
            Outcome::Done(()) => removed.push(target.describe(product)),
            Outcome::Retry(e) => {
                return Err(ReconcileError::twilio("clean up the Trust Product")(e));
            }
            Outcome::Refused(e) => refused.push((target, e)),
        }
    }
    for target in steps {
        match delete_one(twilio, product, target).await {
            Ok(()) => removed.push(target.describe(product)),
            Err(e) if e.is_transient() || e.is_ambiguous() => {
                return Err(ReconcileError::twilio("clean up the Trust Product")(e));
            }
            // An approved product may refuse edits (60711) yet allow its own deletion, which
            // takes its assignments with it: carry on to the product before reporting.
            Err(e) => refused.push((target, e)),
        }
    }
    Ok((removed, refused))
}

/// What was removed: each SID up to a few, then a count of the number attachments.
fn removed_summary(removed: &[String]) -> String {
    let numbers = removed
        .iter()
        .filter(|r| r.starts_with("number attachment"))
        .count();
    if numbers <= 20 {
        return text::listed(removed, ", ");
    }
    let others: Vec<&String> = removed
        .iter()
        .filter(|r| !r.starts_with("number attachment"))
        .collect();
    let mut parts = vec![batch::counted(
        numbers,
        "number attachment",
        "number attachments",
    )];
    parts.extend(others.into_iter().cloned());
    parts.join(", ")
}

/// Deletes one thing in Trust Hub; "not found" counts as deleted.
async fn delete_one(
    twilio: &dyn crate::twilio::TrustHub,
    product: &str,
    target: &Target,
) -> Result<(), TwilioError> {
    let result = match target {
        Target::Number { assignment_sid } => {
            twilio
                .delete_trust_product_channel_endpoint_assignment(product, assignment_sid)
                .await
        }
        Target::Profile { assignment_sid } => {
            twilio
                .delete_trust_product_entity_assignment(product, assignment_sid)
                .await
        }
        Target::Product => twilio.delete_trust_product(product).await,
    };
    super::super::deleted(result)
}

/// The attachments of `product` made by a create still marked in flight (`attachmentsPending`)
/// and, with `derive` (an abridged status), those its `ownership` tells are this object's.
async fn listed_attachments(
    ctx: &Context,
    obj: &ShakenStirTrustProduct,
    product: &str,
    status: &ShakenStirTrustProductStatus,
    derive: bool,
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
    // Those recorded are already targets.
    let mut recorded: HashSet<&str> = status
        .phone_numbers
        .iter()
        .filter_map(|n| n.assignment_sid.as_deref())
        .collect();
    recorded.extend(status.entity_assignment_sid.as_deref());
    let numbers: Vec<Dated> = numbers
        .into_iter()
        .filter_map(crate::twilio::ChannelEndpointAssignment::dated)
        .filter(|a| !recorded.contains(&*a.assignment_sid))
        .collect();
    let entities: Vec<(String, String)> = entities
        .into_iter()
        .filter_map(|a| Some((a.sid?, a.object_sid?)))
        .filter(|(bv, _)| !recorded.contains(bv.as_str()))
        .collect();
    let mut claimed_numbers = claimed(
        pending,
        numbers.iter().map(|a| (&*a.assignment_sid, &*a.number_sid)),
    );
    if derive {
        claimed_numbers.extend(provenance::derived_owned(
            status.ownership.as_ref(),
            &numbers,
        ));
    }
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
