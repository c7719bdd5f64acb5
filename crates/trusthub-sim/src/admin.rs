//! Admin API under `/_sim/` (JSON in and out). No authentication unless the server was
//! started with an admin token (`--admin-token` / [`crate::SimConfig::admin_token`]); then
//! every admin request needs `Authorization: Bearer <token>`. Never faulted, never counted.
//!
//! | method + path | body | answer |
//! | --- | --- | --- |
//! | `GET /_sim/health` | | `{"status":"ok"}` |
//! | `GET /_sim/counters` | | [`crate::Counters`] |
//! | `POST /_sim/counters/reset` | | 204 |
//! | `GET /_sim/faults` | | [`crate::Faults`] |
//! | `PUT /_sim/faults` | [`crate::Faults`] (missing fields = 0/none) | 204 |
//! | `DELETE /_sim/faults` | | 204, all faults off |
//! | `POST /_sim/faults/scripted` | [`crate::ScriptedFault`] | 204 |
//! | `POST /_sim/bundles/{sid}/review` | | 200, bundle JSON (pending-review → in-review) |
//! | `POST /_sim/bundles/{sid}/approve` | | 200, the bundle's Trust Hub JSON |
//! | `POST /_sim/bundles/{sid}/reject` | `{"codes":[18601]}` (optional; default `[18601]`) | 200, bundle JSON |
//! | `PUT /_sim/bundles/{sid}/valid-until` | `{"valid_until":"2027-01-01T00:00:00Z"}` (or `null`) | 200, bundle JSON |
//! | `POST /_sim/accounts/{sid}/status` | `{"status":"suspended"}` (`active`/`suspended`/`closed`) | 200, the account's 2010 JSON |
//! | `POST /_sim/accounts` | `{"friendlyName":"Acme East"}` (optional) | 201, the new subaccount's 2010 JSON |
//! | `POST /_sim/accounts/{sid}/numbers` | [`NewNumber`]: `{"phoneNumber":"+15005550999","friendlyName":"…","voice":true,"sms":true}` (all optional) | 201, the number's 2010 JSON |
//! | `DELETE /_sim/numbers/{sid}` | | 204, the number and its channel endpoint assignments removed |
//! | `GET /_sim/state` | | the whole state (includes auth tokens: test use only) |
//! | `POST /_sim/reset` | | 204, state back to the seed and counters zeroed |
//!
//! Review/approve/reject answer 404 for an unknown SID and 409 when the object is not
//! `pending-review`/`in-review` (review: not `pending-review`). Setting the status of an unknown
//! account answers 404.
//!
//! Numbers and subaccounts (Twilio acting outside the client's requests, e.g. someone buying
//! a number in the Console):
//! - `POST /_sim/accounts` creates an `active` subaccount of the seed's parent with a random
//!   auth token; `friendlyName` defaults to Twilio's `SubAccount Created at {date}`.
//! - `POST /_sim/accounts/{sid}/numbers` buys a number for that account (parent or
//!   subaccount): `phoneNumber` (E.164) defaults to a new unique `+1777…` number,
//!   `friendlyName` to the formatted number, `voice`/`sms` to `true`. 404 for an unknown
//!   account, 409 when the E.164 number exists in any account, 400 when it is not E.164.
//! - `DELETE /_sim/numbers/{sid}` releases a number: 404 if unknown. Its
//!   ChannelEndpointAssignments on customer profiles and trust products are removed with it.
//!   What Twilio does to the assignments of a released number is not documented (not in the
//!   spec, the Trust Hub docs or the landscape notes, `trusthub-landscape.md`); removing them is
//!   the simulator's choice, as a released `PN…` SID no longer names an endpoint.
//!
//! These changes are announced on [`crate::SimServer::subscribe_writes`] with origin
//! [`crate::WriteOrigin::Admin`] and `operation_id`s `SimCreateAccount`,
//! `SimCreateIncomingPhoneNumber`, `SimDeleteIncomingPhoneNumber` and, per assignment removed
//! by a release, `SimDeleteCustomerProfileChannelEndpointAssignment` /
//! `SimDeleteTrustProductChannelEndpointAssignment`. The counters never count them.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{App, lock};
use crate::counters::Counters;
use crate::error::{ApiError, SimError};
use crate::faults::{Faults, ScriptedFault};
use crate::model::{
    Account, AccountStatus, BundleKind, PhoneNumber, friendly_phone, new_sid, valid_e164,
};
use crate::state::State;
use crate::vetting;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(
            "/_sim/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_sim/counters", get(counters))
        .route("/_sim/counters/reset", post(reset_counters))
        .route(
            "/_sim/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/_sim/faults/scripted", post(push_scripted))
        .route("/_sim/bundles/{sid}/review", post(start_review))
        .route("/_sim/bundles/{sid}/approve", post(approve))
        .route("/_sim/bundles/{sid}/reject", post(reject))
        .route("/_sim/bundles/{sid}/valid-until", put(set_valid_until))
        .route("/_sim/accounts/{sid}/status", post(set_account_status))
        .route("/_sim/accounts", post(create_subaccount_route))
        .route("/_sim/accounts/{sid}/numbers", post(buy_number_route))
        .route("/_sim/numbers/{sid}", delete(release_number_route))
        .route("/_sim/state", get(state))
        .route("/_sim/reset", post(reset))
}

