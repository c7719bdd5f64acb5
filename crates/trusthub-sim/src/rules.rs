//! Mutations of the state, with the rules Twilio enforces (error codes: see [`crate::error`]).
//!
//! Modelled rules:
//! - Creates need their required parameters (20001) with well-formed values (20422).
//!   Primary Customer Profiles cannot be created over the API ("restricted via API … Use
//!   Twilio Console instead", reported by practitioners).
//! - No edits (update, entity assignment create/delete) while `pending-review`, `in-review`
//!   or `twilio-approved` (60711). Channel endpoint assignments are allowed in every status:
//!   the docs add numbers to an approved Primary profile, and allow assigning numbers to a
//!   trust product "before or after" submitting it. Deleting a profile or product is refused
//!   only while under review (simulator's choice; Twilio does not document it).
//! - A client may only move `draft` → `pending-review` and `twilio-rejected` →
//!   `pending-review` (resubmit); anything else is 20422; an unknown value is 22203.
//!   Combining `Status` with other fields is accepted (the docs' submit example sends
//!   `Status` with `StatusCallback`); 22204 is not enforced.
//! - Numbers must belong to the account or one of its subaccounts (20423); the only
//!   `ChannelEndpointType` is `phone-number` (20422).
//! - A number assigned to a trust product must already be on a customer profile linked to
//!   it by an EntityAssignment (22218), and sits in at most one SHAKEN/STIR trust product
//!   across all accounts (20409). Duplicate assignments are refused (20409).
//! - A trust product's EntityAssignment `ObjectSid` must be a customer profile of the same
//!   account, or an `IT…`/`RD…` object (EndUsers/SupportingDocuments are not modelled and
//!   taken on trust); a profile may also link its parent account's profile (22205).
//!
//! Not modelled: 22204, limits on resubmissions, EndUser/SupportingDocument contents.

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::evaluation;
use crate::model::{
    Bundle, BundleKind, BundleStatus, ChannelAssignment, EntityAssignment, Evaluation,
    PRIMARY_PROFILE_POLICY, SHAKEN_STIR_POLICY, new_sid, valid_any_sid, valid_sid,
};
use crate::pagination::Params;
use crate::state::State;

/// A status change that may trigger a callback and vetting timers.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusChange {
    pub kind: BundleKind,
    pub sid: String,
    pub account_sid: String,
    pub status: BundleStatus,
    pub status_callback: Option<String>,
    pub errors: Option<Vec<u32>>,
    pub submission: u64,
}

impl StatusChange {
    pub fn of(bundle: &Bundle) -> StatusChange {
        StatusChange {
            kind: bundle.kind,
            sid: bundle.sid.clone(),
            account_sid: bundle.account_sid.clone(),
            status: bundle.status,
            status_callback: bundle.status_callback.clone(),
            errors: bundle.errors.clone(),
            submission: bundle.submission,
        }
    }
}

fn status_callback_param(params: &Params) -> Result<Option<String>, ApiError> {
    match params.get("StatusCallback") {
        None => Ok(None),
        Some(raw) => match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(raw.to_string())),
            _ => Err(ApiError::invalid_param(
                "StatusCallback",
                "must be an absolute http(s) URL",
            )),
        },
    }
}

fn sid_param<'a>(
    params: &'a Params,
    name: &str,
    prefix: Option<&str>,
) -> Result<&'a str, ApiError> {
    let value = params.require(name)?;
    let ok = match prefix {
        Some(p) => valid_sid(value, p),
        None => valid_any_sid(value),
    };
    if ok {
        Ok(value)
    } else {
        Err(ApiError::invalid_param(name, "malformed SID"))
    }
}

