//! Reconciles `BusinessProfileBinding`: resolve the Primary Business Profile and the numbers,
//! assign the missing numbers to the profile (seed step 2), report, poll the profile's vetting.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::batch::{self, Outcome};
use super::book::Abridge;
use super::status::{
    Conditioned, StatusWriter, announce_expiry, apply_conditions, event, report_error,
};
use super::{Context, ReconcileError};
use crate::api::{
    BusinessProfileBinding, BusinessProfileBindingStatus, BusinessProfileRef, NumberState,
    ResolvedBusinessProfile, Sid, condition_is_true, find_condition,
};
use crate::planner::binding::{
    BindingAction, BindingInputs, NumberTarget, ProfileView, Released, plan,
};
use crate::planner::provenance::{self, Dated};
use crate::planner::{ConditionSpec, Requeue, text};
use crate::twilio::{BundleFilter, ChannelEndpointAssignment, CustomerProfile, TrustHub};

type Writer<'a> = StatusWriter<'a, BusinessProfileBinding, BusinessProfileBindingStatus>;

pub(super) async fn reconcile(
    obj: Arc<BusinessProfileBinding>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    super::reconcile_finalized(
        "BusinessProfileBinding",
        obj,
        ctx,
        apply,
        super::binding_cleanup::cleanup,
    )
    .await
}

async fn apply(
    api: &Api<BusinessProfileBinding>,
    obj: &BusinessProfileBinding,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let mut writer = StatusWriter::new(api, obj, obj.status.as_ref(), ctx);
    match sync(obj, ctx, &mut writer).await {
        Ok(action) => Ok(action),
        Err(err) => report_error(ctx, &mut writer, err).await,
    }
}

/// Finds the profile by SID or by its unique friendly name.
async fn resolve_profile(
    twilio: &dyn TrustHub,
    wanted: &BusinessProfileRef,
) -> Result<CustomerProfile, ReconcileError> {
    if let Some(sid) = &wanted.sid {
        return twilio.fetch_customer_profile(sid).await.map_err(|e| {
            if e.is_not_found() {
                ReconcileError::terminal(
                    "ProfileNotFound",
                    format!("Business Profile {sid} does not exist in this account"),
                )
            } else {
                ReconcileError::twilio("fetch the Business Profile")(e)
            }
        });
    }
    let name = wanted.friendly_name.clone().unwrap_or_default();
    let filter = BundleFilter {
        friendly_name: Some(name.clone()),
        ..Default::default()
    };
    let mut found = twilio
        .list_customer_profiles(&filter)
        .await
        .map_err(ReconcileError::twilio("list Business Profiles"))?;
    found.retain(|p| p.friendly_name.as_deref() == Some(name.as_str()));
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ReconcileError::terminal(
            "ProfileNotFound",
            format!("no Business Profile named {name:?} in this account"),
        )),
        n => {
            let sids: Vec<String> = found.iter().filter_map(|p| p.sid.clone()).collect();
            Err(ReconcileError::terminal(
                "ProfileAmbiguous",
                format!(
                    "{n} Business Profiles are named {name:?} ({}); name one by businessProfile.sid",
                    text::listed(&sids, ", ")
                ),
            ))
        }
    }
}

