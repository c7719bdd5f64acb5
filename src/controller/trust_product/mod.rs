//! Reconciles `ShakenStirTrustProduct`: the seed's steps 3–6, then the vetting until approval.

mod cleanup;
mod evaluation;
mod observe;
mod ownership;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::status::{
    Conditioned, StatusWriter, announce_expiry, apply_conditions, create_marked, event, now,
    report_error,
};
use super::{Context, ReconcileError};
use crate::api::{
    RESUBMIT_ANNOTATION, ShakenStirTrustProduct, ShakenStirTrustProductStatus,
    TrustProductNumberStatus, twilio_status as ts,
};
use crate::planner::trust_product::{
    Attachment, ProductView, TrustProductAction, TrustProductInputs, plan,
};
use crate::planner::{ConditionSpec, claimed, text};
use crate::twilio::{BundleStatus, TrustProduct, UpdateTrustProduct, created_sid};
use evaluation::{evaluation_status, memo_of};

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
    let mut writer = StatusWriter::new(
        api,
        obj,
        obj.status.clone().unwrap_or_default(),
        &ctx.written_versions,
    );
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

async fn sync(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    writer: &mut Writer<'_>,
) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let generation = obj.metadata.generation;
    let spec = &obj.spec;
    let twilio = ctx.credentials.client_for(&ns, &spec.credentials).await?;
    let source = observe::source(obj, ctx).await?;
    observe::check_numbers_unclaimed(obj, ctx, &source)?;
    let annotation = obj.annotations().get(RESUBMIT_ANNOTATION).cloned();
    let recorded = writer.written.clone();
    let resubmit_requested = annotation.is_some() && annotation != recorded.last_resubmit;
    let desired: BTreeSet<String> = source.numbers.keys().cloned().collect();
    // Frugal path: nothing changed on our side since the last complete sync, so one fetch of
    // the product tells whether anything changed on Twilio's.
    // An attachment create left in flight is only settled by listing what it may have made.
    let quiet = (!resubmit_requested
        && recorded.observed_generation == generation
        && recorded.attachments_pending.is_empty())
    .then(|| recorded_attachments(&recorded, &source, &desired))
    .flatten();
    if quiet.is_none() {
        observe::check_numbers_on_profile(twilio.as_ref(), &source).await?;
    }
    let (product, created_now) =
        observe::ensure_product(obj, ctx, twilio.as_ref(), writer, &source.profile_sid).await?;
    let mut product = view(&product);
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
    let (mut entity, mut attachments) = if created_now {
        // Created a moment ago by this reconcile: nothing is attached yet.
        (Vec::new(), Vec::new())
    } else {
        match quiet.filter(|_| locked(&product.status) && unchanged && !listing_due) {
            Some(known) => {
                listed_at = recorded.assignments_listed_at.clone();
                known
            }
            None => {
                if !checked_profile {
                    observe::check_numbers_on_profile(twilio.as_ref(), &source).await?;
                }
                let observed = observe_assignments(twilio.as_ref(), &sid).await?;
                super::drift::announce_detached(ctx, obj, &recorded, &sid, &observed.1).await;
                observed
            }
        }
    };
    let mut owned: BTreeSet<String> = recorded
        .phone_numbers
        .iter()
        .filter(|n| n.created_by_operator)
        .filter_map(|n| n.assignment_sid.clone())
        .collect();
    let pending = &recorded.attachments_pending;
    owned.extend(claimed(
        pending,
        attachments
            .iter()
            .map(|a| (a.assignment_sid.as_str(), a.number_sid.as_str())),
    ));
    let mut entity_created = recorded.entity_assignment_created
        || !claimed(
            pending,
            entity
                .iter()
                .filter(|(_, o)| *o == source.profile_sid)
                .map(|(bv, o)| (bv.as_str(), o.as_str())),
        )
        .is_empty();
    // Settled by the look-up above; each create in flight from here on is marked again.
    let mut in_flight: Vec<String> = Vec::new();
    let mut last_evaluation = recorded.last_evaluation.clone();
    let mut submitted_at = recorded.submitted_at.clone();
    let mut last_resubmit = recorded.last_resubmit.clone();
    let mut refused: Vec<(String, String)> = Vec::new();
    let mut attempted: Vec<TrustProductAction> = Vec::new();
    let previous_twilio_status = recorded.twilio_status.clone();
    let mut submitted_now = false;
    loop {
        let memo = last_evaluation.as_ref().map(memo_of);
        let wanted: BTreeSet<String> = desired
            .iter()
            .filter(|n| !refused.iter().any(|(r, _)| r == *n))
            .cloned()
            .collect();
        let planned = plan(&TrustProductInputs {
            now: Timestamp::now(),
            generation: generation.unwrap_or(0),
            friendly_name: &spec.friendly_name,
            email: &spec.email,
            status_callback: ctx.status_callback_for(spec.status_callback.as_deref()),
            submit: spec.submit,
            deletion_policy: spec.deletion_policy,
            profile_sid: &source.profile_sid,
            desired_numbers: &wanted,
            product: &product,
            entity_assignments: &entity,
            attachments: &attachments,
            owned_attachments: &owned,
            evaluation: memo.as_ref(),
            rejected_generation: writer.written.rejected_generation,
            resubmit_requested,
            resubmit_annotation: annotation.as_deref(),
            submitted_at: submitted_at.as_ref().map(|t| t.0),
            poll: &ctx.config.poll,
        });
        let next = planned.action.clone().filter(|a| !attempted.contains(a));
        let mut status = writer.written.clone();
        status.twilio_status = Some(product.status.clone());
        status.valid_until = product.valid_until.map(|t| t.to_string());
        status.errors = product.errors.clone();
        status.business_profile_sid = Some(source.profile_sid.clone());
        status.entity_assignment_sid = entity
            .iter()
            .find(|(_, o)| *o == source.profile_sid)
            .map(|(bv, _)| bv.clone());
        status.entity_assignment_created = entity_created;
        status.attachments_pending = in_flight.clone();
        status.phone_numbers = desired
            .iter()
            .map(|pn| {
                let attached = attachments.iter().find(|a| &a.number_sid == pn);
                TrustProductNumberStatus {
                    phone_number: source.numbers.get(pn).cloned().flatten(),
                    sid: pn.clone(),
                    assignment_sid: attached.map(|a| a.assignment_sid.clone()),
                    created_by_operator: attached
                        .is_some_and(|a| owned.contains(&a.assignment_sid)),
                    message: refused
                        .iter()
                        .find(|(r, _)| r == pn)
                        .map(|(_, m)| m.clone()),
                }
            })
            .collect();
        let attached_count = status
            .phone_numbers
            .iter()
            .filter(|n| n.assignment_sid.is_some())
            .count();
        status.numbers_summary = Some(format!("{attached_count}/{}", desired.len()));
        status.assignments_listed_at = listed_at.clone();
        status.last_evaluation = last_evaluation.clone();
        status.submitted_at = submitted_at.clone();
        status.last_resubmit = last_resubmit.clone();
        if planned.record_rejection {
            status.rejected_generation = generation;
        }
        if submitted_now {
            // A new submission: a rejection of it is recorded afresh, at its generation, so it
            // waits for the user like the first one instead of being resubmitted at once.
            status.rejected_generation = None;
        }
        if product.status == ts::TWILIO_APPROVED && status.approved_at.is_none() {
            status.approved_at = Some(now());
        }
        let mut conditions = planned.conditions.clone();
        if !refused.is_empty() {
            let msg: Vec<String> = refused.iter().map(|(n, m)| format!("{n}: {m}")).collect();
            conditions.retain(|c| c.type_ != "NumbersAttached" && c.type_ != "Ready");
            conditions.push(ConditionSpec::not(
                "NumbersAttached",
                "AttachmentRefused",
                text::listed(&msg, "; "),
            ));
            conditions.push(ConditionSpec::not(
                "Ready",
                "AttachmentRefused",
                text::listed(&msg, "; "),
            ));
        }
        if next.is_none() {
            conditions.push(ConditionSpec::ok(
                "Synced",
                "Synced",
                "in sync with Trust Hub",
            ));
            status.mark_synced(generation);
        }
        apply_conditions(&mut status.conditions, &conditions, generation);
        writer.write(status).await?;
        let Some(action) = next else {
            announce_transition(obj, ctx, previous_twilio_status.as_deref(), &product).await;
            announce_expiry(ctx, obj, &recorded.conditions, &writer.written.conditions).await;
            return Ok(ctx.requeue(planned.requeue));
        };
        attempted.push(action.clone());
        match action {
            TrustProductAction::AttachProfile { profile_sid } => {
                let create = async {
                    twilio
                        .create_trust_product_entity_assignment(&sid, &profile_sid)
                        .await
                        .and_then(|created| {
                            created_sid(created.sid, "CreateTrustProductEntityAssignment")
                        })
                };
                let bv = create_marked(writer, pending_of, &mut in_flight, &profile_sid, create)
                    .await?
                    .map_err(ReconcileError::twilio("attach the Business Profile"))?;
                event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "ProfileAttached",
                    "AttachProfile",
                    format!("attached Business Profile {profile_sid} ({bv})"),
                )
                .await;
                entity.push((bv, profile_sid));
                entity_created = true;
            }
            TrustProductAction::AttachNumber { number_sid } => {
                let create = async {
                    twilio
                        .create_trust_product_channel_endpoint_assignment(&sid, &number_sid)
                        .await
                        .and_then(|created| {
                            created_sid(created.sid, "CreateTrustProductChannelEndpointAssignment")
                        })
                };
                match create_marked(writer, pending_of, &mut in_flight, &number_sid, create).await?
                {
                    Ok(ra) => {
                        event(
                            ctx,
                            obj,
                            EventType::Normal,
                            "NumberAttached",
                            "AttachNumber",
                            format!("attached {number_sid} ({ra})"),
                        )
                        .await;
                        owned.insert(ra.clone());
                        attachments.push(Attachment {
                            assignment_sid: ra,
                            number_sid,
                        });
                    }
                    Err(e) if e.is_transient() || e.is_ambiguous() => {
                        return Err(ReconcileError::twilio("attach a phone number")(e));
                    }
                    Err(e) => {
                        let message = text::bounded(
                            ownership::refusal_message(obj, ctx, &e),
                            text::NUMBER_MESSAGE_MAX,
                        );
                        event(
                            ctx,
                            obj,
                            EventType::Warning,
                            "AttachmentRefused",
                            "AttachNumber",
                            format!("{number_sid}: {message}"),
                        )
                        .await;
                        refused.push((number_sid, message));
                    }
                }
            }
            TrustProductAction::DetachNumber {
                assignment_sid,
                number_sid,
            } => {
                super::deleted(
                    twilio
                        .delete_trust_product_channel_endpoint_assignment(&sid, &assignment_sid)
                        .await,
                )
                .map_err(ReconcileError::twilio("detach a phone number"))?;
                event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "NumberDetached",
                    "DetachNumber",
                    format!("detached {number_sid} ({assignment_sid})"),
                )
                .await;
                attachments.retain(|a| a.assignment_sid != assignment_sid);
                owned.remove(&assignment_sid);
            }
            TrustProductAction::UpdateFields {
                friendly_name,
                email,
                status_callback,
            } => {
                let request = UpdateTrustProduct {
                    status: None,
                    status_callback,
                    friendly_name,
                    email,
                };
                let updated = twilio
                    .update_trust_product(&sid, &request)
                    .await
                    .map_err(ReconcileError::twilio("update the Trust Product"))?;
                event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "TrustProductUpdated",
                    "UpdateTrustProduct",
                    "updated the Trust Product's name, e-mail or callback".into(),
                )
                .await;
                product = view(&updated);
            }
            TrustProductAction::Evaluate { key } => {
                let evaluation = twilio
                    .create_trust_product_evaluation(&sid, &spec.policy_sid)
                    .await
                    .map_err(ReconcileError::twilio("evaluate the Trust Product"))?;
                let recorded = evaluation_status(&evaluation, key, last_evaluation.as_ref());
                let (kind, reason) = if recorded.status == "compliant" {
                    (EventType::Normal, "Compliant")
                } else {
                    (EventType::Warning, "Noncompliant")
                };
                let failures = text::listed(&memo_of(&recorded).failures, "; ");
                event(
                    ctx,
                    obj,
                    kind,
                    reason,
                    "Evaluate",
                    format!(
                        "evaluation {}: {} {failures}",
                        recorded.sid, recorded.status
                    ),
                )
                .await;
                last_evaluation = Some(recorded);
            }
            TrustProductAction::Submit => {
                let request = UpdateTrustProduct {
                    status: Some(BundleStatus::PendingReview),
                    ..Default::default()
                };
                let updated = twilio
                    .update_trust_product(&sid, &request)
                    .await
                    .map_err(ReconcileError::twilio("submit the Trust Product"))?;
                event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "Submitted",
                    "Submit",
                    format!("submitted Trust Product {sid} for vetting"),
                )
                .await;
                product = view(&updated);
                submitted_at = Some(Time(Timestamp::now()));
                submitted_now = true;
                if resubmit_requested {
                    last_resubmit = annotation.clone();
                }
            }
        }
    }
}

fn pending_of(status: &mut ShakenStirTrustProductStatus) -> &mut Vec<String> {
    &mut status.attachments_pending
}

type Observed = (Vec<(String, String)>, Vec<Attachment>);

/// The entity and number assignments recorded by the last complete sync, when they cover
/// exactly the numbers wanted now and the profile.
fn recorded_attachments(
    recorded: &ShakenStirTrustProductStatus,
    source: &observe::Source,
    desired: &BTreeSet<String>,
) -> Option<Observed> {
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
    let attached: BTreeSet<String> = attachments.iter().map(|a| a.number_sid.clone()).collect();
    (attached == *desired).then(|| (vec![(entity, source.profile_sid.clone())], attachments))
}

/// Lists the product's entity and number assignments.
async fn observe_assignments(
    twilio: &dyn crate::twilio::TrustHub,
    sid: &str,
) -> Result<Observed, ReconcileError> {
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
        .filter_map(|a| {
            Some(Attachment {
                assignment_sid: a.sid?,
                number_sid: a.channel_endpoint_sid?,
            })
        })
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
