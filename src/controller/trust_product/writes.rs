//! What one Trust Product reconcile does and knows as its writes answer: the batch of number
//! attaches (or detaches) run concurrently and recorded once, the single steps (attach the
//! profile, update, evaluate, submit), and the status recorded after each.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;

use super::super::batch::{self, Outcome};
use super::super::book::Abridge;
use super::super::status::{Conditioned, apply_conditions, event, now};
use super::super::{Context, ReconcileError};
use super::evaluation::{evaluation_status, memo_of};
use super::{Observed, ownership, view};
use crate::api::{
    EvaluationStatus, NumberCounts, ShakenStirTrustProduct, ShakenStirTrustProductStatus, Sid,
    TrustProductNumberStatus, twilio_status as ts,
};
use crate::planner::provenance::{self, Dated};
use crate::planner::trust_product::{
    Attachment, EvaluationMemo, ProductView, TrustProductAction, TrustProductPlan,
};
use crate::planner::{ConditionSpec, claimed, text};
use crate::twilio::{BundleStatus, TrustHub, TwilioError, UpdateTrustProduct, created_sid};

/// The product, its assignments and the vetting as this reconcile knows them.
pub(super) struct Progress {
    pub product: ProductView,
    /// `(BV…, object SID)` entity assignments.
    pub entity: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
    /// `RA…` SIDs of attachments this object created.
    pub owned: BTreeSet<Sid>,
    /// What this reconcile's listing told of the ownership (`None` when it did not list).
    pub adopted: Option<provenance::Seen>,
    pub entity_created: bool,
    /// What a create was sent for whose outcome is not recorded yet (create-pending markers).
    pub in_flight: Vec<Sid>,
    pub last_evaluation: Option<EvaluationStatus>,
    pub memo: Option<EvaluationMemo>,
    pub submitted_at: Option<Time>,
    pub submitted_now: bool,
    pub last_resubmit: Option<String>,
    /// Numbers Twilio refused to attach in this reconcile, with why.
    pub refused: BTreeMap<Sid, String>,
    /// The numbers to attach: those wanted, less those refused in this reconcile.
    pub wanted: BTreeSet<Sid>,
    /// Writes this reconcile tried that did not succeed, and every single step it ran: each is
    /// tried once, the next reconcile retries. A number write that succeeded is not planned
    /// again, so it is not kept here (at 50,000 numbers, one more copy of every number).
    pub attempted: BTreeSet<TrustProductAction>,
}