/// Resolves each spec entry to a `PN…` SID; numbers already resolved (recorded in status with
/// the same number and subaccount) are not looked up again.
/// The assignments recorded by the last complete sync, when nothing changed since on our side
/// (same generation, every number resolved and assigned) nor in the profile's status: then the
/// profile fetch alone tells that nothing needs doing, and the assignment list is not read again.
/// Assignments removed outside the operator are noticed at the next listing: a spec or profile
/// change, or the resync once a period has passed since the last one (`assignmentsListedAt`).
fn recorded_assignments(
    obj: &BusinessProfileBinding,
    recorded: &BusinessProfileBindingStatus,
    profile: &ProfileView,
    targets: &[NumberTarget],
) -> Option<Vec<(Sid, Sid)>> {
    let same_profile = recorded.business_profile.as_ref().is_some_and(|p| {
        p.sid == profile.sid && p.status.as_deref() == Some(profile.status.as_str())
    });
    if recorded.observed_generation != obj.metadata.generation || !same_profile {
        return None;
    }
    let assigned: BTreeMap<&str, &Sid> = recorded
        .phone_numbers
        .iter()
        .filter(|n| n.state == NumberState::Assigned)
        .filter_map(|n| Some((n.sid.as_deref()?, n.assignment_sid.as_ref()?)))
        .collect();
    targets
        .iter()
        .map(|t| {
            let NumberTarget::Resolved { number_sid, .. } = t else {
                return None;
            };
            let ra = assigned.get(&**number_sid)?;
            Some((Sid::clone(ra), number_sid.clone()))
        })
        .collect()
}

/// The numbers whose assignments matter to this binding: those it wants, those it recorded
/// (to release) and those whose create was in flight (to claim). Only these are listed, however
/// many numbers the shared profile carries.
fn relevant_numbers(targets: &[NumberTarget], recorded: &BusinessProfileBindingStatus) -> Vec<Sid> {
    let mut sids: BTreeSet<Sid> = targets
        .iter()
        .filter_map(|t| t.number_sid().cloned())
        .collect();
    sids.extend(recorded.phone_numbers.iter().filter_map(|n| n.sid.clone()));
    sids.extend(
        recorded
            .assignments_pending
            .iter()
            .map(|p| Sid::from(p.as_str())),
    );
    sids.into_iter().collect()
}

/// Since when the binding has reported numbers it cannot assign: the `NumbersAssigned`
/// condition's transition time while its reason is `NumbersUnresolvable`.
fn failing_since(recorded: &BusinessProfileBindingStatus) -> Option<k8s_openapi::jiff::Timestamp> {
    find_condition(&recorded.conditions, "NumbersAssigned")
        .filter(|c| c.status == "False" && c.reason == "NumbersUnresolvable")
        .map(|c| c.last_transition_time.0)
}

/// The profile as recorded, when it was approved and nothing calls for a fresh look: same
/// generation, the resync period (when the assignments are listed again) not over, and the
/// approval not near its end. A
/// binding wakes between resyncs for its discovery interval and when a product using it changes
/// its coverage (approval); the profile's vetting is still checked once per resync, not at each.
fn approved_profile(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    recorded: &BusinessProfileBindingStatus,
    now: k8s_openapi::jiff::Timestamp,
) -> Option<ResolvedBusinessProfile> {
    let profile = recorded.business_profile.as_ref()?;
    let fresh = recorded.observed_generation == obj.metadata.generation
        && !super::drift::listing_due(ctx, recorded.assignments_listed_at.as_ref(), now);
    let approved = profile.status.as_deref() == Some(crate::api::twilio_status::TWILIO_APPROVED);
    // Near its end (the warning window) or past it, the approval is looked at every time, to
    // see Twilio renew it.
    let warning = ctx.config.poll.expiry_warning;
    let lasting = profile
        .valid_until
        .as_deref()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .is_none_or(|until| {
            std::time::Duration::try_from(until.duration_since(now))
                .is_ok_and(|left| left > warning)
        });
    (fresh && approved && lasting).then(|| profile.clone())
}

fn profile_status(profile: &CustomerProfile) -> ResolvedBusinessProfile {
    ResolvedBusinessProfile {
        sid: profile.sid.clone().unwrap_or_default(),
        friendly_name: profile.friendly_name.clone(),
        status: profile.status.as_ref().map(|s| s.as_str().to_string()),
        policy_sid: profile.policy_sid.clone(),
        valid_until: profile
            .valid_until
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }
}

