//! Runs a batch of independent Twilio writes concurrently and hands every outcome back as a
//! value, so the caller records the whole batch in one status write and one summary Event.
//!
//! Why batches: one status write and one Event per number made onboarding quadratic (the whole
//! status is written again after every write) and serial. A batch is marked in status once
//! before its creates start (the create-pending marker of every number in it), runs with at
//! most `limit` writes in flight (the account's limit; the Twilio client enforces it again
//! across objects), and is recorded once when every write has answered.

use futures::StreamExt;

use crate::twilio::TwilioError;

/// How many writes one batch holds at most: a status write and an Event per this many writes.
/// Large enough that the status write is cheap next to the batch, small enough that the
/// create-pending markers (one `PN…` SID each) stay a few KiB of status and that progress
/// shows often (500 writes at 10 in flight and 100 ms each take about 5 s).
pub const BATCH_SIZE: usize = 500;

/// The next batch: the first [`BATCH_SIZE`] of the planned writes not tried yet in this
/// reconcile (each is tried once; the next reconcile retries).
pub fn next<A: Ord + Clone>(planned: &[A], attempted: &std::collections::BTreeSet<A>) -> Vec<A> {
    planned
        .iter()
        .filter(|a| !attempted.contains(*a))
        .take(BATCH_SIZE)
        .cloned()
        .collect()
}

/// How many writes a plan must list for [`next`] to find a whole batch: one batch beyond those
/// `attempted` (the planners' `actions_max`). Listing every write of 50,000 numbers at each
/// batch cost a list of 50,000 for a batch of 500.
pub fn planned_max<A>(attempted: &std::collections::BTreeSet<A>) -> usize {
    BATCH_SIZE + attempted.len()
}

/// Records `action` among those `attempted` unless it succeeded: a write that succeeded is
/// never planned again, so keeping it would only be one more copy of every number.
pub fn note_tried<A: Ord + Clone, T>(
    attempted: &mut std::collections::BTreeSet<A>,
    action: &A,
    outcome: &Outcome<T>,
) {
    if !matches!(outcome, Outcome::Done(_)) {
        attempted.insert(action.clone());
    }
}

/// What became of one write of a batch.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Twilio answered with success.
    Done(T),
    /// Twilio definitely refused (4xx other than 429): nothing was made; retrying the same
    /// request gives the same answer until something changes.
    Refused(TwilioError),
    /// Worth retrying later; when [`TwilioError::is_ambiguous`], the write may have happened,
    /// so its create-pending marker stays until a listing settles it.
    Retry(TwilioError),
}

impl<T> Outcome<T> {
    fn of(result: Result<T, TwilioError>) -> Self {
        match result {
            Ok(value) => Outcome::Done(value),
            Err(e) if e.is_transient() || e.is_ambiguous() => Outcome::Retry(e),
            Err(e) => Outcome::Refused(e),
        }
    }
}

/// Runs `write` for every action, at most `limit` at once, and returns each action with its
/// outcome (in completion order). Never stops early: a failed write does not cancel the others,
/// whose outcomes the caller must record.
pub async fn run<A, T, F, Fut>(actions: Vec<A>, limit: usize, write: F) -> Vec<(A, Outcome<T>)>
where
    A: Clone,
    F: Fn(A) -> Fut,
    Fut: std::future::Future<Output = Result<T, TwilioError>>,
{
    // The futures are made up front (they do nothing until polled) rather than inside the
    // stream's closure: a closure borrowing `write` there makes the reconcile future
    // non-`Send` for the controller (a higher-ranked lifetime rustc cannot prove `Send`).
    let writes: Vec<_> = actions
        .into_iter()
        .map(|action| {
            let pending = write(action.clone());
            async move { (action, Outcome::of(pending.await)) }
        })
        .collect();
    futures::stream::iter(writes)
        .buffer_unordered(limit.max(1))
        .collect()
        .await
}

/// `count` things, e.g. "1 number", "1,000 numbers".
pub fn counted(count: usize, one: &str, many: &str) -> String {
    let digits = count.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_every_write_at_most_limit_at_once_and_reports_each_outcome() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let outcomes = run((0..40).collect(), 4, |n: i32| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                match n % 3 {
                    0 => Ok(n),
                    1 => Err(TwilioError::InvalidArgument("refused".into())),
                    _ => Err(TwilioError::Ambiguous {
                        operation: "Create",
                        status: None,
                        body: None,
                        reason: "timed out".into(),
                    }),
                }
            }
        })
        .await;
        assert_eq!(outcomes.len(), 40);
        assert_eq!(peak.load(Ordering::SeqCst), 4);
        for (n, outcome) in &outcomes {
            match (n % 3, outcome) {
                (0, Outcome::Done(v)) => assert_eq!(v, n),
                (1, Outcome::Refused(_)) => {}
                (2, Outcome::Retry(e)) => assert!(e.is_ambiguous()),
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }

    #[test]
    fn the_next_batch_skips_what_was_tried_and_stops_at_the_batch_size() {
        let planned: Vec<usize> = (0..BATCH_SIZE + 10).collect();
        let tried: std::collections::BTreeSet<usize> = [0, 2].into();
        let batch = next(&planned, &tried);
        assert_eq!(batch.len(), BATCH_SIZE);
        assert_eq!(batch[..3], [1, 3, 4]);
        let all: std::collections::BTreeSet<usize> = planned.iter().copied().collect();
        assert!(next(&planned, &all).is_empty());
    }

    /// Only writes that did not succeed are kept as tried, and a plan cut at `planned_max`
    /// still holds a whole batch beyond them.
    #[test]
    fn only_unfinished_writes_are_kept_and_a_cut_plan_still_fills_a_batch() {
        let mut tried = std::collections::BTreeSet::new();
        note_tried(&mut tried, &0usize, &Outcome::Done(()));
        note_tried(
            &mut tried,
            &1,
            &Outcome::<()>::Refused(TwilioError::InvalidArgument("refused".into())),
        );
        note_tried(
            &mut tried,
            &2,
            &Outcome::<()>::Retry(TwilioError::InvalidArgument("refused".into())),
        );
        assert_eq!(tried, [1, 2].into());
        let planned: Vec<usize> = (1..1 + planned_max(&tried)).collect();
        let batch = next(&planned, &tried);
        assert_eq!(batch.len(), BATCH_SIZE);
        assert_eq!(batch[0], 3);
    }

    #[test]
    fn counts_read_like_prose() {
        assert_eq!(counted(1, "number", "numbers"), "1 number");
        assert_eq!(counted(0, "number", "numbers"), "0 numbers");
        assert_eq!(counted(50_000, "number", "numbers"), "50,000 numbers");
        assert_eq!(counted(999, "number", "numbers"), "999 numbers");
        assert_eq!(counted(1_000_000, "x", "xs"), "1,000,000 xs");
    }
}
