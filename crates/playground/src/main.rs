//! `trusthub-playground`: the whole SHAKEN/STIR onboarding in one process, with no cluster and
//! no Twilio account. Starts the local Kubernetes API, the Trust Hub simulator (vetting after
//! short delays) and the operator's controllers, applies the CRDs and `examples/` (or, with
//! `--discovery`, generated subaccounts and numbers and `examples/discovery/`), and shows the
//! objects until everything is Ready. Ctrl-C or SIGTERM stops it cleanly.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use trusthub_playground::view::{self, Row};
use trusthub_playground::{
    DISCOVERY_NON_VOICE_EVERY, Playground, PlaygroundError, PlaygroundOptions, discovery_seed,
    manifests,
};
use trusthub_sim::Seed;

#[derive(Parser, Debug)]
#[command(
    name = "trusthub-playground",
    version,
    about = "Run the SHAKEN/STIR onboarding locally: Kubernetes API, Trust Hub simulator and the operator in one process"
)]
struct Cli {
    /// Start only the API and the simulator, and print the command that runs the operator
    /// against them.
    #[arg(long)]
    no_controller: bool,
    /// Do not apply examples/ (apply your own manifests with kubectl).
    #[arg(long)]
    no_examples: bool,
    /// Select numbers instead of listing them: seed the simulator with generated subaccounts
    /// and numbers, and apply examples/discovery/ (a binding with `allSubaccounts: true` and
    /// its trust product) instead of the explicit binding and product.
    #[arg(long)]
    discovery: bool,
    /// With --discovery: how many subaccounts to generate.
    #[arg(long, default_value_t = 20, requires = "discovery")]
    discovery_subaccounts: usize,
    /// With --discovery: how many numbers to generate over those subaccounts (every 10th
    /// cannot take calls and is not selected).
    #[arg(long, default_value_t = 500, requires = "discovery")]
    discovery_numbers: usize,
    /// Exit 0 once every object is Ready (non-zero after --timeout).
    #[arg(long)]
    exit_when_ready: bool,
    /// With --exit-when-ready: give up after this long.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Local Kubernetes API address (a free port is used if it is taken; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    api_listen: SocketAddr,
    /// Trust Hub simulator address (a free port is used if it is taken; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8089")]
    sim_listen: SocketAddr,
    /// Simulated Twilio: pending-review → in-review after this delay.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    review_delay: Duration,
    /// Simulated Twilio: in-review → twilio-approved after this delay.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    approve_delay: Duration,
    /// Where to write the kubeconfig (removed on exit).
    #[arg(long, default_value = ".playground/kubeconfig")]
    kubeconfig: PathBuf,
    /// Where the controller, API and simulator log (default: playground.log beside the
    /// kubeconfig).
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Playground(#[from] PlaygroundError),
    #[error("cannot open the log file {}: {source}", path.display())]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad --log-level: {0}")]
    LogLevel(String),
    #[error("cannot list the bindings and trust products of the local API")]
    Watch,
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

fn init_logging(path: &Path, level: &str) -> Result<(), MainError> {
    let log_err = |source| MainError::LogFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(log_err)?;
    }
    let file = std::fs::File::create(path).map_err(log_err)?;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| MainError::LogLevel(e.to_string()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, MainError> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(MainError::Signals)?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = self.term.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The lines above the table: where everything is and what to type.
fn banner(cli: &Cli, pg: &Playground, log_file: &Path) -> String {
    let mut out = String::from(
        "trusthub-playground: SHAKEN/STIR onboarding against a local Kubernetes API and a Trust Hub simulator\n",
    );
    out.push_str(&format!("  Kubernetes API   {}\n", pg.api.url()));
    out.push_str(&format!(
        "  Trust Hub sim    {}  (vetting: in-review after {}, approved after {} more)\n",
        pg.sim.base_url(),
        humantime::format_duration(cli.review_delay),
        humantime::format_duration(cli.approve_delay)
    ));
    for (wanted, used) in &pg.fallbacks {
        out.push_str(&format!("  ({wanted} was taken; using {used})\n"));
    }
    out.push_str(&format!("  logs             {}\n", log_file.display()));
    out.push_str(&format!(
        "Use it with kubectl (in another terminal):\n  export KUBECONFIG={}; kubectl get trusthub\n",
        pg.kubeconfig_path.display()
    ));
    if cli.discovery {
        out.push_str(&discovery_hint(cli, pg));
    }
    if cli.no_controller {
        out.push_str(&format!(
            "The operator is NOT running (--no-controller). Run it against the playground:\n  {}\n  or from the repository: {}\n",
            pg.operator_command_line("trusthub-operator"),
            pg.operator_command_line("cargo run -p trusthub-operator --")
        ));
    }
    out
}

/// With --discovery: what was generated, and how to watch a bought number being picked up.
fn discovery_hint(cli: &Cli, pg: &Playground) -> String {
    let interval = manifests::discovery_interval().unwrap_or_else(|| "10m".into());
    let mut out = format!(
        "Discovery: {} generated subaccounts hold {} numbers (every {}th without voice); the binding selects the voice numbers of every subaccount and lists them again every {interval}.\n",
        cli.discovery_subaccounts, cli.discovery_numbers, DISCOVERY_NON_VOICE_EVERY
    );
    // The playground's simulator has no admin token, so the admin API takes no
    // Authorization header.
    if let Some(account) = pg.sim.seed().subaccounts.last() {
        out.push_str(&format!(
            "  Buy a number in a subaccount; it is assigned and attached within {interval}:\n    curl -X POST {}/_sim/accounts/{}/numbers -d '{{}}' -H 'content-type: application/json'\n",
            pg.sim.base_url(),
            account.sid
        ));
    }
    out.push_str(&format!(
        "  Release it with curl -X DELETE {}/_sim/numbers/<its PN… sid>: it leaves the binding's count (deletionPolicy: Orphan).\n",
        pg.sim.base_url()
    ));
    out
}

fn status_line(
    rows: &[Row],
    started: Instant,
    ready_at: Option<Duration>,
    exiting: bool,
    product: &str,
) -> String {
    let ready = rows.iter().filter(|r| r.is_ready()).count();
    let try_this = format!(
        "Try `kubectl get sstp -o wide` or `kubectl describe {}`; Ctrl-C stops the playground.",
        product.replacen('/', " ", 1)
    );
    match ready_at {
        Some(after) => format!(
            "All {} objects Ready after {:.1}s. {}",
            rows.len(),
            after.as_secs_f64(),
            if exiting {
                "Exiting (--exit-when-ready)."
            } else {
                &try_this
            }
        ),
        None if rows.is_empty() => {
            "No bindings or trust products yet: kubectl apply -f examples/".into()
        }
        None => format!(
            "{ready}/{} Ready after {:.1}s… (Ctrl-C stops the playground)",
            rows.len(),
            started.elapsed().as_secs_f64()
        ),
    }
}

/// The vetting statuses each object went through, with when they were first seen, so a
/// redrawn table still tells the whole story (draft → pending-review → in-review → approved).
#[derive(Default)]
struct History(Vec<(String, Vec<(String, f64)>)>);

impl History {
    fn record(&mut self, rows: &[Row], at: f64) {
        for row in rows.iter().filter(|r| r.vetting != "-") {
            let pos = match self.0.iter().position(|(k, _)| *k == row.key()) {
                Some(pos) => pos,
                None => {
                    self.0.push((row.key(), Vec::new()));
                    self.0.len() - 1
                }
            };
            let seen = &mut self.0[pos].1;
            if seen.last().is_none_or(|(v, _)| *v != row.vetting) {
                seen.push((row.vetting.clone(), at));
            }
        }
    }

    fn render(&self) -> String {
        let width = self.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::from("Vetting so far:\n");
        for (key, seen) in &self.0 {
            let steps: Vec<String> = seen
                .iter()
                .map(|(v, at)| format!("{v} (+{at:.1}s)"))
                .collect();
            out.push_str(&format!("  {key:<width$}  {}\n", steps.join(" → ")));
        }
        out
    }
}

fn print_flush(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) must not stop the playground.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// What the playground shows as the objects change: a line per change (not a terminal), or
/// the table redrawn with the history and the status line.
struct Screen<'a> {
    cli: &'a Cli,
    tty: bool,
    banner: String,
    /// The examples' objects (`bpb/…`, `sstp/…`) that must be there before all is Ready.
    expected: Vec<String>,
    /// The product whose vetting the status line follows.
    product: String,
    started: Instant,
    rows: Vec<Row>,
    ready_at: Option<Duration>,
    history: History,
}

impl Screen<'_> {
    /// Shows the objects as they are `now`; whether all of them are Ready.
    fn show(&mut self, now: Vec<Row>) -> bool {
        let at = self.started.elapsed();
        if !self.tty {
            let (changed, gone) = view::changes(&self.rows, &now);
            let secs = at.as_secs_f64();
            let mut text = String::new();
            for row in changed {
                text.push_str(&format!("+{secs:.1}s {}\n", view::render_line(row)));
            }
            for key in gone {
                text.push_str(&format!("+{secs:.1}s {key} deleted\n"));
            }
            print_flush(&text);
        }
        self.history.record(&now, at.as_secs_f64());
        self.rows = now;
        let expected_present = self.cli.no_examples
            || self
                .expected
                .iter()
                .all(|k| self.rows.iter().any(|r| r.key() == *k));
        let all_ready = view::all_ready(&self.rows) && expected_present;
        let newly_ready = all_ready && self.ready_at.is_none();
        self.ready_at = if all_ready {
            self.ready_at.or(Some(at))
        } else {
            None
        };
        let status = || {
            let exit = self.cli.exit_when_ready;
            status_line(&self.rows, self.started, self.ready_at, exit, &self.product)
        };
        if self.tty {
            let mut discovery = view::render_discovery(&self.rows);
            if !discovery.is_empty() {
                discovery.push('\n');
            }
            print_flush(&format!(
                "\x1b[H\x1b[2J{}\n{}\n\n{}{}\n{}\n",
                self.banner,
                view::render_table(&self.rows),
                discovery,
                self.history.render(),
                status()
            ));
        } else if newly_ready {
            print_flush(&format!("{}\n", status()));
        }
        all_ready
    }

    /// What is not Ready yet, for the time-out message.
    fn waiting(&self) -> String {
        if self.rows.is_empty() {
            return "no bindings or trust products were found".to_string();
        }
        let waiting: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.is_ready())
            .map(view::render_line)
            .collect();
        format!("not Ready:\n  {}", waiting.join("\n  "))
    }
}

