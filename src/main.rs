//! `trusthub-operator run`: the controller process (in-cluster config or KUBECONFIG).
//! `trusthub-operator preflight`: a read-only check of a Twilio account before onboarding.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use trusthub_operator::controller::{ControllerConfig, SecretAccess};
use trusthub_operator::leader::LeaseConfig;
use trusthub_operator::planner::PollSchedule;
use trusthub_operator::preflight::{self, Output, PreflightOptions};
use trusthub_operator::runtime::{self, RuntimeConfig};
use trusthub_operator::twilio::{ClientConfig, Endpoints};

#[derive(Parser, Debug)]
#[command(
    name = "trusthub-operator",
    version,
    about = "Automates Twilio Trust Hub SHAKEN/STIR onboarding from Kubernetes custom resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controllers.
    Run(RunArgs),
    /// Check, read-only, whether a Twilio account is ready for SHAKEN/STIR onboarding.
    Preflight(PreflightArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Table,
    Json,
}

/// Credentials come from TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY +
/// TWILIO_API_SECRET), or from a Secret with `--secret`. Never writes to Twilio. Exit codes:
/// 0 ready, 1 error, 2 usage, 3 credentials refused, 4 parent account not active,
/// 5 subaccount suspended, 6 no approved Primary Business Profile, 7 SHAKEN/STIR policy
/// missing, 8 SHAKEN/STIR product exists (adopt it), 9 numbers on another product,
/// 10 no voice numbers.
#[derive(clap::Args, Debug)]
struct PreflightArgs {
    #[command(flatten)]
    hosts: TwilioHostArgs,
    /// Read the credentials from this Secret (NAMESPACE/NAME, or NAME in the kubeconfig's
    /// namespace) through the kubeconfig, with the key names the custom resources default to.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    secret: Option<String>,
    /// Output format of the report.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Print the BusinessProfileBinding and ShakenStirTrustProduct (YAML) that would onboard
    /// what was found, instead of the report (the verdict goes to stderr).
    #[arg(long)]
    manifests: bool,
    /// metadata.name of the generated objects.
    #[arg(long, default_value = "shaken-stir", requires = "manifests")]
    name: String,
    /// metadata.namespace of the generated objects (default: the --secret namespace).
    #[arg(long, requires = "manifests")]
    namespace: Option<String>,
    /// Twilio request timeout.
    #[arg(long, env = "TRUSTHUB_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Twilio requests in flight at once.
    #[arg(long, env = "TRUSTHUB_MAX_IN_FLIGHT", default_value_t = 10)]
    max_in_flight: usize,
}

impl From<PreflightArgs> for PreflightOptions {
    fn from(args: PreflightArgs) -> Self {
        PreflightOptions {
            trust_hub_url: args.hosts.trust_hub_url,
            api_url: args.hosts.api_url,
            twilio_region: args.hosts.twilio_region,
            twilio_edge: args.hosts.twilio_edge,
            secret: args.secret,
            output: match args.output {
                OutputFormat::Table => Output::Table,
                OutputFormat::Json => Output::Json,
            },
            manifests: args.manifests,
            name: args.name,
            namespace: args.namespace,
            request_timeout: args.request_timeout,
            max_in_flight: args.max_in_flight,
        }
    }
}

/// `--secret-access`: see `SecretAccess`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SecretAccessMode {
    /// Read Secrets by name only (`get`); check the named ones every `--secret-recheck`.
    Get,
    /// Watch Secret metadata (`list`, `watch`), optionally by `--secret-label-selector`.
    Watch,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

/// Where Twilio is: the same flags for `run` and `preflight`.
#[derive(clap::Args, Debug)]
struct TwilioHostArgs {
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
}