/// What one reconcile knows of the binding's numbers in Trust Hub, updated as its writes answer.
struct Progress {
    /// `(RA…, PN…)` assignments on the profile.
    assignments: Vec<(Sid, Sid)>,
    /// `RA…` SIDs this object created.
    owned: BTreeSet<Sid>,
    /// What this reconcile's listing told of the ownership (`None` when it did not list).
    adopted: Option<provenance::Seen>,
    /// Numbers recorded in status that the spec dropped.
    released: Vec<Released>,
    /// Refused assignments of this reconcile, by `PN…`.
    failures: BTreeMap<Sid, String>,
    /// `PN…` SIDs whose assignment create may have been made without its outcome recorded (the
    /// create-pending markers written to status before a batch starts).
    in_flight: Vec<Sid>,
    /// Writes this reconcile tried that did not succeed: each is tried once, the next reconcile
    /// retries. A write that succeeded is not planned again, so it need not be kept here (at
    /// 50,000 numbers that set was one more copy of every number).
    attempted: BTreeSet<BindingAction>,
}

/// What a batch of writes did, for the Events and the error that ends the reconcile.
#[derive(Default)]
struct BatchReport {
    assigned: Vec<Sid>,
    unassigned: Vec<Sid>,
    refused: Vec<String>,
    /// The first write that failed in a way a later reconcile retries (or a refused unassign).
    failed: Option<crate::twilio::TwilioError>,
}

impl Progress {
    /// Records the outcome of each write of a batch.
    fn absorb(&mut self, outcomes: Vec<(BindingAction, Outcome<Sid>)>) -> BatchReport {
        let mut report = BatchReport::default();
        for (action, outcome) in outcomes {
            batch::note_tried(&mut self.attempted, &action, &outcome);
            match (action, outcome) {
                (BindingAction::Assign { number_sid }, Outcome::Done(ra)) => {
                    self.in_flight.retain(|p| *p != number_sid);
                    self.failures.remove(&number_sid);
                    self.owned.insert(ra.clone());
                    self.assignments.push((ra, number_sid.clone()));
                    report.assigned.push(number_sid);
                }
                (BindingAction::Assign { number_sid }, Outcome::Refused(e)) => {
                    // Nothing was made: no later listing may claim an assignment for it.
                    self.in_flight.retain(|p| *p != number_sid);
                    let message = format!("Twilio refused the assignment: {e}");
                    report.refused.push(format!("{number_sid}: {message}"));
                    self.failures.insert(number_sid, message);
                }
                (BindingAction::Assign { number_sid }, Outcome::Retry(e)) => {
                    if !e.is_ambiguous() {
                        self.in_flight.retain(|p| *p != number_sid);
                    }
                    report.failed.get_or_insert(e);
                }
                (
                    BindingAction::Unassign {
                        assignment_sid,
                        number_sid,
                    },
                    Outcome::Done(_),
                ) => {
                    self.assignments.retain(|(ra, _)| *ra != assignment_sid);
                    self.owned.remove(&assignment_sid);
                    self.released.retain(|r| r.number_sid != number_sid);
                    report.unassigned.push(number_sid);
                }
                (BindingAction::Unassign { .. }, Outcome::Refused(e) | Outcome::Retry(e)) => {
                    report.failed.get_or_insert(e);
                }
            }
        }
        report
    }
}

