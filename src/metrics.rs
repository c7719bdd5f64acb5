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
//! (`trusthub_submitted_timestamp_seconds`). Their labels are the object's `kind`, `namespace`
//! and `name` (plus the folded `status`), never SIDs, URLs or secrets. They cost one to three
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
use prometheus_client::registry::Registry;

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
    vetting_status: Family<ObjectStatusLabels, Gauge>,
    valid_until: Family<ObjectLabels, Gauge>,
    submitted: Family<ObjectLabels, Gauge>,
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
        let vetting_status = Family::<ObjectStatusLabels, Gauge>::default();
        let valid_until = Family::<ObjectLabels, Gauge>::default();
        let submitted = Family::<ObjectLabels, Gauge>::default();
        let leader = Gauge::default();
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
        registry.register(
            "trusthub_vetting_status",
            "1 per custom resource, labelled with its Twilio vetting status (as in trusthub_resources)",
            vetting_status.clone(),
        );
        registry.register(
            "trusthub_valid_until_timestamp_seconds",
            "When Twilio's approval of the profile or Trust Product ends (Unix seconds), if Twilio reported it",
            valid_until.clone(),
        );
        registry.register(
            "trusthub_submitted_timestamp_seconds",
            "When a Trust Product whose Submitted condition is True was last submitted for vetting (Unix seconds)",
            submitted.clone(),
        );
        registry.register(
            "trusthub_leader",
            "1 when this replica is the active one (runs the controllers), 0 on a standby or before its role is known",
            leader.clone(),
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
            vetting_status,
            valid_until,
            submitted,
            leader,
            render_lock: std::sync::Mutex::new(()),
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
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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
        let text = metrics.render(true, None, None);
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
        let text = metrics.render(true, None, None);
        for line in [
            r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="success"} 1"#,
            r#"trusthub_reconciles_total{kind="ShakenStirTrustProduct",result="error"} 1"#,
            r#"trusthub_reconcile_failures_total{kind="ShakenStirTrustProduct",reason="PolicyNotFound"} 1"#,
            r#"trusthub_reconcile_duration_seconds_count{kind="ShakenStirTrustProduct"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    fn stores() -> (Store<ShakenStirTrustProduct>, Store<BusinessProfileBinding>) {
        use crate::api::business_profile_binding::{
            BusinessProfileBindingStatus, ResolvedBusinessProfile,
        };
        use crate::api::shaken_stir_trust_product::ShakenStirTrustProductStatus;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
        use kube::runtime::{reflector, watcher};

        fn product(
            name: &str,
            value: serde_json::Value,
            status: ShakenStirTrustProductStatus,
        ) -> ShakenStirTrustProduct {
            let mut p: ShakenStirTrustProduct = serde_json::from_value(value).expect("product");
            p.metadata.name = Some(name.into());
            p.metadata.namespace = Some("telecom".into());
            p.status = Some(status);
            p
        }
        let submitted = |status: &str, at: i64| Condition {
            type_: "Submitted".into(),
            status: status.into(),
            reason: "Submitted".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::from_second(at).expect("time")),
        };
        let template = |name: &str| {
            let example = std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/20-shaken-stir-trust-product.yaml"
            ))
            .expect("example");
            let mut v: serde_json::Value = serde_yaml::from_str(&example).expect("yaml");
            v["metadata"] = serde_json::json!({ "name": name });
            v
        };
        let products = [
            product(
                "approved",
                template("approved"),
                ShakenStirTrustProductStatus {
                    twilio_status: Some("twilio-approved".into()),
                    valid_until: Some("2027-06-01T00:00:00Z".into()),
                    conditions: vec![submitted("True", 1_000)],
                    submitted_at: Some(Time(Timestamp::from_second(2_000).expect("time"))),
                    ..Default::default()
                },
            ),
            product(
                "reviewing",
                template("reviewing"),
                ShakenStirTrustProductStatus {
                    twilio_status: Some("in-review".into()),
                    // Adopted under review: no submittedAt, the condition's time counts.
                    conditions: vec![submitted("True", 3_000)],
                    valid_until: Some("not a time".into()),
                    ..Default::default()
                },
            ),
            product(
                "draft",
                template("draft"),
                ShakenStirTrustProductStatus {
                    twilio_status: Some("draft".into()),
                    conditions: vec![submitted("False", 4_000)],
                    ..Default::default()
                },
            ),
            product(
                "odd",
                template("odd"),
                ShakenStirTrustProductStatus {
                    twilio_status: Some("something-new".into()),
                    ..Default::default()
                },
            ),
        ];
        let (product_store, mut writer) = reflector::store();
        for p in products {
            writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/10-business-profile-binding.yaml"
        ))
        .expect("example");
        let mut binding: BusinessProfileBinding = serde_yaml::from_str(&example).expect("yaml");
        binding.metadata.name = Some("primary".into());
        binding.metadata.namespace = Some("telecom".into());
        binding.status = Some(BusinessProfileBindingStatus {
            business_profile: Some(ResolvedBusinessProfile {
                sid: "BU00000000000000000000000000000000".into(),
                status: Some("twilio-rejected".into()),
                valid_until: Some("2027-01-02T03:04:05Z".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let (binding_store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(binding));
        (product_store, binding_store)
    }

    #[test]
    fn reports_each_object_its_status_expiry_and_submission() {
        let metrics = Metrics::new();
        let (products, bindings) = stores();
        let text = metrics.render(true, Some(&products), Some(&bindings));
        let p = r#"kind="ShakenStirTrustProduct",namespace="telecom""#;
        let b = r#"kind="BusinessProfileBinding",namespace="telecom""#;
        for line in [
            format!(r#"trusthub_vetting_status{{{p},name="approved",status="twilio-approved"}} 1"#),
            format!(r#"trusthub_vetting_status{{{p},name="reviewing",status="in-review"}} 1"#),
            format!(r#"trusthub_vetting_status{{{p},name="draft",status="draft"}} 1"#),
            format!(r#"trusthub_vetting_status{{{p},name="odd",status="other"}} 1"#),
            format!(r#"trusthub_vetting_status{{{b},name="primary",status="twilio-rejected"}} 1"#),
            // 2027-06-01T00:00:00Z and 2027-01-02T03:04:05Z.
            format!(r#"trusthub_valid_until_timestamp_seconds{{{p},name="approved"}} 1811808000"#),
            format!(r#"trusthub_valid_until_timestamp_seconds{{{b},name="primary"}} 1798859045"#),
            // submittedAt wins over the condition's transition time when both exist.
            format!(r#"trusthub_submitted_timestamp_seconds{{{p},name="approved"}} 2000"#),
            format!(r#"trusthub_submitted_timestamp_seconds{{{p},name="reviewing"}} 3000"#),
            r#"trusthub_resources{kind="ShakenStirTrustProduct",status="other"} 1"#.to_string(),
            r#"trusthub_resources{kind="BusinessProfileBinding",status="twilio-rejected"} 1"#
                .to_string(),
            "trusthub_leader 1".to_string(),
        ] {
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        // No expiry for an unparseable time, no submission for a product not submitted.
        assert!(!text.contains(r#"trusthub_valid_until_timestamp_seconds{kind="ShakenStirTrustProduct",namespace="telecom",name="reviewing"}"#));
        assert!(!text.contains(r#"name="draft"} "#), "{text}");
        assert!(!text.contains("BU0000"), "no SIDs in labels");
        assert_eq!(text.matches("trusthub_vetting_status{").count(), 5);
    }

    #[test]
    fn standby_reports_leader_zero_and_no_objects() {
        let metrics = Metrics::new();
        let text = metrics.render(false, None, None);
        assert!(text.contains("\ntrusthub_leader 0\n"), "{text}");
        // prometheus-client prints no HELP/TYPE for a family without samples: a standby shows
        // no object families at all (and the dashboard check needs a scrape after an
        // onboarding, see tests/e2e/chart_monitoring.rs).
        assert!(!text.contains("trusthub_vetting_status"), "{text}");
        assert!(!text.contains("trusthub_valid_until"), "{text}");
    }

    #[test]
    fn deleted_objects_and_changed_statuses_leave_no_stale_series() {
        let metrics = Metrics::new();
        let (products, bindings) = stores();
        metrics.render(true, Some(&products), Some(&bindings));
        let (empty, mut writer) = kube::runtime::reflector::store::<ShakenStirTrustProduct>();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        let text = metrics.render(true, Some(&empty), None);
        assert!(!text.contains("name=\"approved\""), "{text}");
        assert!(!text.contains("name=\"primary\""), "{text}");
    }

    #[test]
    fn prometheus_text_describes_counters_under_their_sample_names() {
        let metrics = Metrics::new();
        metrics.reconciled("ShakenStirTrustProduct", Duration::from_millis(3), None);
        let openmetrics = metrics.render(true, None, None);
        assert!(openmetrics.contains("# TYPE trusthub_reconciles counter\n"));
        let text = to_prometheus_text(&openmetrics);
        for line in [
            "# HELP trusthub_reconciles_total Finished reconciles",
            "# TYPE trusthub_reconciles_total counter\n",
            "trusthub_reconciles_total{kind=\"ShakenStirTrustProduct\",result=\"success\"} 1\n",
            "# TYPE trusthub_reconcile_duration_seconds histogram\n",
            "# TYPE trusthub_leader gauge\ntrusthub_leader 1\n",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            !text.contains("# TYPE trusthub_reconciles counter"),
            "{text}"
        );
    }

    #[test]
    fn only_an_explicit_text_plain_preference_gets_the_old_format() {
        assert!(wants_prometheus_text("text/plain"));
        assert!(wants_prometheus_text(
            "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
        ));
        // What Prometheus sends: it gets OpenMetrics.
        assert!(!wants_prometheus_text(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!wants_prometheus_text("*/*"));
        assert!(!wants_prometheus_text(""));
    }
}