impl Progress {
    /// What the observation found, with the attachments this object owns: those recorded as
    /// made by it, those found for a create left in flight, and, when the status came back
    /// abridged, those its `ownership` tells from `listed`.
    pub fn new<'d>(
        recorded: &ShakenStirTrustProductStatus,
        desired: impl Iterator<Item = &'d Sid>,
        profile_sid: &str,
        product: ProductView,
        (entity, attachments): (Vec<(String, String)>, Vec<Attachment>),
        listed: Option<&[Dated]>,
    ) -> Self {
        let wanted: BTreeSet<Sid> = desired.cloned().collect();
        let mut owned: BTreeSet<Sid> = recorded
            .phone_numbers
            .iter()
            .filter(|n| n.created_by_operator)
            .filter_map(|n| n.assignment_sid.clone())
            .collect();
        if recorded.is_abridged() {
            owned.extend(provenance::derived_owned(
                recorded.ownership.as_ref(),
                listed.unwrap_or_default(),
            ));
        }
        let pending = &recorded.attachments_pending;
        owned.extend(claimed(
            pending,
            attachments
                .iter()
                .map(|a| (&*a.assignment_sid, &*a.number_sid)),
        ));
        let entity_created = recorded.entity_assignment_created
            || !claimed(
                pending,
                entity
                    .iter()
                    .filter(|(_, o)| o == profile_sid)
                    .map(|(bv, o)| (bv.as_str(), o.as_str())),
            )
            .is_empty();
        let adopted = listed.map(|listed| {
            provenance::seen(
                recorded.ownership.as_ref(),
                listed,
                &owned,
                Timestamp::now(),
            )
        });
        // Room for every attachment this reconcile may make, taken once (see the binding's).
        let mut attachments = attachments;
        attachments.reserve_exact(wanted.len().saturating_sub(attachments.len()));
        Self {
            product,
            entity,
            attachments,
            owned,
            adopted,
            entity_created,
            // Settled by the observation; each create in flight from here on is marked again.
            in_flight: Vec::new(),
            memo: recorded.last_evaluation.as_ref().map(memo_of),
            last_evaluation: recorded.last_evaluation.clone(),
            submitted_at: recorded.submitted_at.clone(),
            submitted_now: false,
            last_resubmit: recorded.last_resubmit.clone(),
            refused: recorded_refusals(recorded),
            wanted,
            attempted: BTreeSet::new(),
        }
    }

    /// Marks the creates of `batch` in flight (recorded in status before they run).
    pub fn mark(&mut self, batch: &[TrustProductAction]) {
        for action in batch {
            match action {
                TrustProductAction::AttachNumber { number_sid } => {
                    self.in_flight.push(number_sid.clone())
                }
                TrustProductAction::AttachProfile { profile_sid } => {
                    self.in_flight.push(profile_sid.as_str().into())
                }
                _ => {}
            }
        }
    }

    /// Records the outcome of each number write of a batch.
    pub fn absorb(
        &mut self,
        obj: &ShakenStirTrustProduct,
        ctx: &Context,
        outcomes: Vec<(TrustProductAction, Outcome<Sid>)>,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        for (action, outcome) in outcomes {
            batch::note_tried(&mut self.attempted, &action, &outcome);
            match (action, outcome) {
                (TrustProductAction::AttachNumber { number_sid }, Outcome::Done(ra)) => {
                    self.in_flight.retain(|p| *p != number_sid);
                    self.refused.remove(&number_sid);
                    self.owned.insert(ra.clone());
                    self.attachments.push(Attachment {
                        assignment_sid: ra,
                        number_sid: number_sid.clone(),
                    });
                    report.attached.push(number_sid);
                }
                (TrustProductAction::AttachNumber { number_sid }, Outcome::Refused(e)) => {
                    // Nothing was made: no later listing may claim an attachment for it.
                    self.in_flight.retain(|p| *p != number_sid);
                    let message = text::bounded(
                        ownership::refusal_message(obj, ctx, &e),
                        text::NUMBER_MESSAGE_MAX,
                    );
                    report.refused.push(format!("{number_sid}: {message}"));
                    self.wanted.remove(&number_sid);
                    self.refused.insert(number_sid, message);
                }
                (TrustProductAction::AttachNumber { number_sid }, Outcome::Retry(e)) => {
                    if !e.is_ambiguous() {
                        self.in_flight.retain(|p| *p != number_sid);
                    }
                    report.fail(ReconcileError::twilio("attach a phone number")(e));
                }
                (
                    TrustProductAction::DetachNumber {
                        assignment_sid,
                        number_sid,
                    },
                    Outcome::Done(_),
                ) => {
                    self.attachments
                        .retain(|a| a.assignment_sid != assignment_sid);
                    self.owned.remove(&assignment_sid);
                    report.detached.push(number_sid);
                }
                (_, Outcome::Refused(e) | Outcome::Retry(e)) => {
                    report.fail(ReconcileError::twilio("detach a phone number")(e));
                }
                (_, Outcome::Done(_)) => {}
            }
        }
        report
    }
}

/// The refusals the last reconcile recorded (those with Twilio's reason), kept while they are
/// retried so the conditions do not flap to `Attaching` in between.
fn recorded_refusals(recorded: &ShakenStirTrustProductStatus) -> BTreeMap<Sid, String> {
    recorded
        .phone_numbers
        .iter()
        .filter(|n| n.assignment_sid.is_none())
        .filter_map(|n| Some((n.sid.clone(), n.message.clone()?)))
        .collect()
}