impl BatchReport {
    /// One Event per kind of outcome, never one per number.
    async fn announce(&self, ctx: &Context, obj: &BusinessProfileBinding, profile_sid: &str) {
        if !self.assigned.is_empty() {
            let note = format!(
                "assigned {} to Business Profile {profile_sid}: {}",
                batch::counted(self.assigned.len(), "number", "numbers"),
                text::listed(&self.assigned, ", ")
            );
            event(
                ctx,
                obj,
                EventType::Normal,
                "NumbersAssigned",
                "AssignNumbers",
                note,
            )
            .await;
        }
        if !self.unassigned.is_empty() {
            let note = format!(
                "unassigned {} from Business Profile {profile_sid}: {}",
                batch::counted(self.unassigned.len(), "number", "numbers"),
                text::listed(&self.unassigned, ", ")
            );
            event(
                ctx,
                obj,
                EventType::Normal,
                "NumbersUnassigned",
                "UnassignNumbers",
                note,
            )
            .await;
        }
        if !self.refused.is_empty() {
            let note = format!(
                "Twilio refused {}: {}",
                batch::counted(self.refused.len(), "assignment", "assignments"),
                text::listed(&self.refused, "; ")
            );
            event(
                ctx,
                obj,
                EventType::Warning,
                "AssignmentRefused",
                "AssignNumbers",
                note,
            )
            .await;
        }
    }
}

/// Everything the reconcile observed before planning.
struct Observed {
    profile: ResolvedBusinessProfile,
    view: ProfileView,
    targets: Vec<NumberTarget>,
    listed_at: Option<Time>,
    /// The discovery report to record.
    discovery: Option<crate::api::DiscoveryStatus>,
    /// When discovery lists again.
    next_listing: Option<std::time::Duration>,
}

/// Reads the profile, the numbers and (when needed) the assignments, and works out what this
/// object owns: everything the planner needs, before any write.
async fn observe(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    twilio: &dyn TrustHub,
    recorded: &BusinessProfileBindingStatus,
) -> Result<(Observed, Progress), ReconcileError> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let profile = match approved_profile(obj, ctx, recorded, now) {
        Some(known) => known,
        None => profile_status(&resolve_profile(twilio, &obj.spec.business_profile).await?),
    };
    let view = ProfileView {
        sid: profile.sid.clone(),
        status: profile.status.clone().unwrap_or_default(),
        valid_until: profile
            .valid_until
            .as_deref()
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok()),
    };
    let wanted = super::binding_numbers::wanted(obj, ctx, twilio, recorded, now).await?;
    let targets = wanted.targets;
    super::binding_ownership::check_numbers_unclaimed(obj, ctx, &view.sid, &targets)?;
    // Once per resync period the recorded assignments are checked against a listing, to see
    // numbers unassigned in the Console (drift); and a create left in flight is only settled by
    // listing what it may have made.
    // A status from before `ownership.since` must list once, to date what it made.
    let records_owned = recorded.phone_numbers.iter().any(|n| n.created_by_operator);
    let frugal = (!super::drift::listing_due(ctx, recorded.assignments_listed_at.as_ref(), now)
        && recorded.assignments_pending.is_empty()
        && !provenance::needs_listing(recorded.ownership.as_ref(), records_owned)
        && !wanted.selection_changed)
        .then(|| recorded_assignments(obj, recorded, &view, &targets))
        .flatten();
    let listed = match frugal {
        Some(_) => None,
        None => {
            Some(list_assignments(twilio, &view.sid, &relevant_numbers(&targets, recorded)).await?)
        }
    };
    let assignments = match (frugal, &listed) {
        (Some(known), _) => known,
        (None, listed) => listed
            .iter()
            .flatten()
            .map(|a| (a.assignment_sid.clone(), a.number_sid.clone()))
            .collect(),
    };
    let listed_at = if listed.is_some() {
        super::drift::announce_unassigned(ctx, obj, recorded, &assignments).await;
        Some(Time(now))
    } else {
        recorded.assignments_listed_at.clone()
    };
    let progress = ownership(recorded, &targets, assignments, listed.as_deref(), now);
    if wanted.changes != (0, 0) {
        let (new, gone) = wanted.changes;
        let selected = wanted.discovery.as_ref().map_or(0, |d| d.selected as usize);
        let note = format!(
            "discovery selects {}: {new} new, {gone} gone since the last listing",
            batch::counted(selected, "number", "numbers")
        );
        event(
            ctx,
            obj,
            EventType::Normal,
            "NumbersDiscovered",
            "Discover",
            note,
        )
        .await;
    }
    let observed = Observed {
        profile,
        view,
        targets,
        listed_at,
        discovery: wanted.discovery,
        next_listing: wanted.next_listing,
    };
    Ok((observed, progress))
}

