//! Reconciles `BusinessProfileBinding`: resolve the Primary Business Profile and the numbers,
//! assign the missing numbers to the profile (seed step 2), report, poll the profile's vetting.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::status::{
    Conditioned, StatusWriter, announce_expiry, apply_conditions, create_marked, event,
    report_error,
};
use super::{Context, ReconcileError};
use crate::api::{
    BusinessProfileBinding, BusinessProfileBindingStatus, BusinessProfileRef, DeletionPolicy,
    NumberState, PhoneNumberRef, ResolvedBusinessProfile, condition_is_true, find_condition,
};
use crate::planner::binding::{
    BindingAction, BindingInputs, NumberTarget, ProfileView, Released, plan,
};
use crate::planner::{ConditionSpec, text};
use crate::twilio::{BundleFilter, CustomerProfile, TrustHub};

type Writer<'a> = StatusWriter<'a, BusinessProfileBinding, BusinessProfileBindingStatus>;

pub(super) async fn reconcile(
    obj: Arc<BusinessProfileBinding>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    super::reconcile_finalized("BusinessProfileBinding", obj, ctx, apply, cleanup).await
}

async fn apply(
    api: &Api<BusinessProfileBinding>,
    obj: &BusinessProfileBinding,
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
async fn resolve_numbers(
    twilio: &dyn TrustHub,
    wanted: &[PhoneNumberRef],
    recorded: &BusinessProfileBindingStatus,
) -> Result<Vec<NumberTarget>, ReconcileError> {
    let mut targets = Vec::with_capacity(wanted.len());
    for entry in wanted {
        if let Some(sid) = &entry.sid {
            let known = recorded
                .phone_numbers
                .iter()
                .find(|n| n.sid.as_deref() == Some(sid));
            targets.push(NumberTarget::Resolved {
                number_sid: sid.clone(),
                phone_number: known.and_then(|n| n.phone_number.clone()),
                subaccount_sid: known.and_then(|n| n.subaccount_sid.clone()),
            });
            continue;
        }
        let (Some(number), Some(account)) = (&entry.phone_number, &entry.subaccount_sid) else {
            continue;
        };
        let known = recorded.phone_numbers.iter().find(|n| {
            n.phone_number.as_ref() == Some(number)
                && n.subaccount_sid.as_ref() == Some(account)
                && n.sid.is_some()
        });
        if let Some(known) = known {
            targets.push(NumberTarget::Resolved {
                number_sid: known.sid.clone().unwrap_or_default(),
                phone_number: Some(number.clone()),
                subaccount_sid: Some(account.clone()),
            });
            continue;
        }
        let unresolvable = |message: String| NumberTarget::Unresolvable {
            shown: number.clone(),
            subaccount_sid: Some(account.clone()),
            message,
        };
        match twilio
            .list_incoming_phone_numbers(account, Some(number))
            .await
        {
            Ok(found) => match found
                .into_iter()
                .find(|n| n.phone_number.as_ref() == Some(number))
                .and_then(|n| n.sid)
            {
                Some(sid) => targets.push(NumberTarget::Resolved {
                    number_sid: sid,
                    phone_number: Some(number.clone()),
                    subaccount_sid: Some(account.clone()),
                }),
                None => targets.push(unresolvable(format!(
                    "not found among the IncomingPhoneNumbers of account {account}"
                ))),
            },
            Err(e) if e.is_transient() || e.is_ambiguous() => {
                return Err(ReconcileError::twilio("look up a phone number")(e));
            }
            Err(e) => targets.push(unresolvable(format!(
                "account {account} cannot be searched: {e}"
            ))),
        }
    }
    Ok(targets)
}

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
) -> Option<Vec<(String, String)>> {
    let same_profile = recorded.business_profile.as_ref().is_some_and(|p| {
        p.sid == profile.sid && p.status.as_deref() == Some(profile.status.as_str())
    });
    if recorded.observed_generation != obj.metadata.generation || !same_profile {
        return None;
    }
    targets
        .iter()
        .map(|t| {
            let NumberTarget::Resolved { number_sid, .. } = t else {
                return None;
            };
            let entry = recorded
                .phone_numbers
                .iter()
                .find(|n| n.sid.as_ref() == Some(number_sid) && n.state == NumberState::Assigned)?;
            Some((entry.assignment_sid.clone()?, number_sid.clone()))
        })
        .collect()
}