pub fn create_bundle(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Bundle, ApiError> {
    let friendly_name = params.require("FriendlyName")?;
    let email = params.require("Email")?;
    let policy_sid = sid_param(params, "PolicySid", Some("RN"))?;
    let status_callback = status_callback_param(params)?;
    if !evaluation::policy_applies_to(policy_sid, kind) {
        return Err(ApiError::invalid_param(
            "PolicySid",
            &format!("{policy_sid} is not a {} policy", kind.collection()),
        ));
    }
    if kind == BundleKind::CustomerProfile && policy_sid == PRIMARY_PROFILE_POLICY {
        return Err(ApiError::invalid_param(
            "PolicySid",
            "This operation is restricted via API for Primary Customer Profiles. Use Twilio Console instead.",
        ));
    }
    let bundle = Bundle {
        kind,
        sid: new_sid("BU"),
        account_sid: account_sid.to_string(),
        policy_sid: policy_sid.to_string(),
        friendly_name: friendly_name.to_string(),
        email: email.to_string(),
        status: BundleStatus::Draft,
        status_callback,
        valid_until: None,
        errors: None,
        date_created: now,
        date_updated: now,
        submission: 0,
    };
    state.push_bundle(bundle.clone());
    Ok(bundle)
}

/// Update; returns the new bundle and, when the client submitted it, the status change.
pub fn update_bundle(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    sid: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<(Bundle, Option<StatusChange>), ApiError> {
    let target = match params.get("Status") {
        None => None,
        Some(raw) => Some(BundleStatus::parse(raw).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                22203,
                format!("Unable to parse status: {raw}"),
            )
        })?),
    };
    let status_callback = status_callback_param(params)?;
    let bundle = state.bundle_mut(kind, account_sid, sid)?;
    if bundle.status.is_locked() {
        return Err(ApiError::locked(sid, bundle.status.as_str()));
    }
    if let Some(to) = target {
        let allowed = to == BundleStatus::PendingReview
            && matches!(
                bundle.status,
                BundleStatus::Draft | BundleStatus::TwilioRejected
            );
        if !allowed {
            return Err(ApiError::invalid_param(
                "Status",
                &format!(
                    "invalid status transition from {} to {}",
                    bundle.status.as_str(),
                    to.as_str()
                ),
            ));
        }
    }
    if let Some(name) = params.get("FriendlyName") {
        bundle.friendly_name = name.to_string();
    }
    if let Some(email) = params.get("Email") {
        bundle.email = email.to_string();
    }
    if status_callback.is_some() {
        bundle.status_callback = status_callback;
    }
    bundle.date_updated = now;
    let change = target.map(|to| {
        bundle.status = to;
        bundle.errors = None;
        bundle.submission += 1;
        StatusChange::of(bundle)
    });
    Ok((bundle.clone(), change))
}

pub fn delete_bundle(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    sid: &str,
) -> Result<(), ApiError> {
    let bundle = state.bundle(kind, account_sid, sid)?;
    if matches!(
        bundle.status,
        BundleStatus::PendingReview | BundleStatus::InReview
    ) {
        return Err(ApiError::locked(sid, bundle.status.as_str()));
    }
    state.remove_bundle(sid);
    Ok(())
}

pub fn create_channel_assignment(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    bundle_sid: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<ChannelAssignment, ApiError> {
    let bundle = state.bundle(kind, account_sid, bundle_sid)?.clone();
    let endpoint_type = params.require("ChannelEndpointType")?;
    let endpoint_sid = sid_param(params, "ChannelEndpointSid", None)?;
    if endpoint_type != "phone-number" {
        return Err(ApiError::invalid_param(
            "ChannelEndpointType",
            "must be phone-number",
        ));
    }
    if state.family_number(account_sid, endpoint_sid).is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            20423,
            format!(
                "Invalid SID: Phone Number {endpoint_sid} does not belong to account {account_sid} or its subaccounts"
            ),
        ));
    }
    if state
        .channel_assignment_for(bundle_sid, endpoint_sid)
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "Phone Number {endpoint_sid} is already assigned to {bundle_sid}"
        )));
    }
    if kind == BundleKind::TrustProduct {
        let on_profile = state
            .linked_profiles(bundle_sid)
            .iter()
            .any(|p| state.channel_assignment_for(&p.sid, endpoint_sid).is_some());
        if !on_profile {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                22218,
                format!(
                    "Phone Number {endpoint_sid} is not assigned to all required supporting Customer Profiles of Trust Product {bundle_sid}"
                ),
            ));
        }
        if bundle.policy_sid == SHAKEN_STIR_POLICY
            && let Some(other) = state.channel_assignments_on(endpoint_sid).find(|a| {
                a.parent_kind == BundleKind::TrustProduct
                    && state
                        .bundle_any(&a.bundle_sid)
                        .is_some_and(|b| b.policy_sid == SHAKEN_STIR_POLICY)
            })
        {
            return Err(ApiError::conflict(format!(
                "Phone Number {endpoint_sid} is already assigned to SHAKEN/STIR Trust Product {}",
                other.bundle_sid
            )));
        }
    }
    let assignment = ChannelAssignment {
        parent_kind: kind,
        sid: new_sid("RA"),
        bundle_sid: bundle_sid.to_string(),
        account_sid: account_sid.to_string(),
        channel_endpoint_type: endpoint_type.to_string(),
        channel_endpoint_sid: endpoint_sid.to_string(),
        date_created: now,
    };
    state.insert_channel(assignment.clone());
    Ok(assignment)
}