impl TwilioHostArgs {
    fn endpoints(&self) -> Result<Endpoints, Box<dyn std::error::Error>> {
        Ok(Endpoints::from_flags(
            self.trust_hub_url.as_deref(),
            self.api_url.as_deref(),
            self.twilio_region.as_deref(),
            self.twilio_edge.as_deref(),
        )?)
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    hosts: TwilioHostArgs,
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
    /// How long before an approval's valid_until the object shows ExpiringSoon (and a Warning Event).
    #[arg(long, env = "TRUSTHUB_EXPIRY_WARNING", default_value = "30d", value_parser = humantime::parse_duration)]
    expiry_warning: Duration,
    /// First retry after a noncompliant evaluation.
    #[arg(long, env = "TRUSTHUB_NONCOMPLIANT_RETRY", default_value = "30s", value_parser = humantime::parse_duration)]
    noncompliant_retry: Duration,
    /// Twilio request timeout.
    #[arg(long, env = "TRUSTHUB_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// How Secrets are read: `get` needs only `get` on Secrets and sees a rotation within
    /// --secret-recheck; `watch` needs `list` and `watch` and sees it at once.
    #[arg(long, env = "TRUSTHUB_SECRET_ACCESS", value_enum, default_value_t = SecretAccessMode::Get)]
    secret_access: SecretAccessMode,
    /// With --secret-access=get: how often the Secrets the resources name are checked for changes.
    #[arg(long, env = "TRUSTHUB_SECRET_RECHECK", default_value = "1m", value_parser = parse_recheck)]
    secret_recheck: Duration,
    /// With --secret-access=watch: watch only the Secrets matching this label selector.
    #[arg(long, env = "TRUSTHUB_SECRET_LABEL_SELECTOR")]
    secret_label_selector: Option<String>,
    /// Log format.
    #[arg(long, env = "TRUSTHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `trusthub_operator=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "TRUSTHUB_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Where POST /twilio/status-callback is served (unset: no callback receiver).
    #[arg(long, env = "TRUSTHUB_WEBHOOK_ADDR")]
    webhook_addr: Option<SocketAddr>,
    /// The URL Twilio calls for status callbacks (https; plain http only for local testing),
    /// set as StatusCallback of every Trust Product whose spec names none.
    #[arg(long, env = "TRUSTHUB_WEBHOOK_PUBLIC_URL", value_parser = parse_callback_url)]
    webhook_public_url: Option<String>,
    /// Run only while holding a coordination.k8s.io Lease (for more than one replica).
    #[arg(long, env = "TRUSTHUB_LEADER_ELECTION", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(long, env = "TRUSTHUB_LEASE_NAME", default_value = "trusthub-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: the kubeconfig's or the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// How long the Lease stays valid without renewal (whole seconds, at least 1s).
    #[arg(long, env = "TRUSTHUB_LEASE_DURATION", default_value = "15s", value_parser = parse_lease_duration)]
    lease_duration: Duration,
}

fn parse_callback_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an https:// URL (http:// only for local testing)".into());
    }
    Ok(value.to_string())
}

fn parse_recheck(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

fn secret_access(args: &RunArgs) -> Result<SecretAccess, String> {
    match args.secret_access {
        SecretAccessMode::Get if args.secret_label_selector.is_some() => {
            Err("--secret-label-selector needs --secret-access=watch".into())
        }
        SecretAccessMode::Get => Ok(SecretAccess::Get {
            recheck: args.secret_recheck,
        }),
        SecretAccessMode::Watch => Ok(SecretAccess::Watch {
            label_selector: args.secret_label_selector.clone(),
        }),
    }
}

fn parse_lease_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
        return Err("must be whole seconds, at least 1s (Lease durations are seconds)".into());
    }
    Ok(d)
}