/// From this many numbers on, the profile's whole assignment list (1,000 a page) is read
/// instead of asking for the numbers 50 at a time. A profile usually carries one binding's
/// numbers, so the whole list is then the cheapest (1,000 numbers: 1 page instead of 20
/// filtered requests); a small binding on a profile shared with much larger ones keeps asking
/// for its own numbers only.
const LIST_WHOLE_FROM: usize = 100;

/// The profile's assignments of `numbers`: filtered by Twilio for a few numbers, else the
/// whole list filtered here, so the cost grows with the numbers, never per number.
pub(super) async fn list_assignments(
    twilio: &dyn TrustHub,
    profile_sid: &str,
    numbers: &[Sid],
) -> Result<Vec<Dated>, ReconcileError> {
    let listed = if numbers.len() < LIST_WHOLE_FROM {
        let few: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
        twilio
            .list_customer_profile_channel_endpoint_assignments_among(profile_sid, &few)
            .await
    } else {
        twilio
            .list_customer_profile_channel_endpoint_assignments(profile_sid, None)
            .await
    }
    .map_err(ReconcileError::twilio(
        "list the profile's phone number assignments",
    ))?;
    // The listed `PN…` SIDs are replaced by the wanted ones they equal: one copy of each.
    let wanted: HashMap<&str, &Sid> = numbers.iter().map(|n| (&**n, n)).collect();
    Ok(listed
        .into_iter()
        .filter_map(ChannelEndpointAssignment::dated)
        .filter_map(|mut a| {
            a.number_sid = Sid::clone(wanted.get(&*a.number_sid)?);
            Some(a)
        })
        .collect())
}

/// Which listed assignments are this object's (recorded as made by it, found for a create left
/// in flight, or, when the status came back abridged, told by its `ownership`), and which
/// recorded numbers the spec dropped.
fn ownership(
    recorded: &BusinessProfileBindingStatus,
    targets: &[NumberTarget],
    assignments: Vec<(Sid, Sid)>,
    listed: Option<&[Dated]>,
    now: k8s_openapi::jiff::Timestamp,
) -> Progress {
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
    owned.extend(crate::planner::claimed(
        &recorded.assignments_pending,
        assignments.iter().map(|(ra, pn)| (&**ra, &**pn)),
    ));
    let wanted: BTreeSet<&str> = targets
        .iter()
        .filter_map(|t| t.number_sid().map(|sid| &**sid))
        .collect();
    let ours_by_number: BTreeMap<&str, &Sid> = assignments
        .iter()
        .filter(|(ra, _)| owned.contains(ra))
        .map(|(ra, pn)| (&**pn, ra))
        .collect();
    let released: Vec<Released> = recorded
        .phone_numbers
        .iter()
        .filter(|n| n.state != NumberState::Unresolvable)
        .filter_map(|n| {
            let sid = n.sid.clone()?;
            if wanted.contains(&*sid) {
                return None;
            }
            // A number dropped from the spec while its create was in flight: what the list
            // found for it is this object's.
            let claimed = ours_by_number.get(&*sid).map(|ra| Sid::clone(ra));
            Some(Released {
                number_sid: sid,
                created_by_operator: n.created_by_operator || claimed.is_some(),
                assignment_sid: claimed.or(n.assignment_sid.clone()),
            })
        })
        .collect();
    let adopted =
        listed.map(|listed| provenance::seen(recorded.ownership.as_ref(), listed, &owned, now));
    // Room for every assignment this reconcile may make, taken once: grown batch by batch by
    // doubling, the list of 50,000 would take up to twice that, and a copy at each growth.
    let mut assignments = assignments;
    assignments.reserve_exact(targets.len().saturating_sub(assignments.len()));
    Progress {
        assignments,
        owned,
        adopted,
        released,
        // The refusals the last reconcile recorded, kept while they are retried so the
        // conditions do not flap to `Assigning` in between.
        failures: recorded
            .phone_numbers
            .iter()
            .filter(|n| n.state == NumberState::Failed)
            .filter_map(|n| Some((n.sid.clone()?, n.message.clone()?)))
            .collect(),
        // Settled by the observation; each create in flight from here on is marked again.
        in_flight: Vec::new(),
        attempted: BTreeSet::new(),
    }
}

