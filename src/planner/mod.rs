//! What to do next, as pure functions of what was observed in Trust Hub and recorded in
//! `.status`. No I/O and no clock: the controller observes, calls a planner, performs the one
//! write it asks for, folds the result into its observation and asks again, until the planner
//! answers with no write. Every decision here is covered by table-driven tests.

pub mod binding;
pub mod discovery;
pub mod expiry;
pub mod ownership;
pub mod provenance;
pub mod text;
pub mod trust_product;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// A condition the planner wants in `.status.conditions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSpec {
    /// Condition type, e.g. `NumbersAttached`.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl ConditionSpec {
    /// A `True` condition.
    pub fn ok(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: "True",
            reason,
            message: message.into(),
        }
    }
    /// A `False` condition.
    pub fn not(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: "False",
            reason,
            message: message.into(),
        }
    }
    /// An `Unknown` condition.
    pub fn unknown(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: "Unknown",
            reason,
            message: message.into(),
        }
    }
}

/// Polling intervals; all configurable on the operator's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollSchedule {
    /// First poll of an object under review.
    pub review_initial: Duration,
    /// Longest interval between polls of an object under review.
    pub review_max: Duration,
    /// Resync period of approved objects.
    pub approved_resync: Duration,
    /// How long before `valid_until` an approved object is looked at again.
    pub expiry_margin: Duration,
    /// How long before `valid_until` an approval counts as expiring soon.
    pub expiry_warning: Duration,
    /// First retry after a noncompliant evaluation.
    pub noncompliant_initial: Duration,
    /// Longest wait between evaluations of a noncompliant product.
    pub noncompliant_max: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            review_initial: Duration::from_secs(60),
            review_max: Duration::from_secs(30 * 60),
            approved_resync: Duration::from_secs(12 * 3600),
            expiry_margin: Duration::from_secs(3600),
            expiry_warning: Duration::from_secs(30 * 86_400),
            noncompliant_initial: Duration::from_secs(30),
            noncompliant_max: Duration::from_secs(30 * 60),
        }
    }
}

impl PollSchedule {
    /// Interval before the next poll of something waiting since `since`: the time already
    /// waited, clamped to `[initial, max]`. Polls therefore come at about 1, 2, 4, 8 … minutes
    /// after submission without any counter in the status.
    pub fn growing(
        initial: Duration,
        max: Duration,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> Duration {
        let waited = since
            .and_then(|s| Duration::try_from(now.duration_since(s)).ok())
            .unwrap_or(Duration::ZERO);
        waited.clamp(initial, max.max(initial))
    }

    /// Interval before an approved object is looked at again: the resync period, or sooner
    /// when the warning window opens or the approval lapses before then (never sooner than
    /// `review_initial`, a minute by default); once lapsed, every `review_max`, to see Twilio's
    /// new approval soon.
    pub fn approved(&self, valid_until: Option<Timestamp>, now: Timestamp) -> Duration {
        let mut wait = self.approved_resync;
        if let Some(until) = valid_until {
            match Duration::try_from(until.duration_since(now)) {
                Ok(left) => {
                    wait = wait.min(left.saturating_sub(self.expiry_margin));
                    if left > self.expiry_warning {
                        wait = wait.min(left - self.expiry_warning);
                    }
                }
                Err(_) => wait = wait.min(self.review_max),
            }
        }
        wait.max(self.review_initial)
    }
}

/// Whether the assignments recorded in status must be checked against a fresh listing: never
/// listed, or listed at least 90 % of `resync` ago (the requeue's jitter can bring the resync
/// 10 % early, and that resync must list). So an object is listed at most about once per
/// resync period however often it is reconciled, and drift is seen within about one period.
pub fn listing_due(resync: Duration, listed_at: Option<Timestamp>, now: Timestamp) -> bool {
    let Some(at) = listed_at else {
        return true;
    };
    match Duration::try_from(now.duration_since(at)) {
        Ok(since) => since >= resync.mul_f64(0.9),
        // Listed "in the future": a clock step back; list rather than trust it for ever.
        Err(_) => true,
    }
}

/// When the controller should look again, as decided by a planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Look again after this long (the controller adds jitter).
    After(Duration),
    /// Nothing will change without a spec change, an annotation, or a watched object changing;
    /// the controller still resyncs on its long period.
    OnChange,
}

