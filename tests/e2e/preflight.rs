//! `trusthub-operator preflight`, the real binary against the simulator: one scenario per
//! acceptance case, each with its exit code and its line, and never a write to Twilio (the
//! simulator's write log stays empty and it counted GETs only). The healthy account also runs
//! through `prism proxy` with Twilio's official OpenAPI files, and once with credentials read
//! from a Secret through a kubeconfig.

use std::process::Stdio;

use tokio::sync::broadcast::error::TryRecvError;
use trusthub_sim::{
    AccountStatus, BundleStatus, SHAKEN_STIR_POLICY, Seed, SimConfig, SimServer, WriteEvent,
};

use crate::client_support::{Prism, RecordingProxy};
use crate::seeds::{OTHER_PROFILE, TWILIO_PRODUCT, other_profile, twilio_product};
use crate::support::{Env, PARENT, PARENT_TOKEN, PROFILE, secret};

const WEST: &str = "AC33333333333333333333333333333333";

/// What one run printed and returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The table line of `check` with `result` that contains `text`, or a failure that shows
    /// the whole output.
    #[track_caller]
    fn assert_line(&self, check: &str, result: &str, text: &str) {
        let found = self.stdout.lines().any(|l| {
            l.starts_with(check)
                && l[check.len()..].trim_start().starts_with(result)
                && l.contains(text)
        });
        assert!(
            found,
            "no `{check} {result} …{text}…` line in:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
    }
}

/// The binary with a clean environment (no Twilio or operator variables of the caller).
fn command(trust_hub: &str, api: &str, token: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_trusthub-operator"));
    cmd.arg("preflight")
        .args(["--trust-hub-url", trust_hub, "--api-url", api])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("TWILIO_") || name.starts_with("TRUSTHUB_") || name == "KUBECONFIG" {
            cmd.env_remove(name);
        }
    }
    if let Some(token) = token {
        cmd.env("TWILIO_ACCOUNT_SID", PARENT)
            .env("TWILIO_AUTH_TOKEN", token);
    }
    cmd
}

