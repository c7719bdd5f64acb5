//! The measured runs: onboarding (optionally under a concurrency limit), idle steady state,
//! single-product latency and polling of objects left in review.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use trusthub_sim::Faults;

use crate::BenchError;
use tokio::sync::broadcast::error::RecvError;
use trusthub_sim::seed::{generated_phone_number, generated_subaccount_sid};
use trusthub_sim::{BundleKind, NewNumber};

use crate::calls::{
    CallSummary, WriteTally, discovery_pages, duplicates, minimum_reads, minimum_reads_discovery,
    minimum_writes,
};
use crate::controller::{OperatorSettings, ProcStats, Runner, RunningController};
use crate::env::{BenchEnv, EnvOptions, ObjectSizes, Progress};
use crate::seed::bench_seed;

/// What an onboarding run does.
#[derive(Clone, Debug)]
pub struct OnboardingParams {
    /// Name of the run in the report.
    pub label: String,
    /// Trust products, each with its own binding.
    pub products: usize,
    /// Numbers per binding.
    pub numbers_per_product: usize,
    /// Subaccounts the numbers are spread over.
    pub subaccounts: usize,
    /// Simulator faults (concurrency limit, latency).
    pub faults: Faults,
    /// Operator flags.
    pub settings: OperatorSettings,
    /// Simulated vetting: pending-review → in-review after this delay.
    pub review_delay: Option<Duration>,
    /// Simulated vetting: in-review → approved after this delay; `None` leaves products in review.
    pub approve_delay: Option<Duration>,
    /// Wait for Ready (else only for Submitted).
    pub wait_ready: bool,
    /// Give up after this long.
    pub timeout: Duration,
    /// `Some(interval)`: the bindings select their numbers with `spec.discovery` over every
    /// subaccount, listed again every `interval` (see [`EnvOptions::discovery`]).
    pub discovery: Option<Duration>,
}

/// The result of an onboarding run.
#[derive(Clone, Debug, Serialize)]
pub struct OnboardingReport {
    /// Name of the run.
    pub label: String,
    /// Trust products (= bindings).
    pub products: usize,
    /// Numbers per binding.
    pub numbers_per_product: usize,
    /// Subaccounts.
    pub subaccounts: usize,
    /// Simulator's in-flight limit (429 beyond it).
    pub sim_max_in_flight: Option<usize>,
    /// Simulator's added latency per call, ms.
    pub sim_latency_ms: u64,
    /// Operator's `--max-in-flight`.
    pub operator_max_in_flight: usize,
    /// Seconds to apply all objects.
    pub apply_secs: f64,
    /// Seconds from the first apply until every trust product recorded `submittedAt`.
    pub all_submitted_secs: f64,
    /// Seconds until every trust product and binding is Ready (`None` when not awaited).
    pub all_ready_secs: Option<f64>,
    /// Successful writes by operationId.
    pub writes: BTreeMap<String, u64>,
    /// The minimum writes by operationId.
    pub minimum_writes: BTreeMap<String, u64>,
    /// The reads an onboarding cannot do without, by operationId ([`minimum_reads`]).
    pub minimum_reads: BTreeMap<String, u64>,
    /// Write events the tally missed (0 unless the collector lagged).
    pub writes_missed: u64,
    /// Requests by kind, reconciles.
    pub calls: CallSummary,
    /// Duplicated Trust Products or assignments (must be 0).
    pub duplicates: u64,
    /// Mean time a call was in flight at the simulator, milliseconds.
    pub mean_call_latency_ms: Option<f64>,
    /// Mean number of calls in flight at the simulator from the first apply until every product
    /// was submitted (M at best under a limit of M).
    pub mean_in_flight_until_submitted: Option<f64>,
    /// `minimum calls × latency / M` when the simulator limits concurrency, seconds: the
    /// issue's lower bound, with the minimum calls = minimum writes + minimum reads.
    pub lower_bound_secs: Option<f64>,
    /// The same bound counting the minimum writes only (no onboarding can reach it: it needs
    /// its reads too), seconds.
    pub lower_bound_writes_only_secs: Option<f64>,
    /// The same bound computed with the calls actually made, seconds.
    pub lower_bound_actual_calls_secs: Option<f64>,
    /// Controller process memory and CPU at the end (process runs only).
    pub controller: Option<ProcStats>,
    /// The discovery interval, seconds, when the bindings select their numbers by discovery.
    pub discovery_interval_secs: Option<f64>,
    /// Discovery listings the minimum reads count: the first, and one more per interval until
    /// every product was submitted (the re-listings the interval asks for).
    pub discovery_listings: Option<u64>,
    /// The pages of one discovery listing (Accounts and IncomingPhoneNumbers), by operationId.
    pub discovery_pages: Option<BTreeMap<String, u64>>,
    /// Calls from the first apply until every product was submitted.
    pub calls_until_submitted: Option<CallSummary>,
    /// Sizes of the first binding and product as stored at the end.
    pub object_sizes: Option<ObjectSizes>,
}

