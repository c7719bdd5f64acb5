//! The chart's values: the operator flags they render, the namespace-scoped mode, optional
//! objects, the values schema (refusing unknown keys and wrong types, covering every value),
//! the README's values table, and the CRDs shipped with the chart.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::{Value, json};

use crate::chart::{args, chart_dir, ci_values, container, flag, kinds_and_names, object, render};
use crate::support::root;

const FULLNAME: &str = "rel-trusthub-operator";

#[test]
fn chart_default_flags_follow_the_operator_flag_contract() {
    let docs = render(&[]);
    let expected: Vec<String> = [
        "--metrics-addr=0.0.0.0:8080",
        "--max-in-flight=10",
        "--request-timeout=30s",
        "--concurrency=8",
        "--review-poll-initial=1m",
        "--review-poll-max=30m",
        "--approved-resync=12h",
        "--noncompliant-retry=30s",
        "--expiry-warning=30d",
        "--secret-access=get",
        "--secret-recheck=1m",
        "--log-format=json",
        "--log-level=info",
        "--leader-election",
        "--lease-name=rel-trusthub-operator",
        "--lease-namespace=ops",
        "--lease-duration=15s",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // The image's ENTRYPOINT is `trusthub-operator run`: args are flags only.
    assert_eq!(args(&docs), expected);
    assert!(
        container(&docs).get("command").is_none(),
        "keep the image ENTRYPOINT"
    );
}

#[test]
fn chart_renders_every_flag_from_values() {
    let docs = render(&["-f", &ci_values("all-features")]);
    let a = args(&docs);
    for (name, value) in [
        ("metrics-addr", "0.0.0.0:9090"),
        ("trust-hub-url", "https://trusthub.dublin.ie1.twilio.com"),
        ("api-url", "https://api.dublin.ie1.twilio.com"),
        ("twilio-region", "ie1"),
        ("twilio-edge", "dublin"),
        ("max-in-flight", "4"),
        ("request-timeout", "45s"),
        ("concurrency", "3"),
        ("review-poll-initial", "2m"),
        ("review-poll-max", "1h"),
        ("approved-resync", "6h"),
        ("noncompliant-retry", "1m"),
        ("expiry-warning", "14d"),
        ("secret-access", "get"),
        ("secret-recheck", "30s"),
        ("log-format", "text"),
        ("log-level", "info,trusthub_operator=debug"),
        ("leader-election", ""),
        ("lease-name", "trusthub-leader"),
        ("lease-namespace", "ops"),
        ("lease-duration", "20s"),
        ("webhook-addr", "0.0.0.0:9443"),
        // Derived from the Ingress host when webhook.publicUrl is empty.
        (
            "webhook-public-url",
            "https://trusthub.example.com/twilio/status-callback",
        ),
    ] {
        assert_eq!(flag(&a, name), Some(value), "--{name} in {a:?}");
    }
    assert_eq!(flag(&a, "namespace"), None, "all namespaces");
    assert_eq!(a.len(), 23, "no other flags: {a:?}");

    let explicit = render(&[
        "--set",
        "webhook.enabled=true,webhook.publicUrl=https://hooks.example.net/cb",
    ]);
    assert_eq!(
        flag(&args(&explicit), "webhook-public-url"),
        Some("https://hooks.example.net/cb")
    );

    let deployment: Deployment =
        serde_json::from_value(object(&docs, "Deployment", None).clone()).expect("a Deployment");
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.expect("pod spec");
    let c = &pod.containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("registry.example/ops/trusthub-operator:9.9.9")
    );
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(pod.image_pull_secrets.map(|s| s.len()), Some(1));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    assert!(
        pod.affinity.is_none(),
        "spreadAcrossNodes=false drops the anti-affinity"
    );
    assert_eq!(pod.tolerations.map(|t| t.len()), Some(1));
    assert_eq!(
        pod.node_selector
            .and_then(|n| n.get("kubernetes.io/os").cloned()),
        Some("linux".to_string())
    );
    let labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("voice"));
    let ports: Vec<(Option<String>, i32)> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        vec![
            (Some("metrics".to_string()), 9090),
            (Some("webhook".to_string()), 9443)
        ]
    );
    let service: Service =
        serde_json::from_value(object(&docs, "Service", None).clone()).expect("a Service");
    let service_ports: Vec<(Option<String>, i32)> = service
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, p.port))
        .collect();
    assert_eq!(service_ports, ports, "the Service exposes both ports");
}

