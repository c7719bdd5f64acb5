//! Trust Hub v1 routes: CustomerProfiles and TrustProducts with their
//! ChannelEndpointAssignments, EntityAssignments and Evaluations, and Policies.
//!
//! Every route acts on the authenticated account (Trust Hub paths carry no AccountSid).
//! Objects of other accounts answer 404/20404. List filters: `Status`, `FriendlyName`,
//! `PolicySid` (bundles); `ChannelEndpointSid`, `ChannelEndpointSids` (comma-separated)
//! on channel assignments; `ObjectType` on entity assignments, where the simulator's object
//! types are `customer_profile` (BU…), `end_user` (IT…) and `supporting_document` (RD…).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::evaluation::{POLICIES, policy_json};
use crate::model::{BundleKind, BundleStatus};
use crate::pagination::{PageRequest, Params, page_range, trusthub_list, trusthub_page};
use crate::rules;
use crate::state::Caller;
use crate::vetting;

type Reply = Result<(StatusCode, Json<Value>), ApiError>;

fn ok(v: Value) -> Reply {
    Ok((StatusCode::OK, Json(v)))
}

fn created(v: Value) -> Reply {
    Ok((StatusCode::CREATED, Json(v)))
}

fn query(raw: Option<String>) -> Params {
    Params::parse(raw.unwrap_or_default().as_bytes())
}

/// `CustomerProfile` / `TrustProduct`, the middle of the spec's operationIds.
fn op_name(kind: BundleKind) -> &'static str {
    match kind {
        BundleKind::CustomerProfile => "CustomerProfile",
        BundleKind::TrustProduct => "TrustProduct",
    }
}

