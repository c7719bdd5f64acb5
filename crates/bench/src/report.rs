//! The benchmark's report: every run's figures, the targets of the issue checked against them,
//! printed as a table and serialised as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::scale::scale_targets;
use crate::scenario::{BuyReport, IdleReport, LatencyReport, OnboardingReport, ReviewReport};

/// Twilio reads a reconcile needs at most by the controller's design: a binding's first
/// reconcile lists the profile by name, looks up its k numbers and lists the profile's
/// assignments among them (k + 2); a trust product's first reconcile fetches the policy (once
/// per credentials every 15 minutes) and looks its product up by name; later product reconciles
/// fetch the product and, only when something changed on the cluster's side, list its two kinds
/// of assignments (3). With k = 3 that is at most 5 per reconcile.
pub const READS_PER_RECONCILE_BOUND: f64 = 5.0;

/// Everything one invocation measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchReport {
    /// Where it ran (`nproc`, kernel) and the command line.
    pub machine: String,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Onboarding without limits.
    pub onboarding: Option<OnboardingReport>,
    /// Idle after the onboarding.
    pub idle: Option<IdleReport>,
    /// Onboarding under a concurrency limit.
    pub limited: Option<OnboardingReport>,
    /// One product at a time.
    pub latency: Option<LatencyReport>,
    /// Onboarding of products that stay in review.
    pub review_onboarding: Option<OnboardingReport>,
    /// Polls of products in review.
    pub review: Option<ReviewReport>,
    /// The scale shape of issue J (one product and its binding with many numbers, `--products
    /// 1` or `--discover`): judged by [`scale_targets`] instead of the many-products targets.
    pub scale_shape: bool,
    /// A number bought in a subaccount after the onboarding (discovery runs).
    pub buy: Option<BuyReport>,
    /// The targets.
    pub targets: Vec<TargetCheck>,
}

/// One target and what was measured.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// The target, as the issue states it.
    pub target: String,
    /// The measurement.
    pub measured: String,
    /// Whether it is met; `None` when this run cannot tell (e.g. the memory target is for
    /// 1,000 products and the run had fewer).
    pub met: Option<bool>,
}

fn check(target: &str, measured: String, met: bool) -> TargetCheck {
    TargetCheck {
        target: target.into(),
        measured,
        met: Some(met),
    }
}

/// Products the memory target is stated for.
pub const RSS_TARGET_PRODUCTS: usize = 1000;

/// Checks the targets against `report`.
pub fn targets(report: &BenchReport) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    if report.scale_shape {
        out.extend(scale_targets(report));
    } else {
        many_products_targets(report, &mut out);
    }
    if let Some(t) = &report.latency {
        out.push(check(
            "apply -> Submitted p99 <= 2 s",
            format!("p99 {:.3} s over {} runs", t.p99_secs, t.runs),
            t.p99_secs <= 2.0,
        ));
    }
    if !report.scale_shape {
        many_products_idle_targets(report, &mut out);
    }
    if let Some(r) = &report.review {
        out.push(check(
            "in-review objects follow the backoff schedule",
            format!(
                "{:.2} polls per product vs {} by the schedule",
                r.polls_per_product, r.expected_polls_per_product
            ),
            r.polls_per_product <= 1.1 * r.expected_polls_per_product as f64 + 1.0,
        ));
    }
    out
}

/// The targets of the many-products shapes (200 and 1,000 products × 3 numbers).
fn many_products_targets(report: &BenchReport, out: &mut Vec<TargetCheck>) {
    if let Some(o) = &report.onboarding {
        out.push(check(
            "writes per onboarding = minimum (2k+4)",
            format!(
                "{} writes for {} products, minimum {}",
                o.writes_total(),
                o.products,
                o.minimum_total()
            ),
            o.writes == o.minimum_writes && o.writes_missed == 0,
        ));
        out.push(check(
            "0 duplicates",
            o.duplicates.to_string(),
            o.duplicates == 0,
        ));
        let rpr = o.calls.reads_per_reconcile();
        out.push(check(
            "reads per reconcile bounded by a constant",
            format!("{rpr:.2} (bound {READS_PER_RECONCILE_BOUND})"),
            rpr <= READS_PER_RECONCILE_BOUND,
        ));
        if let Some(c) = &o.controller {
            let mut rss = check(
                "controller peak RSS <= 32 MiB (with 1,000 products and bindings)",
                format!("{:.1} MiB with {} products", c.peak_rss_mib, o.products),
                c.peak_rss_mib <= 32.0,
            );
            if o.products != RSS_TARGET_PRODUCTS {
                // The target is stated for 1,000; other sizes are reported, not judged.
                rss.met = None;
                rss.measured
                    .push_str(" (the target is for --products 1000)");
            }
            out.push(rss);
        }
    }
    if let Some(l) = &report.limited {
        if let Some(bound) = l.lower_bound_secs {
            out.push(check(
                "finish time under the limit <= 1.1 x lower bound (minimum calls)",
                format!(
                    "{:.1} s vs bound {bound:.1} s ({:.2}x)",
                    l.all_submitted_secs,
                    l.all_submitted_secs / bound
                ),
                l.all_submitted_secs <= 1.1 * bound,
            ));
        }
        let share = l.calls.concurrency_429 as f64 / l.calls.total_requests.max(1) as f64;
        out.push(check(
            "429s <= 1% of calls",
            format!(
                "{} of {} ({:.2}%)",
                l.calls.concurrency_429,
                l.calls.total_requests,
                share * 100.0
            ),
            share <= 0.01,
        ));
    }
}