/// What a batch of number writes did, for the Events and the error that ends the reconcile.
#[derive(Default)]
pub(super) struct BatchReport {
    attached: Vec<Sid>,
    detached: Vec<Sid>,
    refused: Vec<String>,
    /// The first write that failed in a way a later reconcile retries (or a refused detach).
    pub failed: Option<ReconcileError>,
}

impl BatchReport {
    fn fail(&mut self, error: ReconcileError) {
        self.failed.get_or_insert(error);
    }

    /// One Event per kind of outcome, never one per number.
    pub async fn announce(&self, ctx: &Context, obj: &ShakenStirTrustProduct, sid: &str) {
        if !self.attached.is_empty() {
            let note = format!(
                "attached {} to Trust Product {sid}: {}",
                batch::counted(self.attached.len(), "number", "numbers"),
                text::listed(&self.attached, ", ")
            );
            event(
                ctx,
                obj,
                EventType::Normal,
                "NumbersAttached",
                "AttachNumbers",
                note,
            )
            .await;
        }
        if !self.detached.is_empty() {
            let note = format!(
                "detached {} from Trust Product {sid}: {}",
                batch::counted(self.detached.len(), "number", "numbers"),
                text::listed(&self.detached, ", ")
            );
            event(
                ctx,
                obj,
                EventType::Normal,
                "NumbersDetached",
                "DetachNumbers",
                note,
            )
            .await;
        }
        if !self.refused.is_empty() {
            let note = format!(
                "Twilio refused to attach {}: {}",
                batch::counted(self.refused.len(), "number", "numbers"),
                text::listed(&self.refused, "; ")
            );
            event(
                ctx,
                obj,
                EventType::Warning,
                "AttachmentRefused",
                "AttachNumbers",
                note,
            )
            .await;
        }
    }
}

/// Whether `batch` is number writes only (run concurrently), not a single step.
pub(super) fn is_number_batch(batch: &[TrustProductAction]) -> bool {
    batch.iter().all(|a| {
        matches!(
            a,
            TrustProductAction::AttachNumber { .. } | TrustProductAction::DetachNumber { .. }
        )
    })
}

/// One number write of a batch: the new attachment's `RA…` SID, or the removed one's.
pub(super) async fn write_number(
    twilio: &dyn TrustHub,
    product_sid: &str,
    action: TrustProductAction,
) -> Result<Sid, TwilioError> {
    match action {
        TrustProductAction::AttachNumber { number_sid } => {
            let created = twilio
                .create_trust_product_channel_endpoint_assignment(product_sid, &number_sid)
                .await?;
            created_sid(created.sid, "CreateTrustProductChannelEndpointAssignment").map(Sid::from)
        }
        TrustProductAction::DetachNumber { assignment_sid, .. } => super::super::deleted(
            twilio
                .delete_trust_product_channel_endpoint_assignment(product_sid, &assignment_sid)
                .await,
        )
        .map(|()| assignment_sid),
        other => Err(TwilioError::InvalidArgument(format!(
            "not a number write: {other:?}"
        ))),
    }
}