#[test]
fn chart_namespaced_mode_uses_a_role_and_passes_namespace() {
    let docs = render(&["-f", &ci_values("namespaced")]);
    let names = kinds_and_names(&docs);
    let kinds: BTreeSet<&str> = names.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        !kinds.contains("ClusterRole") && !kinds.contains("ClusterRoleBinding"),
        "{kinds:?}"
    );
    let role: Role =
        serde_json::from_value(object(&docs, "Role", Some(FULLNAME)).clone()).expect("a Role");
    assert_eq!(role.metadata.namespace.as_deref(), Some("telecom"));
    let cluster_wide = render(&[]);
    let cluster_rules = &object(&cluster_wide, "ClusterRole", None)["rules"];
    assert_eq!(
        serde_json::to_value(&role.rules).expect("rules"),
        *cluster_rules,
        "the same rules, only namespaced"
    );
    let binding: RoleBinding =
        serde_json::from_value(object(&docs, "RoleBinding", Some(FULLNAME)).clone())
            .expect("a RoleBinding");
    assert_eq!(binding.metadata.namespace.as_deref(), Some("telecom"));
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, FULLNAME);
    let subject = &binding.subjects.expect("subjects")[0];
    assert_eq!(
        subject.namespace.as_deref(),
        Some("ops"),
        "the SA lives in the release namespace"
    );

    let a = args(&docs);
    assert_eq!(flag(&a, "namespace"), Some("telecom"));
    assert_eq!(flag(&a, "leader-election"), None);
    assert_eq!(flag(&a, "lease-name"), None);
    assert!(
        !names.iter().any(|(_, n)| n.ends_with("leader-election")),
        "no Lease RBAC without leader election: {names:?}"
    );
    assert_eq!(object(&docs, "Deployment", None)["spec"]["replicas"], 1);
}