/// Observe, then plan a batch, record it (with its create-pending markers), run it
/// concurrently, and plan again, until nothing is left: one status write per batch.
async fn sync(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    writer: &mut Writer<'_>,
) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let twilio = ctx
        .credentials
        .client_for(&ns, &obj.spec.credentials)
        .await?;
    let recorded = writer.written.clone();
    let (observed, mut progress) = observe(obj, ctx, twilio.as_ref(), &recorded).await?;
    let profile_sid = observed.view.sid.clone();
    let unapproved_since = find_condition(&recorded.conditions, "ProfileApproved")
        .filter(|c| c.status != "True")
        .map(|c| c.last_transition_time.0);
    let failing_since = failing_since(&recorded);
    // Only the conditions are needed from here on: the record the reconcile started from is
    // let go, or its 50,000 entries would be held through every batch beside the last
    // written and the next.
    let conditions_before = recorded.conditions.clone();
    drop(recorded);
    let mut failed: Option<crate::twilio::TwilioError> = None;
    loop {
        let mut planned = plan(&BindingInputs {
            now: k8s_openapi::jiff::Timestamp::now(),
            profile: &observed.view,
            targets: &observed.targets,
            assignments: &progress.assignments,
            owned: &progress.owned,
            released: &progress.released,
            deletion_policy: obj.spec.deletion_policy,
            unapproved_since,
            failures: &progress.failures,
            failing_since,
            poll: &ctx.config.poll,
            actions_max: batch::planned_max(&progress.attempted),
        });
        let batch = match failed {
            Some(_) => Vec::new(),
            None => batch::next(&planned.actions, &progress.attempted),
        };
        progress
            .in_flight
            .extend(batch.iter().filter_map(|a| match a {
                BindingAction::Assign { number_sid } => Some(number_sid.clone()),
                BindingAction::Unassign { .. } => None,
            }));
        let synced = batch.is_empty() && failed.is_none();
        let was_ready = condition_is_true(&writer.written.conditions, "Ready");
        let status = recorded_status(
            ctx,
            obj,
            &writer.written,
            &observed,
            &progress,
            &mut planned,
            synced,
        );
        writer.write(status).await?;
        if let Some(e) = failed {
            return Err(ReconcileError::twilio("assign or unassign phone numbers")(
                e,
            ));
        }
        if batch.is_empty() {
            if condition_is_true(&writer.written.conditions, "Ready") && !was_ready {
                let note = format!("profile approved; numbers {}", planned.summary);
                event(ctx, obj, EventType::Normal, "Ready", "Reconcile", note).await;
            }
            announce_expiry(ctx, obj, &conditions_before, &writer.written.conditions).await;
            return Ok(ctx.requeue(sooner(planned.requeue, observed.next_listing)));
        }
        let limit = ctx.config.twilio.max_in_flight;
        let outcomes = batch::run(batch, limit, |action| {
            write_one(twilio.as_ref(), &profile_sid, action)
        })
        .await;
        let report = progress.absorb(outcomes);
        report.announce(ctx, obj, &profile_sid).await;
        failed = report.failed;
    }
}

/// The planner's requeue, or the next discovery listing when that comes first.
fn sooner(planned: Requeue, listing: Option<std::time::Duration>) -> Requeue {
    match (planned, listing) {
        (Requeue::After(d), Some(l)) => Requeue::After(d.min(l)),
        (Requeue::OnChange, Some(l)) => Requeue::After(l),
        (planned, None) => planned,
    }
}