/// The numbers whose assignments matter to this binding: those it wants, those it recorded
/// (to release) and those whose create was in flight (to claim). Only these are listed, however
/// many numbers the shared profile carries.
fn relevant_numbers(
    targets: &[NumberTarget],
    recorded: &BusinessProfileBindingStatus,
) -> Vec<String> {
    let mut sids: BTreeSet<String> = targets
        .iter()
        .filter_map(|t| match t {
            NumberTarget::Resolved { number_sid, .. } => Some(number_sid.clone()),
            NumberTarget::Unresolvable { .. } => None,
        })
        .collect();
    sids.extend(recorded.phone_numbers.iter().filter_map(|n| n.sid.clone()));
    sids.extend(recorded.assignments_pending.iter().cloned());
    sids.into_iter().collect()
}

/// Since when the binding has reported numbers it cannot assign: the `NumbersAssigned`
/// condition's transition time while its reason is `NumbersUnresolvable`.
fn failing_since(recorded: &BusinessProfileBindingStatus) -> Option<k8s_openapi::jiff::Timestamp> {
    find_condition(&recorded.conditions, "NumbersAssigned")
        .filter(|c| c.status == "False" && c.reason == "NumbersUnresolvable")
        .map(|c| c.last_transition_time.0)
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

async fn sync(
    obj: &BusinessProfileBinding,
    ctx: &Context,
    writer: &mut Writer<'_>,
) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let generation = obj.metadata.generation;
    let twilio = ctx
        .credentials
        .client_for(&ns, &obj.spec.credentials)
        .await?;
    let profile = resolve_profile(twilio.as_ref(), &obj.spec.business_profile).await?;
    let profile_view = ProfileView {
        sid: profile.sid.clone().unwrap_or_default(),
        status: profile
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        valid_until: super::to_jiff(profile.valid_until),
    };
    let recorded = writer.written.clone();
    let targets = resolve_numbers(twilio.as_ref(), &obj.spec.phone_numbers, &recorded).await?;
    super::binding_ownership::check_numbers_unclaimed(obj, ctx, &profile_view.sid, &targets)?;
    let now = k8s_openapi::jiff::Timestamp::now();
    // Once per resync period the recorded assignments are checked against a listing, to see
    // numbers unassigned in the Console (drift); and a create left in flight is only settled by
    // listing what it may have made.
    let frugal = (!super::drift::listing_due(ctx, recorded.assignments_listed_at.as_ref(), now)
        && recorded.assignments_pending.is_empty())
    .then(|| recorded_assignments(obj, &recorded, &profile_view, &targets))
    .flatten();
    let listed = frugal.is_none();
    let mut assignments = match frugal {
        Some(known) => known,
        None => twilio
            .list_customer_profile_channel_endpoint_assignments_among(
                &profile_view.sid,
                &relevant_numbers(&targets, &recorded),
            )
            .await
            .map_err(ReconcileError::twilio(
                "list the profile's phone number assignments",
            ))?
            .into_iter()
            .filter_map(|a| Some((a.sid?, a.channel_endpoint_sid?)))
            .collect(),
    };
    let listed_at = if listed {
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now))
    } else {
        recorded.assignments_listed_at.clone()
    };
    if listed {
        super::drift::announce_unassigned(ctx, obj, &recorded, &assignments).await;
    }
    let mut owned: BTreeSet<String> = recorded
        .phone_numbers
        .iter()
        .filter(|n| n.created_by_operator)
        .filter_map(|n| n.assignment_sid.clone())
        .collect();
    owned.extend(crate::planner::claimed(
        &recorded.assignments_pending,
        assignments
            .iter()
            .map(|(ra, pn)| (ra.as_str(), pn.as_str())),
    ));
    // Settled by the list above; each create in flight from here on is marked again.
    let mut in_flight: Vec<String> = Vec::new();
    let wanted: BTreeSet<&str> = targets
        .iter()
        .filter_map(|t| match t {
            NumberTarget::Resolved { number_sid, .. } => Some(number_sid.as_str()),
            NumberTarget::Unresolvable { .. } => None,
        })
        .collect();
    let mut released: Vec<Released> = recorded
        .phone_numbers
        .iter()
        .filter(|n| n.state != NumberState::Unresolvable)
        .filter_map(|n| {
            let sid = n.sid.clone()?;
            if wanted.contains(sid.as_str()) {
                return None;
            }
            // A number dropped from the spec while its create was in flight: what the list
            // found for it is this object's.
            let claimed = assignments
                .iter()
                .find(|(ra, pn)| *pn == sid && owned.contains(ra))
                .map(|(ra, _)| ra.clone());
            Some(Released {
                number_sid: sid,
                created_by_operator: n.created_by_operator || claimed.is_some(),
                assignment_sid: claimed.or(n.assignment_sid.clone()),
            })
        })
        .collect();
    let unapproved_since = find_condition(&recorded.conditions, "ProfileApproved")
        .filter(|c| c.status != "True")
        .map(|c| c.last_transition_time.0);
    let failing_since = failing_since(&recorded);
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut attempted: BTreeSet<BindingAction> = BTreeSet::new();
    loop {
        let planned = plan(&BindingInputs {
            now: k8s_openapi::jiff::Timestamp::now(),
            profile: &profile_view,
            targets: &targets,
            assignments: &assignments,
            owned: &owned,
            released: &released,
            deletion_policy: obj.spec.deletion_policy,
            unapproved_since,
            failures: &failures,
            failing_since,
            poll: &ctx.config.poll,
        });
        let mut status = writer.written.clone();
        status.business_profile = Some(profile_status(&profile));
        status.phone_numbers = planned.numbers.clone();
        status.numbers_summary = Some(planned.summary.clone());
        status.assignments_pending = in_flight.clone();
        status.assignments_listed_at = listed_at.clone();
        let next = planned
            .actions
            .iter()
            .find(|a| !attempted.contains(*a))
            .cloned();
        let mut conditions = planned.conditions.clone();
        if next.is_none() {
            conditions.push(ConditionSpec::ok(
                "Synced",
                "Synced",
                "in sync with Trust Hub",
            ));
        }
        let was_ready = condition_is_true(&status.conditions, "Ready");
        apply_conditions(&mut status.conditions, &conditions, generation);
        if next.is_none() {
            status.mark_synced(generation);
        }
        let now_ready = condition_is_true(&status.conditions, "Ready");
        writer.write(status).await?;
        let Some(action) = next else {
            if now_ready && !was_ready {
                event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "Ready",
                    "Reconcile",
                    format!("profile approved; numbers {}", planned.summary),
                )
                .await;
            }
            announce_expiry(ctx, obj, &recorded.conditions, &writer.written.conditions).await;
            return Ok(ctx.requeue(planned.requeue));
        };
        attempted.insert(action.clone());
        match action {
            BindingAction::Assign { number_sid } => {
                let sid = &profile_view.sid;
                match assign(twilio.as_ref(), writer, &mut in_flight, sid, &number_sid).await? {
                    Ok(sid) => {
                        event(
                            ctx,
                            obj,
                            EventType::Normal,
                            "NumberAssigned",
                            "AssignNumber",
                            format!(
                                "assigned {number_sid} to Business Profile {} ({sid})",
                                profile_view.sid
                            ),
                        )
                        .await;
                        owned.insert(sid.clone());
                        assignments.push((sid, number_sid));
                    }
                    Err(message) => {
                        event(
                            ctx,
                            obj,
                            EventType::Warning,
                            "AssignmentRefused",
                            "AssignNumber",
                            format!("{number_sid}: {message}"),
                        )
                        .await;
                        failures.insert(number_sid, message);
                    }
                }
            }
            BindingAction::Unassign {
                assignment_sid,
                number_sid,
            } => {
                super::deleted(
                    twilio
                        .delete_customer_profile_channel_endpoint_assignment(
                            &profile_view.sid,
                            &assignment_sid,
                        )
                        .await,
                )
                .map_err(ReconcileError::twilio("unassign a phone number"))?;
                event(
                    ctx,
                    obj,
                    EventType::Normal,
                    "NumberUnassigned",
                    "UnassignNumber",
                    format!("unassigned {number_sid} ({assignment_sid})"),
                )
                .await;
                assignments.retain(|(ra, _)| *ra != assignment_sid);
                owned.remove(&assignment_sid);
                released.retain(|r| r.number_sid != number_sid);
            }
        }
    }
}