fn bad_json(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        20422,
        format!("invalid JSON body: {e}"),
    )
}

fn sim_error(e: SimError) -> Response {
    let status = match e {
        SimError::UnknownBundle(_) | SimError::UnknownAccount(_) | SimError::UnknownNumber(_) => {
            StatusCode::NOT_FOUND
        }
        SimError::InvalidNumber(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::CONFLICT,
    };
    (status, Json(json!({"message": e.to_string()}))).into_response()
}

async fn counters(AxState(app): AxState<App>) -> Json<Counters> {
    Json(app.counters().clone())
}

async fn reset_counters(AxState(app): AxState<App>) -> StatusCode {
    *app.counters() = Counters::default();
    StatusCode::NO_CONTENT
}

async fn get_faults(AxState(app): AxState<App>) -> Json<Faults> {
    Json(lock(&app.faults).faults().clone())
}

async fn put_faults(AxState(app): AxState<App>, body: Bytes) -> Result<StatusCode, ApiError> {
    let faults: Faults = serde_json::from_slice(&body).map_err(bad_json)?;
    lock(&app.faults).set(faults);
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(AxState(app): AxState<App>) -> StatusCode {
    lock(&app.faults).set(Faults::none());
    StatusCode::NO_CONTENT
}

async fn push_scripted(AxState(app): AxState<App>, body: Bytes) -> Result<StatusCode, ApiError> {
    let fault: ScriptedFault = serde_json::from_slice(&body).map_err(bad_json)?;
    lock(&app.faults).push_scripted(fault);
    Ok(StatusCode::NO_CONTENT)
}

async fn start_review(AxState(app): AxState<App>, Path(sid): Path<String>) -> Response {
    match vetting::start_review(&app, &sid) {
        Ok(bundle) => Json(bundle.to_json(&app.base_url)).into_response(),
        Err(e) => sim_error(e),
    }
}

async fn approve(AxState(app): AxState<App>, Path(sid): Path<String>) -> Response {
    match vetting::decide(&app, &sid, true, &[]) {
        Ok(bundle) => Json(bundle.to_json(&app.base_url)).into_response(),
        Err(e) => sim_error(e),
    }
}

#[derive(Deserialize)]
struct ValidUntilBody {
    valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

async fn set_valid_until(
    AxState(app): AxState<App>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Response {
    let body: ValidUntilBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(e).into_response(),
    };
    match vetting::set_valid_until(&app, &sid, body.valid_until) {
        Ok(bundle) => Json(bundle.to_json(&app.base_url)).into_response(),
        Err(e) => sim_error(e),
    }
}

#[derive(Deserialize)]
struct RejectBody {
    #[serde(default = "default_codes")]
    codes: Vec<u32>,
}

fn default_codes() -> Vec<u32> {
    vec![18601]
}

async fn reject(AxState(app): AxState<App>, Path(sid): Path<String>, body: Bytes) -> Response {
    let codes = if body.is_empty() {
        default_codes()
    } else {
        match serde_json::from_slice::<RejectBody>(&body) {
            Ok(b) => b.codes,
            Err(e) => return bad_json(e).into_response(),
        }
    };
    match vetting::decide(&app, &sid, false, &codes) {
        Ok(bundle) => Json(bundle.to_json(&app.base_url)).into_response(),
        Err(e) => sim_error(e),
    }
}

#[derive(Deserialize)]
struct AccountStatusBody {
    status: AccountStatus,
}

async fn set_account_status(
    AxState(app): AxState<App>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Response {
    let status = match serde_json::from_slice::<AccountStatusBody>(&body) {
        Ok(b) => b.status,
        Err(e) => return bad_json(e).into_response(),
    };
    match account_status(&app, &sid, status) {
        Ok(json) => Json(json).into_response(),
        Err(e) => sim_error(e),
    }
}

/// Sets an account's `status`; answers its 2010 JSON.
pub(crate) fn account_status(
    app: &App,
    sid: &str,
    status: AccountStatus,
) -> Result<Value, SimError> {
    let mut state = app.state();
    let account = state
        .account_mut(sid)
        .ok_or_else(|| SimError::UnknownAccount(sid.to_string()))?;
    account.status = status;
    Ok(account.to_json())
}

async fn state(AxState(app): AxState<App>) -> Json<Value> {
    let state = app.state().clone();
    Json(serde_json::to_value(state).unwrap_or(Value::Null))
}

async fn reset(AxState(app): AxState<App>) -> StatusCode {
    *app.state() = State::from_seed_with(&app.seed, app.approval_validity);
    *app.counters() = Counters::default();
    StatusCode::NO_CONTENT
}

/// A number to buy (`POST /_sim/accounts/{sid}/numbers`, [`crate::SimServer::buy_number`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewNumber {
    /// E.164; `None`: a new unique `+1777…` number.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// `None`: the number formatted as `(777) 000-0001`.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// `capabilities.voice` (default `true`).
    #[serde(default = "yes")]
    pub voice: bool,
    /// `capabilities.sms` and `mms` (default `true`).
    #[serde(default = "yes")]
    pub sms: bool,
}

fn yes() -> bool {
    true
}

impl Default for NewNumber {
    fn default() -> Self {
        NewNumber {
            phone_number: None,
            friendly_name: None,
            voice: true,
            sms: true,
        }
    }
}

impl NewNumber {
    /// A voice- and SMS-capable number with this E.164 value.
    pub fn e164(phone_number: impl Into<String>) -> NewNumber {
        NewNumber {
            phone_number: Some(phone_number.into()),
            ..NewNumber::default()
        }
    }
}

/// Parse an optional JSON body (empty or `null` = `T::default()`).
fn body_or_default<T: Default + for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice::<Option<T>>(body)
        .map(Option::unwrap_or_default)
        .map_err(bad_json)
}

async fn buy_number_route(
    AxState(app): AxState<App>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Response {
    let spec = match body_or_default::<NewNumber>(&body) {
        Ok(spec) => spec,
        Err(e) => return e.into_response(),
    };
    match buy_number(&app, &sid, spec) {
        Ok(number) => (StatusCode::CREATED, Json(number.to_json())).into_response(),
        Err(e) => sim_error(e),
    }
}

pub(crate) fn buy_number(
    app: &App,
    account_sid: &str,
    spec: NewNumber,
) -> Result<PhoneNumber, SimError> {
    let number = {
        let mut state = app.state();
        if state.account(account_sid).is_none() {
            return Err(SimError::UnknownAccount(account_sid.to_string()));
        }
        let phone_number = match spec.phone_number {
            Some(e164) if !valid_e164(&e164) => return Err(SimError::InvalidNumber(e164)),
            Some(e164) if state.number_by_e164(&e164).is_some() => {
                return Err(SimError::NumberExists(e164));
            }
            Some(e164) => e164,
            None => (state.numbers().len()..)
                .map(|n| format!("+1777{:07}", n % 10_000_000))
                .find(|e164| state.number_by_e164(e164).is_none())
                .unwrap_or_default(),
        };
        let sid = std::iter::repeat_with(|| new_sid("PN"))
            .find(|sid| state.number(sid).is_none())
            .unwrap_or_default();
        let number = PhoneNumber {
            sid,
            account_sid: account_sid.to_string(),
            friendly_name: spec
                .friendly_name
                .unwrap_or_else(|| friendly_phone(&phone_number)),
            phone_number,
            date_created: chrono::Utc::now(),
            voice: spec.voice,
            sms: spec.sms,
        };
        state.insert_number(number.clone());
        number
    };
    app.admin_wrote("SimCreateIncomingPhoneNumber", &number.sid, account_sid);
    Ok(number)
}

async fn release_number_route(AxState(app): AxState<App>, Path(sid): Path<String>) -> Response {
    match release_number(&app, &sid) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim_error(e),
    }
}

/// Remove a number and its channel endpoint assignments (see the module docs for why).
pub(crate) fn release_number(app: &App, sid: &str) -> Result<(), SimError> {
    let removed = app.state().remove_number(sid);
    let (number, assignments) = removed.ok_or_else(|| SimError::UnknownNumber(sid.to_string()))?;
    for assignment in &assignments {
        let operation = match assignment.parent_kind {
            BundleKind::CustomerProfile => "SimDeleteCustomerProfileChannelEndpointAssignment",
            BundleKind::TrustProduct => "SimDeleteTrustProductChannelEndpointAssignment",
        };
        app.admin_wrote(operation, &assignment.sid, &assignment.account_sid);
    }
    app.admin_wrote("SimDeleteIncomingPhoneNumber", sid, &number.account_sid);
    Ok(())
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSubaccountBody {
    #[serde(default)]
    friendly_name: Option<String>,
}

async fn create_subaccount_route(AxState(app): AxState<App>, body: Bytes) -> Response {
    let body = match body_or_default::<NewSubaccountBody>(&body) {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    match create_subaccount(&app, body.friendly_name.as_deref()) {
        Ok(account) => (StatusCode::CREATED, Json(account.to_json())).into_response(),
        Err(e) => sim_error(e),
    }
}

/// Create an active subaccount of the seed's parent.
pub(crate) fn create_subaccount(
    app: &App,
    friendly_name: Option<&str>,
) -> Result<Account, SimError> {
    let now = chrono::Utc::now();
    let account = {
        let mut state = app.state();
        let sid = std::iter::repeat_with(|| new_sid("AC"))
            .find(|sid| state.account(sid).is_none())
            .unwrap_or_default();
        let account = Account {
            sid,
            auth_token: crate::seed::Secret::new(format!("{:032x}", rand::random::<u128>())),
            // Twilio's default: "SubAccount Created at {YYYY-MM-DD HH:MM meridian}".
            friendly_name: friendly_name.map(str::to_string).unwrap_or_else(|| {
                format!("SubAccount Created at {}", now.format("%Y-%m-%d %I:%M %P"))
            }),
            parent_sid: Some(app.seed.parent.sid.clone()),
            date_created: now,
            status: AccountStatus::Active,
        };
        state.push_account(account.clone());
        account
    };
    app.admin_wrote("SimCreateAccount", &account.sid, &app.seed.parent.sid);
    Ok(account)
}