/// The idle targets of the many-products shapes.
fn many_products_idle_targets(report: &BenchReport, out: &mut Vec<TargetCheck>) {
    if let Some(i) = &report.idle {
        if let Some(cpu) = i.cpu_seconds {
            let mut idle = check(
                "idle CPU ~ 0 (< 1% of a core)",
                format!("{cpu:.2} s over {:.0} s", i.idle_secs),
                cpu <= 0.01 * i.idle_secs,
            );
            if i.approved_resync_secs < i.idle_secs {
                // Every object resynced during the window: that is the resync's cost, shown
                // per object above, not idling.
                idle.met = None;
                idle.measured
                    .push_str(" (with resyncs; run with a resync > --idle)");
            }
            out.push(idle);
        }
        let (measured, met) = match i.calls_per_object_per_resync {
            Some(per) => (
                format!(
                    "{per:.2} calls per object per resync ({:.0} s)",
                    i.approved_resync_secs
                ),
                per <= 1.0,
            ),
            None => (
                format!(
                    "{} calls in {:.0} s (resync {:.0} s is longer)",
                    i.calls.total_requests, i.idle_secs, i.approved_resync_secs
                ),
                i.calls.total_requests == 0,
            ),
        };
        out.push(check(
            "approved objects <= 1 GET each per resync",
            measured,
            met,
        ));
    }
}

/// The Twilio calls of an onboarding, per product, against the minimum.
fn call_rows(o: &OnboardingReport, out: &mut String) {
    let n = o.products.max(1) as f64;
    let _ = writeln!(
        out,
        "  {:<48} {:>9} {:>9} {:>9}",
        "Twilio call (per trust product)", "made", "minimum", "total"
    );
    for (op, count) in &o.calls.requests {
        let min = o
            .minimum_writes
            .get(op)
            .or_else(|| o.minimum_reads.get(op))
            .copied();
        let _ = writeln!(
            out,
            "  {op:<48} {:>9.2} {:>9} {:>9}",
            *count as f64 / n,
            min.map_or("-".to_string(), |m| format!("{:.2}", m as f64 / n)),
            count
        );
    }
}

