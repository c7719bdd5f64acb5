//! The Helm chart (`charts/trusthub-operator`), checked by rendering it with the real `helm`
//! binary (`helm lint`, `helm template`) and asserting on the objects it produces: least-privilege
//! RBAC, the hardened pod, probes, the operator flags rendered from values, the namespace-scoped
//! mode, optional objects, the values schema, and the CRDs shipped with the chart.
//!
//! Not modelled: installing into a cluster (no API server that runs Deployments here); the
//! rendered objects are parsed into the k8s-openapi types instead, which catches type errors
//! but not admission-time defaults. The image is covered by `chart_image`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::client_support::tool;
use crate::support::root;

const RELEASE: &str = "rel";
const RELEASE_NS: &str = "ops";
const FULLNAME: &str = "rel-trusthub-operator";

pub fn chart_dir() -> PathBuf {
    root().join("charts/trusthub-operator")
}

fn helm(args: &[&str]) -> Output {
    Command::new(tool("helm"))
        .args(args)
        .current_dir(chart_dir())
        .output()
        .expect("run helm")
}

fn template_output(extra: &[&str]) -> Output {
    let mut args = vec!["template", RELEASE, ".", "--namespace", RELEASE_NS];
    args.extend_from_slice(extra);
    helm(&args)
}

/// `helm template` with extra arguments; the rendered documents (empty ones dropped).
pub fn render(extra: &[&str]) -> Vec<Value> {
    let out = template_output(extra);
    assert!(
        out.status.success(),
        "helm template {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("helm prints UTF-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("helm renders valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Asserts that `helm template` (and so install and upgrade) refuses these arguments; its stderr.
pub fn refused_by_template(extra: &[&str]) -> String {
    let out = template_output(extra);
    assert!(!out.status.success(), "helm template accepted {extra:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that both `helm lint` and `helm template` refuse these arguments; their stderr.
pub fn refused_by_lint_and_template(extra: &[&str]) -> String {
    let mut lint_args = vec!["lint", "."];
    lint_args.extend_from_slice(extra);
    let lint = helm(&lint_args);
    let template = template_output(extra);
    assert!(!lint.status.success(), "helm lint accepted {extra:?}");
    assert!(
        !template.status.success(),
        "helm template accepted {extra:?}"
    );
    format!(
        "{}{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr),
        String::from_utf8_lossy(&template.stderr)
    )
}

pub fn ci_values(name: &str) -> String {
    format!("ci/{name}-values.yaml")
}

/// The one object of this kind (and name, when given).
pub fn object<'a>(docs: &'a [Value], kind: &str, name: Option<&str>) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} {name:?}, got {found:?}"
    );
    found[0]
}

pub fn kinds_and_names(docs: &[Value]) -> BTreeSet<(String, String)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

pub fn container(docs: &[Value]) -> &Value {
    let containers =
        &object(docs, "Deployment", Some(FULLNAME))["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

pub fn args(docs: &[Value]) -> Vec<String> {
    container(docs)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect()
}

/// The value of `--name=value`, `Some("")` for a bare `--name`, `None` when absent.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let matches: Vec<&str> = args
        .iter()
        .filter_map(|a| {
            let rest = a.strip_prefix("--")?.strip_prefix(name)?;
            if rest.is_empty() {
                Some("")
            } else {
                rest.strip_prefix('=')
            }
        })
        .collect();
    assert!(matches.len() <= 1, "--{name} given twice: {args:?}");
    matches.first().copied()
}

/// RBAC rules flattened to (apiGroup, resource, verb, resourceNames) so that splitting rules
/// differently cannot hide an extra permission.
fn grants(rules: &Value) -> BTreeSet<(String, String, String, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "no non-resource URLs: {rule}"
        );
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    for part in [&group, &resource, &verb] {
                        assert!(!part.contains('*'), "wildcard in {rule}");
                    }
                    out.insert((
                        group.clone(),
                        resource.clone(),
                        verb,
                        strings(&rule["resourceNames"]),
                    ));
                }
            }
        }
    }
    out
}

fn expected_operator_grants() -> BTreeSet<(String, String, String, Vec<String>)> {
    let mut out = BTreeSet::new();
    let mut add = |group: &str, resources: &[&str], verbs: &[&str]| {
        for r in resources {
            for v in verbs {
                out.insert((group.to_string(), r.to_string(), v.to_string(), vec![]));
            }
        }
    };
    let kinds = ["businessprofilebindings", "shakenstirtrustproducts"];
    // Exactly what the real apiserver's audit log shows the operator using (real_chart.rs).
    add(
        "trusthub.stir.dev",
        &kinds,
        &["get", "list", "watch", "patch"],
    );
    let status: Vec<String> = kinds.iter().map(|k| format!("{k}/status")).collect();
    let status: Vec<&str> = status.iter().map(String::as_str).collect();
    add("trusthub.stir.dev", &status, &["patch"]);
    // Secrets by name only: the default secrets.access=get.
    add("", &["secrets"], &["get"]);
    add("events.k8s.io", &["events"], &["create", "patch"]);
    out
}

