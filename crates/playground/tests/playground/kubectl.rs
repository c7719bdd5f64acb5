//! kubectl against a running playground: the printer columns show the SIDs and the vetting
//! status, `kubectl wait` sees Ready, and SIGTERM stops the playground cleanly.

use std::time::Duration;

use crate::support::{TempDir, field, kubectl, lines_of, playground, read_until, stdout_lines};

async fn kubectl_run(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .expect("kubectl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn kubectl_sees_the_approved_objects_and_sigterm_stops_the_playground() {
    let kubectl_path = kubectl();
    assert!(kubectl_path.is_file());
    let dir = TempDir::new("kubectl");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = playground(&dir, &[]).spawn().expect("playground starts");
    let mut lines = stdout_lines(&mut child);
    let seen = read_until(&mut lines, "All 2 objects Ready").await;
    let product_line = *lines_of(&seen, "sstp/acme-shaken-stir")
        .last()
        .expect("product lines");
    let product_sid = field(product_line, "sid").expect("sid").to_string();

    let (ok, table) = kubectl_run(&kubeconfig, &["get", "sstp"]).await;
    assert!(ok, "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("acme-shaken-stir "))
        .unwrap_or_else(|| panic!("no row:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    // NUMBERS attached/requested, COVERED on an approved product/selected, then READY.
    assert_eq!(
        cells[..6],
        [
            "acme-shaken-stir",
            product_sid.as_str(),
            "twilio-approved",
            "3/3",
            "3/3",
            "True"
        ],
        "{table}"
    );

    let (ok, table) = kubectl_run(&kubeconfig, &["get", "bpb"]).await;
    assert!(ok, "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("acme-primary ")
            && l.contains("BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1")
            && l.contains("twilio-approved")),
        "{table}"
    );

    let (ok, out) = kubectl_run(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Ready",
            "sstp/acme-shaken-stir",
            "--timeout=30s",
        ],
    )
    .await;
    assert!(ok && out.contains("condition met"), "{out}");

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20s after SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit after SIGTERM: {status}");
    read_until(&mut lines, "stopping the playground").await;
    assert!(!kubeconfig.exists(), "kubeconfig removed on shutdown");
}
