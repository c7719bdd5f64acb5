//! Reconciles `ShakenStirTrustProduct`: the seed's steps 3–6, then the vetting until approval.

mod cleanup;
mod evaluation;
pub(super) mod listings;
mod observe;
mod ownership;
mod writes;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::batch;
use super::status::{StatusWriter, announce_expiry, event, report_error};
use super::{Context, ReconcileError};
use crate::api::{
    RESUBMIT_ANNOTATION, ShakenStirTrustProduct, ShakenStirTrustProductStatus, twilio_status as ts,
};
use crate::planner::provenance::Dated;
use crate::planner::trust_product::{Attachment, ProductView, TrustProductInputs, plan};
use crate::planner::{PollSchedule, Requeue};
use crate::twilio::TrustProduct;

type Writer<'a> = StatusWriter<'a, ShakenStirTrustProduct, ShakenStirTrustProductStatus>;

pub(super) async fn reconcile(
    obj: Arc<ShakenStirTrustProduct>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    super::reconcile_finalized("ShakenStirTrustProduct", obj, ctx, apply, cleanup::cleanup).await
}

async fn apply(
    api: &Api<ShakenStirTrustProduct>,
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let mut writer = StatusWriter::new(api, obj, obj.status.as_ref(), ctx);
    match sync(obj, ctx, &mut writer).await {
        Ok(action) => Ok(action),
        Err(err) => report_error(ctx, &mut writer, err).await,
    }
}

fn view(product: &TrustProduct) -> ProductView {
    ProductView {
        sid: product.sid.clone().unwrap_or_default(),
        status: product
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        friendly_name: product.friendly_name.clone(),
        email: product.email.clone(),
        status_callback: product.status_callback.clone(),
        errors: product
            .errors
            .iter()
            .flatten()
            .filter_map(|e| e.code.map(i64::from))
            .collect(),
        valid_until: super::to_jiff(product.valid_until),
    }
}

/// Everything observed before planning that stays fixed during the reconcile.
struct Observed {
    /// The numbers wanted are `source.numbers`' keys.
    source: observe::Source,
    annotation: Option<String>,
    resubmit_requested: bool,
    listed_at: Option<Time>,
    previous_twilio_status: Option<String>,
}

/// Observe, then plan, record (with the create-pending markers of what is about to run), run
/// the writes (a batch of number writes concurrently, or one step), and plan again until
/// nothing is left: one status write per batch or step.
async fn sync(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    writer: &mut Writer<'_>,
) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let twilio = ctx
        .credentials
        .client_for(&ns, &obj.spec.credentials)
        .await?;
    // Only the conditions of the record the reconcile starts from are needed at its end: its
    // 50,000 entries are not held through every batch.
    let conditions_before = writer.written.conditions.clone();
    let (observed, mut progress) = observe_all(obj, ctx, twilio.as_ref(), writer).await?;
    let mut failed: Option<ReconcileError> = None;
    loop {
        let planned = plan(&inputs(obj, ctx, &observed, &progress, writer));
        let batch = match failed {
            Some(_) => Vec::new(),
            None => batch::next(&planned.actions, &progress.attempted),
        };
        progress.mark(&batch);
        let synced = batch.is_empty() && failed.is_none();
        let status =
            writes::recorded_status(obj, &writer.written, &observed, &progress, &planned, synced);
        writer.write(status).await?;
        if let Some(e) = failed {
            return Err(e);
        }
        if batch.is_empty() {
            let before = observed.previous_twilio_status.as_deref();
            announce_transition(obj, ctx, before, &progress.product).await;
            announce_expiry(ctx, obj, &conditions_before, &writer.written.conditions).await;
            let poll = &ctx.config.poll;
            let requeue = refusal_retry(&conditions_before, &progress, poll, planned.requeue);
            return Ok(ctx.requeue(requeue));
        }
        failed = if writes::is_number_batch(&batch) {
            let sid = progress.product.sid.clone();
            let limit = ctx.config.twilio.max_in_flight;
            let outcomes = batch::run(batch, limit, |action| {
                writes::write_number(twilio.as_ref(), &sid, action)
            })
            .await;
            let report = progress.absorb(obj, ctx, outcomes);
            report.announce(ctx, obj, &sid).await;
            report.failed
        } else {
            progress.attempted.extend(batch.iter().cloned());
            let step = batch.into_iter().next();
            let step = step
                .map(|a| writes::run_step(obj, ctx, twilio.as_ref(), &observed, &mut progress, a));
            match step {
                Some(run) => run.await.err(),
                None => None,
            }
        };
    }
}

