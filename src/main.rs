//! `trusthub-operator run`: the controller process (in-cluster config or KUBECONFIG).

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use trusthub_operator::controller::{self, Context, ControllerConfig};
use trusthub_operator::planner::PollSchedule;
use trusthub_operator::twilio::{ClientConfig, Endpoints};

#[derive(Parser, Debug)]
#[command(name = "trusthub-operator", version, about = "Automates Twilio Trust Hub SHAKEN/STIR onboarding from Kubernetes custom resources")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controllers.
    Run(RunArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Trust Hub base URL (scheme://host[:port]); defaults to Twilio's, or to the region/edge host.
    #[arg(long, env = "TRUSTHUB_TRUST_HUB_URL")]
    trust_hub_url: Option<String>,
    /// API 2010 base URL (accounts, incoming phone numbers).
    #[arg(long, env = "TRUSTHUB_API_URL")]
    api_url: Option<String>,
    /// Twilio region (e.g. ie1) for regional hosts.
    #[arg(long, env = "TWILIO_REGION")]
    twilio_region: Option<String>,
    /// Twilio edge (e.g. dublin) for edge hosts.
    #[arg(long, env = "TWILIO_EDGE")]
    twilio_edge: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Reconciles running at once, per kind.
    #[arg(long, env = "TRUSTHUB_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Twilio requests in flight at once (well under the account's concurrency limit).
    #[arg(long, env = "TRUSTHUB_MAX_IN_FLIGHT", default_value_t = 10)]
    max_in_flight: usize,
    /// First poll of a profile or product under review.
    #[arg(long, env = "TRUSTHUB_REVIEW_POLL_INITIAL", default_value = "1m", value_parser = humantime::parse_duration)]
    review_poll_initial: Duration,
    /// Longest interval between polls under review.
    #[arg(long, env = "TRUSTHUB_REVIEW_POLL_MAX", default_value = "30m", value_parser = humantime::parse_duration)]
    review_poll_max: Duration,
    /// Resync period of approved objects.
    #[arg(long, env = "TRUSTHUB_APPROVED_RESYNC", default_value = "12h", value_parser = humantime::parse_duration)]
    approved_resync: Duration,
    /// First retry after a noncompliant evaluation.
    #[arg(long, env = "TRUSTHUB_NONCOMPLIANT_RETRY", default_value = "30s", value_parser = humantime::parse_duration)]
    noncompliant_retry: Duration,
    /// Twilio request timeout.
    #[arg(long, env = "TRUSTHUB_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Log format.
    #[arg(long, env = "TRUSTHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `trusthub_operator=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
}

fn endpoints(args: &RunArgs) -> Result<Endpoints, Box<dyn std::error::Error>> {
    let regional = Endpoints::twilio_region(args.twilio_region.as_deref(), args.twilio_edge.as_deref())?;
    let trust_hub = args.trust_hub_url.clone().unwrap_or_else(|| regional.trust_hub().as_str().trim_end_matches('/').to_string());
    let api = args.api_url.clone().unwrap_or_else(|| regional.api().as_str().trim_end_matches('/').to_string());
    Ok(Endpoints::new(&trust_hub, &api)?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let config = ControllerConfig {
        namespace: args.namespace.clone(),
        twilio: ClientConfig {
            endpoints: endpoints(&args)?,
            max_in_flight: args.max_in_flight,
            request_timeout: args.request_timeout,
            ..ClientConfig::default()
        },
        poll: PollSchedule {
            review_initial: args.review_poll_initial,
            review_max: args.review_poll_max,
            approved_resync: args.approved_resync,
            noncompliant_initial: args.noncompliant_retry,
            ..PollSchedule::default()
        },
        concurrency: args.concurrency,
        ..ControllerConfig::default()
    };
    let client = kube::Client::try_default().await?;
    tracing::info!(namespace = ?config.namespace, trust_hub = %config.twilio.endpoints.trust_hub(), api = %config.twilio.endpoints.api(), "starting controllers");
    let ctx = Context::new(client, config, None);
    controller::run(ctx, shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
    };
    if let Err(e) = result {
        eprintln!("trusthub-operator: {e}");
        std::process::exit(1);
    }
}