/// Performs one step (attach the profile, update the fields, evaluate, submit) and records
/// what it changed in `progress`.
pub(super) async fn run_step(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
    observed: &Observed,
    progress: &mut Progress,
    action: TrustProductAction,
) -> Result<(), ReconcileError> {
    let sid = progress.product.sid.clone();
    match action {
        TrustProductAction::AttachProfile { profile_sid } => {
            let created = twilio
                .create_trust_product_entity_assignment(&sid, &profile_sid)
                .await
                .and_then(|c| created_sid(c.sid, "CreateTrustProductEntityAssignment"));
            if !matches!(&created, Err(e) if e.is_ambiguous()) {
                progress.in_flight.retain(|p| **p != *profile_sid);
            }
            let bv = created.map_err(ReconcileError::twilio("attach the Business Profile"))?;
            let note = format!("attached Business Profile {profile_sid} ({bv})");
            event(
                ctx,
                obj,
                EventType::Normal,
                "ProfileAttached",
                "AttachProfile",
                note,
            )
            .await;
            progress.entity.push((bv, profile_sid));
            progress.entity_created = true;
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
            let note = "updated the Trust Product's name, e-mail or callback".to_string();
            event(
                ctx,
                obj,
                EventType::Normal,
                "TrustProductUpdated",
                "UpdateTrustProduct",
                note,
            )
            .await;
            progress.product = view(&updated);
        }
        TrustProductAction::Evaluate { key } => evaluate(obj, ctx, twilio, progress, key).await?,
        TrustProductAction::Submit => {
            let request = UpdateTrustProduct {
                status: Some(BundleStatus::PendingReview),
                ..Default::default()
            };
            let updated = twilio
                .update_trust_product(&sid, &request)
                .await
                .map_err(ReconcileError::twilio("submit the Trust Product"))?;
            let note = format!("submitted Trust Product {sid} for vetting");
            event(ctx, obj, EventType::Normal, "Submitted", "Submit", note).await;
            progress.product = view(&updated);
            progress.submitted_at = Some(Time(Timestamp::now()));
            progress.submitted_now = true;
            if observed.resubmit_requested {
                progress.last_resubmit = observed.annotation.clone();
            }
        }
        TrustProductAction::AttachNumber { .. } | TrustProductAction::DetachNumber { .. } => {}
    }
    Ok(())
}

async fn evaluate(
    obj: &ShakenStirTrustProduct,
    ctx: &Context,
    twilio: &dyn TrustHub,
    progress: &mut Progress,
    key: String,
) -> Result<(), ReconcileError> {
    let evaluation = twilio
        .create_trust_product_evaluation(&progress.product.sid, &obj.spec.policy_sid)
        .await
        .map_err(ReconcileError::twilio("evaluate the Trust Product"))?;
    let recorded = evaluation_status(&evaluation, key, progress.last_evaluation.as_ref());
    let (kind, reason) = if recorded.status == "compliant" {
        (EventType::Normal, "Compliant")
    } else {
        (EventType::Warning, "Noncompliant")
    };
    let memo = memo_of(&recorded);
    let failures = text::listed(&memo.failures, "; ");
    let note = format!(
        "evaluation {}: {} {failures}",
        recorded.sid, recorded.status
    );
    event(ctx, obj, kind, reason, "Evaluate", note).await;
    progress.memo = Some(memo);
    progress.last_evaluation = Some(recorded);
    Ok(())
}