/// While Twilio refuses some numbers, they are retried with growing, capped waits (as the
/// binding retries refused assignments), from when the refusals began: the `NumbersAttached`
/// condition's transition time while its reason is `AttachmentRefused`. Without this an
/// approved product would retry them only at its next resync, hours later.
fn refusal_retry(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    progress: &writes::Progress,
    poll: &PollSchedule,
    planned: Requeue,
) -> Requeue {
    if progress.refused.is_empty() {
        return planned;
    }
    let since = crate::api::find_condition(conditions, "NumbersAttached")
        .filter(|c| c.status == "False" && c.reason == "AttachmentRefused")
        .map(|c| c.last_transition_time.0);
    let retry = PollSchedule::growing(
        poll.review_initial,
        poll.review_max,
        since,
        Timestamp::now(),
    );
    match planned {
        Requeue::After(d) => Requeue::After(d.min(retry)),
        Requeue::OnChange => Requeue::After(retry),
    }
}

/// Reads the source of the profile and numbers, the product and (when needed) its
/// assignments, and works out which attachments this object owns.
async fn observe_all(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn crate::twilio::TrustHub,
    writer: &mut Writer<'_>,
) -> Result<(Observed, writes::Progress), ReconcileError> {
    let generation = obj.metadata.generation;
    let source = observe::source(obj, ctx).await?;
    observe::check_numbers_unclaimed(obj, ctx, &source)?;
    let annotation = obj.annotations().get(RESUBMIT_ANNOTATION).cloned();
    let recorded = writer.written.clone();
    let resubmit_requested = annotation.is_some() && annotation != recorded.last_resubmit;
    // Frugal path: nothing changed on our side since the last complete sync, so one fetch of
    // the product tells whether anything changed on Twilio's.
    // An attachment create left in flight is only settled by listing what it may have made.
    // A status from before `ownership.since` must list once, to date what it made.
    let records_owned = recorded.phone_numbers.iter().any(|n| n.created_by_operator);
    let quiet = (!resubmit_requested
        && recorded.observed_generation == generation
        && recorded.attachments_pending.is_empty()
        && !crate::planner::provenance::needs_listing(recorded.ownership.as_ref(), records_owned))
    .then(|| recorded_attachments(&recorded, &source))
    .flatten();
    if quiet.is_none() {
        observe::check_numbers_on_profile(twilio, &source).await?;
    }
    let (product, created_now) =
        observe::ensure_product(obj, ctx, twilio, writer, &source.profile_sid).await?;
    let product = view(&product);
    let sid = product.sid.clone();
    // Under review and once approved, Twilio accepts no change to the product's assignments
    // that this operator would not have made itself, so moving between these states (the
    // vetting's normal course) leaves the recorded assignments valid: no need to list them.
    let locked = |status: &str| {
        matches!(
            status,
            ts::PENDING_REVIEW | ts::IN_REVIEW | ts::TWILIO_APPROVED
        )
    };
    let unchanged = recorded.trust_product_sid.as_deref() == Some(sid.as_str())
        && recorded.twilio_status.as_deref().is_some_and(|before| {
            before == product.status || (locked(before) && locked(&product.status))
        });
    let checked_profile = quiet.is_none();
    // Once per resync period the recorded assignments are checked against a listing, to see
    // numbers detached in the Console (drift).
    let listing_now = Timestamp::now();
    let listing_due =
        super::drift::listing_due(ctx, recorded.assignments_listed_at.as_ref(), listing_now);
    let mut listed_at = Some(Time(listing_now));
    let (entity, attachments, listed) = if created_now {
        // Created a moment ago by this reconcile: nothing is attached yet.
        (Vec::new(), Vec::new(), Some(Vec::new()))
    } else {
        match quiet.filter(|_| locked(&product.status) && unchanged && !listing_due) {
            Some((entity, attachments)) => {
                listed_at = recorded.assignments_listed_at.clone();
                (entity, attachments, None)
            }
            None => {
                if !checked_profile {
                    observe::check_numbers_on_profile(twilio, &source).await?;
                }
                let (entity, listed) = observe_assignments(twilio, &sid).await?;
                let attachments: Vec<Attachment> = listed
                    .iter()
                    .map(|a| Attachment {
                        assignment_sid: a.assignment_sid.clone(),
                        number_sid: a.number_sid.clone(),
                    })
                    .collect();
                super::drift::announce_detached(ctx, obj, &recorded, &sid, &attachments).await;
                (entity, attachments, Some(listed))
            }
        }
    };
    let progress = writes::Progress::new(
        &recorded,
        source.numbers.keys(),
        &source.profile_sid,
        product,
        (entity, attachments),
        listed.as_deref(),
    );
    let observed = Observed {
        source,
        annotation,
        resubmit_requested,
        listed_at,
        previous_twilio_status: recorded.twilio_status.clone(),
    };
    Ok((observed, progress))
}