pub(crate) fn router() -> Router<App> {
    let mut router = Router::new()
        .route("/v1/Policies", get(list_policies))
        .route("/v1/Policies/{sid}", get(fetch_policy));
    for kind in [BundleKind::CustomerProfile, BundleKind::TrustProduct] {
        let c = kind.collection();
        router = router
            .route(
                &format!("/v1/{c}"),
                get(
                    move |AxState(app): AxState<App>, caller: Caller, RawQuery(q): RawQuery| {
                        list_bundles(kind, app, caller, q)
                    },
                )
                .post(
                    move |AxState(app): AxState<App>, caller: Caller, body: Bytes| {
                        create_bundle(kind, app, caller, body)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}"),
                get(
                    move |AxState(app): AxState<App>, caller: Caller, Path(sid): Path<String>| {
                        fetch_bundle(kind, app, caller, sid)
                    },
                )
                .post(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          body: Bytes| {
                        update_bundle(kind, app, caller, sid, body)
                    },
                )
                .delete(
                    move |AxState(app): AxState<App>, caller: Caller, Path(sid): Path<String>| {
                        delete_bundle(kind, app, caller, sid)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}/ChannelEndpointAssignments"),
                get(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          RawQuery(q): RawQuery| {
                        list_channels(kind, app, caller, sid, q)
                    },
                )
                .post(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          body: Bytes| {
                        create_channel(kind, app, caller, sid, body)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}/ChannelEndpointAssignments/{{item}}"),
                get(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(p): Path<(String, String)>| {
                        fetch_channel(kind, app, caller, p)
                    },
                )
                .delete(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(p): Path<(String, String)>| {
                        delete_channel(kind, app, caller, p)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}/EntityAssignments"),
                get(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          RawQuery(q): RawQuery| {
                        list_entities(kind, app, caller, sid, q)
                    },
                )
                .post(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          body: Bytes| {
                        create_entity(kind, app, caller, sid, body)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}/EntityAssignments/{{item}}"),
                get(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(p): Path<(String, String)>| {
                        fetch_entity(kind, app, caller, p)
                    },
                )
                .delete(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(p): Path<(String, String)>| {
                        delete_entity(kind, app, caller, p)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}/Evaluations"),
                get(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          RawQuery(q): RawQuery| {
                        list_evaluations(kind, app, caller, sid, q)
                    },
                )
                .post(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(sid): Path<String>,
                          body: Bytes| {
                        create_evaluation(kind, app, caller, sid, body)
                    },
                ),
            )
            .route(
                &format!("/v1/{c}/{{sid}}/Evaluations/{{item}}"),
                get(
                    move |AxState(app): AxState<App>,
                          caller: Caller,
                          Path(p): Path<(String, String)>| {
                        fetch_evaluation(kind, app, caller, p)
                    },
                ),
            );
    }
    router
}

async fn list_bundles(kind: BundleKind, app: App, caller: Caller, q: Option<String>) -> Reply {
    let params = query(q);
    let page = PageRequest::from_params(&params)?;
    let mut filters = Vec::new();
    if let Some(status) = params.get("Status") {
        if BundleStatus::parse(status).is_none() {
            return Err(ApiError::invalid_param("Status", "unknown status"));
        }
        filters.push(("Status", status.to_string()));
    }
    for name in ["FriendlyName", "PolicySid"] {
        if let Some(v) = params.get(name) {
            filters.push((name, v.to_string()));
        }
    }
    let items: Vec<Value> = {
        let state = app.state();
        state
            .bundles
            .iter()
            .filter(|b| b.kind == kind && b.account_sid == caller.account_sid)
            .filter(|b| {
                filters.iter().all(|(k, v)| match *k {
                    "Status" => b.status.as_str() == v,
                    "FriendlyName" => &b.friendly_name == v,
                    _ => &b.policy_sid == v,
                })
            })
            .map(|b| b.to_json(&app.base_url))
            .collect()
    };
    ok(trusthub_page(
        &items,
        page,
        &app.base_url,
        &format!("/v1/{}", kind.collection()),
        &filters,
    ))
}

async fn create_bundle(kind: BundleKind, app: App, caller: Caller, body: Bytes) -> Reply {
    let params = Params::parse(&body);
    let bundle = rules::create_bundle(
        &mut app.state(),
        kind,
        &caller.account_sid,
        &params,
        chrono::Utc::now(),
    )?;
    app.wrote(
        &format!("Create{}", op_name(kind)),
        &bundle.sid,
        &caller.account_sid,
    );
    created(bundle.to_json(&app.base_url))
}

async fn fetch_bundle(kind: BundleKind, app: App, caller: Caller, sid: String) -> Reply {
    let json = app
        .state()
        .bundle(kind, &caller.account_sid, &sid)?
        .to_json(&app.base_url);
    ok(json)
}

async fn update_bundle(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    body: Bytes,
) -> Reply {
    let params = Params::parse(&body);
    let (bundle, change) = rules::update_bundle(
        &mut app.state(),
        kind,
        &caller.account_sid,
        &sid,
        &params,
        chrono::Utc::now(),
    )?;
    app.wrote(
        &format!("Update{}", op_name(kind)),
        &sid,
        &caller.account_sid,
    );
    if let Some(change) = change {
        vetting::on_change(&app, change);
    }
    ok(bundle.to_json(&app.base_url))
}

async fn delete_bundle(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
) -> Result<StatusCode, ApiError> {
    rules::delete_bundle(&mut app.state(), kind, &caller.account_sid, &sid)?;
    app.wrote(
        &format!("Delete{}", op_name(kind)),
        &sid,
        &caller.account_sid,
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn list_channels(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    q: Option<String>,
) -> Reply {
    let params = query(q);
    let page = PageRequest::from_params(&params)?;
    let mut filters = Vec::new();
    let mut wanted: Option<Vec<String>> = None;
    if let Some(one) = params.get("ChannelEndpointSid") {
        filters.push(("ChannelEndpointSid", one.to_string()));
        wanted = Some(vec![one.to_string()]);
    }
    if let Some(many) = params.get("ChannelEndpointSids") {
        filters.push(("ChannelEndpointSids", many.to_string()));
        let list: Vec<String> = many.split(',').map(|s| s.trim().to_string()).collect();
        wanted = Some(match wanted {
            Some(prev) => prev.into_iter().filter(|s| list.contains(s)).collect(),
            None => list,
        });
    }
    let (items, total) = {
        let state = app.state();
        state.bundle(kind, &caller.account_sid, &sid)?;
        let all = state.channel_sids_of(&sid);
        let matched: Vec<&String> = match &wanted {
            // No filter: the page is cut out of the bundle's index.
            None => all.iter().collect(),
            Some(endpoints) => {
                let found: std::collections::HashSet<&str> = endpoints
                    .iter()
                    .filter_map(|e| state.channel_assignment_for(&sid, e))
                    .map(|a| a.sid.as_str())
                    .collect();
                match found.len() {
                    0 => Vec::new(),
                    // Oldest first, as the unfiltered list.
                    _ => all
                        .iter()
                        .filter(|ra| found.contains(ra.as_str()))
                        .collect(),
                }
            }
        };
        let items = matched[page_range(matched.len(), page)]
            .iter()
            .filter_map(|ra| state.channel_assignment(ra))
            .map(|a| a.to_json(&app.base_url))
            .collect();
        (items, matched.len())
    };
    let path = format!("/v1/{}/{sid}/ChannelEndpointAssignments", kind.collection());
    ok(trusthub_list(
        items,
        total,
        page,
        &app.base_url,
        &path,
        &filters,
    ))
}

async fn create_channel(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    body: Bytes,
) -> Reply {
    let params = Params::parse(&body);
    let assignment = rules::create_channel_assignment(
        &mut app.state(),
        kind,
        &caller.account_sid,
        &sid,
        &params,
        chrono::Utc::now(),
    )?;
    app.wrote(
        &format!("Create{}ChannelEndpointAssignment", op_name(kind)),
        &assignment.sid,
        &caller.account_sid,
    );
    created(assignment.to_json(&app.base_url))
}

async fn fetch_channel(
    kind: BundleKind,
    app: App,
    caller: Caller,
    (sid, item): (String, String),
) -> Reply {
    let state = app.state();
    state.bundle(kind, &caller.account_sid, &sid)?;
    let found = state
        .channel_assignment(&item)
        .filter(|a| a.bundle_sid == sid)
        .map(|a| a.to_json(&app.base_url));
    match found {
        Some(json) => ok(json),
        None => Err(ApiError::not_found(&format!(
            "/v1/{}/{sid}/ChannelEndpointAssignments/{item}",
            kind.collection()
        ))),
    }
}

async fn delete_channel(
    kind: BundleKind,
    app: App,
    caller: Caller,
    (sid, item): (String, String),
) -> Result<StatusCode, ApiError> {
    rules::delete_channel_assignment(&mut app.state(), kind, &caller.account_sid, &sid, &item)?;
    app.wrote(
        &format!("Delete{}ChannelEndpointAssignment", op_name(kind)),
        &item,
        &caller.account_sid,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The simulator's `ObjectType` of an assigned object (see module docs).
fn object_type(object_sid: &str) -> &'static str {
    match object_sid.get(..2) {
        Some("BU") => "customer_profile",
        Some("IT") => "end_user",
        Some("RD") => "supporting_document",
        _ => "unknown",
    }
}

async fn list_entities(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    q: Option<String>,
) -> Reply {
    let params = query(q);
    let page = PageRequest::from_params(&params)?;
    let object_type_filter = params.get("ObjectType").map(str::to_string);
    let items: Vec<Value> = {
        let state = app.state();
        state.bundle(kind, &caller.account_sid, &sid)?;
        state
            .entity_assignments_of(&sid)
            .filter(|a| {
                object_type_filter
                    .as_deref()
                    .is_none_or(|t| object_type(&a.object_sid) == t)
            })
            .map(|a| a.to_json(&app.base_url))
            .collect()
    };
    let filters: Vec<(&str, String)> = object_type_filter
        .map(|t| ("ObjectType", t))
        .into_iter()
        .collect();
    let path = format!("/v1/{}/{sid}/EntityAssignments", kind.collection());
    ok(trusthub_page(&items, page, &app.base_url, &path, &filters))
}

async fn create_entity(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    body: Bytes,
) -> Reply {
    let params = Params::parse(&body);
    let assignment = rules::create_entity_assignment(
        &mut app.state(),
        kind,
        &caller.account_sid,
        &sid,
        &params,
        chrono::Utc::now(),
    )?;
    app.wrote(
        &format!("Create{}EntityAssignment", op_name(kind)),
        &assignment.sid,
        &caller.account_sid,
    );
    created(assignment.to_json(&app.base_url))
}

async fn fetch_entity(
    kind: BundleKind,
    app: App,
    caller: Caller,
    (sid, item): (String, String),
) -> Reply {
    let state = app.state();
    state.bundle(kind, &caller.account_sid, &sid)?;
    let found = state
        .entity_assignments_of(&sid)
        .find(|a| a.sid == item)
        .map(|a| a.to_json(&app.base_url));
    match found {
        Some(json) => ok(json),
        None => Err(ApiError::not_found(&format!(
            "/v1/{}/{sid}/EntityAssignments/{item}",
            kind.collection()
        ))),
    }
}

async fn delete_entity(
    kind: BundleKind,
    app: App,
    caller: Caller,
    (sid, item): (String, String),
) -> Result<StatusCode, ApiError> {
    rules::delete_entity_assignment(&mut app.state(), kind, &caller.account_sid, &sid, &item)?;
    app.wrote(
        &format!("Delete{}EntityAssignment", op_name(kind)),
        &item,
        &caller.account_sid,
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn list_evaluations(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    q: Option<String>,
) -> Reply {
    let page = PageRequest::from_params(&query(q))?;
    let items: Vec<Value> = {
        let state = app.state();
        state.bundle(kind, &caller.account_sid, &sid)?;
        state
            .evaluations
            .iter()
            .filter(|e| e.bundle_sid == sid)
            .map(|e| e.to_json(&app.base_url))
            .collect()
    };
    let path = format!("/v1/{}/{sid}/Evaluations", kind.collection());
    ok(trusthub_page(&items, page, &app.base_url, &path, &[]))
}

async fn create_evaluation(
    kind: BundleKind,
    app: App,
    caller: Caller,
    sid: String,
    body: Bytes,
) -> Reply {
    let params = Params::parse(&body);
    let evaluation = rules::create_evaluation(
        &mut app.state(),
        kind,
        &caller.account_sid,
        &sid,
        &params,
        chrono::Utc::now(),
    )?;
    app.wrote(
        &format!("Create{}Evaluation", op_name(kind)),
        &evaluation.sid,
        &caller.account_sid,
    );
    created(evaluation.to_json(&app.base_url))
}

async fn fetch_evaluation(
    kind: BundleKind,
    app: App,
    caller: Caller,
    (sid, item): (String, String),
) -> Reply {
    let state = app.state();
    state.bundle(kind, &caller.account_sid, &sid)?;
    let found = state
        .evaluations
        .iter()
        .find(|e| e.bundle_sid == sid && e.sid == item)
        .map(|e| e.to_json(&app.base_url));
    match found {
        Some(json) => ok(json),
        None => Err(ApiError::not_found(&format!(
            "/v1/{}/{sid}/Evaluations/{item}",
            kind.collection()
        ))),
    }
}

async fn list_policies(
    AxState(app): AxState<App>,
    _caller: Caller,
    RawQuery(q): RawQuery,
) -> Reply {
    let page = PageRequest::from_params(&query(q))?;
    let items: Vec<Value> = POLICIES
        .iter()
        .filter(|(sid, _, _)| !app.seed.absent_policies.iter().any(|a| a == sid))
        .filter_map(|(sid, _, _)| policy_json(sid, &app.base_url))
        .collect();
    ok(trusthub_page(
        &items,
        page,
        &app.base_url,
        "/v1/Policies",
        &[],
    ))
}

async fn fetch_policy(
    AxState(app): AxState<App>,
    _caller: Caller,
    Path(sid): Path<String>,
) -> Reply {
    let absent = app.seed.absent_policies.contains(&sid);
    match policy_json(&sid, &app.base_url).filter(|_| !absent) {
        Some(json) => ok(json),
        None => Err(ApiError::not_found(&format!("/v1/Policies/{sid}"))),
    }
}
