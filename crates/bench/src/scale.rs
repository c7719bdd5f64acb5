//! The targets of issue J's scale shape: one binding and one trust product carrying many
//! numbers (`--products 1 --numbers N`), selected by discovery over every subaccount
//! (`--discover`) or listed explicitly. Each target is judged only for the size and latency it
//! names (`n/a` otherwise, with the figure still printed); [`across_sizes`] judges the ones
//! that compare sizes of one invocation (`--numbers 1000,10000,50000`).

use serde::Serialize;

use crate::report::{BenchReport, TargetCheck};
use crate::scenario::{IdleReport, OnboardingReport};

/// Reads may exceed the minimum by this factor.
pub const READS_FACTOR: f64 = 1.01;
/// Under the limit, Submitted within this factor of `minimum calls × latency / M` …
pub const LIMITED_FACTOR: f64 = 1.15;
/// … judged at this size and simulated latency.
pub const LIMITED_NUMBERS: usize = 10_000;
pub const LIMITED_LATENCY_MS: u64 = 100;
/// At 0 ms: (numbers, seconds until all Submitted).
pub const ZERO_LATENCY_DEADLINES: [(usize, f64); 2] = [(10_000, 60.0), (50_000, 300.0)];
/// Peak RSS of the controller, MiB, at [`LARGEST`] numbers.
pub const RSS_MIB: f64 = 64.0;
/// The largest size the issue names.
pub const LARGEST: usize = 50_000;
/// The smallest size the linearity target compares with.
pub const SMALLEST: usize = 1_000;
/// Time per number at [`LARGEST`] within this factor of that at [`SMALLEST`].
pub const LINEAR_FACTOR: f64 = 1.3;
/// The largest object (binding or product as stored), bytes.
pub const STATUS_BYTES: u64 = 256 * 1024;
/// A bought number is attached within one discovery interval plus this, seconds …
pub const BUY_SLACK_SECS: f64 = 5.0;
/// … judged with this interval.
pub const BUY_INTERVAL_SECS: f64 = 10.0;

fn judged(target: &str, measured: String, met: bool, applies: bool, why_not: &str) -> TargetCheck {
    TargetCheck {
        target: target.into(),
        measured: if applies {
            measured
        } else {
            format!("{measured} ({why_not})")
        },
        met: applies.then_some(met),
    }
}

/// `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// The time targets of one onboarding run: against the bound at a latency and limit, or the
/// deadlines at 0 ms.
fn time_targets(o: &OnboardingReport, out: &mut Vec<TargetCheck>) {
    let n = o.numbers_total();
    let tag = |t: &str| format!("{}: {t}", o.label);
    if o.sim_max_in_flight.is_some() {
        if let Some(bound) = o.lower_bound_secs {
            out.push(judged(
                &tag("at 100 ms, 10,000 numbers Submitted <= 1.15 x min calls x latency / M"),
                format!(
                    "{:.1} s vs bound {bound:.1} s ({:.2}x) with {n} numbers at {} ms, M = {}",
                    o.all_submitted_secs,
                    o.all_submitted_secs / bound.max(1e-9),
                    o.sim_latency_ms,
                    o.sim_max_in_flight.unwrap_or_default()
                ),
                o.all_submitted_secs <= LIMITED_FACTOR * bound,
                n == LIMITED_NUMBERS && o.sim_latency_ms == LIMITED_LATENCY_MS,
                "judged at 10,000 numbers and 100 ms",
            ));
        }
    } else if o.sim_latency_ms == 0 {
        for (size, secs) in ZERO_LATENCY_DEADLINES {
            out.push(judged(
                &tag(&format!(
                    "at 0 ms, {} numbers Submitted <= {secs:.0} s",
                    thousands(size)
                )),
                format!("{:.1} s with {n} numbers", o.all_submitted_secs),
                o.all_submitted_secs <= secs,
                n == size,
                &format!("judged at {} numbers", thousands(size)),
            ));
        }
    }
}

