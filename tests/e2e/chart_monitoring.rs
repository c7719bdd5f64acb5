//! The chart's monitoring: the PrometheusRule's alerts, unit-tested with the real `promtool`
//! (`promtool check rules`, `promtool test rules` with `charts/trusthub-operator/tests/
//! alerts-test.yaml`), and the Grafana dashboard ConfigMap (valid dashboard JSON, the sidecar's
//! label). What the operator really exports is checked against the alerts and the dashboard by
//! [`assert_monitoring_names_only_exported_metrics`] and against `promtool check metrics` by
//! [`assert_promtool_accepts_metrics`], both called from `operator_metrics` on the `/metrics` of
//! an operator that just ran an onboarding (families without samples are not printed, so an
//! idle operator would not show them all).
//!
//! Tools: `helm` and `promtool` from `bash scripts/install-tools.sh` (or `TRUSTHUB_TOOLS_DIR`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::chart::{chart_dir, ci_values, object, render};
use crate::client_support::tool;
use crate::support::tempdir;

/// The job name the default selector matches with release `rel` (as in alerts-test.yaml).
const DEFAULT_SELECTOR: &str = r#"job="rel-trusthub-operator""#;

fn promtool(args: &[&str], dir: &Path, stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(tool("promtool"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .expect("write promtool's stdin");
        }
    }
    let out = child.wait_with_output().expect("wait for promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The rendered PrometheusRule (with `extra` values).
fn prometheus_rule(extra: &[&str]) -> Value {
    object(&render(extra), "PrometheusRule", None).clone()
}

/// The rules of a PrometheusRule as a plain Prometheus rule file in `dir`.
fn write_rule_file(rule: &Value, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("rules.yaml");
    std::fs::write(
        &path,
        serde_yaml::to_string(&rule["spec"]).expect("rules as YAML"),
    )
    .expect("write rules.yaml");
    path
}

fn rules(rule: &Value) -> Vec<&Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .collect()
}

fn alert_names(rule: &Value) -> BTreeSet<String> {
    rules(rule)
        .iter()
        .map(|r| {
            r["alert"]
                .as_str()
                .expect("every rule is an alert")
                .to_string()
        })
        .collect()
}

const EXPECTED_ALERTS: [&str; 8] = [
    "TrustHubVettingRejected",
    "TrustHubApprovalExpiring",
    "TrustHubVettingStuckInReview",
    "TrustHubReconcileErrors",
    "TrustHubTwilioThrottled",
    "TrustHubOperatorNoLeader",
    "TrustHubOperatorDown",
    "TrustHubCoverageIncomplete",
];

#[test]
fn chart_monitoring_alerts_pass_promtool_unit_tests() {
    let rule = prometheus_rule(&["--set", "prometheusRule.enabled=true"]);
    assert_eq!(
        alert_names(&rule),
        EXPECTED_ALERTS.iter().map(|a| a.to_string()).collect(),
        "every alert of the chart is tested"
    );
    let dir = tempdir::Dir::new();
    write_rule_file(&rule, dir.path());
    let cases = chart_dir().join("tests/alerts-test.yaml");
    std::fs::copy(&cases, dir.path().join("alerts-test.yaml")).expect("copy the cases");

    let (ok, out) = promtool(&["check", "rules", "rules.yaml"], dir.path(), None);
    assert!(ok, "promtool check rules:\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", EXPECTED_ALERTS.len())),
        "{out}"
    );
    let (ok, out) = promtool(&["test", "rules", "alerts-test.yaml"], dir.path(), None);
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    // Every alert has a case where it fires and one where it must not.
    let cases: Value = serde_yaml::from_str(&std::fs::read_to_string(&cases).expect("read cases"))
        .expect("cases parse");
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for test in cases["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().expect("alert_rule_test") {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            let entry = seen.entry(name).or_default();
            if fires {
                entry.0 = true;
                for alert in case["exp_alerts"].as_array().into_iter().flatten() {
                    assert!(
                        alert["exp_labels"]["severity"].is_string(),
                        "expected labels name the severity: {alert}"
                    );
                    assert!(
                        alert["exp_annotations"]["description"].is_string(),
                        "expected annotations are checked: {alert}"
                    );
                }
            } else {
                entry.1 = true;
            }
        }
    }
    for alert in EXPECTED_ALERTS {
        assert_eq!(
            seen.get(alert),
            Some(&(true, true)),
            "{alert} needs a case that fires and one that does not"
        );
    }
}