/// The planner's inputs: the spec, what was observed, and what this reconcile did so far.
fn inputs<'a>(
    obj: &'a ShakenStirTrustProduct,
    ctx: &'a Context,
    observed: &'a Observed,
    progress: &'a writes::Progress,
    writer: &Writer<'_>,
) -> TrustProductInputs<'a> {
    let spec = &obj.spec;
    TrustProductInputs {
        now: Timestamp::now(),
        generation: obj.metadata.generation.unwrap_or(0),
        friendly_name: &spec.friendly_name,
        email: &spec.email,
        status_callback: ctx.status_callback_for(spec.status_callback.as_deref()),
        submit: spec.submit,
        deletion_policy: spec.deletion_policy,
        profile_sid: &observed.source.profile_sid,
        desired_numbers: &progress.wanted,
        product: &progress.product,
        entity_assignments: &progress.entity,
        attachments: &progress.attachments,
        owned_attachments: &progress.owned,
        evaluation: progress.memo.as_ref(),
        rejected_generation: writer.written.rejected_generation,
        resubmit_requested: observed.resubmit_requested,
        resubmit_annotation: observed.annotation.as_deref(),
        submitted_at: progress.submitted_at.as_ref().map(|t| t.0),
        poll: &ctx.config.poll,
        actions_max: batch::planned_max(&progress.attempted),
    }
}

/// The product's entity assignments and number attachments.
type Assignments = (Vec<(String, String)>, Vec<Attachment>);

/// The entity and number assignments recorded by the last complete sync, when they cover
/// exactly the numbers wanted now and the profile.
fn recorded_attachments(
    recorded: &ShakenStirTrustProductStatus,
    source: &observe::Source,
) -> Option<Assignments> {
    let entity = recorded.entity_assignment_sid.clone()?;
    if recorded.business_profile_sid.as_deref() != Some(source.profile_sid.as_str()) {
        return None;
    }
    let attachments: Vec<Attachment> = recorded
        .phone_numbers
        .iter()
        .map(|n| {
            Some(Attachment {
                assignment_sid: n.assignment_sid.clone()?,
                number_sid: n.sid.clone(),
            })
        })
        .collect::<Option<_>>()?;
    let attached: BTreeSet<&str> = attachments.iter().map(|a| &*a.number_sid).collect();
    let same = attached.len() == source.numbers.len()
        && source.numbers.keys().all(|n| attached.contains(&**n));
    same.then(|| (vec![(entity, source.profile_sid.clone())], attachments))
}

/// Lists the product's entity and number assignments.
pub(super) async fn observe_assignments(
    twilio: &dyn crate::twilio::TrustHub,
    sid: &str,
) -> Result<(Vec<(String, String)>, Vec<Dated>), ReconcileError> {
    let entity = twilio
        .list_trust_product_entity_assignments(sid)
        .await
        .map_err(ReconcileError::twilio(
            "list the Trust Product's entity assignments",
        ))?
        .into_iter()
        .filter_map(|a| Some((a.sid?, a.object_sid?)))
        .collect();
    let attachments = twilio
        .list_trust_product_channel_endpoint_assignments(sid, None)
        .await
        .map_err(ReconcileError::twilio(
            "list the Trust Product's phone numbers",
        ))?
        .into_iter()
        .filter_map(crate::twilio::ChannelEndpointAssignment::dated)
        .collect();
    Ok((entity, attachments))
}

async fn announce_transition(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    before: Option<&str>,
    product: &ProductView,
) {
    if before == Some(product.status.as_str()) {
        return;
    }
    match product.status.as_str() {
        ts::TWILIO_APPROVED => {
            event(
                ctx,
                obj,
                EventType::Normal,
                "Approved",
                "Vetting",
                format!("Trust Product {} is twilio-approved", product.sid),
            )
            .await
        }
        ts::TWILIO_REJECTED => {
            let codes: Vec<String> = product.errors.iter().map(i64::to_string).collect();
            event(
                ctx,
                obj,
                EventType::Warning,
                "Rejected",
                "Vetting",
                format!(
                    "Trust Product {} was rejected by Twilio (error codes: {})",
                    product.sid,
                    codes.join(", ")
                ),
            )
            .await
        }
        ts::IN_REVIEW => {
            event(
                ctx,
                obj,
                EventType::Normal,
                "InReview",
                "Vetting",
                format!("Trust Product {} is in review", product.sid),
            )
            .await
        }
        _ => {}
    }
}