/// The targets of one onboarding run (`label` names it in the table).
fn run_targets(o: &OnboardingReport, out: &mut Vec<TargetCheck>) {
    let n = o.numbers_total();
    let tag = |t: &str| format!("{}: {t}", o.label);
    out.push(judged(
        &tag("writes = minimum exactly (2n+4)"),
        format!(
            "{} writes for {n} numbers, minimum {}{}",
            o.writes_total(),
            o.minimum_total(),
            if o.writes_missed > 0 {
                // The simulator's write broadcast holds 1,024 events; a starved tally loses some.
                format!(
                    " ({} write events missed by the tally: not judged exactly)",
                    o.writes_missed
                )
            } else {
                String::new()
            }
        ),
        o.writes == o.minimum_writes && o.writes_missed == 0,
        true,
        "",
    ));
    out.push(judged(
        &tag("0 duplicates"),
        o.duplicates.to_string(),
        o.duplicates == 0,
        true,
        "",
    ));
    out.push(judged(
        &tag("0 429s"),
        format!("{} of {}", o.calls.concurrency_429, o.calls.total_requests),
        o.calls.concurrency_429 == 0,
        true,
        "",
    ));
    let reads = o.reads_until_submitted();
    let minimum = o.minimum_reads_total();
    let listed = match (o.discovery_listings, &o.discovery_pages) {
        (Some(l), Some(p)) => {
            let pages = p.values().sum::<u64>();
            let single = minimum - (l - 1) * pages;
            format!(
                "; {l} listing(s) of {pages} pages in {:.1} s; {:.3}x a single listing's {single}",
                o.all_submitted_secs,
                reads as f64 / single.max(1) as f64
            )
        }
        _ => "; numbers listed explicitly".into(),
    };
    out.push(judged(
        &tag("reads until Submitted <= 1.01 x minimum"),
        format!(
            "{reads} vs minimum {minimum} ({:.3}x{listed})",
            reads as f64 / minimum.max(1) as f64
        ),
        reads as f64 <= READS_FACTOR * minimum as f64,
        true,
        "",
    ));
    time_targets(o, out);
    if let Some(c) = &o.controller {
        out.push(judged(
            &tag("controller peak RSS <= 64 MiB at 50,000 numbers"),
            format!("{:.1} MiB with {n} numbers", c.peak_rss_mib),
            c.peak_rss_mib <= RSS_MIB,
            n == LARGEST,
            "judged at 50,000 numbers",
        ));
    }
    if let Some(s) = &o.object_sizes {
        out.push(judged(
            &tag("largest status object <= 256 KiB"),
            format!(
                "{:.1} KiB (binding {:.1} KiB, product {:.1} KiB)",
                kib(s.largest()),
                kib(s.binding_bytes),
                kib(s.product_bytes)
            ),
            s.largest() <= STATUS_BYTES,
            true,
            "",
        ));
    }
}

/// At rest: the calls of the idle window against what discovery and the resync allow.
fn at_rest(i: &IdleReport) -> TargetCheck {
    let op = |name: &str| i.calls.requests.get(name).copied().unwrap_or(0);
    let discovery = op("ListAccount") + op("ListIncomingPhoneNumber");
    let resync = op("FetchTrustProduct") + op("ListCustomerProfile") + op("FetchCustomerProfile");
    let other = i.calls.total_requests - discovery - resync;
    let listings = i
        .discovery_interval_secs
        .map_or(0, |iv| (i.idle_secs / iv.max(1e-3)).floor() as u64 + 1);
    let pages = i.discovery_pages_per_listing.unwrap_or(0);
    let allowed_discovery = listings * pages;
    let resyncs = (i.idle_secs / i.approved_resync_secs.max(1e-3)).ceil() as u64;
    let allowed_resync = i.objects as u64 * resyncs;
    judged(
        "at rest: discovery pages per interval + <= 1 GET per resync, nothing else",
        format!(
            "{discovery} discovery reads (<= {listings} x {pages} pages), {resync} resync GETs (<= {allowed_resync}), {other} other, over {:.0} s",
            i.idle_secs
        ),
        discovery <= allowed_discovery && resync <= allowed_resync && other == 0,
        true,
        "",
    )
}

/// The scale shape's targets of one invocation at one size.
pub fn scale_targets(report: &BenchReport) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    for o in [&report.onboarding, &report.limited].into_iter().flatten() {
        run_targets(o, &mut out);
    }
    if let Some(b) = &report.buy {
        let measured = match b.attached_after_secs {
            Some(s) => format!("{s:.1} s (interval {:.0} s)", b.interval_secs),
            None => format!(
                "not attached within {:.0} s (interval {:.0} s)",
                b.waited_secs, b.interval_secs
            ),
        };
        out.push(judged(
            "a bought number attached within one interval + 5 s",
            measured,
            b.attached_after_secs
                .is_some_and(|s| s <= b.interval_secs + BUY_SLACK_SECS),
            b.interval_secs == BUY_INTERVAL_SECS,
            "judged with --discovery-interval 10s",
        ));
    }
    if let Some(i) = &report.idle {
        out.push(at_rest(i));
    }
    if let Some(t) = whole_run_rss(report) {
        out.push(t);
    }
    out
}