fn secret_grants(verbs: &[&str]) -> BTreeSet<(String, String, String, Vec<String>)> {
    verbs
        .iter()
        .map(|v| (String::new(), "secrets".to_string(), v.to_string(), vec![]))
        .collect()
}

/// The narrow Secret mode is the default (get by name, no list or watch); `watch` adds list and
/// watch; `secrets.namespaces` moves the Secret grant into a Role per listed namespace.
#[test]
fn chart_secret_access_is_get_only_by_default_and_per_namespace_on_request() {
    let docs = render(&[]);
    let cluster = grants(&object(&docs, "ClusterRole", Some(FULLNAME))["rules"]);
    let secrets: BTreeSet<_> = cluster
        .iter()
        .filter(|g| g.1 == "secrets")
        .cloned()
        .collect();
    assert_eq!(secrets, secret_grants(&["get"]), "default: get only");
    let a = args(&docs);
    assert_eq!(flag(&a, "secret-access"), Some("get"));
    assert_eq!(flag(&a, "secret-recheck"), Some("1m"));

    let docs = render(&[
        "--set",
        "secrets.access=watch",
        "--set",
        "secrets.labelSelector=trusthub.stir.dev/credentials=true",
    ]);
    let cluster = grants(&object(&docs, "ClusterRole", Some(FULLNAME))["rules"]);
    let secrets: BTreeSet<_> = cluster
        .iter()
        .filter(|g| g.1 == "secrets")
        .cloned()
        .collect();
    assert_eq!(secrets, secret_grants(&["get", "list", "watch"]));
    let a = args(&docs);
    assert_eq!(flag(&a, "secret-access"), Some("watch"));
    assert_eq!(
        flag(&a, "secret-label-selector"),
        Some("trusthub.stir.dev/credentials=true")
    );
    assert_eq!(flag(&a, "secret-recheck"), None);

    let docs = render(&["--set", "secrets.namespaces={acme,beta}"]);
    let cluster = grants(&object(&docs, "ClusterRole", Some(FULLNAME))["rules"]);
    assert!(
        cluster.iter().all(|g| g.1 != "secrets"),
        "no cluster-wide Secret grant: {cluster:?}"
    );
    let name = format!("{FULLNAME}-secrets");
    for ns in ["acme", "beta"] {
        let role = docs
            .iter()
            .find(|d| {
                d["kind"] == "Role"
                    && d["metadata"]["name"] == name.as_str()
                    && d["metadata"]["namespace"] == ns
            })
            .unwrap_or_else(|| panic!("a Secret Role in {ns}"));
        assert_eq!(grants(&role["rules"]), secret_grants(&["get"]));
        let binding = docs
            .iter()
            .find(|d| {
                d["kind"] == "RoleBinding"
                    && d["metadata"]["name"] == name.as_str()
                    && d["metadata"]["namespace"] == ns
            })
            .unwrap_or_else(|| panic!("a Secret RoleBinding in {ns}"));
        assert_binding(binding, "Role", &name);
    }
    for refused in [
        vec![
            "--set",
            "secrets.namespaces={acme}",
            "--set",
            "secrets.access=watch",
        ],
        vec![
            "--set",
            "secrets.namespaces={acme}",
            "--set",
            "watchNamespace=acme",
        ],
        vec!["--set", "secrets.access=list"],
    ] {
        let out = template_output(&refused);
        assert!(!out.status.success(), "{refused:?} must be refused");
    }
}

fn assert_binding(binding: &Value, role_kind: &str, role_name: &str) {
    assert_eq!(binding["roleRef"]["kind"], role_kind, "{binding}");
    assert_eq!(binding["roleRef"]["name"], role_name, "{binding}");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NS}]),
        "bound to the operator's ServiceAccount only"
    );
}

