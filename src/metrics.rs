//! Prometheus metrics of the operator, served on `/metrics` in the OpenMetrics text format.
//!
//! Modelled: reconciles by kind and result, failed reconciles by kind and condition reason,
//! reconcile duration; every Twilio HTTP attempt by operationId and HTTP status (or transport
//! error class), its duration, retries (attempt > 1) and throttled answers (429); custom
//! resources by vetting status, computed from the informer caches at scrape time (so deleted
//! objects disappear without bookkeeping). Labels only take bounded values (kinds, operationIds,
//! condition reasons, HTTP statuses, Twilio's status names), never names, SIDs or URLs.
//!
//! Not modelled: per-object series, Kubernetes API client metrics, process metrics.

use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::{BusinessProfileBinding, ShakenStirTrustProduct};
use crate::controller::ReconcileObserver;
use crate::twilio::{CallObserver, CallOutcome, CallRecord};

/// Content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

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
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let reconcile_duration: HistogramFamily<KindLabels> =
            Family::new_with_constructor(reconcile_histogram);
        let twilio_requests = Family::<CallLabels, Counter>::default();
        let twilio_duration: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(call_histogram);
        let twilio_retries = Family::<OperationLabels, Counter>::default();
        let twilio_throttled = Family::<OperationLabels, Counter>::default();
        let resources = Family::<StatusLabels, Gauge>::default();
        // Counters get the `_total` suffix from the encoder.
        registry.register(
            "trusthub_reconciles",
            "Finished reconciles by kind and result (success, error)",
            reconciles.clone(),
        );
        registry.register(
            "trusthub_reconcile_failures",
            "Failed reconciles by kind and condition reason",
            failures.clone(),
        );
        registry.register(
            "trusthub_reconcile_duration_seconds",
            "Duration of one reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "trusthub_twilio_requests",
            "Twilio HTTP attempts by operationId and HTTP status (or connect, timeout, transport)",
            twilio_requests.clone(),
        );
        registry.register(
            "trusthub_twilio_request_duration_seconds",
            "Duration of one Twilio HTTP attempt",
            twilio_duration.clone(),
        );
        registry.register(
            "trusthub_twilio_retries",
            "Twilio HTTP attempts that were retries (attempt > 1)",
            twilio_retries.clone(),
        );
        registry.register(
            "trusthub_twilio_throttled",
            "Twilio answers with HTTP 429 Too Many Requests",
            twilio_throttled.clone(),
        );
        registry.register(
            "trusthub_resources",
            "Custom resources by kind and Twilio vetting status (unknown before the first sync)",
            resources.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            reconcile_duration,
            twilio_requests,
            twilio_duration,
            twilio_retries,
            twilio_throttled,
            resources,
            render_lock: std::sync::Mutex::new(()),
        }
    }

    /// The OpenMetrics text, with the status gauges recomputed from the informer caches
    /// (absent caches, e.g. on a standby replica, report no series).
    pub fn render(
        &self,
        products: Option<&Store<ShakenStirTrustProduct>>,
        bindings: Option<&Store<BusinessProfileBinding>>,
    ) -> String {
        let _guard = self.render_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.resources.clear();
        if let Some(store) = products {
            for product in store.state() {
                let status = product
                    .status
                    .as_ref()
                    .and_then(|s| s.twilio_status.clone())
                    .filter(|s| !s.is_empty());
                self.count_resource("ShakenStirTrustProduct", status);
            }
        }
        if let Some(store) = bindings {
            for binding in store.state() {
                let status = binding
                    .status
                    .as_ref()
                    .and_then(|s| s.business_profile.as_ref())
                    .and_then(|p| p.status.clone())
                    .filter(|s| !s.is_empty());
                self.count_resource("BusinessProfileBinding", status);
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn count_resource(&self, kind: &'static str, status: Option<String>) {
        // Twilio's status names are a small fixed set; anything else is folded into `other`
        // so a misbehaving server cannot create unbounded series.
        let status = match status.as_deref() {
            None => "unknown".to_string(),
            Some(
                s @ ("draft" | "pending-review" | "in-review" | "twilio-approved"
                | "twilio-rejected"),
            ) => s.to_string(),
            Some(_) => "other".to_string(),
        };
        self.resources
            .get_or_create(&StatusLabels { kind, status })
            .inc();
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
mod tests {
    use super::*;
    use crate::controller::ReconcileError;

    #[test]
    fn records_calls_retries_and_throttling() {
        let metrics = Metrics::new();
        for (attempt, code) in [(1, 429), (2, 201)] {
            metrics.observe(&CallRecord {
                operation: "CreateTrustProduct",
                outcome: CallOutcome::Status(code),
                duration: Duration::from_millis(10),
                attempt,
            });
        }
        metrics.observe(&CallRecord {
            operation: "FetchTrustProduct",
            outcome: CallOutcome::Error("timeout"),
            duration: Duration::from_millis(10),
            attempt: 1,
        });
        let text = metrics.render(None, None);
        for line in [
            r#"trusthub_twilio_requests_total{operation="CreateTrustProduct",status="429"} 1"#,
            r#"trusthub_twilio_requests_total{operation="CreateTrustProduct",status="201"} 1"#,
            r#"trusthub_twilio_requests_total{operation="FetchTrustProduct",status="timeout"} 1"#,
            r#"trusthub_twilio_retries_total{operation="CreateTrustProduct"} 1"#,
            r#"trusthub_twilio_throttled_total{operation="CreateTrustProduct"} 1"#,
            r#"trusthub_twilio_request_duration_seconds_count{operation="FetchTrustProduct"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn records_reconciles_by_result_and_reason() {
        let metrics = Metrics::new();
        metrics.reconciled("ShakenStirTrustProduct", Duration::from_millis(3), None);
        let error = ReconcileError::terminal("PolicyNotFound", "no policy");
        metrics.reconciled(
            "ShakenStirTrustProduct",
            Duration::from_millis(3),
            Some(error.reason()),
        );
        let text = metrics.render(None, None);
        for line in [
            r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="success"} 1"#,
            r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="error"} 1"#,
            r#"trusthub_reconcile_failures_total{kind="ShakenStirTrustProduct",reason="PolicyNotFound"} 1"#,
            r#"trusthub_reconcile_duration_seconds_count{kind="ShakenStirTrustProduct"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
