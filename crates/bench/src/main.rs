//! `trusthub-bench`: runs the release `trusthub-operator` against the Trust Hub simulator and
//! the local Kubernetes API and prints what it cost (see docs/benchmarks.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use trusthub_bench::BenchError;
use trusthub_bench::controller::{OperatorSettings, Runner, sibling_operator};
use trusthub_bench::report::{BenchReport, render, targets};
use trusthub_bench::scenario::{self, OnboardingParams};
use trusthub_sim::Faults;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// One trust product at a time, apply → Submitted.
    Latency,
    /// N products at once, then idle.
    Onboarding,
    /// N products at once under a simulated concurrency limit.
    Limited,
    /// Products left in review, polls counted.
    Review,
}

#[derive(Parser, Debug)]
#[command(
    name = "trusthub-bench",
    about = "Measures trusthub-operator's Twilio calls, time, memory and CPU"
)]
struct Args {
    /// Trust products onboarded at once (each with its own binding).
    #[arg(long, default_value_t = 200)]
    products: usize,
    /// Numbers per binding.
    #[arg(long, default_value_t = 3)]
    numbers: usize,
    /// Subaccounts the numbers are spread over.
    #[arg(long, default_value_t = 10)]
    subaccounts: usize,
    /// Idle time after the onboarding (and the review window).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    idle: Duration,
    /// The operator's --approved-resync during the onboarding and idle runs.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// Runs of the latency phase.
    #[arg(long, default_value_t = 50)]
    latency_runs: usize,
    /// M: the simulator answers 429 beyond M requests in flight; the operator's --max-in-flight.
    #[arg(long, default_value_t = 5)]
    limit: usize,
    /// Latency the simulator adds to every call in the limited run.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    limit_latency: Duration,
    /// Trust products left in review in the review phase.
    #[arg(long, default_value_t = 20)]
    review_products: usize,
    /// Phases to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Phase::Latency, Phase::Onboarding, Phase::Limited, Phase::Review])]
    phases: Vec<Phase>,
    /// The trusthub-operator binary (default: next to this executable).
    #[arg(long)]
    operator: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Give up on a run after this long.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, Linux {}", kernel.trim())
}

async fn run(args: Args) -> Result<BenchReport, BenchError> {
    let binary = args
        .operator
        .clone()
        .or_else(sibling_operator)
        .ok_or_else(|| BenchError::Setup("cannot locate this executable".into()))?;
    if !binary.is_file() {
        return Err(BenchError::OperatorMissing(binary));
    }
    let runner = Runner::Process(binary);
    let mut report = BenchReport {
        machine: machine(),
        args: std::env::args().skip(1).collect(),
        ..BenchReport::default()
    };
    let base = OperatorSettings {
        approved_resync: args.resync,
        ..OperatorSettings::default()
    };
    let onboarding = OnboardingParams {
        label: "onboarding".into(),
        products: args.products,
        numbers_per_product: args.numbers,
        subaccounts: args.subaccounts,
        faults: Faults::none(),
        settings: base.clone(),
        review_delay: Some(Duration::from_millis(500)),
        approve_delay: Some(Duration::from_secs(2)),
        wait_ready: true,
        timeout: args.timeout,
    };
    if args.phases.contains(&Phase::Latency) {
        eprintln!("latency: {} runs", args.latency_runs);
        report.latency =
            Some(scenario::latency(&runner, args.latency_runs, args.numbers, &base).await?);
    }
    if args.phases.contains(&Phase::Onboarding) {
        eprintln!("onboarding: {} products", args.products);
        let (o, mut session) = scenario::onboarding(&runner, &onboarding).await?;
        report.onboarding = Some(o);
        eprintln!("idle: {:?}", args.idle);
        let idle = scenario::idle(&mut session, args.idle, "idle").await;
        session.shutdown().await;
        report.idle = Some(idle?);
    }
    if args.phases.contains(&Phase::Limited) {
        eprintln!(
            "limited: {} products, M = {}, latency {:?}",
            args.products, args.limit, args.limit_latency
        );
        let limited = OnboardingParams {
            label: "limited".into(),
            faults: Faults {
                max_in_flight: Some(args.limit),
                latency_ms: args.limit_latency.as_millis() as u64,
                ..Faults::none()
            },
            // The operator's own review schedule (first poll a minute after submission): this
            // run ends at submission, and the compressed schedule of the other runs would spend
            // the limited slots on vetting polls a real onboarding does not make in that time.
            settings: OperatorSettings {
                max_in_flight: args.limit,
                ..OperatorSettings::production(args.resync)
            },
            wait_ready: false,
            ..onboarding.clone()
        };
        let (o, session) = scenario::onboarding(&runner, &limited).await?;
        session.shutdown().await;
        report.limited = Some(o);
    }
    if args.phases.contains(&Phase::Review) {
        eprintln!(
            "review: {} products for {:?}",
            args.review_products, args.idle
        );
        let params = OnboardingParams {
            label: "review-onboarding".into(),
            products: args.review_products,
            review_delay: Some(Duration::from_millis(100)),
            approve_delay: None,
            wait_ready: false,
            ..onboarding.clone()
        };
        let (o, r) = scenario::review(&runner, &params, args.idle).await?;
        report.review_onboarding = Some(o);
        report.review = Some(r);
    }
    report.targets = targets(&report);
    Ok(report)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let json = args.json.clone();
    let report = match run(args).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("trusthub-bench: {e}");
            std::process::exit(1);
        }
    };
    print!("{}", render(&report));
    if let Some(path) = json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(BenchError::from)
            .and_then(|text| std::fs::write(&path, text).map_err(BenchError::from));
        if let Err(e) = written {
            eprintln!("trusthub-bench: {e}");
            std::process::exit(1);
        }
    }
}