async fn finish(mut cmd: tokio::process::Command) -> Run {
    let out = cmd.output().await.expect("run trusthub-operator preflight");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs preflight against `sim` with the parent's credentials (or `token`) and `args`.
async fn preflight(sim: &SimServer, token: &str, args: &[&str]) -> Run {
    let base = sim.base_url();
    let mut cmd = command(&base, &base, Some(token));
    cmd.args(args);
    finish(cmd).await
}

/// Asserts Twilio saw reads only: nothing in the write log, only GETs counted.
#[track_caller]
fn assert_read_only(sim: &SimServer, writes: &mut tokio::sync::broadcast::Receiver<WriteEvent>) {
    assert!(
        matches!(writes.try_recv(), Err(TryRecvError::Empty)),
        "the simulator logged a write"
    );
    let counters = sim.counters();
    assert!(counters.requests > 0, "preflight asked Twilio nothing");
    let not_get: Vec<_> = counters
        .by_route
        .keys()
        .filter(|route| !route.starts_with("GET "))
        .collect();
    assert!(not_get.is_empty(), "non-GET requests: {not_get:?}");
    assert!(counters.created.is_empty(), "{:?}", counters.created);
}

async fn sim_with(seed: Seed) -> SimServer {
    SimServer::start(SimConfig {
        seed,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// Starts a simulator for `seed`, runs preflight, checks it wrote nothing.
async fn scenario(seed: Seed, token: &str, args: &[&str]) -> Run {
    let sim = sim_with(seed).await;
    let mut writes = sim.subscribe_writes();
    let run = preflight(&sim, token, args).await;
    assert_read_only(&sim, &mut writes);
    sim.shutdown().await;
    run
}

#[tokio::test]
async fn preflight_healthy_account_exits_0_and_reads_each_account_once() {
    let sim = sim_with(Seed::default_seed()).await;
    let mut writes = sim.subscribe_writes();
    let run = preflight(&sim, PARENT_TOKEN, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.assert_line("credentials", "ok", "accepted (auth token)");
    run.assert_line("business profile", "ok", PROFILE);
    run.assert_line("shaken/stir policy", "ok", SHAKEN_STIR_POLICY);
    run.assert_line("shaken/stir product", "ok", "none yet");
    run.assert_line(
        "numbers",
        "ok",
        "4 voice numbers in 3 accounts: 0 assigned to the profile, 0 on a SHAKEN/STIR product",
    );
    assert!(
        run.stdout
            .contains("result: onboarding can proceed (exit 0)")
    );
    assert!(!run.stdout.contains(PARENT_TOKEN) && !run.stderr.contains(PARENT_TOKEN));
    assert_read_only(&sim, &mut writes);
    // One paged listing per account, never a look-up per number.
    let counters = sim.counters();
    assert_eq!(counters.calls("ListIncomingPhoneNumber"), 3);
    assert_eq!(counters.calls("FetchIncomingPhoneNumber"), 0);

    let json = preflight(&sim, PARENT_TOKEN, &["-o", "json"]).await;
    assert_eq!(json.code, 0);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON report");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["coverage"].as_array().map(Vec::len), Some(3));
    assert_read_only(&sim, &mut writes);
    sim.shutdown().await;
}

#[tokio::test]
async fn preflight_wrong_token_exits_3() {
    let run = scenario(
        Seed::default_seed(),
        "wrongtoken0000000000000000000000",
        &[],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stdout);
    run.assert_line("credentials", "FAIL", "refused: HTTP 401, code 20003");
    run.assert_line("numbers", "skip", "not checked");
    assert!(
        run.stdout
            .contains("result: cannot proceed: Twilio refused the credentials (exit 3)")
    );
}

#[tokio::test]
async fn preflight_no_approved_profile_exits_6() {
    let mut seed = Seed::default_seed();
    seed.customer_profiles[0].status = BundleStatus::InReview;
    let run = scenario(seed, PARENT_TOKEN, &[]).await;
    assert_eq!(run.code, 6, "{}", run.stdout);
    run.assert_line(
        "business profile",
        "FAIL",
        &format!("no approved Primary Business Profile (found: {PROFILE}"),
    );
}

#[tokio::test]
async fn preflight_policy_missing_exits_7() {
    let mut seed = Seed::default_seed();
    seed.absent_policies.push(SHAKEN_STIR_POLICY.into());
    let run = scenario(seed, PARENT_TOKEN, &[]).await;
    assert_eq!(run.code, 7, "{}", run.stdout);
    run.assert_line("shaken/stir policy", "FAIL", "not found (HTTP 404)");
}

#[tokio::test]
async fn preflight_product_made_by_twilio_exits_8_and_manifests_adopt_it() {
    let mut seed = Seed::default_seed();
    seed.trust_products.push(twilio_product(PROFILE, &[]));
    let run = scenario(seed.clone(), PARENT_TOKEN, &[]).await;
    assert_eq!(run.code, 8, "{}", run.stdout);
    run.assert_line(
        "shaken/stir product",
        "FAIL",
        &format!("adopt it with spec.trustProductSid: {TWILIO_PRODUCT}"),
    );

    let manifests = scenario(seed, PARENT_TOKEN, &["--manifests"]).await;
    assert_eq!(manifests.code, 8, "{}", manifests.stderr);
    assert!(
        manifests.stderr.contains("(exit 8)"),
        "{}",
        manifests.stderr
    );
    let docs: Vec<serde_json::Value> = manifests
        .stdout
        .split("---\n")
        .skip(1)
        .map(|d| serde_yaml::from_str(d).expect("YAML document"))
        .collect();
    assert_eq!(docs.len(), 2, "{}", manifests.stdout);
    assert_eq!(
        docs[0]["spec"]["phoneNumbers"].as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(docs[1]["spec"]["trustProductSid"], TWILIO_PRODUCT);
}

#[tokio::test]
async fn preflight_numbers_on_another_product_exits_9() {
    let mut seed = Seed::default_seed();
    seed.customer_profiles.push(other_profile());
    let east = &seed.subaccounts[0].numbers;
    let numbers = [east[0].sid.clone(), east[1].sid.clone()];
    seed.trust_products.push(twilio_product(
        OTHER_PROFILE,
        &[numbers[0].as_str(), numbers[1].as_str()],
    ));
    let run = scenario(seed, PARENT_TOKEN, &[]).await;
    assert_eq!(run.code, 9, "{}", run.stdout);
    run.assert_line(
        "numbers",
        "FAIL",
        &format!(
            "2 numbers are on another SHAKEN/STIR product {TWILIO_PRODUCT}: +15005550201 (Acme East), +15005550202 (Acme East)"
        ),
    );
    run.assert_line("shaken/stir product", "WARN", "not the one to use");
}

#[tokio::test]
async fn preflight_suspended_subaccount_exits_5() {
    let sim = sim_with(Seed::default_seed()).await;
    sim.set_account_status(WEST, AccountStatus::Suspended)
        .expect("West exists");
    let mut writes = sim.subscribe_writes();
    let run = preflight(&sim, PARENT_TOKEN, &[]).await;
    assert_eq!(run.code, 5, "{}", run.stdout);
    run.assert_line(
        "subaccounts",
        "FAIL",
        &format!("{WEST} \"Acme West\" is suspended"),
    );
    assert_read_only(&sim, &mut writes);
    sim.shutdown().await;
}

/// Every request of a healthy run, and the simulator's answers, pass `prism proxy --errors`
/// with Twilio's official OpenAPI files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_requests_and_answers_validate_against_the_official_spec() {
    let sim = sim_with(Seed::default_seed()).await;
    let mut writes = sim.subscribe_writes();
    // The Prism processes live until the end of the test, each behind a recording proxy.
    let upstream = sim.base_url();
    let (trust_hub_prism, api_prism) = tokio::join!(
        Prism::proxy("twilio_trusthub_v1.json", &upstream),
        Prism::proxy("twilio_api_v2010.json", &upstream)
    );
    // Negative control: Prism really validates (PageSize must be 1..=1000).
    let refused = reqwest::Client::new()
        .get(format!(
            "{}/v1/TrustProducts?PageSize=0",
            trust_hub_prism.base_url
        ))
        .basic_auth(PARENT, Some(PARENT_TOKEN))
        .send()
        .await
        .expect("prism answers");
    assert_eq!(
        refused.status().as_u16(),
        422,
        "prism is not validating requests"
    );
    sim.reset_counters();
    let trust_hub = RecordingProxy::start(&trust_hub_prism.base_url).await;
    let api = RecordingProxy::start(&api_prism.base_url).await;
    let run = finish(command(
        &trust_hub.base_url,
        &api.base_url,
        Some(PARENT_TOKEN),
    ))
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let exchanges: Vec<_> = trust_hub
        .exchanges()
        .into_iter()
        .chain(api.exchanges())
        .collect();
    assert!(exchanges.len() >= 9, "{exchanges:#?}");
    for x in &exchanges {
        assert!(
            x.method == "GET" && x.status == 200 && x.violations.is_none(),
            "{} {} -> {} {:?}",
            x.method,
            x.target,
            x.status,
            x.violations
        );
    }
    assert_read_only(&sim, &mut writes);
    sim.shutdown().await;
}

/// `--secret ns/name`: the credentials come from a Secret read through the kubeconfig.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reads_credentials_from_a_secret() {
    let env = Env::start(true).await;
    env.apply(secret("twilio-credentials", PARENT_TOKEN)).await;
    let mut writes = env.sim.subscribe_writes();
    let base = env.sim.base_url();
    let mut cmd = command(&base, &base, None);
    cmd.env("KUBECONFIG", env.kubeconfig()).args([
        "--secret",
        &format!("{}/twilio-credentials", env.ns),
        "--manifests",
    ]);
    let run = finish(cmd).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("secretName: twilio-credentials"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("namespace: {}", env.ns)),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(PARENT_TOKEN) && !run.stderr.contains(PARENT_TOKEN));
    assert_read_only(&env.sim, &mut writes);

    let mut missing = command(&base, &base, None);
    missing
        .env("KUBECONFIG", env.kubeconfig())
        .args(["--secret", &format!("{}/nope", env.ns)]);
    let run = finish(missing).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nope not found"), "{}", run.stderr);
    env.shutdown().await;
}
