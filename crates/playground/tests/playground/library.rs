//! The library API the benchmarks use: start, CRDs, examples, in-process controllers,
//! snapshots, the operator command's environment, port fallback and shutdown.

use std::path::Path;
use std::time::{Duration, Instant};

use trusthub_playground::{Playground, PlaygroundError, PlaygroundOptions, view};

fn fast() -> PlaygroundOptions {
    PlaygroundOptions {
        review_delay: Some(Duration::from_millis(200)),
        approve_delay: Some(Duration::from_millis(400)),
        ..PlaygroundOptions::default()
    }
}

#[tokio::test]
async fn the_library_runs_the_examples_to_ready_in_process() {
    let mut pg = Playground::start(fast()).await.expect("starts");
    let kubeconfig = pg.kubeconfig_path.clone();
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written");
    assert!(written.contains(&pg.api.url()), "{written}");

    assert_eq!(
        pg.apply_crds().await.expect("CRDs"),
        [
            "customresourcedefinition/businessprofilebindings.trusthub.stir.dev",
            "customresourcedefinition/shakenstirtrustproducts.trusthub.stir.dev"
        ]
    );
    pg.apply_crds()
        .await
        .expect("applying the CRDs again is a no-op");
    let applied = pg.apply_examples().await.expect("examples");
    assert_eq!(
        applied,
        [
            "secret/twilio-credentials",
            "businessprofilebinding/acme-primary",
            "shakenstirtrustproduct/acme-shaken-stir"
        ]
    );
    assert!(!pg.controller_running());
    pg.start_controller_in_process(pg.controller_config().expect("config"));
    assert!(pg.controller_running());

    let start = Instant::now();
    let rows = loop {
        let rows = pg.snapshot().await.expect("snapshot");
        if view::all_ready(&rows) && rows.len() == 2 {
            break rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not Ready in time:\n{}",
            view::render_table(&rows)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let products = pg.sim.trust_products();
    assert_eq!(products.len(), 1, "{products:#?}");
    let product_row = rows.iter().find(|r| r.kind == "sstp").expect("product row");
    assert_eq!(product_row.sid, products[0].sid);
    assert_eq!(product_row.vetting, "twilio-approved");

    pg.stop_controller().await;
    assert!(!pg.controller_running());
    pg.shutdown().await;
    assert!(
        !kubeconfig.exists(),
        "the temporary kubeconfig is removed on shutdown"
    );
}

#[tokio::test]
async fn taken_addresses_fall_back_to_free_ports_unless_told_not_to() {
    let first = Playground::start(fast()).await.expect("first");
    let taken = PlaygroundOptions {
        api_listen: first.api.addr(),
        sim_listen: first.sim.addr(),
        ..fast()
    };
    let second = Playground::start(taken.clone()).await.expect("second");
    assert_eq!(
        second.fallbacks,
        [
            (first.sim.addr(), second.sim.addr()),
            (first.api.addr(), second.api.addr())
        ]
    );
    second.shutdown().await;

    let refused = Playground::start(PlaygroundOptions {
        fallback_to_free_port: false,
        ..taken
    })
    .await
    .expect_err("the simulator's address is taken");
    assert!(
        matches!(refused, PlaygroundError::Sim(_)),
        "unexpected error {refused}"
    );
    first.shutdown().await;
}

#[tokio::test]
async fn the_operator_command_points_at_the_playground() {
    let pg = Playground::start(fast()).await.expect("starts");
    let binary = Path::new("/opt/bin/trusthub-operator");
    let cmd = pg.operator_command(Some(binary)).expect("command");
    let std_cmd = cmd.as_std();
    assert_eq!(std_cmd.get_program(), binary);
    assert_eq!(
        std_cmd.get_args().collect::<Vec<_>>(),
        [std::ffi::OsStr::new("run")]
    );
    let env: Vec<(String, String)> = std_cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    let get = |key: &str| {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} not set: {env:?}"))
    };
    assert_eq!(get("KUBECONFIG"), pg.kubeconfig_path.display().to_string());
    assert_eq!(get("TRUSTHUB_TRUST_HUB_URL"), pg.sim.base_url());
    assert_eq!(get("TRUSTHUB_API_URL"), pg.sim.base_url());
    assert_eq!(get("TRUSTHUB_REVIEW_POLL_INITIAL"), "500ms");
    let line = pg.operator_command_line("trusthub-operator");
    assert!(
        line.starts_with(&format!("KUBECONFIG={} ", pg.kubeconfig_path.display()))
            && line.ends_with(" trusthub-operator run"),
        "{line}"
    );
    pg.shutdown().await;
}