impl OnboardingReport {
    /// Numbers in all (bindings × numbers per binding).
    pub fn numbers_total(&self) -> usize {
        self.products * self.numbers_per_product
    }
    /// Reads until every product was submitted (all reads when not recorded).
    pub fn reads_until_submitted(&self) -> u64 {
        self.calls_until_submitted
            .as_ref()
            .map_or(self.calls.reads, |c| c.reads)
    }
    /// Sum of successful writes.
    pub fn writes_total(&self) -> u64 {
        self.writes.values().sum()
    }
    /// Sum of minimum writes.
    pub fn minimum_total(&self) -> u64 {
        self.minimum_writes.values().sum()
    }
    /// Sum of minimum reads.
    pub fn minimum_reads_total(&self) -> u64 {
        self.minimum_reads.values().sum()
    }
}

/// An environment with its controller still running, for the steady-state phase.
pub struct Session {
    /// The environment.
    pub env: BenchEnv,
    /// The controller.
    pub controller: RunningController,
    /// Objects (bindings + trust products).
    pub objects: usize,
    settings: OperatorSettings,
    /// Numbers held by each generated subaccount (grows when a number is bought).
    numbers_per_subaccount: Vec<usize>,
    /// Numbers in the seed (the next generated index is free).
    numbers_total: usize,
}

impl Session {
    /// Stops the controller and the environment.
    pub async fn shutdown(self) {
        self.controller.stop().await;
        self.env.shutdown().await;
    }
}

/// How many discovery listings an onboarding lasting `submitted_secs` makes (with discovery),
/// and the minimum reads by operation: with discovery, the numbers come from listings (per
/// subaccount, per 1,000), listed once and again every interval while the onboarding lasts.
fn reads_needed(
    params: &OnboardingParams,
    numbers_per_subaccount: &[usize],
    submitted_secs: f64,
) -> (Option<u64>, BTreeMap<String, u64>) {
    let listings = params
        .discovery
        .map(|i| 1 + (submitted_secs / i.as_secs_f64().max(1e-3)).floor() as u64);
    let minimum = match listings {
        Some(l) => minimum_reads_discovery(numbers_per_subaccount, l),
        None => minimum_reads(params.products, params.numbers_per_product),
    };
    (listings, minimum)
}

/// When the onboarding reached its milestones: seconds to all Submitted and to all Ready, and
/// the simulator's counters at submission.
struct Milestones {
    submitted: Option<f64>,
    ready: Option<f64>,
    at_submission: Option<trusthub_sim::Counters>,
}

