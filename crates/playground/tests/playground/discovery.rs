//! `--discovery`: the binding of `examples/discovery/` selects every voice number of the
//! generated subaccounts, the trust product gets them all and is approved, and a number bought
//! afterwards (the playground's hint) is picked up. In process through the library, and the
//! binary's `--discovery --exit-when-ready`, both with fewer numbers than the defaults.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use trusthub_operator::api::{BusinessProfileBinding, ShakenStirTrustProduct};
use trusthub_playground::{
    Playground, PlaygroundOptions, Row, discoverable_numbers, discovery_seed, view,
};
use trusthub_sim::NewNumber;

use crate::support::{TempDir, field, lines_of, playground, run_to_end};

const SUBACCOUNTS: usize = 4;
const NUMBERS: usize = 40;

/// Waits (up to 30 s) until `done` holds for the playground's rows.
async fn wait_rows(pg: &Playground, what: &str, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let start = Instant::now();
    loop {
        let rows = pg.snapshot().await.expect("snapshot");
        if done(&rows) {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: not in time:\n{}\n{}",
            view::render_table(&rows),
            view::render_discovery(&rows)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn numbers_of(rows: &[Row], key: &str) -> Option<String> {
    rows.iter()
        .find(|r| r.key() == key && r.is_ready())
        .map(|r| r.numbers.clone())
}

/// The voice numbers of the simulator's subaccounts (the parent's are not selected).
fn voice_numbers(pg: &Playground) -> BTreeSet<String> {
    let parent = pg.sim.seed().parent.sid.clone();
    pg.sim
        .state()
        .numbers()
        .iter()
        .filter(|n| n.voice && n.account_sid != parent)
        .map(|n| n.sid.clone())
        .collect()
}

fn attached_to(pg: &Playground, product_sid: &str) -> BTreeSet<String> {
    pg.sim
        .channel_assignments()
        .iter()
        .filter(|a| a.bundle_sid == product_sid)
        .map(|a| a.channel_endpoint_sid.clone())
        .collect()
}

#[tokio::test]
async fn discovery_attaches_every_voice_number_and_picks_up_a_bought_one() {
    let seed = discovery_seed(SUBACCOUNTS, NUMBERS);
    let voice = discoverable_numbers(&seed);
    // 36 generated voice numbers plus the default seed's three subaccount numbers.
    assert_eq!(voice, NUMBERS - NUMBERS / 10 + 3);
    let mut pg = Playground::start(PlaygroundOptions {
        review_delay: Some(Duration::from_millis(200)),
        approve_delay: Some(Duration::from_millis(400)),
        seed,
        ..PlaygroundOptions::default()
    })
    .await
    .expect("starts");
    pg.apply_crds().await.expect("CRDs");
    assert_eq!(
        pg.apply_discovery_examples().await.expect("examples"),
        [
            "secret/twilio-credentials",
            "businessprofilebinding/acme-discovered",
            "shakenstirtrustproduct/acme-discovered-shaken-stir"
        ]
    );
    pg.start_controller_in_process(pg.controller_config().expect("config"));

    let all = format!("{voice}/{voice}");
    let rows = wait_rows(&pg, "every voice number attached and approved", |rows| {
        numbers_of(rows, "bpb/acme-discovered").as_deref() == Some(&all)
            && numbers_of(rows, "sstp/acme-discovered-shaken-stir").as_deref() == Some(&all)
    })
    .await;
    let binding = rows.iter().find(|r| r.kind == "bpb").expect("binding row");
    let report = binding.discovery.as_ref().expect("a discovery report");
    assert_eq!(
        (
            report.accounts_listed as usize,
            report.numbers_seen as usize,
            report.selected as usize,
            report.skipped_total
        ),
        (SUBACCOUNTS + 2, NUMBERS + 3, voice, 0),
        "{}",
        report.describe()
    );
    let product = rows.iter().find(|r| r.kind == "sstp").expect("product row");
    assert_eq!(product.vetting, "twilio-approved");
    assert_eq!(attached_to(&pg, &product.sid), voice_numbers(&pg));

    // The hint: buy a number in a subaccount, and it is picked up at the next listing. Rather
    // than wait the example's 30 s, a spec change (the shortest interval) lists at once.
    let account = pg
        .sim
        .seed()
        .subaccounts
        .last()
        .expect("a subaccount")
        .sid
        .clone();
    let bought = pg
        .sim
        .buy_number(&account, NewNumber::default())
        .expect("buy a number");
    let bindings: Api<BusinessProfileBinding> = Api::namespaced(pg.client.clone(), &pg.namespace);
    bindings
        .patch(
            "acme-discovered",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"discovery": {"interval": "10s"}}})),
        )
        .await
        .expect("patch the interval");
    let more = format!("{0}/{0}", voice + 1);
    wait_rows(&pg, "the bought number attached", |rows| {
        numbers_of(rows, "sstp/acme-discovered-shaken-stir").as_deref() == Some(&more)
    })
    .await;
    let products: Api<ShakenStirTrustProduct> = Api::namespaced(pg.client.clone(), &pg.namespace);
    let sid = products
        .get("acme-discovered-shaken-stir")
        .await
        .expect("product")
        .status
        .and_then(|s| s.trust_product_sid)
        .expect("product SID");
    assert!(attached_to(&pg, &sid).contains(&bought.sid), "{bought:?}");
    pg.shutdown().await;
}

#[tokio::test]
async fn the_binary_with_discovery_exits_when_every_voice_number_is_attached() {
    let dir = TempDir::new("discovery");
    let (ok, stdout, stderr) = run_to_end(playground(
        &dir,
        &[
            "--discovery",
            "--discovery-subaccounts",
            "3",
            "--discovery-numbers",
            "30",
            "--exit-when-ready",
            "--timeout",
            "30s",
        ],
    ))
    .await;
    assert!(
        ok,
        "exit status not 0\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("All 2 objects Ready"), "{stdout}");
    let curl = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("curl -X POST http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no curl hint:\n{stdout}"));
    assert!(
        curl.contains("/_sim/accounts/AC")
            && curl.ends_with("/numbers -d '{}' -H 'content-type: application/json'")
            && !curl.contains("Authorization"),
        "{curl}"
    );
    assert!(stdout.contains("within 30s"), "{stdout}");
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    // 27 generated voice numbers plus the default seed's three subaccount numbers.
    let binding = lines_of(&lines, "bpb/acme-discovered");
    let last = binding.last().expect("binding lines");
    assert_eq!(field(last, "numbers"), Some("30/30"), "{last}");
    assert_eq!(
        field(last, "discovery"),
        Some("accounts:5,seen:33,selected:30,skipped:0"),
        "{last}"
    );
    let product = lines_of(&lines, "sstp/acme-discovered-shaken-stir");
    let last = product.last().expect("product lines");
    assert_eq!(field(last, "numbers"), Some("30/30"), "{last}");
    assert_eq!(field(last, "vetting"), Some("twilio-approved"), "{last}");
    assert!(lines_of(&lines, "bpb/acme-primary").is_empty(), "{stdout}");
}
