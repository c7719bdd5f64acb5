//! kubectl 1.35 against the server: apply (with server-side field validation), get with
//! printer columns, describe, wait, delete.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

use crate::{Cluster, renamed_crd};

fn kubectl_path() -> PathBuf {
    let dir = match std::env::var_os("TRUSTHUB_TOOLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin"),
    };
    let path = dir.join("kubectl");
    assert!(
        path.is_file(),
        "kubectl not found at {}: run scripts/install-tools.sh (or set TRUSTHUB_TOOLS_DIR)",
        path.display()
    );
    path
}

struct Kubectl {
    bin: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    /// kubectl with a kubeconfig for `cluster`, in the test's namespace.
    fn new(cluster: &Cluster) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kube-local-kubectl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        match &cluster.local {
            Some(server) => {
                let yaml = server
                    .kubeconfig_yaml()
                    .replace("namespace: default", &format!("namespace: {}", cluster.ns));
                std::fs::write(&kubeconfig, yaml).unwrap();
            }
            None => {
                let cp = testenv::ControlPlane::shared();
                cp.write_kubeconfig(&kubeconfig, cp.admin_token(), &cluster.ns)
                    .unwrap();
            }
        }
        Kubectl {
            bin: kubectl_path(),
            dir,
        }
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .output()
            .await
            .expect("running kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
        assert!(
            !stderr.contains("warning"),
            "kubectl {args:?} warned: {stderr}"
        );
        stdout
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const WIDGET_YAML: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  size: 3
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  token: abc
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_describe_wait_delete() {
    let (c, api) = Cluster::with_widgets().await;
    let k = Kubectl::new(&c);
    // A CRD only this test applies (Widget's may already exist on a shared apiserver).
    let crd_yaml = serde_yaml::to_string(&renamed_crd("kubectl.example.com", "Gadget")).unwrap();
    let crd_file = k.file("crd.yaml", &crd_yaml);
    let out = k.ok(&["apply", "-f", &crd_file]).await;
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/gadgets.kubectl.example.com created"
        ),
        "{out}"
    );

    let file = k.file("widget.yaml", WIDGET_YAML);
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    assert!(out.contains("secret/creds created"), "{out}");
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(out.contains("widget.example.com/w1 unchanged"), "{out}");

    let token = k
        .ok(&["get", "secret", "creds", "-o", "jsonpath={.data.token}"])
        .await;
    assert_eq!(token, "YWJj");

    // `kubectl wait` blocks until the status condition appears.
    let waiter = {
        let bin = k.bin.clone();
        let kubeconfig = k.dir.join("kubeconfig");
        let cache = k.dir.join("cache-wait");
        tokio::spawn(async move {
            tokio::process::Command::new(bin)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args([
                    "wait",
                    "--for=condition=Ready",
                    "widget/w1",
                    "--timeout=30s",
                ])
                .output()
                .await
                .expect("running kubectl wait")
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    api.patch_status(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"sid": "BU123", "conditions": [{"type": "Ready", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let waited = waiter.await.unwrap();
    let wait_out = String::from_utf8_lossy(&waited.stdout);
    assert!(
        waited.status.success(),
        "{wait_out} {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        wait_out.contains("widget.example.com/w1 condition met"),
        "{wait_out}"
    );

    let table = k.ok(&["get", "widgets"]).await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "SID", "READY", "AGE"], "{table}");
    assert_eq!(&lines[1][..3], ["w1", "BU123", "True"], "{table}");
    let short = k.ok(&["get", "wd", "-A"]).await;
    assert!(
        short
            .lines()
            .any(|l| l.split_whitespace().take(2).eq([c.ns.as_str(), "w1"])),
        "{short}"
    );

    // An event recorded through events.k8s.io/v1 (kube-runtime's Recorder) is listed by
    // describe, which reads core v1 Events by involvedObject.
    let recorder = Recorder::new(
        c.client.clone(),
        Reporter {
            controller: "widget-controller".into(),
            instance: None,
        },
    );
    let w1 = api.get("w1").await.unwrap();
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Provisioned".into(),
                note: Some("widget provisioned as BU123".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &w1.object_ref(&()),
        )
        .await
        .unwrap();

    let events = k.ok(&["get", "events"]).await;
    let first: Vec<&str> = events
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        first,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{events}"
    );
    assert!(
        events.contains("Provisioned   widget/w1   widget provisioned as BU123"),
        "{events}"
    );

    let described = k.ok(&["describe", "widget", "w1"]).await;
    for want in [
        "Name:         w1",
        "Kind:         Widget",
        "Sid:",
        "BU123",
        "Size:  3",
        "Provisioned",
        "widget provisioned as BU123",
    ] {
        assert!(
            described.contains(want),
            "missing {want:?} in:\n{described}"
        );
    }

    let out = k.ok(&["delete", "-f", &file]).await;
    assert!(out.contains("widget.example.com \"w1\" deleted"), "{out}");
    assert!(api.get_opt("w1").await.unwrap().is_none());
    let (ok, _, stderr) = k.run(&["get", "widget", "w1"]).await;
    assert!(!ok && stderr.contains("NotFound"), "{stderr}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_refuses_invalid_and_unknown_fields() {
    let (c, api) = Cluster::with_widgets().await;
    let k = Kubectl::new(&c);

    let bad = k.file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: -1\n",
    );
    let (ok, _, stderr) = k.run(&["apply", "-f", &bad]).await;
    assert!(!ok);
    assert!(
        stderr.contains("The Widget \"bad\" is invalid: spec.size: Invalid value: -1"),
        "{stderr}"
    );

    let unknown = k.file(
        "unknown.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: u\nspec:\n  size: 1\n  sise: 2\n",
    );
    let (ok, _, stderr) = k.run(&["apply", "-f", &unknown]).await;
    assert!(!ok);
    assert!(
        stderr.contains("strict decoding error: unknown field \"spec.sise\""),
        "{stderr}"
    );
    assert!(api.get_opt("bad").await.unwrap().is_none());
    assert!(api.get_opt("u").await.unwrap().is_none());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_imperative_namespace_and_secret() {
    let c = Cluster::new().await;
    let k = Kubectl::new(&c);
    let team = format!("{}-team", c.ns);
    // These send protobuf bodies (client-go typed clients).
    k.ok(&["create", "namespace", &team]).await;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        &team,
        "--from-literal=token=abc",
    ])
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.client.clone(), &team);
    let creds = secrets.get("creds").await.unwrap();
    assert_eq!(creds.data.unwrap()["token"].0, b"abc");
    assert_eq!(creds.metadata.generate_name, None);

    let table = k.ok(&["get", "secrets", "-n", &team]).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "TYPE", "DATA", "AGE"], "{table}");
    assert_eq!(&rows[1][..3], ["creds", "Opaque", "1"], "{table}");

    let (ok, _, stderr) = k.run(&["delete", "namespace", "default"]).await;
    assert!(!ok && stderr.contains("may not be deleted"), "{stderr}");
    // Without --wait=false kubectl waits for the namespace to go, which on testenv (no
    // kube-controller-manager) it never does.
    let out = k.ok(&["delete", "namespace", &team, "--wait=false"]).await;
    assert!(
        out.contains(&format!("namespace \"{team}\" deleted")),
        "{out}"
    );
    if c.is_real() {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
        let gone = namespaces.get(&team).await.unwrap();
        assert!(gone.metadata.deletion_timestamp.is_some());
    } else {
        // kube-local runs the namespace cascade itself.
        assert!(secrets.get_opt("creds").await.unwrap().is_none());
    }
    c.shutdown().await;
}