fn pending_of(status: &mut BusinessProfileBindingStatus) -> &mut Vec<String> {
    &mut status.assignments_pending
}

/// Assigns `number_sid` to the profile, marked in flight meanwhile (`create_marked`): its
/// `RA…` SID, or why Twilio refused.
async fn assign(
    twilio: &dyn TrustHub,
    writer: &mut Writer<'_>,
    in_flight: &mut Vec<String>,
    profile_sid: &str,
    number_sid: &str,
) -> Result<Result<String, String>, ReconcileError> {
    let op = "CreateCustomerProfileChannelEndpointAssignment";
    let create = async {
        twilio
            .create_customer_profile_channel_endpoint_assignment(profile_sid, number_sid)
            .await
            .and_then(|created| crate::twilio::created_sid(created.sid, op))
    };
    match create_marked(writer, pending_of, in_flight, number_sid, create).await? {
        Ok(sid) => Ok(Ok(sid)),
        Err(e) if e.is_transient() || e.is_ambiguous() => Err(ReconcileError::twilio(
            "assign a phone number to the profile",
        )(e)),
        Err(e) => Ok(Err(format!("Twilio refused the assignment: {e}"))),
    }
}

/// Deletion: under `Delete`, remove the assignments this object made; under `Orphan`, nothing.
/// Never hangs: when the credentials are gone, a Warning Event lists what is left behind.
async fn cleanup(obj: &BusinessProfileBinding, ctx: &Context) -> Result<Action, ReconcileError> {
    let status = obj.status.clone().unwrap_or_default();
    let mut ours: Vec<(String, String)> = status
        .phone_numbers
        .iter()
        .filter(|n| n.created_by_operator)
        .filter_map(|n| Some((n.assignment_sid.clone()?, n.sid.clone()?)))
        .collect();
    let pending = &status.assignments_pending;
    if obj.spec.deletion_policy == DeletionPolicy::Orphan || (ours.is_empty() && pending.is_empty())
    {
        return Ok(Action::await_change());
    }
    let profile_sid = status
        .business_profile
        .as_ref()
        .map(|p| p.sid.clone())
        .unwrap_or_default();
    let mut left_behind: Vec<String> = ours
        .iter()
        .map(|(ra, pn)| format!("{ra} ({pn}) on profile {profile_sid}"))
        .collect();
    left_behind.extend(pending.iter().map(|pn| {
        format!("the assignment of {pn} to profile {profile_sid}, if its create went through")
    }));
    let Some(twilio) = super::cleanup_client(ctx, obj, &obj.spec.credentials, &left_behind).await?
    else {
        return Ok(Action::await_change());
    };
    if !pending.is_empty() {
        // Deleted while a create was in flight: what that create made is this object's.
        let found = twilio
            .list_customer_profile_channel_endpoint_assignments_among(&profile_sid, pending)
            .await
            .map_err(ReconcileError::twilio(
                "list the profile's phone number assignments",
            ))?;
        let found: Vec<(String, String)> = found
            .into_iter()
            .filter_map(|a| Some((a.sid?, a.channel_endpoint_sid?)))
            .collect();
        let claimed = crate::planner::claimed(
            pending,
            found.iter().map(|(ra, pn)| (ra.as_str(), pn.as_str())),
        );
        for (ra, pn) in found {
            if claimed.contains(&ra) && !ours.iter().any(|(o, _)| *o == ra) {
                ours.push((ra, pn));
            }
        }
    }
    let mut left = Vec::new();
    for (ra, pn) in &ours {
        match super::deleted(
            twilio
                .delete_customer_profile_channel_endpoint_assignment(&profile_sid, ra)
                .await,
        ) {
            Ok(()) => {}
            Err(e) if e.is_transient() || e.is_ambiguous() => {
                return Err(ReconcileError::twilio("unassign a phone number")(e));
            }
            Err(e) => left.push(format!("{ra} ({pn}): {e}")),
        }
    }
    super::report_cleanup(
        ctx,
        obj,
        &left,
        format!(
            "removed {} number assignments from profile {profile_sid}",
            ours.len()
        ),
        "Twilio refused to remove",
    )
    .await;
    Ok(Action::await_change())
}
