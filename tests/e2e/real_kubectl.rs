//! What a user sees with kubectl 1.35 against the CRDs: `kubectl get` prints the CRDs'
//! printer columns and resolves the short names and the `trusthub` category, `kubectl explain`
//! prints the schema's descriptions, and `kubectl wait --for=condition=Ready` follows the Ready
//! condition. Runs on whichever backend `Cluster::start` gives (real by default).

use std::path::Path;
use std::process::Output;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::api_manifests::Kind;
use crate::client_support::tool;
use crate::cluster::Cluster;
use crate::real_crds::dyn_api;
use crate::support::{root, tempdir};

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new(tool("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl")
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl prints UTF-8")
}

fn crd(kind: Kind) -> Value {
    let file = match kind {
        Kind::Binding => "crds/businessprofilebindings.yaml",
        Kind::TrustProduct => "crds/shakenstirtrustproducts.yaml",
    };
    serde_yaml::from_str(&std::fs::read_to_string(root().join(file)).expect("read CRD"))
        .expect("parse CRD")
}

/// The header kubectl should print: NAME, then each printer column (only priority 0 unless
/// `wide`), upper-cased, in the CRD's order.
fn wanted_header(kind: Kind, wide: bool) -> Vec<String> {
    let crd = crd(kind);
    let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .filter(|c| wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|c| c["name"].as_str().expect("column name").to_uppercase());
    std::iter::once("NAME".to_string()).chain(columns).collect()
}

/// Columns are separated by at least three spaces; a header like `PROFILE STATUS` has one.
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Ready=True status the way the operator writes it, through the status subresource.
fn ready_status(kind: Kind) -> Value {
    let ready = json!([{
        "type": "Ready", "status": "True", "reason": "Ready", "message": "ready",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
    }]);
    match kind {
        Kind::Binding => json!({"status": {
            "conditions": ready, "numbersSummary": "3/3", "coverage": "3/3",
            "businessProfile": {"sid": "BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", "status": "twilio-approved"},
        }}),
        Kind::TrustProduct => json!({"status": {
            "conditions": ready, "numbersSummary": "3/3", "coverage": "3/3",
            "trustProductSid": "BUbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1", "twilioStatus": "twilio-approved",
        }}),
    }
}

// Multi-threaded: kubectl runs as a blocking child process, and an in-process kube-local
// server must keep answering it meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_explain_and_wait() {
    let (cluster, client, ns) = Cluster::start().await;
    let dir = tempdir::Dir::new();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig_yaml(&ns)).expect("write kubeconfig");
    for kind in [Kind::Binding, Kind::TrustProduct] {
        let api = dyn_api(&client, &ns, kind);
        for name in ["ready", "waiting"] {
            let mut obj = kind.example();
            obj["metadata"]["name"] = json!(name);
            let obj = serde_json::from_value(obj).expect("example object");
            api.create(&PostParams::default(), &obj)
                .await
                .expect("create the example");
        }
        api.patch_status(
            "ready",
            &PatchParams::default(),
            &Patch::Merge(ready_status(kind)),
        )
        .await
        .expect("status patch");
    }
    check_get(&kubeconfig, Kind::Binding, "bpb", "PROFILE STATUS");
    check_get(&kubeconfig, Kind::TrustProduct, "sstp", "VETTING");
    check_category(&kubeconfig);
    check_explain(
        &kubeconfig,
        Kind::Binding,
        "businessprofilebinding",
        "[]Object",
    );
    check_explain(
        &kubeconfig,
        Kind::TrustProduct,
        "shakenstirtrustproduct",
        "[]string",
    );
    check_wait(&kubeconfig, "bpb");
    check_wait(&kubeconfig, "sstp");
    cluster.shutdown().await;
}

fn check_get(kubeconfig: &Path, kind: Kind, short: &str, twilio_column: &str) {
    for wide in [false, true] {
        let mut args = vec!["get", short];
        if wide {
            args.extend(["-o", "wide"]);
        }
        let out = ok(kubeconfig, &args);
        let mut lines = out.lines();
        let header = cells(lines.next().expect("a header line"));
        assert_eq!(
            header,
            wanted_header(kind, wide),
            "kubectl {args:?}:\n{out}"
        );
        let rows: Vec<Vec<String>> = lines.map(cells).collect();
        assert_eq!(rows.len(), 2, "kubectl {args:?}: two objects:\n{out}");
        let at = |column: &str| header.iter().position(|h| h == column).expect("column");
        let ready = rows
            .iter()
            .find(|r| r[0] == "ready")
            .expect("the ready row");
        assert_eq!(ready[at("READY")], "True", "{out}");
        assert_eq!(ready[at("NUMBERS")], "3/3", "{out}");
        assert_eq!(ready[at("COVERED")], "3/3", "{out}");
        assert_eq!(ready[at(twilio_column)], "twilio-approved", "{out}");
        if wide {
            assert_eq!(ready[at("REASON")], "Ready", "{out}");
        }
    }
}

fn check_category(kubeconfig: &Path) {
    let out = ok(kubeconfig, &["get", "trusthub", "-o", "name"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "businessprofilebinding.trusthub.stir.dev/ready",
            "businessprofilebinding.trusthub.stir.dev/waiting",
            "shakenstirtrustproduct.trusthub.stir.dev/ready",
            "shakenstirtrustproduct.trusthub.stir.dev/waiting",
        ],
        "kubectl get trusthub"
    );
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `kubectl explain <kind>.spec.phoneNumbers` names the field's type and prints its
/// description from the CRD, and the item fields for a list of objects.
fn check_explain(kubeconfig: &Path, kind: Kind, singular: &str, type_: &str) {
    let path = format!("{singular}.spec.phoneNumbers");
    let out = ok(kubeconfig, &["explain", &path]);
    let crd = crd(kind);
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["phoneNumbers"];
    let description = schema["description"].as_str().expect("a description");
    assert!(
        out.contains(&format!("FIELD: phoneNumbers <{type_}>")),
        "kubectl explain {path}:\n{out}"
    );
    assert!(
        words(&out).contains(&words(description)),
        "kubectl explain {path} lacks the CRD's description {description:?}:\n{out}"
    );
    for field in schema["items"]["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(f, _)| f)
    {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(field.as_str())),
            "kubectl explain {path} lacks the field {field}:\n{out}"
        );
    }
}

/// `kubectl wait` returns at once for the object whose status says Ready=True, and gives up
/// with a non-zero exit after its timeout for the one without a status.
fn check_wait(kubeconfig: &Path, short: &str) {
    let ready = format!("{short}/ready");
    ok(
        kubeconfig,
        &["wait", "--for=condition=Ready", &ready, "--timeout=30s"],
    );
    let waiting = format!("{short}/waiting");
    let began = std::time::Instant::now();
    let out = kubectl(
        kubeconfig,
        &["wait", "--for=condition=Ready", &waiting, "--timeout=2s"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "kubectl wait {waiting} succeeded without Ready"
    );
    assert!(
        stderr.contains("timed out waiting for the condition"),
        "kubectl wait {waiting}: {stderr}"
    );
    assert!(
        began.elapsed() >= std::time::Duration::from_secs(2),
        "kubectl wait {waiting} gave up before its timeout"
    );
}
