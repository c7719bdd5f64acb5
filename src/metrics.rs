//! Prometheus metrics of the operator, served on `/metrics` in the OpenMetrics text format.
//!
//! Modelled: reconciles by kind and result, failed reconciles by kind and condition reason,
//! reconcile duration; every Twilio HTTP attempt by operationId and HTTP status (or transport
//! error class), its duration, retries (attempt > 1) and throttled answers (429); custom
//! resources by vetting status; whether this replica is the active one (`trusthub_leader`).
//!
//! Per-object series, for alerts that must name the object: its vetting status
//! (`trusthub_vetting_status`, always 1), when Twilio's approval ends
//! (`trusthub_valid_until_timestamp_seconds`) and when a Trust Product was submitted
//! (`trusthub_submitted_timestamp_seconds`), and its numbers by state including coverage
//! (`trusthub_numbers`, six series: per object, never per number or subaccount). Their labels are the object's `kind`, `namespace`
//! and `name` (plus the folded `status`), never SIDs, URLs or secrets. They cost up to nine
//! series per custom resource, which is acceptable because an account has few of them (a
//! Business Profile and a handful of Trust Products, not thousands).
//!
//! Everything derived from objects is computed from the informer caches at scrape time, so
//! deleted objects disappear without bookkeeping; a standby replica has no caches and reports
//! none. Every other label takes bounded values (kinds, operationIds, condition reasons, HTTP
//! statuses, Twilio's status names folded into a fixed set).
//!
//! Not modelled: Kubernetes API client metrics, process metrics.

use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::common::find_condition;
use crate::api::{BusinessProfileBinding, ShakenStirTrustProduct};
use crate::controller::ReconcileObserver;
use crate::twilio::{CallObserver, CallOutcome, CallRecord};

/// Content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Content type of [`to_prometheus_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper sending `accept` gets the Prometheus text format 0.0.4 rather than
/// OpenMetrics: only when it asks for `text/plain` and not for OpenMetrics (Prometheus asks for
/// both and gets OpenMetrics; a client sending no preference gets OpenMetrics too).
pub fn wants_prometheus_text(accept: &str) -> bool {
    let accept = accept.to_ascii_lowercase();
    accept.contains("text/plain") && !accept.contains("application/openmetrics-text")
}

/// The Prometheus text format 0.0.4 of [`Metrics::render`]'s OpenMetrics text, for clients
/// that only read that format (e.g. `promtool check metrics`, which would otherwise see a
/// counter family `x` described by HELP/TYPE and samples `x_total` without either): counter
/// families are described under their sample name `x_total`, and `# UNIT` and `# EOF` are
/// dropped. Covers what this registry produces (counters, gauges, histograms; no exemplars,
/// no `_created` samples, no quotes in HELP texts).
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {rest}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    kind: &'static str,
    status: String,
}

/// One custom resource.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
    namespace: String,
    name: String,
}

/// One custom resource and a state of its numbers (a fixed set: see [`NUMBER_STATES`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NumberLabels {
    kind: &'static str,
    namespace: String,
    name: String,
    state: &'static str,
}

/// One custom resource and its (folded) Twilio vetting status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectStatusLabels {
    kind: &'static str,
    namespace: String,
    name: String,
    status: &'static str,
}