/// The controller's peak RSS over the whole run (the process high-water mark read after the
/// idle window): at rest, discovery lists every number again each interval, and that can peak
/// above the onboarding.
fn whole_run_rss(report: &BenchReport) -> Option<TargetCheck> {
    let n = report.onboarding.as_ref()?.numbers_total();
    let peak = report.idle.as_ref()?.controller.as_ref()?.peak_rss_mib;
    Some(judged(
        "whole run (onboarding, buy, at rest): controller peak RSS <= 64 MiB at 50,000 numbers",
        format!("{peak:.1} MiB with {n} numbers"),
        peak <= RSS_MIB,
        n == LARGEST,
        "judged at 50,000 numbers",
    ))
}

/// One size of a multi-size invocation, for the summary.
#[derive(Clone, Debug, Serialize)]
pub struct SizeRow {
    /// Numbers in all.
    pub numbers: usize,
    /// Seconds until Submitted at 0 ms (the onboarding run).
    pub submitted_secs: Option<f64>,
    /// Seconds until Submitted under the limit.
    pub limited_submitted_secs: Option<f64>,
    /// Controller peak RSS in the onboarding run, MiB.
    pub peak_rss_mib: Option<f64>,
    /// The largest object, bytes.
    pub largest_object_bytes: Option<u64>,
}

impl SizeRow {
    /// The row of one size's report.
    pub fn of(report: &BenchReport) -> Option<SizeRow> {
        let o = report.onboarding.as_ref().or(report.limited.as_ref())?;
        Some(SizeRow {
            numbers: o.numbers_total(),
            submitted_secs: report.onboarding.as_ref().map(|o| o.all_submitted_secs),
            limited_submitted_secs: report.limited.as_ref().map(|o| o.all_submitted_secs),
            peak_rss_mib: report
                .onboarding
                .as_ref()
                .and_then(|o| o.controller)
                .map(|c| c.peak_rss_mib),
            largest_object_bytes: o.object_sizes.map(|s| s.largest()),
        })
    }
}

/// The targets comparing sizes: time per number at 50,000 within 1.3 × that at 1,000 (0 ms).
pub fn across_sizes(rows: &[SizeRow]) -> Vec<TargetCheck> {
    let per_number = |size: usize| {
        rows.iter()
            .find(|r| r.numbers == size)
            .and_then(|r| r.submitted_secs)
            .map(|s| s / size as f64)
    };
    let (small, large) = (per_number(SMALLEST), per_number(LARGEST));
    let measured = match (small, large) {
        (Some(s), Some(l)) => format!(
            "{:.2} ms per number at 50,000 vs {:.2} ms at 1,000 ({:.2}x)",
            l * 1e3,
            s * 1e3,
            l / s.max(1e-12)
        ),
        _ => "needs onboarding runs at 1,000 and 50,000 numbers".into(),
    };
    vec![judged(
        "time per number at 50,000 <= 1.3 x at 1,000 (0 ms)",
        measured,
        matches!((small, large), (Some(s), Some(l)) if l <= LINEAR_FACTOR * s),
        small.is_some() && large.is_some(),
        "run --numbers 1000,50000",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(50_000), "50,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn linearity_is_judged_only_with_both_sizes() {
        let row = |numbers, secs| SizeRow {
            numbers,
            submitted_secs: Some(secs),
            limited_submitted_secs: None,
            peak_rss_mib: None,
            largest_object_bytes: None,
        };
        let t = across_sizes(&[row(1000, 2.0)]);
        assert_eq!(t[0].met, None);
        let t = across_sizes(&[row(1000, 2.0), row(50_000, 120.0)]);
        assert_eq!(t[0].met, Some(true), "{t:?}");
        let t = across_sizes(&[row(1000, 2.0), row(50_000, 140.0)]);
        assert_eq!(t[0].met, Some(false), "{t:?}");
    }
}