pub fn delete_channel_assignment(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    bundle_sid: &str,
    sid: &str,
) -> Result<(), ApiError> {
    state.bundle(kind, account_sid, bundle_sid)?;
    let ours = state
        .channel_assignment(sid)
        .is_some_and(|a| a.bundle_sid == bundle_sid);
    if !ours || state.remove_channel(sid).is_none() {
        return Err(ApiError::not_found(&format!(
            "/v1/{}/{bundle_sid}/ChannelEndpointAssignments/{sid}",
            kind.collection()
        )));
    }
    Ok(())
}

pub fn create_entity_assignment(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    bundle_sid: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<EntityAssignment, ApiError> {
    let bundle = state.bundle(kind, account_sid, bundle_sid)?;
    let object_sid = sid_param(params, "ObjectSid", None)?;
    if bundle.status.is_locked() {
        return Err(ApiError::locked(bundle_sid, bundle.status.as_str()));
    }
    let parent_account = state
        .account(account_sid)
        .and_then(|a| a.parent_sid.clone());
    let usable = match &object_sid[..2] {
        "BU" => state.bundle_any(object_sid).is_some_and(|b| {
            b.sid != bundle_sid
                && b.kind == BundleKind::CustomerProfile
                && (b.account_sid == account_sid
                    || (kind == BundleKind::CustomerProfile
                        && Some(&b.account_sid) == parent_account.as_ref()))
        }),
        "IT" | "RD" => true,
        _ => false,
    };
    if !usable {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            22205,
            format!("Invalid object_sid: {object_sid} cannot be assigned to {bundle_sid}"),
        ));
    }
    if state
        .entity_assignments_of(bundle_sid)
        .any(|a| a.object_sid == object_sid)
    {
        return Err(ApiError::conflict(format!(
            "{object_sid} is already assigned to {bundle_sid}"
        )));
    }
    let assignment = EntityAssignment {
        parent_kind: kind,
        sid: new_sid("BV"),
        bundle_sid: bundle_sid.to_string(),
        account_sid: account_sid.to_string(),
        object_sid: object_sid.to_string(),
        date_created: now,
    };
    state.entity_assignments.push(assignment.clone());
    Ok(assignment)
}

pub fn delete_entity_assignment(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    bundle_sid: &str,
    sid: &str,
) -> Result<(), ApiError> {
    let bundle = state.bundle(kind, account_sid, bundle_sid)?;
    let status = bundle.status;
    if !state
        .entity_assignments
        .iter()
        .any(|a| a.sid == sid && a.bundle_sid == bundle_sid)
    {
        return Err(ApiError::not_found(&format!(
            "/v1/{}/{bundle_sid}/EntityAssignments/{sid}",
            kind.collection()
        )));
    }
    if status.is_locked() {
        return Err(ApiError::locked(bundle_sid, status.as_str()));
    }
    state.entity_assignments.retain(|a| a.sid != sid);
    Ok(())
}

pub fn create_evaluation(
    state: &mut State,
    kind: BundleKind,
    account_sid: &str,
    bundle_sid: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Evaluation, ApiError> {
    let bundle = state.bundle(kind, account_sid, bundle_sid)?.clone();
    let policy_sid = sid_param(params, "PolicySid", Some("RN"))?;
    let verdict = evaluation::evaluate(state, &bundle);
    let evaluation = Evaluation {
        parent_kind: kind,
        sid: new_sid("EL"),
        bundle_sid: bundle_sid.to_string(),
        account_sid: account_sid.to_string(),
        policy_sid: policy_sid.to_string(),
        compliant: verdict.compliant,
        results: verdict.results,
        date_created: now,
    };
    state.evaluations.push(evaluation.clone());
    Ok(evaluation)
}

/// Vetting outcome applied by the simulator (timers or admin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// pending-review → in-review
    StartReview,
    Approve,
    Reject(Vec<u32>),
}

/// Apply a vetting step to any bundle. Returns the resulting status change, or `None` when
/// the step does not apply (e.g. a stale timer after a resubmit).
pub fn apply_decision(
    state: &mut State,
    sid: &str,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Option<StatusChange> {
    let approved_until = state.approved_until(now);
    let bundle = state.bundle_any_mut(sid)?;
    match decision {
        Decision::StartReview if bundle.status == BundleStatus::PendingReview => {
            bundle.status = BundleStatus::InReview;
        }
        Decision::Approve if bundle.status == BundleStatus::InReview => {
            bundle.status = BundleStatus::TwilioApproved;
            bundle.valid_until = Some(approved_until);
            bundle.errors = None;
        }
        Decision::Reject(codes) if bundle.status == BundleStatus::InReview => {
            bundle.status = BundleStatus::TwilioRejected;
            bundle.valid_until = None;
            bundle.errors = Some(codes.clone());
        }
        _ => return None,
    }
    bundle.date_updated = now;
    Some(StatusChange::of(bundle))
}
