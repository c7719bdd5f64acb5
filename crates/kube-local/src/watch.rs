//! `?watch=true`: newline-delimited JSON watch events.
//!
//! Without a resourceVersion (or with "0"), and with `sendInitialEvents=true`, the current
//! objects are sent as ADDED first (the latter ends them with the `k8s.io/initial-events-end`
//! bookmark that kube-rs' streaming-list strategy waits for). With a resourceVersion, the
//! kept history after it is replayed, or an ERROR event carrying a 410 Expired Status is sent
//! when that version has been compacted away. Streams end at `timeoutSeconds`, when
//! [`crate::FaultHandle::cut_watches`] is called, or when the watcher falls too far behind.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use crate::handlers::{App, ResourceRequest, present, select};
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::{ChangeEvent, EventType};
use crate::table;

/// Bookmarks are sent this often when the client allows them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);
/// Server-side cap when the client sets no timeoutSeconds (upstream picks 30-60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
    metadata_only: bool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        // Selectors apply to the object as served (events.k8s.io field names for those Events).
        let served = present(&self.rt, obj);
        self.labels.matches(&served) && self.fields.matches(&served)
    }

    /// The event type this watcher sees for a change, if any: as upstream, a modification
    /// that makes an object start (stop) matching the selectors is sent as ADDED (DELETED).
    fn translate(&self, e: &ChangeEvent) -> Option<&'static str> {
        if e.key != self.rt.storage_key()
            || self.namespace.as_ref().is_some_and(|ns| ns != &e.namespace)
        {
            return None;
        }
        let now = self.matches(&e.object);
        let before = match (&e.type_, &e.previous) {
            (EventType::Modified, Some(previous)) => self.matches(previous),
            _ => now,
        };
        match (before, now) {
            (true, true) => Some(e.type_.as_str()),
            (false, true) => Some(EventType::Added.as_str()),
            (true, false) => Some(EventType::Deleted.as_str()),
            (false, false) => None,
        }
    }

    fn line(&self, type_: &str, object: &Value) -> Bytes {
        let object = present(&self.rt, object);
        let object = if self.table && type_ != "BOOKMARK" {
            let rv = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            table::table_for_watch(&self.rt, &object, &rv)
        } else if self.metadata_only && type_ != "BOOKMARK" {
            crate::handlers::partial(&object)
        } else {
            object
        };
        let mut line = json!({"type": type_, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"apiVersion": self.rt.api_version(), "kind": self.rt.kind, "metadata": meta});
        self.line("BOOKMARK", &obj)
    }
}

struct WatchStream {
    filter: Filter,
    pending: VecDeque<Bytes>,
    rx: broadcast::Receiver<Arc<ChangeEvent>>,
    cut: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    bookmarks: bool,
    next_bookmark: Instant,
    /// Highest resourceVersion already covered (sent or replayed); later events only.
    last_rv: u64,
    finished: bool,
}

fn error_line(e: &ApiError) -> Bytes {
    let mut line = json!({"type": "ERROR", "object": e.to_status()}).to_string();
    line.push('\n');
    Bytes::from(line)
}

pub fn watch(app: &App, req: &ResourceRequest) -> Response {
    match start(app, req) {
        Ok(stream) => {
            let body = Body::from_stream(futures::stream::unfold(stream, next_chunk));
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn query<'a>(req: &'a ResourceRequest, key: &str) -> &'a str {
    req.query.get(key).map(String::as_str).unwrap_or_default()
}

fn start(app: &App, req: &ResourceRequest) -> ApiResult<WatchStream> {
    let filter = Filter {
        rt: req.rt.clone(),
        namespace: req.namespace.clone(),
        labels: LabelSelector::parse(query(req, "labelSelector"))?,
        fields: FieldSelector::parse(query(req, "fieldSelector"))?,
        table: req.wants_table,
        metadata_only: req.wants_metadata,
    };
    let timeout = query(req, "timeoutSeconds")
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let rv_param = query(req, "resourceVersion");
    let send_initial = query(req, "sendInitialEvents") == "true";
    let bookmarks = query(req, "allowWatchBookmarks") == "true";
    let mut pending = VecDeque::new();
    let mut finished = false;

    let state = app.store.lock();
    let rx = state.subscribe();
    let last_rv = state.rv;
    if send_initial || rv_param.is_empty() || rv_param == "0" {
        for obj in select(&state, req)? {
            pending.push_back(filter.line("ADDED", &obj));
        }
        if send_initial {
            pending.push_back(filter.bookmark(state.rv, true));
        }
    } else {
        let from: u64 = rv_param.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {rv_param:?}"))
        })?;
        match state.history_since(&filter.rt.storage_key(), from) {
            Some(events) => {
                for e in events.iter() {
                    if let Some(type_) = filter.translate(e) {
                        pending.push_back(filter.line(type_, &e.object));
                    }
                }
            }
            None => {
                let gone = ApiError::gone(format!(
                    "too old resource version: {from} ({})",
                    state.compacted_rv + 1
                ));
                pending.push_back(error_line(&gone));
                finished = true;
            }
        }
    }
    drop(state);
    let now = Instant::now();
    Ok(WatchStream {
        filter,
        pending,
        rx,
        cut: app.faults.cut_signal(),
        deadline: now + timeout,
        bookmarks,
        next_bookmark: now + BOOKMARK_INTERVAL,
        last_rv,
        finished,
    })
}

async fn next_chunk(mut s: WatchStream) -> Option<(Result<Bytes, std::io::Error>, WatchStream)> {
    loop {
        if let Some(line) = s.pending.pop_front() {
            return Some((Ok(line), s));
        }
        if s.finished {
            return None;
        }
        let bookmark_at = if s.bookmarks {
            s.next_bookmark
        } else {
            s.deadline
        };
        tokio::select! {
            received = s.rx.recv() => match received {
                Ok(e) => {
                    if e.rv <= s.last_rv {
                        continue;
                    }
                    s.last_rv = e.rv;
                    if let Some(type_) = s.filter.translate(&e) {
                        s.pending.push_back(s.filter.line(type_, &e.object));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let gone = ApiError::gone("watch fell behind the event stream; relist");
                    s.pending.push_back(error_line(&gone));
                    s.finished = true;
                }
                Err(RecvError::Closed) => return None,
            },
            _ = s.cut.changed() => return None,
            _ = tokio::time::sleep_until(s.deadline) => return None,
            _ = tokio::time::sleep_until(bookmark_at), if s.bookmarks => {
                s.next_bookmark = Instant::now() + BOOKMARK_INTERVAL;
                s.pending.push_back(s.filter.bookmark(s.last_rv, false));
            }
        }
    }
}