/// The status to record after planning: the plan's numbers and conditions, the create-pending
/// markers of the batch about to run, and `Synced` once nothing is left to write.
fn recorded_status(
    ctx: &Context,
    obj: &BusinessProfileBinding,
    written: &BusinessProfileBindingStatus,
    observed: &Observed,
    progress: &Progress,
    planned: &mut crate::planner::binding::BindingPlan,
    synced: bool,
) -> BusinessProfileBindingStatus {
    let generation = obj.metadata.generation;
    let mut status = written.shell();
    status.business_profile = Some(observed.profile.clone());
    // Moved, not copied: the plan's list is the status's from here on.
    status.phone_numbers = std::mem::take(&mut planned.numbers);
    status.mark_full();
    status.numbers_digest = Some(numbers_digest(&status.phone_numbers));
    status.ownership = provenance::recorded_ownership(
        written.ownership.as_ref(),
        !progress.in_flight.is_empty(),
        k8s_openapi::jiff::Timestamp::now(),
        progress.adopted.as_ref(),
    );
    status.numbers_summary = Some(planned.summary.clone());
    let mut counts = planned.counts.clone();
    // Counted once the writes are done, not at every batch: no number is covered before its
    // product has it, and the product is approved only after every batch.
    counts.covered = if synced {
        let assigned: HashSet<&str> = status
            .phone_numbers
            .iter()
            .filter(|n| n.state == NumberState::Assigned)
            .filter_map(|n| n.sid.as_deref())
            .collect();
        super::coverage::binding_covered(ctx, obj, &assigned)
    } else {
        written.numbers.as_ref().map_or(0, |n| n.covered)
    };
    status.coverage = Some(counts.coverage());
    status.numbers = Some(counts);
    status.assignments_pending = progress.in_flight.iter().map(|p| p.to_string()).collect();
    status.assignments_listed_at = observed.listed_at.clone();
    status.discovery = observed.discovery.clone();
    let mut conditions = planned.conditions.clone();
    if synced {
        conditions.push(ConditionSpec::ok(
            "Synced",
            "Synced",
            "in sync with Trust Hub",
        ));
    }
    apply_conditions(&mut status.conditions, &conditions, generation);
    if synced {
        status.mark_synced(generation);
    }
    status
}

/// A digest of the assigned numbers and their assignments (order aside), for the Trust
/// Products that take their numbers from this binding: it changes whenever those do.
fn numbers_digest(numbers: &[crate::api::PhoneNumberAssignmentStatus]) -> String {
    use std::hash::{Hash, Hasher};
    let sum = numbers
        .iter()
        .filter(|n| n.state == NumberState::Assigned)
        .map(|n| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&n.sid, &n.assignment_sid, &n.phone_number).hash(&mut h);
            h.finish()
        })
        .fold(0u64, u64::wrapping_add);
    format!("{sum:016x}")
}

/// One write of a batch: the new assignment's `RA…` SID, or the removed one's.
async fn write_one(
    twilio: &dyn TrustHub,
    profile_sid: &str,
    action: BindingAction,
) -> Result<Sid, crate::twilio::TwilioError> {
    match action {
        BindingAction::Assign { number_sid } => {
            let op = "CreateCustomerProfileChannelEndpointAssignment";
            let created = twilio
                .create_customer_profile_channel_endpoint_assignment(profile_sid, &number_sid)
                .await?;
            crate::twilio::created_sid(created.sid, op).map(Sid::from)
        }
        BindingAction::Unassign { assignment_sid, .. } => super::deleted(
            twilio
                .delete_customer_profile_channel_endpoint_assignment(profile_sid, &assignment_sid)
                .await,
        )
        .map(|()| assignment_sid),
    }
}