#[test]
fn chart_optional_objects_appear_only_when_enabled() {
    let optional = [
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ];
    let default_kinds: BTreeSet<String> = kinds_and_names(&render(&[]))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for kind in optional {
        assert!(!default_kinds.contains(kind), "{kind} rendered by default");
    }
    assert!(flag(&args(&render(&[])), "webhook-addr").is_none());

    for (set, kind) in [
        ("metrics.serviceMonitor.enabled=true", "ServiceMonitor"),
        ("prometheusRule.enabled=true", "PrometheusRule"),
        ("grafanaDashboard.enabled=true", "ConfigMap"),
        (
            "webhook.enabled=true,webhook.ingress.enabled=true,webhook.ingress.host=h.example",
            "Ingress",
        ),
        ("networkPolicy.enabled=true", "NetworkPolicy"),
        ("podDisruptionBudget.enabled=true", "PodDisruptionBudget"),
    ] {
        let kinds: BTreeSet<String> = kinds_and_names(&render(&["--set", set]))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for other in optional {
            assert_eq!(kinds.contains(other), other == kind, "{other} with {set}");
        }
    }

    // Enabled without peers: deny all ingress, leave egress alone.
    let deny = render(&["--set", "networkPolicy.enabled=true"]);
    let deny = &object(&deny, "NetworkPolicy", None)["spec"];
    assert_eq!(deny["policyTypes"], json!(["Ingress"]));
    assert_eq!(deny["ingress"], json!([]));
    assert!(deny.get("egress").is_none());

    let docs = render(&["-f", &ci_values("all-features")]);
    let monitor = object(&docs, "ServiceMonitor", None);
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "honorLabels": true, "interval": "1m", "scrapeTimeout": "20s"}])
    );
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");

    let ingress: Ingress =
        serde_json::from_value(object(&docs, "Ingress", None).clone()).expect("an Ingress");
    let spec = ingress.spec.expect("spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let tls = spec.tls.expect("tls");
    assert_eq!(tls[0].secret_name.as_deref(), Some("trusthub-webhook-tls"));
    let rule = &spec.rules.expect("rules")[0];
    assert_eq!(rule.host.as_deref(), Some("trusthub.example.com"));
    let paths = &rule.http.as_ref().expect("http").paths;
    assert_eq!(
        paths.len(),
        1,
        "only the callback path is public, never metrics"
    );
    assert_eq!(paths[0].path.as_deref(), Some("/twilio/status-callback"));
    assert_eq!(paths[0].path_type, "Exact");
    let backend = paths[0].backend.service.as_ref().expect("service backend");
    assert_eq!(backend.name, FULLNAME);
    assert_eq!(
        backend.port.as_ref().and_then(|p| p.name.as_deref()),
        Some("webhook")
    );

    let policy: NetworkPolicy =
        serde_json::from_value(object(&docs, "NetworkPolicy", None).clone())
            .expect("a NetworkPolicy");
    let policy = serde_json::to_value(policy.spec.expect("spec")).expect("json");
    assert_eq!(policy["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["ingress"][0]["ports"],
        json!([{"port": "metrics", "protocol": "TCP"}])
    );
    assert_eq!(
        policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(
        policy["ingress"][1]["ports"],
        json!([{"port": "webhook", "protocol": "TCP"}])
    );
    assert_eq!(
        policy["egress"],
        json!([
            {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            {"ports": [{"port": 443, "protocol": "TCP"}]}
        ])
    );

    let pdb: PodDisruptionBudget =
        serde_json::from_value(object(&docs, "PodDisruptionBudget", None).clone())
            .expect("a PodDisruptionBudget");
    let pdb = serde_json::to_value(pdb.spec.expect("spec")).expect("json");
    assert_eq!(pdb["minAvailable"], 2);
    assert_eq!(
        pdb["selector"]["matchLabels"],
        object(&docs, "Deployment", None)["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn chart_schema_rejects_unknown_values_and_wrong_types() {
    for (set, expect) in [
        ("replicas=2", "replicas"),
        ("twilio.regoin=ie1", "regoin"),
        ("replicaCount=two", "replicaCount"),
        ("leaderElection.enabled=yes", "enabled"),
        ("metrics.port=99999", "port"),
        ("logging.format=xml", "format"),
        ("controller.reviewPollMax=soon", "reviewPollMax"),
        ("webhook.publicUrl=http://insecure.example/cb", "publicUrl"),
        ("twilio.maxInFlight=0", "maxInFlight"),
        ("leaderElection.leaseDuration=500ms", "leaseDuration"),
    ] {
        let err = refused(&["--set", set]);
        assert!(err.contains(expect), "{set}: error names {expect}:\n{err}");
    }
    // Combinations the schema cannot express are refused by the templates.
    for (set, expect) in [
        ("leaderElection.enabled=false", "leaderElection.enabled"),
        (
            "webhook.ingress.enabled=true,webhook.ingress.host=h",
            "webhook.enabled",
        ),
        (
            "webhook.enabled=true,webhook.ingress.enabled=true",
            "webhook.ingress.host",
        ),
        ("webhook.enabled=true,webhook.port=8080", "differ"),
    ] {
        let err = crate::chart::refused_by_template(&["--set", set]);
        assert!(
            err.contains(expect),
            "{set}: error mentions {expect}:\n{err}"
        );
    }
}

fn refused(extra: &[&str]) -> String {
    crate::chart::refused_by_lint_and_template(extra)
}

/// Follows a local `$ref` (`#/definitions/x`).
fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str() {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(schema, schema.pointer(pointer).expect("$ref resolves"))
        }
        None => node,
    }
}

/// Every value in values.yaml has a schema property and every struct-like schema refuses
/// unknown keys; every schema property is a value in values.yaml (no stale entries).
fn check_covered(
    schema: &Value,
    node: &Value,
    values: &Value,
    path: &str,
    leaves: &mut Vec<String>,
) {
    // Shared shapes reached through $ref (e.g. a resource list) may have optional keys that
    // values.yaml leaves out; the chart's own objects must match values.yaml exactly.
    let shared = node.get("$ref").is_some();
    let node = resolve(schema, node);
    let Some(props) = node["properties"].as_object() else {
        leaves.push(path.to_string());
        return;
    };
    assert_eq!(
        node["additionalProperties"], false,
        "{path}: additionalProperties false"
    );
    let values = values
        .as_object()
        .unwrap_or_else(|| panic!("{path} is an object in values.yaml"));
    let schema_keys: BTreeSet<&String> = props.keys().collect();
    let value_keys: BTreeSet<&String> = values.keys().collect();
    if shared {
        assert!(
            value_keys.is_subset(&schema_keys),
            "{path}: {value_keys:?} in the schema"
        );
    } else {
        assert_eq!(
            schema_keys, value_keys,
            "{path}: schema properties == values.yaml keys"
        );
    }
    for (key, value) in values {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        check_covered(schema, &props[key], value, &child, leaves);
    }
}

fn values_yaml() -> Value {
    serde_yaml::from_str(
        &std::fs::read_to_string(chart_dir().join("values.yaml")).expect("read values.yaml"),
    )
    .expect("values.yaml parses")
}

fn schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).expect("read schema"),
    )
    .expect("schema parses")
}