/// The objects this object created although its status never recorded them: those found
/// (`(object SID, what it assigns)`) for a target whose create was in flight (`pending`, written
/// to status before the create) when the reconcile ended without recording the outcome (a
/// crash, a timeout, a 5xx). Only a create this operator sent can have made them, since the
/// marker is cleared whenever Twilio definitely refused the create.
pub fn claimed<'a>(
    pending: &[String],
    found: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> std::collections::BTreeSet<crate::api::Sid> {
    let pending: std::collections::HashSet<&str> = pending.iter().map(String::as_str).collect();
    found
        .into_iter()
        .filter(|(_, target)| pending.contains(target))
        .map(|(sid, _)| sid.into())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_found_for_an_in_flight_create_are_claimed() {
        let found = [("RA1", "PN1"), ("RA2", "PN2"), ("RA3", "PN3")];
        let table: [(&[&str], &[&str]); 4] = [
            (&[], &[]),
            (&["PN2"], &["RA2"]),
            (&["PN1", "PN3"], &["RA1", "RA3"]),
            // The create never happened: nothing found, nothing claimed.
            (&["PN9"], &[]),
        ];
        for (pending, want) in table {
            let pending: Vec<String> = pending.iter().map(|s| s.to_string()).collect();
            let got = claimed(&pending, found.iter().copied());
            let want: std::collections::BTreeSet<crate::api::Sid> =
                want.iter().map(|s| (*s).into()).collect();
            assert_eq!(got, want, "pending {pending:?}");
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn growing_intervals_double_from_the_time_already_waited() {
        let (i, m) = (Duration::from_secs(60), Duration::from_secs(1800));
        let table = [
            (None, 0, 60),
            (Some(0), 0, 60),
            (Some(0), 60, 60),
            (Some(0), 120, 120),
            (Some(0), 480, 480),
            (Some(0), 100_000, 1800),
        ];
        for (since, now, want) in table {
            assert_eq!(
                PollSchedule::growing(i, m, since.map(at), at(now)),
                Duration::from_secs(want),
                "since {since:?} now {now}"
            );
        }
    }

    #[test]
    fn assignments_are_listed_again_once_per_resync_period() {
        let resync = Duration::from_secs(1000);
        // (listed at, now, due)
        let table = [
            (None, 0, true),
            (Some(0), 0, false),
            (Some(0), 899, false),
            (Some(0), 900, true),
            (Some(0), 5000, true),
            (Some(100), 0, true),
        ];
        for (listed, now, due) in table {
            assert_eq!(
                listing_due(resync, listed.map(at), at(now)),
                due,
                "listed {listed:?}, now {now}"
            );
        }
    }

    #[test]
    fn approved_objects_resync_on_the_long_period_or_before_expiry() {
        let p = PollSchedule::default();
        assert_eq!(p.approved(None, at(0)), Duration::from_secs(12 * 3600));
        assert_eq!(
            p.approved(Some(at(5 * 3600)), at(0)),
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(p.approved(Some(at(10)), at(0)), Duration::from_secs(60));
    }

    #[test]
    fn approved_objects_wake_when_the_warning_window_opens_and_after_expiry() {
        let p = PollSchedule::default();
        let day = 86_400;
        // (valid_until, now, expected wait)
        let table = [
            (30 * day + 3600, 0, 3600), // the 30-day window opens in an hour
            (30 * day + 30, 0, 60),     // never sooner than a minute
            (31 * day, 0, 12 * 3600),   // the window is further away than the resync
            (20 * day, 0, 12 * 3600),   // in the window: the resync period
            (-10, 0, 30 * 60),          // lapsed: every review_max for the new approval
            (-100 * day, 0, 30 * 60),
        ];
        for (until, now, want) in table {
            assert_eq!(
                p.approved(Some(at(until)), at(now)),
                Duration::from_secs(want),
                "valid_until {until}, now {now}"
            );
        }
    }
}
