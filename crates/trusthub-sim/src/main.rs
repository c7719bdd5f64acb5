//! `trusthub-sim` binary: run the simulator until SIGTERM or Ctrl-C.
//!
//! ```text
//! trusthub-sim --listen 127.0.0.1:8080 [--seed seed.yaml] [--review-delay 2s] [--approve-delay 5s]
//!              [--fault-429-rate 0.1] [--retry-after 1] [--fault-500-rate 0.05] [--fault-503-rate 0.05]
//!              [--fault-drop-rate 0.01] [--latency 50ms] [--max-in-flight 10] [--fault-seed 42]
//!              [--public-base-url http://sim:8080] [--admin-token TOKEN] [--print-default-seed]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use trusthub_sim::{Faults, Secret, Seed, SimConfig, SimServer};

#[derive(Debug, Parser)]
#[command(
    name = "trusthub-sim",
    about = "Simulator of Twilio Trust Hub v1 and API 2010-04-01 accounts/numbers"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seed file (YAML or JSON); default: the built-in seed.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Delay before pending-review → in-review (e.g. 2s, 500ms); unset = admin API only.
    #[arg(long, value_parser = parse_duration)]
    review_delay: Option<Duration>,
    /// Delay before in-review → approved/rejected; unset = admin API only.
    #[arg(long, value_parser = parse_duration)]
    approve_delay: Option<Duration>,
    /// Probability of 429/20429 per request.
    #[arg(long, default_value_t = 0.0)]
    fault_429_rate: f64,
    /// `Retry-After` seconds on injected 429s (none if unset).
    #[arg(long)]
    retry_after: Option<u64>,
    #[arg(long, default_value_t = 0.0)]
    fault_500_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_503_rate: f64,
    /// Probability of closing the connection without a response.
    #[arg(long, default_value_t = 0.0)]
    fault_drop_rate: f64,
    /// Latency added to every API request.
    #[arg(long, value_parser = parse_duration)]
    latency: Option<Duration>,
    /// 429/20429 beyond this many requests in flight.
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Seed of the fault RNG.
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Base URL written into `url`/`links`/`meta` fields.
    #[arg(long)]
    public_base_url: Option<String>,
    /// Print the built-in default seed (YAML, commented) and exit.
    #[arg(long)]
    print_default_seed: bool,
    /// How long approvals last (`valid_until`), e.g. `30s` to watch one expire; default 365 days.
    #[arg(long, value_parser = parse_duration)]
    approval_validity: Option<Duration>,
    /// Require `Authorization: Bearer <token>` on /_sim/.
    #[arg(long, env = "TRUSTHUB_SIM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let value: f64 = number.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs on stderr: stdout carries the listening line and the credentials.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if cli.print_default_seed {
        print!("{}", trusthub_sim::seed::DEFAULT_SEED_YAML);
        return std::process::ExitCode::SUCCESS;
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trusthub-sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), trusthub_sim::SimError> {
    let seed = match &cli.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::default_seed(),
    };
    let faults = Faults {
        rate_429: cli.fault_429_rate,
        retry_after_secs: cli.retry_after,
        rate_500: cli.fault_500_rate,
        rate_503: cli.fault_503_rate,
        rate_drop: cli.fault_drop_rate,
        latency_ms: cli.latency.map(|d| d.as_millis() as u64).unwrap_or(0),
        max_in_flight: cli.max_in_flight,
        rng_seed: cli.fault_seed,
        scripted: Vec::new(),
    };
    let server = SimServer::start(SimConfig {
        listen: cli.listen,
        seed,
        review_delay: cli.review_delay,
        approve_delay: cli.approve_delay,
        faults,
        public_base_url: cli.public_base_url,
        admin_token: cli.admin_token.map(Secret::new),
        approval_validity: cli.approval_validity,
    })
    .await?;
    println!("trusthub-sim listening on {}", server.base_url());
    println!("accepted credentials (Basic auth username:password):");
    let seed = server.seed();
    for account in seed.accounts() {
        println!(
            "  account {} ({}) : {}",
            account.sid,
            account.friendly_name,
            account.auth_token.expose()
        );
    }
    for key in &seed.api_keys {
        println!(
            "  {:?} API key {} of {} : {}",
            key.kind,
            key.sid,
            key.account_sid,
            key.secret.expose()
        );
    }
    wait_for_signal().await;
    println!("trusthub-sim shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "trusthub-sim: cannot listen for SIGTERM ({e}); only Ctrl-C stops it"
                    );
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