/// This replica's identity in the Lease: the pod name, else the host name.
fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("trusthub-operator-{}", std::process::id()))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let config = ControllerConfig {
        namespace: args.namespace.clone(),
        twilio: ClientConfig {
            endpoints: args.hosts.endpoints()?,
            max_in_flight: args.max_in_flight,
            request_timeout: args.request_timeout,
            // Twilio's request logs (and the tests' simulator) tell the replicas apart.
            user_agent_comment: Some(identity()),
            ..ClientConfig::default()
        },
        poll: PollSchedule {
            review_initial: args.review_poll_initial,
            review_max: args.review_poll_max,
            approved_resync: args.approved_resync,
            noncompliant_initial: args.noncompliant_retry,
            expiry_warning: args.expiry_warning,
            ..PollSchedule::default()
        },
        concurrency: args.concurrency,
        status_callback_url: args.webhook_public_url.clone(),
        secrets: secret_access(&args)?,
        ..ControllerConfig::default()
    };
    if let Some(url) = &args.webhook_public_url {
        if url.starts_with("http://") {
            tracing::warn!(
                "--webhook-public-url is plain http: Twilio requires https; use this only for local testing"
            );
        }
        if args.webhook_addr.is_none() {
            tracing::warn!(
                "--webhook-public-url is set without --webhook-addr: this replica receives no callbacks"
            );
        }
    }
    let client = kube::Client::try_default().await?;
    let leader_election = args.leader_election.then(|| LeaseConfig {
        name: args.lease_name.clone(),
        namespace: args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string()),
        identity: identity(),
        duration: args.lease_duration,
    });
    let metrics_listener = TcpListener::bind(args.metrics_addr).await?;
    let webhook_listener = match args.webhook_addr {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    tracing::info!(namespace = ?config.namespace, trust_hub = %config.twilio.endpoints.trust_hub(), api = %config.twilio.endpoints.api(), leader_election = ?leader_election.as_ref().map(|l| (&l.namespace, &l.name, &l.identity)), "starting");
    let runtime_config = RuntimeConfig {
        controller: config,
        metrics_listener,
        webhook_listener,
        leader_election,
    };
    runtime::run(client, runtime_config, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn main() {
    // Before the runtime starts its threads (see `allocator`).
    trusthub_operator::allocator::tune();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("trusthub-operator: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}

async fn start() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Preflight(args) => std::process::exit(preflight::run(args.into()).await),
    };
    if let Err(e) = result {
        eprintln!("trusthub-operator: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn run_args(args: &[&str]) -> RunArgs {
        let mut argv = vec!["trusthub-operator", "run"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Run(args) => args,
            Command::Preflight(_) => unreachable!("parsed `run`"),
        }
    }

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runtime_flags_have_the_documented_defaults() {
        let args = run_args(&[]);
        assert_eq!(args.metrics_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(args.webhook_addr, None);
        assert_eq!(args.webhook_public_url, None);
        assert!(!args.leader_election);
        assert_eq!(args.lease_name, "trusthub-operator");
        assert_eq!(args.lease_duration, Duration::from_secs(15));
        // The narrow Secret mode is the default: get by name, checked every minute.
        assert_eq!(
            secret_access(&args),
            Ok(SecretAccess::Get {
                recheck: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn secret_access_modes() {
        let watch = run_args(&[
            "--secret-access",
            "watch",
            "--secret-label-selector",
            "trusthub.stir.dev/credentials=true",
        ]);
        assert_eq!(
            secret_access(&watch),
            Ok(SecretAccess::Watch {
                label_selector: Some("trusthub.stir.dev/credentials=true".into())
            })
        );
        let get = run_args(&["--secret-recheck", "10s"]);
        assert_eq!(
            secret_access(&get),
            Ok(SecretAccess::Get {
                recheck: Duration::from_secs(10)
            })
        );
        assert!(secret_access(&run_args(&["--secret-label-selector", "a=b"])).is_err());
        assert!(
            Cli::try_parse_from(["trusthub-operator", "run", "--secret-recheck", "0s"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["trusthub-operator", "run", "--secret-access", "list"]).is_err()
        );
    }

    #[test]
    fn leader_election_takes_a_bare_flag_or_a_boolean() {
        assert!(run_args(&["--leader-election"]).leader_election);
        assert!(run_args(&["--leader-election", "true"]).leader_election);
        assert!(!run_args(&["--leader-election=false"]).leader_election);
        let args = run_args(&["--leader-election", "--lease-duration", "3s"]);
        assert!(args.leader_election);
        assert_eq!(args.lease_duration, Duration::from_secs(3));
    }

    #[test]
    fn preflight_flags() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["trusthub-operator", "preflight"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Preflight(args) => PreflightOptions::from(args),
                Command::Run(_) => unreachable!("parsed `preflight`"),
            })
        };
        let defaults = parse(&[]).expect("no flag is required");
        assert_eq!(defaults.output, Output::Table);
        assert!(!defaults.manifests && defaults.secret.is_none());
        assert_eq!(defaults.name, "shaken-stir");
        let json = parse(&["-o", "json", "--secret", "ops/twilio"]).expect("parses");
        assert_eq!(json.output, Output::Json);
        assert_eq!(json.secret.as_deref(), Some("ops/twilio"));
        let manifests =
            parse(&["--manifests", "--name", "acme", "--namespace", "telecom"]).expect("parses");
        assert!(manifests.manifests);
        assert_eq!(manifests.namespace.as_deref(), Some("telecom"));
        assert!(
            parse(&["--name", "acme"]).is_err(),
            "--name needs --manifests"
        );
        assert!(parse(&["-o", "yaml"]).is_err());
    }

    #[test]
    fn refuses_unusable_urls_and_durations() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["trusthub-operator", "run"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).is_ok()
        };
        assert!(parse(&[
            "--webhook-public-url",
            "https://op.example/twilio/status-callback"
        ]));
        assert!(parse(&["--webhook-public-url", "http://127.0.0.1:9/cb"]));
        assert!(!parse(&["--webhook-public-url", "ftp://op.example/cb"]));
        assert!(!parse(&["--webhook-public-url", "/relative"]));
        assert!(!parse(&["--lease-duration", "500ms"]));
        assert!(!parse(&["--lease-duration", "1500ms"]));
        assert!(!parse(&["--metrics-addr", "not-an-address"]));
    }
}
