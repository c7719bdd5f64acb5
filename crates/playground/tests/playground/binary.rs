//! The binary run headless: `--exit-when-ready` succeeds with every object Ready after the
//! whole vetting sequence, and without a controller it times out with a message.

use crate::support::{TempDir, field, lines_of, playground, run_to_end};

const PROFILE: &str = "BUaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";

#[tokio::test]
async fn exit_when_ready_shows_the_whole_onboarding_and_exits_zero() {
    let dir = TempDir::new("ready");
    let (ok, stdout, stderr) =
        run_to_end(playground(&dir, &["--exit-when-ready", "--timeout", "60s"])).await;
    assert!(
        ok,
        "exit status not 0\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();

    let kubeconfig = dir.path().join("kubeconfig");
    assert!(
        stdout.contains(&format!(
            "export KUBECONFIG={}; kubectl get trusthub",
            kubeconfig.display()
        )),
        "no kubectl line:\n{stdout}"
    );
    assert!(stdout.contains("All 2 objects Ready"), "{stdout}");
    assert!(
        !kubeconfig.exists(),
        "the kubeconfig of a stopped playground is removed"
    );

    let binding = lines_of(&lines, "bpb/acme-primary");
    let last = binding.last().expect("binding lines");
    assert_eq!(field(last, "sid"), Some(PROFILE), "{last}");
    assert_eq!(field(last, "vetting"), Some("twilio-approved"), "{last}");
    assert_eq!(field(last, "numbers"), Some("3/3"), "{last}");
    assert_eq!(field(last, "Ready"), Some("True"), "{last}");

    let product = lines_of(&lines, "sstp/acme-shaken-stir");
    let vetting: Vec<&str> = product.iter().filter_map(|l| field(l, "vetting")).collect();
    let first = |status: &str| {
        vetting
            .iter()
            .position(|v| *v == status)
            .unwrap_or_else(|| panic!("never saw {status}: {vetting:?}"))
    };
    assert!(
        first("draft") < first("pending-review")
            && first("pending-review") < first("in-review")
            && first("in-review") < first("twilio-approved"),
        "vetting out of order: {vetting:?}"
    );
    let last = product.last().expect("product lines");
    let sid = field(last, "sid").expect("sid");
    assert!(sid.starts_with("BU") && sid != PROFILE, "{last}");
    assert_eq!(field(last, "numbers"), Some("3/3"), "{last}");
    assert_eq!(field(last, "Ready"), Some("True"), "{last}");
}

#[tokio::test]
async fn without_a_controller_it_prints_the_operator_command_and_times_out() {
    let dir = TempDir::new("timeout");
    let (ok, stdout, stderr) = run_to_end(playground(
        &dir,
        &["--no-controller", "--exit-when-ready", "--timeout", "2s"],
    ))
    .await;
    assert!(!ok, "must fail on timeout\nstdout:\n{stdout}");
    assert!(
        stderr.contains("timed out after 2s") && stderr.contains("sstp/acme-shaken-stir"),
        "{stderr}"
    );
    let kubeconfig = dir.path().join("kubeconfig");
    let command = stdout
        .lines()
        .find(|l| {
            l.trim_start().starts_with("KUBECONFIG=") && l.ends_with(" trusthub-operator run")
        })
        .unwrap_or_else(|| panic!("no operator command:\n{stdout}"));
    assert!(
        command.contains(&format!("KUBECONFIG={}", kubeconfig.display()))
            && command.contains("TRUSTHUB_TRUST_HUB_URL=http://127.0.0.1:")
            && command.contains("TRUSTHUB_API_URL=http://127.0.0.1:"),
        "{command}"
    );
}