/// Polls the objects every `poll` until every product is Submitted (and, with `wait_ready`,
/// every object Ready), or the timeout.
async fn wait_submitted(
    env: &BenchEnv,
    controller: &mut RunningController,
    params: &OnboardingParams,
    start: Instant,
    poll: Duration,
) -> Result<Milestones, BenchError> {
    let n = params.products;
    let mut milestones = Milestones {
        submitted: None,
        ready: None,
        at_submission: None,
    };
    let mut last = Progress::default();
    loop {
        controller.check_alive()?;
        last = env.progress().await.unwrap_or(last);
        let elapsed = start.elapsed().as_secs_f64();
        if milestones.submitted.is_none() && last.products_submitted >= n {
            milestones.submitted = Some(elapsed);
            milestones.at_submission = Some(env.sim.counters());
        }
        if milestones.ready.is_none() && last.products_ready >= n && last.bindings_ready >= n {
            milestones.ready = Some(elapsed);
        }
        if milestones.submitted.is_some() && (milestones.ready.is_some() || !params.wait_ready) {
            return Ok(milestones);
        }
        if start.elapsed() > params.timeout {
            return Err(BenchError::Timeout(format!(
                "{}: after {:?}: {last:?} of {n}",
                params.label, params.timeout
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Applies `products` bindings and trust products at once and measures until all are
/// submitted (and Ready when asked).
pub async fn onboarding(
    runner: &Runner,
    params: &OnboardingParams,
) -> Result<(OnboardingReport, Session), BenchError> {
    let seed = bench_seed(
        params.products,
        params.numbers_per_product,
        params.subaccounts,
    );
    let numbers_per_subaccount = seed.numbers_per_subaccount();
    let env = BenchEnv::start(
        seed,
        EnvOptions {
            faults: params.faults.clone(),
            review_delay: params.review_delay,
            approve_delay: params.approve_delay,
            discovery: params.discovery,
        },
    )
    .await?;
    let mut controller = RunningController::start(runner, &env, &params.settings).await?;
    let tally = WriteTally::start(&env.sim);
    let before = env.sim.counters();
    let start = Instant::now();
    env.apply_pairs(params.products, 16).await?;
    let apply_secs = start.elapsed().as_secs_f64();
    // Each progress check lists every object from the API server, in this process: polled
    // too often, the listing would take the CPU the controller is measured with (at 10,000
    // products, every 500 ms is ~100 MB of JSON a second). 0.5 ms per product, 200 ms at least.
    // A binding's status grows with its numbers: 10 µs per number, too.
    let numbers_total = params.products * params.numbers_per_product;
    let poll = Duration::from_micros(params.products as u64 * 500 + numbers_total as u64 * 10)
        .max(Duration::from_millis(200));
    let Milestones {
        submitted,
        ready,
        at_submission,
    } = wait_submitted(&env, &mut controller, params, start, poll).await?;
    let calls = CallSummary::between(&before, &env.sim.counters());
    let calls_at_submission = at_submission.map(|c| CallSummary::between(&before, &c));
    let (writes, writes_missed) = tally.snapshot();
    let minimum = minimum_writes(params.products, params.numbers_per_product);
    let submitted_secs = submitted.unwrap_or_default();
    let (listings, minimum_reads) = reads_needed(params, &numbers_per_subaccount, submitted_secs);
    let limit = params.faults.max_in_flight;
    // The bound takes the mean call latency: measured at the simulator (the injected
    // delay plus the simulator's own handling), not the injected delay alone.
    let latency = calls
        .mean_latency_secs()
        .unwrap_or(params.faults.latency_ms as f64 / 1000.0);
    let bound = |calls: u64| limit.map(|m| calls as f64 * latency / m as f64);
    let object_sizes = if params.products > 0 {
        Some(env.object_sizes(0).await?)
    } else {
        None
    };
    let report = OnboardingReport {
        label: params.label.clone(),
        products: params.products,
        numbers_per_product: params.numbers_per_product,
        subaccounts: params.subaccounts,
        sim_max_in_flight: limit,
        sim_latency_ms: params.faults.latency_ms,
        operator_max_in_flight: params.settings.max_in_flight,
        apply_secs,
        all_submitted_secs: submitted_secs,
        mean_call_latency_ms: calls.mean_latency_secs().map(|l| l * 1000.0),
        mean_in_flight_until_submitted: calls_at_submission
            .as_ref()
            .and_then(|c| c.mean_in_flight(submitted_secs)),
        all_ready_secs: ready,
        lower_bound_secs: bound(
            minimum.values().sum::<u64>() + minimum_reads.values().sum::<u64>(),
        ),
        lower_bound_writes_only_secs: bound(minimum.values().sum()),
        lower_bound_actual_calls_secs: bound(calls.total_requests),
        writes,
        minimum_writes: minimum,
        minimum_reads,
        writes_missed,
        duplicates: duplicates(&env.sim),
        calls,
        controller: controller.stats().transpose()?,
        discovery_interval_secs: params.discovery.map(|i| i.as_secs_f64()),
        discovery_listings: listings,
        discovery_pages: params
            .discovery
            .map(|_| discovery_pages(&numbers_per_subaccount)),
        calls_until_submitted: calls_at_submission,
        object_sizes,
    };
    Ok((
        report,
        Session {
            env,
            controller,
            objects: 2 * params.products,
            settings: params.settings.clone(),
            numbers_per_subaccount,
            numbers_total,
        },
    ))
}

/// The steady state: nothing applied, nothing changing, for a while.
#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    /// Name of the run.
    pub label: String,
    /// Seconds idle.
    pub idle_secs: f64,
    /// Operator's `--approved-resync`, seconds.
    pub approved_resync_secs: f64,
    /// Objects (bindings + trust products).
    pub objects: usize,
    /// Calls during the idle period.
    pub calls: CallSummary,
    /// Twilio requests per object per hour.
    pub calls_per_object_per_hour: f64,
    /// Twilio requests per object per resync period: the idle window's rate scaled to the
    /// period (when the window is shorter than the period, resyncs falling in it are counted at
    /// that rate, which over- rather than under-states the cost).
    pub calls_per_object_per_resync: Option<f64>,
    /// Controller CPU seconds during the idle period.
    pub cpu_seconds: Option<f64>,
    /// Controller RSS at the end and peak, MiB.
    pub controller: Option<ProcStats>,
    /// With discovery: its interval, seconds.
    pub discovery_interval_secs: Option<f64>,
    /// With discovery: the pages of one listing (Accounts + IncomingPhoneNumbers) at the time.
    pub discovery_pages_per_listing: Option<u64>,
}

/// Leaves `session` alone for `idle` and counts what the controller does meanwhile.
pub async fn idle(
    session: &mut Session,
    idle: Duration,
    label: &str,
) -> Result<IdleReport, BenchError> {
    let before = session.env.sim.counters();
    let cpu_before = session
        .controller
        .stats()
        .transpose()?
        .map(|s| s.cpu_seconds);
    let start = Instant::now();
    while start.elapsed() < idle {
        session.controller.check_alive()?;
        tokio::time::sleep(Duration::from_secs(1).min(idle.saturating_sub(start.elapsed()))).await;
    }
    let idle_secs = start.elapsed().as_secs_f64();
    let calls = CallSummary::between(&before, &session.env.sim.counters());
    let stats = session.controller.stats().transpose()?;
    let resync = session.settings.approved_resync.as_secs_f64();
    let per_object = calls.total_requests as f64 / session.objects.max(1) as f64;
    Ok(IdleReport {
        label: label.to_string(),
        idle_secs,
        approved_resync_secs: resync,
        objects: session.objects,
        calls_per_object_per_hour: per_object / (idle_secs / 3600.0),
        calls_per_object_per_resync: (idle_secs > 0.0).then(|| per_object * resync / idle_secs),
        cpu_seconds: stats
            .zip(cpu_before)
            .map(|(after, before)| after.cpu_seconds - before),
        controller: stats,
        calls,
        discovery_interval_secs: session.env.discovery.map(|i| i.as_secs_f64()),
        discovery_pages_per_listing: session.env.discovery.map(|_| {
            discovery_pages(&session.numbers_per_subaccount)
                .values()
                .sum()
        }),
    })
}

/// A number bought in a subaccount after the onboarding, and how long until it was attached.
#[derive(Clone, Debug, Serialize)]
pub struct BuyReport {
    /// The number bought (E.164) and its `PN…` SID.
    pub phone_number: String,
    pub sid: String,
    /// The subaccount it was bought in.
    pub subaccount_sid: String,
    /// The discovery interval, seconds.
    pub interval_secs: f64,
    /// Seconds from the buy to the simulator's write of the trust product's channel endpoint
    /// assignment of that number; `None` when it did not come within `waited_secs`.
    pub attached_after_secs: Option<f64>,
    /// How long the benchmark waited at most, seconds.
    pub waited_secs: f64,
}

/// Buys a new voice number in the first generated subaccount and waits until the operator
/// attached it to a trust product (the simulator's write event of that channel endpoint
/// assignment), at most two discovery intervals + 30 s.
pub async fn buy_and_attach(session: &mut Session) -> Result<BuyReport, BenchError> {
    let interval = session
        .env
        .discovery
        .ok_or_else(|| BenchError::Setup("buying a number needs discovery".into()))?;
    let subaccount_sid = generated_subaccount_sid(0);
    let phone_number = generated_phone_number(session.numbers_total);
    let mut writes = session.env.sim.subscribe_writes();
    let start = Instant::now();
    let bought = session
        .env
        .sim
        .buy_number(&subaccount_sid, NewNumber::e164(phone_number.clone()))
        .map_err(|e| BenchError::Setup(format!("buying {phone_number}: {e}")))?;
    session.numbers_total += 1;
    if let Some(n) = session.numbers_per_subaccount.first_mut() {
        *n += 1;
    }
    let wait = 2 * interval + Duration::from_secs(30);
    let attached = |sim: &trusthub_sim::SimServer| {
        sim.channel_assignments().iter().any(|a| {
            a.parent_kind == BundleKind::TrustProduct && a.channel_endpoint_sid == bought.sid
        })
    };
    let mut attached_after = None;
    while attached_after.is_none() && start.elapsed() < wait {
        session.controller.check_alive()?;
        let left = wait.saturating_sub(start.elapsed());
        match tokio::time::timeout(left.min(Duration::from_secs(1)), writes.recv()).await {
            Ok(Ok(event))
                if event.operation_id == "CreateTrustProductChannelEndpointAssignment"
                    && attached(&session.env.sim) =>
            {
                attached_after = Some(start.elapsed().as_secs_f64());
            }
            Ok(Err(RecvError::Closed)) => break,
            // Lagged: look at the state instead of the missed events.
            Ok(Err(RecvError::Lagged(_))) if attached(&session.env.sim) => {
                attached_after = Some(start.elapsed().as_secs_f64());
            }
            _ => {}
        }
    }
    Ok(BuyReport {
        phone_number,
        sid: bought.sid,
        subaccount_sid,
        interval_secs: interval.as_secs_f64(),
        attached_after_secs: attached_after,
        waited_secs: wait.as_secs_f64(),
    })
}

/// Polls expected for one object in review during `[from, to]` seconds after submission, by
/// the operator's schedule without jitter (the wait before the next poll is the time already
/// waited, clamped to `[initial, max]`).
pub fn expected_review_polls(initial: Duration, max: Duration, from: f64, to: f64) -> u64 {
    let (initial, max) = (
        initial.as_secs_f64(),
        max.as_secs_f64().max(initial.as_secs_f64()),
    );
    let mut t: f64 = 0.0;
    let mut polls = 0;
    if initial <= 0.0 {
        return 0;
    }
    loop {
        t += t.clamp(initial, max);
        if t > to {
            break;
        }
        if t >= from {
            polls += 1;
        }
    }
    polls
}

/// Apply → Submitted of one trust product at a time.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyReport {
    /// Runs.
    pub runs: usize,
    /// Seconds of each run, in order.
    pub samples_secs: Vec<f64>,
    /// Median, seconds.
    pub p50_secs: f64,
    /// 90th percentile, seconds.
    pub p90_secs: f64,
    /// 99th percentile, seconds.
    pub p99_secs: f64,
    /// Slowest, seconds.
    pub max_secs: f64,
}

/// Nearest-rank percentile of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Applies `runs` binding + trust product pairs one after the other against a zero-latency
/// simulator, each once the previous one is submitted, and times apply → `submittedAt`.
pub async fn latency(
    runner: &Runner,
    runs: usize,
    numbers_per_product: usize,
    settings: &OperatorSettings,
) -> Result<LatencyReport, BenchError> {
    let env = BenchEnv::start(
        bench_seed(runs, numbers_per_product, 4),
        EnvOptions {
            faults: Faults::none(),
            review_delay: None,
            approve_delay: None,
            discovery: None,
        },
    )
    .await?;
    let mut controller = RunningController::start(runner, &env, settings).await?;
    let mut samples = Vec::with_capacity(runs);
    let result = async {
        for i in 0..runs {
            let start = Instant::now();
            env.apply_pair(i).await?;
            while !env.submitted(i).await? {
                controller.check_alive()?;
                if start.elapsed() > Duration::from_secs(60) {
                    return Err(BenchError::Timeout(format!("latency run {i}")));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            samples.push(start.elapsed().as_secs_f64());
        }
        Ok(())
    }
    .await;
    controller.stop().await;
    env.shutdown().await;
    result?;
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(LatencyReport {
        runs,
        p50_secs: percentile(&sorted, 50.0),
        p90_secs: percentile(&sorted, 90.0),
        p99_secs: percentile(&sorted, 99.0),
        max_secs: sorted.last().copied().unwrap_or_default(),
        samples_secs: samples,
    })
}

/// Objects left in review: polls measured against the schedule.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewReport {
    /// Trust products in review.
    pub products: usize,
    /// Seconds after all were submitted when counting started and stopped.
    pub window_secs: (f64, f64),
    /// Trust product polls (reconciles reaching Twilio) per product in the window.
    pub polls_per_product: f64,
    /// Polls per product the schedule implies (no jitter).
    pub expected_polls_per_product: u64,
    /// Twilio requests per product per poll.
    pub requests_per_poll: f64,
    /// Calls in the window.
    pub calls: CallSummary,
}

/// Onboards `params.products` products that stay in review, then counts polls for `window`.
pub async fn review(
    runner: &Runner,
    params: &OnboardingParams,
    window: Duration,
) -> Result<(OnboardingReport, ReviewReport), BenchError> {
    let (report, mut session) = onboarding(runner, params).await?;
    // Products were submitted between the first apply and `all_submitted_secs`; counting starts
    // now, on average half that time after each submission.
    let from = report.all_submitted_secs / 2.0;
    let idle_report = idle(&mut session, window, "review").await;
    session.shutdown().await;
    let idle_report = idle_report?;
    let calls = idle_report.calls;
    let n = params.products.max(1) as f64;
    let polls = calls.product_reconciles as f64 / n;
    let to = from + idle_report.idle_secs;
    Ok((
        report,
        ReviewReport {
            products: params.products,
            window_secs: (from, to),
            polls_per_product: polls,
            expected_polls_per_product: expected_review_polls(
                params.settings.review_poll_initial,
                params.settings.review_poll_max,
                from,
                to,
            ),
            requests_per_poll: if calls.product_reconciles == 0 {
                0.0
            } else {
                (calls.total_requests as f64) / calls.product_reconciles as f64
            },
            calls,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_schedule_doubles_then_stays_at_the_maximum() {
        let s = Duration::from_secs;
        // Polls at 1, 2, 4, 8, 16, then every 10 s: 26 … 116.
        assert_eq!(expected_review_polls(s(1), s(10), 0.0, 120.0), 15);
        assert_eq!(expected_review_polls(s(1), s(10), 3.0, 20.0), 3);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 50.0);
        assert_eq!(percentile(&v, 50.0), 25.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