fn onboarding_rows(o: &OnboardingReport, out: &mut String) {
    let n = o.products.max(1) as f64;
    let limit = o
        .sim_max_in_flight
        .map_or("none".to_string(), |m| m.to_string());
    let _ = writeln!(
        out,
        "== {}: {} products x {} numbers over {} subaccounts (sim limit {limit}, latency {} ms, --max-in-flight {})",
        o.label,
        o.products,
        o.numbers_per_product,
        o.subaccounts,
        o.sim_latency_ms,
        o.operator_max_in_flight
    );
    let _ = writeln!(out, "  applied in               {:>10.2} s", o.apply_secs);
    let _ = writeln!(
        out,
        "  all Submitted after      {:>10.2} s",
        o.all_submitted_secs
    );
    if let Some(r) = o.all_ready_secs {
        let _ = writeln!(out, "  all Ready after          {r:>10.2} s");
    }
    if let (Some(latency), Some(in_flight)) =
        (o.mean_call_latency_ms, o.mean_in_flight_until_submitted)
    {
        let _ = writeln!(
            out,
            "  mean call latency {latency:.1} ms at the simulator; {in_flight:.2} calls in flight on average until all Submitted"
        );
    }
    if let Some(b) = o.lower_bound_secs {
        let _ = writeln!(
            out,
            "  lower bound (min calls)  {b:>10.2} s   ({} calls; minimum writes only: {:.2} s, calls made: {:.2} s)",
            o.minimum_total() + o.minimum_reads_total(),
            o.lower_bound_writes_only_secs.unwrap_or_default(),
            o.lower_bound_actual_calls_secs.unwrap_or_default()
        );
    }
    call_rows(o, out);
    let _ = writeln!(
        out,
        "  successful writes {} (minimum {}), reads {} ({:.2}/product, minimum {:.2}), 429s {}, duplicates {}",
        o.writes_total(),
        o.minimum_total(),
        o.calls.reads,
        o.calls.reads as f64 / n,
        o.minimum_reads_total() as f64 / n,
        o.calls.concurrency_429,
        o.duplicates
    );
    if let (Some(interval), Some(listings), Some(pages)) = (
        o.discovery_interval_secs,
        o.discovery_listings,
        &o.discovery_pages,
    ) {
        let _ = writeln!(
            out,
            "  discovery every {interval:.0} s: {listings} listing(s) until Submitted counted in the minimum, {} pages each ({}); reads until Submitted {} (minimum {})",
            pages.values().sum::<u64>(),
            pages
                .iter()
                .map(|(op, n)| format!("{op} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            o.reads_until_submitted(),
            o.minimum_reads_total()
        );
    }
    if let Some(s) = &o.object_sizes {
        let _ = writeln!(
            out,
            "  stored size: binding {} bytes, trust product {} bytes",
            s.binding_bytes, s.product_bytes
        );
    }
    let _ = writeln!(
        out,
        "  reconciles reaching Twilio: {} binding, {} product; {:.2} reads per reconcile",
        o.calls.binding_reconciles,
        o.calls.product_reconciles,
        o.calls.reads_per_reconcile()
    );
    if let Some(c) = &o.controller {
        let _ = writeln!(
            out,
            "  controller: peak RSS {:.1} MiB, RSS {:.1} MiB, CPU {:.2} s",
            c.peak_rss_mib, c.rss_mib, c.cpu_seconds
        );
    }
}

/// The report as a plain-text table.
pub fn render(report: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "trusthub-bench on {}", report.machine);
    if let Some(t) = &report.latency {
        let _ = writeln!(
            out,
            "== latency: one trust product (+ binding) at a time, zero-latency simulator, {} runs",
            t.runs
        );
        let _ = writeln!(
            out,
            "  apply -> Submitted: p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s",
            t.p50_secs, t.p90_secs, t.p99_secs, t.max_secs
        );
    }
    for o in [
        &report.onboarding,
        &report.limited,
        &report.review_onboarding,
    ]
    .into_iter()
    .flatten()
    {
        onboarding_rows(o, &mut out);
    }
    if let Some(i) = &report.idle {
        let _ = writeln!(
            out,
            "== {}: {:.0} s idle, {} objects, --approved-resync {:.0} s",
            i.label, i.idle_secs, i.objects, i.approved_resync_secs
        );
        let _ = writeln!(
            out,
            "  Twilio calls {} ({:.3} per object per hour{})",
            i.calls.total_requests,
            i.calls_per_object_per_hour,
            i.calls_per_object_per_resync
                .map(|p| format!(", {p:.2} per object per resync"))
                .unwrap_or_default()
        );
        for (op, count) in &i.calls.requests {
            let _ = writeln!(out, "    {op:<46} {count:>9}");
        }
        if let (Some(cpu), Some(c)) = (i.cpu_seconds, &i.controller) {
            let _ = writeln!(
                out,
                "  controller: CPU {cpu:.2} s while idle ({:.2}% of a core), RSS {:.1} MiB, peak {:.1} MiB",
                100.0 * cpu / i.idle_secs.max(1e-9),
                c.rss_mib,
                c.peak_rss_mib
            );
        }
    }
    if let Some(b) = &report.buy {
        let _ = writeln!(
            out,
            "== buy: {} ({}) bought in {} after Ready, discovery every {:.0} s",
            b.phone_number, b.sid, b.subaccount_sid, b.interval_secs
        );
        let _ = writeln!(
            out,
            "  attached to the trust product after {}",
            b.attached_after_secs.map_or(
                format!("- (not within {:.0} s)", b.waited_secs),
                |s| format!("{s:.2} s")
            )
        );
    }
    if let Some(r) = &report.review {
        let _ = writeln!(
            out,
            "== review: {} products left in review, counted {:.0}..{:.0} s after submission",
            r.products, r.window_secs.0, r.window_secs.1
        );
        let _ = writeln!(
            out,
            "  polls per product {:.2} (schedule: {}), {:.2} Twilio requests per poll",
            r.polls_per_product, r.expected_polls_per_product, r.requests_per_poll
        );
    }
    out.push_str(&render_targets(&report.targets));
    out
}

/// The targets as `[met]` / `[MISSED]` / `[n/a]` lines under `== targets`.
pub fn render_targets(targets: &[TargetCheck]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== targets");
    for t in targets {
        let _ = writeln!(
            out,
            "  [{}] {:<62} {}",
            match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "n/a",
            },
            t.target,
            t.measured
        );
    }
    out
}
