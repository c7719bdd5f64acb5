//! Per-object error backoff: consecutive transient failures per object, and the wait before the
//! next retry. Entries go when the object's reconcile succeeds, and, for objects that never
//! succeed again (deleted while failing, their finalizer removed by hand), once their last
//! failure is older than any retry would wait: the map holds only objects failing now.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

/// How long an entry outlives its last failure, at least: longer than a `Retry-After` is
/// plausibly long, so an object throttled for a while keeps its count.
const MIN_KEEP: Duration = Duration::from_secs(3600);

/// Consecutive failures and when the last one happened, per object key.
#[derive(Debug, Default)]
pub(super) struct Backoffs(Mutex<HashMap<String, (u32, Instant)>>);

impl Backoffs {
    /// Counts a failure of `key` at `now` and returns the wait before its retry: `initial`
    /// doubled per consecutive failure, capped at `max`, with full jitter, and never shorter
    /// than `retry_after`. Entries idle longer than any retry waits are dropped on the way.
    pub(super) fn next(
        &self,
        key: &str,
        retry_after: Option<Duration>,
        initial: Duration,
        max: Duration,
        now: Instant,
    ) -> Duration {
        let mut failures = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let keep = max.saturating_mul(4).max(MIN_KEEP);
        failures.retain(|_, (_, last)| now.saturating_duration_since(*last) <= keep);
        let (n, last) = failures.entry(key.to_string()).or_insert((0, now));
        *n = n.saturating_add(1);
        *last = now;
        let exp = initial.saturating_mul(1u32 << (*n - 1).min(16));
        let capped = exp.min(max);
        // Full jitter keeps many objects failing together from retrying together.
        let jittered = capped.mul_f64(rand::rng().random_range(0.5..=1.0));
        retry_after.map_or(jittered, |ra| jittered.max(ra))
    }

    /// Forgets `key` (its reconcile succeeded, or it is gone).
    pub(super) fn reset(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// How many objects have an entry.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn waits_double_up_to_the_cap_and_honour_retry_after() {
        let b = Backoffs::default();
        let t = Instant::now();
        let waits: Vec<Duration> = (0..6)
            .map(|_| b.next("a", None, 2 * SEC, 10 * SEC, t))
            .collect();
        for (w, cap) in waits.iter().zip([2, 4, 8, 10, 10, 10]) {
            assert!(
                *w >= cap * SEC / 2 && *w <= cap * SEC,
                "{w:?} vs cap {cap}s"
            );
        }
        assert!(b.next("a", Some(60 * SEC), 2 * SEC, 10 * SEC, t) >= 60 * SEC);
        b.reset("a");
        assert!(b.next("a", None, 2 * SEC, 10 * SEC, t) <= 2 * SEC);
    }

    /// Finding K11: the entry of an object that failed and was then deleted (so never
    /// succeeds, and is never reset) does not stay for ever.
    #[test]
    fn entries_of_objects_that_stopped_failing_are_dropped() {
        let b = Backoffs::default();
        let t = Instant::now();
        b.next("deleted-while-failing", None, 2 * SEC, 10 * SEC, t);
        b.next("failing-now", None, 2 * SEC, 10 * SEC, t);
        let later = t + 2 * MIN_KEEP;
        b.next("failing-now", None, 2 * SEC, 10 * SEC, later);
        assert_eq!(b.len(), 1, "only the object failing now keeps an entry");
    }
}