#[test]
fn chart_schema_covers_every_value() {
    let schema = schema();
    let mut leaves = Vec::new();
    check_covered(&schema, &schema, &values_yaml(), "", &mut leaves);
    assert!(leaves.len() > 40, "walked the whole tree: {leaves:?}");
    // Objects reached only through $ref (selectors, peers, resources) refuse unknown keys too.
    fn closed_everywhere(node: &Value, path: &str) {
        if let Some(obj) = node.as_object() {
            if obj.contains_key("properties") {
                assert_eq!(node["additionalProperties"], false, "{path}");
            }
            for (k, v) in obj {
                closed_everywhere(v, &format!("{path}/{k}"));
            }
        } else if let Some(items) = node.as_array() {
            for (i, v) in items.iter().enumerate() {
                closed_everywhere(v, &format!("{path}/{i}"));
            }
        }
    }
    closed_everywhere(&schema, "");
}

#[test]
fn chart_readme_documents_every_value() {
    let schema = schema();
    let mut leaves = Vec::new();
    check_covered(&schema, &schema, &values_yaml(), "", &mut leaves);
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).expect("read README");
    let missing: Vec<&String> = leaves
        .iter()
        .filter(|leaf| !readme.contains(&format!("| `{leaf}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "values missing from the README table: {missing:?}"
    );
}

#[test]
fn chart_crds_are_identical_to_crds_dir() {
    let list = |dir: std::path::PathBuf| -> BTreeSet<String> {
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let source = list(root().join("crds"));
    assert_eq!(list(chart_dir().join("crds")), source, "same files");
    assert_eq!(source.len(), 2);
    for file in &source {
        let a = std::fs::read(root().join("crds").join(file)).expect("read crds/");
        let b = std::fs::read(chart_dir().join("crds").join(file)).expect("read chart crds/");
        assert!(
            a == b,
            "charts/trusthub-operator/crds/{file} differs from crds/{file}: run `cargo run --bin crdgen`, which writes both"
        );
    }
    // And helm ships them: --include-crds renders both definitions.
    let docs = render(&["--include-crds"]);
    let crds: BTreeSet<String> = kinds_and_names(&docs)
        .into_iter()
        .filter(|(k, _)| k == "CustomResourceDefinition")
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        crds,
        BTreeSet::from([
            "businessprofilebindings.trusthub.stir.dev".to_string(),
            "shakenstirtrustproducts.trusthub.stir.dev".to_string()
        ])
    );
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("read Chart.yaml"),
    )
    .expect("Chart.yaml parses");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}