/// Starts the local API server and the simulator, and applies the CRDs and (unless
/// `--no-examples`) `examples`; returns the playground and what was applied.
async fn start_playground(
    cli: &Cli,
    seed: Seed,
    examples: &[(&str, &str)],
) -> Result<(Playground, Vec<String>), MainError> {
    let pg = Playground::start(PlaygroundOptions {
        seed,
        api_listen: cli.api_listen,
        sim_listen: cli.sim_listen,
        review_delay: Some(cli.review_delay),
        approve_delay: Some(cli.approve_delay),
        kubeconfig_path: Some(cli.kubeconfig.clone()),
        ..PlaygroundOptions::default()
    })
    .await?;
    let setup = async {
        let mut applied = pg.apply_crds().await?;
        if !cli.no_examples {
            for (origin, yaml) in examples {
                applied.extend(pg.apply_yaml(origin, yaml).await?);
            }
        }
        Ok::<_, PlaygroundError>(applied)
    };
    match setup.await {
        Ok(applied) => Ok((pg, applied)),
        Err(e) => {
            pg.shutdown().await;
            Err(e.into())
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, MainError> {
    let log_file = cli.log_file.clone().unwrap_or_else(|| {
        cli.kubeconfig
            .parent()
            .unwrap_or(Path::new("."))
            .join("playground.log")
    });
    let log_file = std::path::absolute(&log_file).unwrap_or(log_file);
    init_logging(&log_file, &cli.log_level)?;
    let mut signals = Signals::new()?;
    let seed = if cli.discovery {
        discovery_seed(cli.discovery_subaccounts, cli.discovery_numbers)
    } else {
        Seed::default_seed()
    };
    let examples: &[(&str, &str)] = if cli.discovery {
        &manifests::DISCOVERY_EXAMPLES
    } else {
        &manifests::EXAMPLES
    };
    let expected = manifests::example_keys(examples);
    let product = expected
        .iter()
        .find(|k| k.starts_with("sstp/"))
        .cloned()
        .unwrap_or_default();
    let (mut pg, applied) = start_playground(&cli, seed, examples).await?;
    let tty = std::io::stdout().is_terminal();
    let banner = banner(&cli, &pg, &log_file);
    if !tty {
        print_flush(&format!("{banner}applied {}\n", applied.join(", ")));
    }

    let started = Instant::now();
    // The watches are listed before the controller starts, so no state is missed (a product
    // is in draft for milliseconds).
    let mut snapshots = view::follow(pg.client.clone(), &pg.namespace).peekable();
    let listed = tokio::time::timeout(
        Duration::from_secs(30),
        std::pin::Pin::new(&mut snapshots).peek(),
    )
    .await;
    if !matches!(listed, Ok(Some(_))) {
        pg.shutdown().await;
        return Err(MainError::Watch);
    }
    if !cli.no_controller {
        match pg.controller_config() {
            Ok(config) => pg.start_controller_in_process(config),
            Err(e) => {
                pg.shutdown().await;
                return Err(e.into());
            }
        }
    }
    let deadline = tokio::time::sleep(cli.timeout);
    tokio::pin!(deadline);
    let mut screen = Screen {
        cli: &cli,
        tty,
        banner,
        expected,
        product,
        started,
        rows: Vec::new(),
        ready_at: None,
        history: History::default(),
    };
    if tty {
        print_flush(&format!(
            "\x1b[H\x1b[2J{}\n(waiting for the first objects…)\n",
            screen.banner
        ));
    }
    let code = loop {
        tokio::select! {
            _ = signals.recv() => {
                print_flush("\nstopping the playground…\n");
                break ExitCode::SUCCESS;
            }
            _ = &mut deadline, if cli.exit_when_ready => {
                eprintln!("trusthub-playground: timed out after {}: {}", humantime::format_duration(cli.timeout), screen.waiting());
                break ExitCode::FAILURE;
            }
            next = snapshots.next() => {
                let Some(now) = next else {
                    eprintln!("trusthub-playground: the watch on the local API ended");
                    break ExitCode::FAILURE;
                };
                if screen.show(now) && cli.exit_when_ready {
                    break ExitCode::SUCCESS;
                }
            }
        }
    };
    pg.shutdown().await;
    Ok(code)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trusthub-playground: {e}");
            ExitCode::FAILURE
        }
    }
}
