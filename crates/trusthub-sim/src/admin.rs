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
//! | `GET /_sim/state` | | the whole state (includes auth tokens: test use only) |
//! | `POST /_sim/reset` | | 204, state back to the seed and counters zeroed |
//!
//! Review/approve/reject answer 404 for an unknown SID and 409 when the object is not
//! `pending-review`/`in-review` (review: not `pending-review`). Setting the status of an unknown
//! account answers 404.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{App, lock};
use crate::counters::Counters;
use crate::error::{ApiError, SimError};
use crate::faults::{Faults, ScriptedFault};
use crate::model::AccountStatus;
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
        SimError::UnknownBundle(_) | SimError::UnknownAccount(_) => StatusCode::NOT_FOUND,
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
        .accounts
        .iter_mut()
        .find(|a| a.sid == sid)
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