const PRODUCT: &str = "ShakenStirTrustProduct";
const BINDING: &str = "BusinessProfileBinding";
/// The `state` label of `trusthub_numbers`, in the order of [`crate::api::NumberCounts`].
const NUMBER_STATES: [&str; 6] = [
    "selected",
    "done",
    "refused",
    "unresolvable",
    "releasing",
    "covered",
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// `metric`, registered in `registry` under `name` (the registry holds a handle to the same
/// values).
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn reconcile_histogram() -> Histogram {
    // 5 ms … ~80 s: a reconcile is a handful of Twilio calls, slower under backoff.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The operator's metrics; one instance per process, shared by the controllers (as their
/// [`ReconcileObserver`]), the Twilio clients (as their [`CallObserver`]) and the HTTP server.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    reconcile_duration: HistogramFamily<KindLabels>,
    twilio_requests: Family<CallLabels, Counter>,
    twilio_duration: HistogramFamily<OperationLabels>,
    twilio_retries: Family<OperationLabels, Counter>,
    twilio_throttled: Family<OperationLabels, Counter>,
    resources: Family<StatusLabels, Gauge>,
    vetting_status: Family<ObjectStatusLabels, Gauge>,
    valid_until: Family<ObjectLabels, Gauge>,
    submitted: Family<ObjectLabels, Gauge>,
    numbers: Family<NumberLabels, Gauge>,
    leader: Gauge,
    /// Scrapes are rare; rendering under a lock keeps the recomputed gauges consistent.
    render_lock: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric (names in the module docs of the chart and the README).
    /// Counters get the `_total` suffix from the encoder.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        Self {
            reconciles: registered(
                &mut registry,
                "trusthub_reconciles",
                "Finished reconciles by kind and result (success, error)",
                Family::default(),
            ),
            failures: registered(
                &mut registry,
                "trusthub_reconcile_failures",
                "Failed reconciles by kind and condition reason",
                Family::default(),
            ),
            reconcile_duration: registered(
                &mut registry,
                "trusthub_reconcile_duration_seconds",
                "Duration of one reconcile",
                Family::new_with_constructor(reconcile_histogram),
            ),
            twilio_requests: registered(
                &mut registry,
                "trusthub_twilio_requests",
                "Twilio HTTP attempts by operationId and HTTP status (or connect, timeout, transport)",
                Family::default(),
            ),
            twilio_duration: registered(
                &mut registry,
                "trusthub_twilio_request_duration_seconds",
                "Duration of one Twilio HTTP attempt",
                Family::new_with_constructor(call_histogram),
            ),
            twilio_retries: registered(
                &mut registry,
                "trusthub_twilio_retries",
                "Twilio HTTP attempts that were retries (attempt > 1)",
                Family::default(),
            ),
            twilio_throttled: registered(
                &mut registry,
                "trusthub_twilio_throttled",
                "Twilio answers with HTTP 429 Too Many Requests",
                Family::default(),
            ),
            resources: registered(
                &mut registry,
                "trusthub_resources",
                "Custom resources by kind and Twilio vetting status (unknown before the first sync)",
                Family::default(),
            ),
            vetting_status: registered(
                &mut registry,
                "trusthub_vetting_status",
                "1 per custom resource, labelled with its Twilio vetting status (as in trusthub_resources)",
                Family::default(),
            ),
            valid_until: registered(
                &mut registry,
                "trusthub_valid_until_timestamp_seconds",
                "When Twilio's approval of the profile or Trust Product ends (Unix seconds), if Twilio reported it",
                Family::default(),
            ),
            submitted: registered(
                &mut registry,
                "trusthub_submitted_timestamp_seconds",
                "When a Trust Product whose Submitted condition is True was last submitted for vetting (Unix seconds)",
                Family::default(),
            ),
            numbers: registered(
                &mut registry,
                "trusthub_numbers",
                "Numbers of a custom resource by state (selected, done = assigned or attached, refused, unresolvable, releasing, covered = on a twilio-approved SHAKEN/STIR Trust Product), as its status last recorded",
                Family::default(),
            ),
            leader: registered(
                &mut registry,
                "trusthub_leader",
                "1 when this replica is the active one (runs the controllers), 0 on a standby or before its role is known",
                Gauge::default(),
            ),
            render_lock: std::sync::Mutex::new(()),
            registry,
        }
    }

    /// The OpenMetrics text, with the object gauges recomputed from the informer caches
    /// (absent caches, e.g. on a standby replica, report no series) and `trusthub_leader` set
    /// from `leader` (whether this replica runs the controllers).
    pub fn render(
        &self,
        leader: bool,
        products: Option<&Store<ShakenStirTrustProduct>>,
        bindings: Option<&Store<BusinessProfileBinding>>,
    ) -> String {
        let _guard = self.render_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.leader.set(i64::from(leader));
        self.resources.clear();
        self.vetting_status.clear();
        self.valid_until.clear();
        self.submitted.clear();
        self.numbers.clear();
        if let Some(store) = products {
            for product in store.state() {
                let status = product.status.as_ref();
                let submitted = status.and_then(|s| {
                    let condition = find_condition(&s.conditions, "Submitted")?;
                    if condition.status != "True" {
                        return None;
                    }
                    // `submittedAt` is this operator's last submission (a resubmission after a
                    // rejection moves it); a product adopted under review has only the condition.
                    Some(
                        s.submitted_at
                            .as_ref()
                            .map_or(&condition.last_transition_time.0, |t| &t.0)
                            .as_second(),
                    )
                });
                self.record_object(
                    PRODUCT,
                    product.as_ref(),
                    status.and_then(|s| s.twilio_status.as_deref()),
                    status.and_then(|s| s.valid_until.as_deref()),
                    submitted,
                );
                self.record_numbers(
                    PRODUCT,
                    product.as_ref(),
                    status.and_then(|s| s.numbers.as_ref()),
                );
            }
        }
        if let Some(store) = bindings {
            for binding in store.state() {
                let profile = binding
                    .status
                    .as_ref()
                    .and_then(|s| s.business_profile.as_ref());
                self.record_object(
                    BINDING,
                    binding.as_ref(),
                    profile.and_then(|p| p.status.as_deref()),
                    profile.and_then(|p| p.valid_until.as_deref()),
                    None,
                );
                let counts = binding.status.as_ref().and_then(|s| s.numbers.as_ref());
                self.record_numbers(BINDING, binding.as_ref(), counts);
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One series per state of the object's numbers: per object, never per number or
    /// subaccount, so the cardinality stays bounded by the number of objects.
    fn record_numbers(
        &self,
        kind: &'static str,
        obj: &impl ResourceExt,
        counts: Option<&crate::api::NumberCounts>,
    ) {
        let Some(c) = counts else {
            return;
        };
        let values = [
            c.selected,
            c.done,
            c.refused,
            c.unresolvable,
            c.releasing,
            c.covered,
        ];
        for (state, value) in NUMBER_STATES.into_iter().zip(values) {
            self.numbers
                .get_or_create(&NumberLabels {
                    kind,
                    namespace: obj.namespace().unwrap_or_default(),
                    name: obj.name_any(),
                    state,
                })
                .set(i64::from(value));
        }
    }

    fn record_object(
        &self,
        kind: &'static str,
        obj: &impl ResourceExt,
        status: Option<&str>,
        valid_until: Option<&str>,
        submitted: Option<i64>,
    ) {
        let status = fold_status(status);
        self.resources
            .get_or_create(&StatusLabels {
                kind,
                status: status.to_string(),
            })
            .inc();
        let namespace = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        self.vetting_status
            .get_or_create(&ObjectStatusLabels {
                kind,
                namespace: namespace.clone(),
                name: name.clone(),
                status,
            })
            .set(1);
        let object = ObjectLabels {
            kind,
            namespace,
            name,
        };
        // An unparseable timestamp is left out rather than reported as a wrong time.
        if let Some(until) = valid_until.and_then(|v| v.parse::<Timestamp>().ok()) {
            self.valid_until
                .get_or_create(&object)
                .set(until.as_second());
        }
        if let Some(at) = submitted {
            self.submitted.get_or_create(&object).set(at);
        }
    }
}

/// Twilio's status names are a small fixed set; anything else is folded into `other` so a
/// misbehaving server cannot create unbounded series, and no status yet is `unknown`.
fn fold_status(status: Option<&str>) -> &'static str {
    use crate::api::common::twilio_status as ts;
    match status.filter(|s| !s.is_empty()) {
        None => "unknown",
        Some(ts::DRAFT) => ts::DRAFT,
        Some(ts::PENDING_REVIEW) => ts::PENDING_REVIEW,
        Some(ts::IN_REVIEW) => ts::IN_REVIEW,
        Some(ts::TWILIO_APPROVED) => ts::TWILIO_APPROVED,
        Some(ts::TWILIO_REJECTED) => ts::TWILIO_REJECTED,
        Some(_) => "other",
    }
}

impl ReconcileObserver for Metrics {
    fn reconciled(&self, kind: &'static str, duration: Duration, failure: Option<&'static str>) {
        let result = if failure.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, result })
            .inc();
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&FailureLabels { kind, reason })
                .inc();
        }
        self.reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(duration.as_secs_f64());
    }
}

impl CallObserver for Metrics {
    fn observe(&self, call: &CallRecord) {
        let operation = call.operation;
        let status = match call.outcome {
            CallOutcome::Status(code) => code.to_string(),
            CallOutcome::Error(class) => class.to_string(),
        };
        self.twilio_requests
            .get_or_create(&CallLabels { operation, status })
            .inc();
        self.twilio_duration
            .get_or_create(&OperationLabels { operation })
            .observe(call.duration.as_secs_f64());
        if call.attempt > 1 {
            self.twilio_retries
                .get_or_create(&OperationLabels { operation })
                .inc();
        }
        if call.outcome == CallOutcome::Status(429) {
            self.twilio_throttled
                .get_or_create(&OperationLabels { operation })
                .inc();
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