/// The status to record after planning: the product, its numbers, the create-pending markers
/// of what is about to run, the plan's conditions, and `Synced` once nothing is left to write.
pub(super) fn recorded_status(
    obj: &ShakenStirTrustProduct,
    written: &ShakenStirTrustProductStatus,
    observed: &Observed,
    progress: &Progress,
    planned: &TrustProductPlan,
    synced: bool,
) -> ShakenStirTrustProductStatus {
    let generation = obj.metadata.generation;
    let profile_sid = &observed.source.profile_sid;
    let product = &progress.product;
    let mut status = written.shell();
    status.twilio_status = Some(product.status.clone());
    status.valid_until = product.valid_until.map(|t| t.to_string());
    status.errors = product.errors.clone();
    status.business_profile_sid = Some(profile_sid.clone());
    status.entity_assignment_sid = progress
        .entity
        .iter()
        .find(|(_, o)| o == profile_sid)
        .map(|(bv, _)| bv.clone());
    status.entity_assignment_created = progress.entity_created;
    // `since` is set by the first number create; the profile's attachment is recorded on its
    // own (`entityAssignmentCreated`).
    let creating_number = progress
        .in_flight
        .iter()
        .any(|sid| **sid != *observed.source.profile_sid);
    status.ownership = provenance::recorded_ownership(
        written.ownership.as_ref(),
        creating_number,
        Timestamp::now(),
        progress.adopted.as_ref(),
    );
    status.attachments_pending = progress.in_flight.iter().map(|p| p.to_string()).collect();
    status.phone_numbers = number_statuses(observed, progress);
    status.mark_full();
    let attached_count = status
        .phone_numbers
        .iter()
        .filter(|n| n.assignment_sid.is_some())
        .count();
    let wanted = observed.source.numbers.len();
    status.numbers_summary = Some(format!("{attached_count}/{wanted}"));
    let attached = u32::try_from(attached_count).unwrap_or(u32::MAX);
    let counts = NumberCounts {
        selected: u32::try_from(wanted).unwrap_or(u32::MAX),
        done: attached,
        refused: u32::try_from(progress.refused.len()).unwrap_or(u32::MAX),
        covered: super::super::coverage::product_covered(&product.status, attached),
        ..NumberCounts::default()
    };
    status.coverage = Some(counts.coverage());
    status.numbers = Some(counts);
    status.assignments_listed_at = observed.listed_at.clone();
    status.last_evaluation = progress.last_evaluation.clone();
    status.submitted_at = progress.submitted_at.clone();
    status.last_resubmit = progress.last_resubmit.clone();
    if planned.record_rejection {
        status.rejected_generation = generation;
    }
    if progress.submitted_now {
        // A new submission: a rejection of it is recorded afresh, at its generation, so it
        // waits for the user like the first one instead of being resubmitted at once.
        status.rejected_generation = None;
    }
    if product.status == ts::TWILIO_APPROVED && status.approved_at.is_none() {
        status.approved_at = Some(now());
    }
    let mut conditions = planned.conditions.clone();
    if !progress.refused.is_empty() {
        let msg: Vec<String> = progress
            .refused
            .iter()
            .map(|(n, m)| format!("{n}: {m}"))
            .collect();
        conditions.retain(|c| c.type_ != "NumbersAttached" && c.type_ != "Ready");
        let message = text::listed(&msg, "; ");
        conditions.push(ConditionSpec::not(
            "NumbersAttached",
            "AttachmentRefused",
            message.clone(),
        ));
        conditions.push(ConditionSpec::not("Ready", "AttachmentRefused", message));
    }
    if synced {
        conditions.push(ConditionSpec::ok(
            "Synced",
            "Synced",
            "in sync with Trust Hub",
        ));
        status.mark_synced(generation);
    }
    apply_conditions(&mut status.conditions, &conditions, generation);
    status
}

/// One entry per wanted number: its attachment, whether this object made it, why it is not
/// attached.
fn number_statuses(observed: &Observed, progress: &Progress) -> Vec<TrustProductNumberStatus> {
    let attached: BTreeMap<&str, &Sid> = progress
        .attachments
        .iter()
        .map(|a| (&*a.number_sid, &a.assignment_sid))
        .collect();
    // Twilio's reason for the first refused numbers only (`text::NUMBER_MESSAGES_MAX`).
    let mut reasons_left = text::NUMBER_MESSAGES_MAX;
    observed
        .source
        .numbers
        .iter()
        .map(|(pn, phone_number)| {
            let ra = attached.get(&**pn).copied();
            let refused = progress.refused.get(pn).filter(|_| reasons_left > 0);
            if refused.is_some() {
                reasons_left -= 1;
            }
            TrustProductNumberStatus {
                phone_number: phone_number.clone(),
                sid: pn.clone(),
                assignment_sid: ra.cloned(),
                created_by_operator: ra.is_some_and(|ra| progress.owned.contains(ra)),
                message: refused.cloned(),
            }
        })
        .collect()
}