#[test]
fn chart_monitoring_alerts_follow_their_values() {
    let rule = prometheus_rule(&["-f", &ci_values("all-features")]);
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let dir = tempdir::Dir::new();
    write_rule_file(&rule, dir.path());
    let (ok, out) = promtool(&["check", "rules", "rules.yaml"], dir.path(), None);
    assert!(ok, "promtool check rules (all-features):\n{out}");
    let by_name: BTreeMap<&str, &Value> = rules(&rule)
        .into_iter()
        .map(|r| (r["alert"].as_str().expect("alert"), r))
        .collect();
    for (name, r) in &by_name {
        let expr = r["expr"].as_str().expect("expr");
        assert!(
            expr.contains(r#"{job="trusthub",cluster="eu""#),
            "{name} uses the selector: {expr}"
        );
        assert!(!expr.contains(DEFAULT_SELECTOR), "{name}: {expr}");
        assert_eq!(r["labels"]["team"], "voice", "{name}");
        assert!(
            ["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap_or("")),
            "{name}"
        );
    }
    let expr = |name: &str| by_name[name]["expr"].as_str().expect("expr").to_string();
    assert!(expr("TrustHubApprovalExpiring").contains("< 45 * 86400"));
    assert!(expr("TrustHubVettingStuckInReview").contains("> 21 * 86400"));
    for (name, duration) in [
        ("TrustHubReconcileErrors", "1h"),
        ("TrustHubTwilioThrottled", "30m"),
        ("TrustHubOperatorNoLeader", "10m"),
        ("TrustHubOperatorDown", "3m"),
    ] {
        assert_eq!(by_name[name]["for"], duration, "{name}");
    }

    // The ServiceMonitor keeps the objects' `namespace` label the per-object alerts name.
    let docs = render(&["-f", &ci_values("all-features")]);
    let monitor = object(&docs, "ServiceMonitor", None);
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
}

#[test]
fn chart_monitoring_values_are_checked_by_the_schema() {
    for (flag, bad, why) in [
        (
            "--set",
            "prometheusRule.alertLabels.severity=page",
            "'not' failed",
        ),
        ("--set", "prometheusRule.alertLabels.bad-name=x", "bad-name"),
        (
            "--set",
            "prometheusRule.downFor=1m1h",
            "does not match pattern",
        ),
        (
            "--set",
            "prometheusRule.expiryWarningDays=0",
            "expiryWarningDays",
        ),
        ("--set", "prometheusRule.enable=true", "enable"),
        (
            "--set-json",
            r#"prometheusRule.selector="{job=\"x\"}""#,
            "does not match pattern",
        ),
        ("--set", "grafanaDashboard.label=", "label"),
    ] {
        let err = crate::chart::refused_by_template(&[flag, bad]);
        assert!(err.contains(why), "{bad}: {err}");
    }
}

/// The dashboard file shipped with the chart.
fn dashboard_file() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("dashboards/trusthub-operator.json"))
            .expect("read the dashboard"),
    )
    .expect("the dashboard is JSON")
}

/// Every panel, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    panels(dashboard)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("every target has an expr")
                .to_string()
        })
        .collect()
}

/// The `trusthub_*` metric names an expression mentions (identifiers, so `$__rate_interval`
/// and label values in quotes are not taken for metrics).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    let mut in_string: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if let Some(q) = in_string {
            if c == '\\' {
                chars.next();
            } else if c == q {
                in_string = None;
            }
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            in_string = Some(c);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[i..end];
            let after_dollar = i > 0 && expr[..i].ends_with('$');
            if word.starts_with("trusthub_") && !after_dollar {
                names.insert(word.to_string());
            }
        }
    }
    names
}

