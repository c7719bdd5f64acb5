//! API 2010-04-01 routes: Accounts (list, fetch) and IncomingPhoneNumbers (list, fetch).
//!
//! The caller sees its own account and, when it is a parent, its subaccounts; any other
//! account answers 404/20404 (simulator's choice: Twilio's exact answer for a foreign
//! account is not documented). `/Accounts` refuses standard API keys with 403/20003
//! (documented: only the auth token or a Main key may use it). The account list includes the
//! caller's own account first (whether Twilio includes the parent is not documented).
//! IncomingPhoneNumbers filters: `PhoneNumber` (substring; `*` matches any one character),
//! `FriendlyName` (exact), `Origin` (all simulated numbers are `twilio`); `Beta` is ignored.
//! Not modelled: creating/updating/deleting accounts or numbers through the API (the admin API
//! buys and releases numbers and creates subaccounts, see [`crate::admin`]).

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::routing::get;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::pagination::{PageRequest, Params, api2010_list, page_range};
use crate::seed::ApiKeyKind;
use crate::state::Caller;

type Reply = Result<Json<Value>, ApiError>;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/2010-04-01/Accounts.json", get(list_accounts))
        .route("/2010-04-01/Accounts/{sid}", get(fetch_account))
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            get(list_numbers),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/{item}",
            get(fetch_number),
        )
}

fn params(q: Option<String>) -> Params {
    Params::parse(q.unwrap_or_default().as_bytes())
}

/// `ACxxx.json` → `ACxxx`; without the suffix the path is not a JSON resource → 404.
fn strip_json<'a>(segment: &'a str, full_path: &str) -> Result<&'a str, ApiError> {
    segment
        .strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(full_path))
}

fn require_accounts_permission(caller: &Caller) -> Result<(), ApiError> {
    if caller.key_kind == Some(ApiKeyKind::Standard) {
        return Err(ApiError::permission_denied(
            "standard API keys cannot access the Accounts resource",
        ));
    }
    Ok(())
}

async fn list_accounts(AxState(app): AxState<App>, caller: Caller, RawQuery(q): RawQuery) -> Reply {
    require_accounts_permission(&caller)?;
    let params = params(q);
    let page = PageRequest::from_params(&params)?;
    let mut filters = Vec::new();
    for name in ["FriendlyName", "Status"] {
        if let Some(v) = params.get(name) {
            filters.push((name, v.to_string()));
        }
    }
    let (items, total) = {
        let state = app.state();
        let mut visible: Vec<_> = state
            .accounts
            .iter()
            .filter(|a| state.can_access_account(&caller.account_sid, &a.sid))
            .filter(|a| {
                filters.iter().all(|(k, v)| match *k {
                    "FriendlyName" => &a.friendly_name == v,
                    _ => a.status.as_str() == v,
                })
            })
            .collect();
        // Own account first, then subaccounts in seed order.
        visible.sort_by_key(|a| a.sid != caller.account_sid);
        let items = visible[page_range(visible.len(), page)]
            .iter()
            .map(|a| a.to_json())
            .collect();
        (items, visible.len())
    };
    Ok(Json(api2010_list(
        "accounts",
        items,
        total,
        page,
        &app.base_url,
        "/2010-04-01/Accounts.json",
        &filters,
    )))
}

async fn fetch_account(
    AxState(app): AxState<App>,
    caller: Caller,
    Path(segment): Path<String>,
) -> Reply {
    require_accounts_permission(&caller)?;
    let full = format!("/2010-04-01/Accounts/{segment}");
    let sid = strip_json(&segment, &full)?;
    let state = app.state();
    if !state.can_access_account(&caller.account_sid, sid) {
        return Err(ApiError::not_found(&full));
    }
    state
        .account(sid)
        .map(|a| Json(a.to_json()))
        .ok_or_else(|| ApiError::not_found(&full))
}

/// `*` matches any one character; the pattern may match anywhere in the number.
fn phone_matches(number: &str, pattern: &str) -> bool {
    let n: Vec<char> = number.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    if p.len() > n.len() {
        return false;
    }
    (0..=n.len() - p.len()).any(|start| {
        p.iter()
            .zip(&n[start..])
            .all(|(pc, nc)| *pc == '*' || pc == nc)
    })
}

async fn list_numbers(
    AxState(app): AxState<App>,
    caller: Caller,
    Path(account): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let params = params(q);
    let page = PageRequest::from_params(&params)?;
    let path = format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json");
    let mut filters = Vec::new();
    for name in ["Beta", "FriendlyName", "PhoneNumber", "Origin"] {
        if let Some(v) = params.get(name) {
            filters.push((name, v.to_string()));
        }
    }
    let state = app.state();
    if !state.can_access_account(&caller.account_sid, &account) {
        return Err(ApiError::not_found(&path));
    }
    let (items, total) = if filters.iter().all(|(k, _)| *k == "Beta") {
        // No filter: cut the page out of the account's index (cost: the page).
        let sids = state.number_sids_of(&account);
        let items = sids[page_range(sids.len(), page)]
            .iter()
            .filter_map(|sid| state.number(sid))
            .map(|n| n.to_json())
            .collect();
        (items, sids.len())
    } else {
        let matched: Vec<_> = state
            .numbers_of(&account)
            .filter(|n| {
                filters.iter().all(|(k, v)| match *k {
                    "FriendlyName" => &n.friendly_name == v,
                    "PhoneNumber" => phone_matches(&n.phone_number, v),
                    "Origin" => v == "twilio",
                    _ => true,
                })
            })
            .collect();
        let items = matched[page_range(matched.len(), page)]
            .iter()
            .map(|n| n.to_json())
            .collect();
        (items, matched.len())
    };
    drop(state);
    Ok(Json(api2010_list(
        "incoming_phone_numbers",
        items,
        total,
        page,
        &app.base_url,
        &path,
        &filters,
    )))
}

async fn fetch_number(
    AxState(app): AxState<App>,
    caller: Caller,
    Path((account, segment)): Path<(String, String)>,
) -> Reply {
    let full = format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{segment}");
    let sid = strip_json(&segment, &full)?;
    let state = app.state();
    if !state.can_access_account(&caller.account_sid, &account) {
        return Err(ApiError::not_found(&full));
    }
    state
        .number(sid)
        .filter(|n| n.account_sid == account)
        .map(|n| Json(n.to_json()))
        .ok_or_else(|| ApiError::not_found(&full))
}

#[cfg(test)]
mod tests {
    use super::phone_matches;

    #[test]
    fn phone_filter_supports_partial_numbers_and_wildcards() {
        assert!(phone_matches("+15005550201", "+15005550201"));
        assert!(phone_matches("+15005550201", "5550201"));
        assert!(phone_matches("+15005550201", "+1500555**01"));
        assert!(!phone_matches("+15005550201", "+15005550202"));
    }
}
