//! `trusthub-bench`: runs the release `trusthub-operator` against the Trust Hub simulator and
//! the local Kubernetes API and prints what it cost (see docs/benchmarks.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use trusthub_bench::BenchError;
use trusthub_bench::controller::{OperatorSettings, Runner, sibling_operator};
use trusthub_bench::report::{BenchReport, TargetCheck, render, render_targets, targets};
use trusthub_bench::scale::{SizeRow, across_sizes};
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
    /// Numbers per binding (with --products 1: the numbers in all). A comma-separated list
    /// (`1000,10000,50000`) runs the phases once per size, each with its own report, and then
    /// judges the targets that compare sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [3])]
    numbers: Vec<usize>,
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
    /// The binding selects every voice number of the --subaccounts subaccounts with
    /// `spec.discovery: {allSubaccounts: true}` instead of listing them (needs --products 1);
    /// after the onboarding a number is bought in a subaccount and timed until attached.
    #[arg(long)]
    discover: bool,
    /// `spec.discovery.interval` with --discover.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    discovery_interval: Duration,
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, Linux {}", kernel.trim())
}

/// The onboarding, then (discovering) a number bought and attached, then the idle count.
async fn onboarding_phases(
    args: &Args,
    runner: &Runner,
    onboarding: &OnboardingParams,
    report: &mut BenchReport,
) -> Result<(), BenchError> {
    eprintln!(
        "onboarding: {} products x {} numbers",
        args.products, onboarding.numbers_per_product
    );
    let (o, mut session) = scenario::onboarding(runner, onboarding).await?;
    report.onboarding = Some(o);
    if args.discover {
        eprintln!(
            "buy: one number, discovery every {:?}",
            args.discovery_interval
        );
        match scenario::buy_and_attach(&mut session).await {
            Ok(buy) => report.buy = Some(buy),
            Err(e) => {
                session.shutdown().await;
                return Err(e);
            }
        }
        // Let the follow-ups of the attachment (status writes) settle before the idle count.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!("idle: {:?}", args.idle);
    let idle = scenario::idle(&mut session, args.idle, "idle").await;
    session.shutdown().await;
    report.idle = Some(idle?);
    Ok(())
}

async fn run(args: &Args, numbers: usize) -> Result<BenchReport, BenchError> {
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
        scale_shape: args.discover || args.products == 1,
        ..BenchReport::default()
    };
    let discovery = args.discover.then_some(args.discovery_interval);
    let base = OperatorSettings {
        approved_resync: args.resync,
        ..OperatorSettings::default()
    };
    let onboarding = OnboardingParams {
        label: "onboarding".into(),
        products: args.products,
        numbers_per_product: numbers,
        subaccounts: args.subaccounts,
        faults: Faults::none(),
        settings: base.clone(),
        review_delay: Some(Duration::from_millis(500)),
        approve_delay: Some(Duration::from_secs(2)),
        wait_ready: true,
        timeout: args.timeout,
        discovery,
    };
    if args.phases.contains(&Phase::Latency) {
        eprintln!("latency: {} runs", args.latency_runs);
        report.latency =
            Some(scenario::latency(&runner, args.latency_runs, numbers.min(3), &base).await?);
    }
    if args.phases.contains(&Phase::Onboarding) {
        onboarding_phases(args, &runner, &onboarding, &mut report).await?;
    }
    if args.phases.contains(&Phase::Limited) {
        eprintln!(
            "limited: {} products x {numbers} numbers, M = {}, latency {:?}",
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
            // The review phase counts vetting polls; discovery would add its listings.
            discovery: None,
            ..onboarding.clone()
        };
        let (o, r) = scenario::review(&runner, &params, args.idle).await?;
        report.review_onboarding = Some(o);
        report.review = Some(r);
    }
    report.targets = targets(&report);
    Ok(report)
}

/// Everything one invocation measured: one report per size, and the targets comparing sizes.
#[derive(serde::Serialize)]
struct MultiSizeReport<'a> {
    sizes: &'a [BenchReport],
    across_sizes: Vec<SizeRow>,
    targets: Vec<TargetCheck>,
}

fn fail(e: BenchError) -> ! {
    eprintln!("trusthub-bench: {e}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.discover && args.products != 1 {
        fail(BenchError::Setup(
            "--discover selects every number of every subaccount for one binding: use --products 1"
                .into(),
        ));
    }
    let mut reports = Vec::with_capacity(args.numbers.len());
    for &numbers in &args.numbers {
        match run(&args, numbers).await {
            Ok(report) => {
                // Each size's report as soon as it is done: a later size may take long or fail.
                print!("{}", render(&report));
                reports.push(report);
            }
            Err(e) => fail(e),
        }
    }
    let rows: Vec<SizeRow> = reports.iter().filter_map(SizeRow::of).collect();
    let across = if reports.len() > 1 && reports.iter().all(|r| r.scale_shape) {
        across_sizes(&rows)
    } else {
        Vec::new()
    };
    if reports.len() > 1 {
        println!("== across sizes");
        println!(
            "  {:>8} {:>14} {:>14} {:>12} {:>14} {:>14}",
            "numbers", "Submitted s", "ms/number", "peak MiB", "limited s", "largest KiB"
        );
        let opt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        for r in &rows {
            println!(
                "  {:>8} {:>14} {:>14} {:>12} {:>14} {:>14}",
                r.numbers,
                opt(r.submitted_secs, 2),
                opt(
                    r.submitted_secs.map(|s| s * 1e3 / r.numbers.max(1) as f64),
                    3
                ),
                opt(r.peak_rss_mib, 1),
                opt(r.limited_submitted_secs, 2),
                opt(r.largest_object_bytes.map(|b| b as f64 / 1024.0), 1)
            );
        }
        print!("{}", render_targets(&across));
    }
    if let Some(path) = &args.json {
        let text = match reports.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            all => serde_json::to_string_pretty(&MultiSizeReport {
                sizes: all,
                across_sizes: rows,
                targets: across,
            }),
        };
        let written = text
            .map_err(BenchError::from)
            .and_then(|text| std::fs::write(path, text).map_err(BenchError::from));
        if let Err(e) = written {
            fail(e);
        }
    }
}