#[test]
fn chart_lints_with_default_and_ci_values() {
    for extra in [
        vec![],
        vec!["-f".to_string(), ci_values("all-features")],
        vec!["-f".to_string(), ci_values("namespaced")],
    ] {
        let mut args = vec!["lint", ".", "--strict", "--namespace", RELEASE_NS];
        args.extend(extra.iter().map(String::as_str));
        let out = helm(&args);
        assert!(
            out.status.success(),
            "helm lint {extra:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn chart_default_render_has_exactly_the_expected_objects() {
    let docs = render(&[]);
    let expected: BTreeSet<(String, String)> = [
        ("ServiceAccount", FULLNAME),
        ("ClusterRole", FULLNAME),
        ("ClusterRoleBinding", FULLNAME),
        ("Role", "rel-trusthub-operator-leader-election"),
        ("RoleBinding", "rel-trusthub-operator-leader-election"),
        ("Service", FULLNAME),
        ("Deployment", FULLNAME),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds_and_names(&docs), expected);
    for doc in &docs {
        let cluster_scoped =
            ["ClusterRole", "ClusterRoleBinding"].contains(&doc["kind"].as_str().unwrap_or(""));
        let ns = doc["metadata"]["namespace"].as_str();
        if cluster_scoped {
            assert_eq!(ns, None, "{doc}");
        } else {
            assert_eq!(
                ns,
                Some(RELEASE_NS),
                "namespaced objects go to the release namespace: {doc}"
            );
        }
    }
    let deployment = object(&docs, "Deployment", None);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        container(&docs)["image"],
        format!(
            "ghcr.io/trusthub-operator/trusthub-operator:{}",
            env!("CARGO_PKG_VERSION")
        ),
        "the default tag is the chart's appVersion, the crate's version"
    );
    // The selector must pick the pods, and the Service must pick the same pods.
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (k, v) in selector.as_object().expect("matchLabels") {
        assert_eq!(&pod_labels[k], v, "pod label {k}");
    }
    assert_eq!(
        &object(&docs, "Service", None)["spec"]["selector"],
        selector
    );
}

#[test]
fn chart_rbac_is_least_privilege() {
    for extra in [vec![], vec!["-f".to_string(), ci_values("all-features")]] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let docs = render(&extra);
        let role = object(&docs, "ClusterRole", Some(FULLNAME));
        assert_eq!(grants(&role["rules"]), expected_operator_grants());
        assert_binding(
            object(&docs, "ClusterRoleBinding", Some(FULLNAME)),
            "ClusterRole",
            FULLNAME,
        );

        let lease = if extra.is_empty() {
            FULLNAME
        } else {
            "trusthub-leader"
        };
        let election = object(&docs, "Role", Some("rel-trusthub-operator-leader-election"));
        assert_eq!(election["metadata"]["namespace"], RELEASE_NS);
        let expected: BTreeSet<_> = [
            ("create", vec![]),
            ("get", vec![lease.to_string()]),
            ("update", vec![lease.to_string()]),
        ]
        .into_iter()
        .map(|(verb, names)| {
            (
                "coordination.k8s.io".to_string(),
                "leases".to_string(),
                verb.to_string(),
                names,
            )
        })
        .collect();
        assert_eq!(grants(&election["rules"]), expected);
        assert_binding(
            object(
                &docs,
                "RoleBinding",
                Some("rel-trusthub-operator-leader-election"),
            ),
            "Role",
            "rel-trusthub-operator-leader-election",
        );
    }
}

#[test]
fn chart_pod_is_hardened() {
    let docs = render(&[]);
    let pod = &object(&docs, "Deployment", None)["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod.get(host).is_none(), "{host} must not be set");
    }
    let c = container(&docs);
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(
        sc["capabilities"],
        json!({"drop": ["ALL"]}),
        "drop ALL, add none"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "50m", "memory": "64Mi"})
    );
    assert_eq!(
        c["resources"]["limits"],
        json!({"cpu": "500m", "memory": "256Mi"})
    );
    // The downward API gives leader election its identity and namespace.
    let env = c["env"].as_array().expect("env");
    for (name, path) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let var = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in env"));
        assert_eq!(var["valueFrom"]["fieldRef"]["fieldPath"], path);
    }
}

#[test]
fn chart_probes_target_the_metrics_port() {
    for (extra, port) in [(vec![], 8080), (vec!["--set", "metrics.port=9090"], 9090)] {
        let docs = render(&extra);
        let c = container(&docs);
        assert_eq!(
            c["livenessProbe"]["httpGet"],
            json!({"path": "/healthz", "port": "metrics"})
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"],
            json!({"path": "/readyz", "port": "metrics"})
        );
        assert_eq!(
            c["ports"],
            json!([{"name": "metrics", "containerPort": port, "protocol": "TCP"}]),
            "only the metrics port without the webhook"
        );
        let addr = format!("0.0.0.0:{port}");
        assert_eq!(flag(&args(&docs), "metrics-addr"), Some(addr.as_str()));
        assert_eq!(
            object(&docs, "Service", None)["spec"]["ports"],
            json!([{"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}])
        );
    }
}