#[test]
fn metric_names_finds_metrics_only() {
    let names = metric_names(
        r#"sum by (operation) (rate(trusthub_twilio_throttled_total{job=~"$job",x="trusthub_not_a_metric"}[$__rate_interval])) / ignoring(le) trusthub_a:b_bucket"#,
    );
    assert_eq!(
        names,
        ["trusthub_a:b_bucket", "trusthub_twilio_throttled_total"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

#[test]
fn chart_monitoring_dashboard_is_a_valid_grafana_dashboard() {
    let dashboard = dashboard_file();
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(dashboard["uid"], "trusthub-operator");
    assert!(
        dashboard["uid"].as_str().is_some_and(|u| u.len() <= 40),
        "Grafana limits uids to 40 characters"
    );
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    assert!(
        dashboard.get("id").is_none_or(Value::is_null),
        "no fixed id (Grafana assigns it)"
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let datasource = variables
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["query"], "prometheus");
    let variable_names: BTreeSet<&str> = variables
        .iter()
        .map(|v| v["name"].as_str().expect("variable name"))
        .collect();

    let all = panels(&dashboard);
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for panel in &all {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let title = panel["title"].as_str().expect("panel title");
        assert!(titles.insert(title), "panel title {title:?} twice");
        let grid = &panel["gridPos"];
        for k in ["x", "y", "w", "h"] {
            assert!(grid[k].is_u64(), "{title}: gridPos.{k}");
        }
        assert!(grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99) <= 24);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title} uses the datasource variable"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has queries");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(
                !metric_names(expr).is_empty() || expr.starts_with("sum(up{"),
                "{title} queries the operator's metrics: {expr}"
            );
            assert!(t["refId"].is_string(), "{title}: refId");
            // Every `$variable` it uses is defined (Grafana's own `$__…` aside).
            for var in expr.split('$').skip(1) {
                let name: String = var
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    name.starts_with("__") || variable_names.contains(name.as_str()),
                    "{title}: ${name} is not a variable"
                );
            }
            // Every query is scoped to the selected job.
            assert!(expr.contains(r#"job=~"$job""#), "{title}: {expr}");
        }
    }
    // The panels the issue asks for.
    let exprs = dashboard_exprs(&dashboard).join("\n");
    for metric in [
        "trusthub_resources",
        "trusthub_vetting_status",
        "trusthub_valid_until_timestamp_seconds",
        "trusthub_submitted_timestamp_seconds",
        "trusthub_twilio_requests_total",
        "trusthub_twilio_request_duration_seconds_bucket",
        "trusthub_twilio_throttled_total",
        "trusthub_reconcile_failures_total",
        "trusthub_leader",
    ] {
        assert!(exprs.contains(metric), "no panel shows {metric}");
    }
    assert!(
        !exprs.contains("coverage"),
        "no coverage panel until the operator exports coverage (issue J)"
    );
}

#[test]
fn chart_monitoring_dashboard_configmap_carries_the_sidecar_label() {
    let file = dashboard_file();
    let docs = render(&["--set", "grafanaDashboard.enabled=true"]);
    let map = object(&docs, "ConfigMap", Some("rel-trusthub-operator-dashboard"));
    assert_eq!(map["metadata"]["namespace"], "ops");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let data = map["data"]["trusthub-operator.json"]
        .as_str()
        .expect("dashboard data");
    let shipped: Value = serde_json::from_str(data).expect("the ConfigMap holds JSON");
    assert_eq!(shipped, file, "the ConfigMap carries the file unchanged");

    let docs = render(&["-f", &ci_values("all-features")]);
    let map = object(&docs, "ConfigMap", Some("rel-trusthub-operator-dashboard"));
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    let labels = &map["metadata"]["labels"];
    assert_eq!(labels["grafana_dashboard_custom"], "yes");
    assert!(labels.get("grafana_dashboard").is_none());
    assert_eq!(labels["release"], "grafana");
    assert_eq!(map["metadata"]["annotations"]["grafana_folder"], "Telecom");
}

/// Sample names (`x_total`, `x_bucket`, plain gauges) of an exposition.
fn exported_samples(metrics_text: &str) -> BTreeSet<String> {
    metrics_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every `trusthub_*` metric the dashboard's queries and the alerts' expressions name is a
/// sample the operator printed in `metrics_text` (a scrape after an onboarding with failures
/// and 429s, so every family has samples).
pub fn assert_monitoring_names_only_exported_metrics(metrics_text: &str) {
    let exported = exported_samples(metrics_text);
    let mut named = BTreeSet::new();
    for expr in dashboard_exprs(&dashboard_file()) {
        named.extend(metric_names(&expr));
    }
    let rule = prometheus_rule(&["--set", "prometheusRule.enabled=true"]);
    for r in rules(&rule) {
        named.extend(metric_names(r["expr"].as_str().expect("expr")));
    }
    assert!(named.len() >= 10, "{named:?}");
    let missing: Vec<&String> = named.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard or alerts name metrics the operator does not export: {missing:?}\nexported: {exported:?}"
    );
}

/// `promtool check metrics` accepts the operator's exposition (ask for it with
/// `Accept: text/plain`: promtool reads only the Prometheus text format).
pub fn assert_promtool_accepts_metrics(prometheus_text: &str) {
    let dir = tempdir::Dir::new();
    let (ok, out) = promtool(&["check", "metrics"], dir.path(), Some(prometheus_text));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}\non\n{prometheus_text}"
    );
}

/// promtool reads only the Prometheus text format: fed the OpenMetrics text, it reports the
/// counters (HELP/TYPE name `x`, samples `x_total`) as undocumented. That is why the operator
/// serves text to a client asking for `text/plain`.
pub fn assert_promtool_refuses_openmetrics(openmetrics: &str) {
    let dir = tempdir::Dir::new();
    let (ok, out) = promtool(&["check", "metrics"], dir.path(), Some(openmetrics));
    assert!(!ok && out.contains("no help text"), "{out}");
}
