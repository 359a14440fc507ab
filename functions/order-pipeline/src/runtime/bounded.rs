//! Running a batch's work bounded in concurrency and in time: [`run_bounded`] runs each piece
//! isolated from the others' panics, starts nothing after the [`Deadline`]'s `start_by` and drops
//! what still runs at its `cut_off`, and says how each piece ended ([`Settled`]). The SQS worker
//! and the dlq-alarm function run their records on it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

/// How a record of a batch ended, from the worker's point of view.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled<O> {
    Handled(O),
    /// The handler panicked on this record; only this record failed.
    Panicked(String),
    /// Not started: too little of the invocation was left.
    NotStarted,
    /// Started, but still running when the invocation had to answer.
    Abandoned,
}

/// When to stop starting work, and when to give up on work still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub start_by: Instant,
    pub cut_off: Instant,
}

/// The smallest deadline read as epoch milliseconds (2001-09-09); see [`Deadline::from_epoch_ms`].
pub const EPOCH_FLOOR_MS: u64 = 1_000_000_000_000;

/// Lambda's longest function timeout.
const LAMBDA_MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Deadline {
    /// From the time left of an invocation and the two margins.
    pub fn after(remaining: Duration, start_margin: Duration, answer_reserve: Duration) -> Self {
        let now = Instant::now();
        Deadline {
            start_by: now + remaining.saturating_sub(start_margin),
            cut_off: now + remaining.saturating_sub(answer_reserve),
        }
    }

    /// From Lambda's deadline (epoch milliseconds); `None` when the context has none (0).
    ///
    /// A value before [`EPOCH_FLOOR_MS`] is no epoch time: `cargo lambda watch` sends the
    /// constant 600000, its own timeout for an invocation. It is read as that long from now,
    /// at most Lambda's 15-minute maximum, so a local invoke has the time a deployed one has
    /// instead of a deadline in 1970.
    pub fn from_epoch_ms(
        deadline_ms: u64,
        start_margin: Duration,
        answer_reserve: Duration,
    ) -> Option<Self> {
        if deadline_ms == 0 {
            return None;
        }
        let remaining = if deadline_ms < EPOCH_FLOOR_MS {
            Duration::from_millis(deadline_ms).min(LAMBDA_MAX_TIMEOUT)
        } else {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        };
        Some(Self::after(remaining, start_margin, answer_reserve))
    }
}

/// Runs `work` at most `concurrency` at a time, each isolated from the others' panics, and
/// within `deadline`: nothing starts after `start_by`, and whatever still runs at `cut_off` is
/// dropped. The results are in the order of `work`. The futures are built by the caller but
/// only polled here, so an unstarted one has done nothing.
pub async fn run_bounded<F>(
    work: Vec<F>,
    concurrency: usize,
    deadline: Option<Deadline>,
) -> Vec<Settled<F::Output>>
where
    F: Future + Send,
{
    let count = work.len();
    let mut results: Vec<Option<Settled<F::Output>>> = (0..count).map(|_| None).collect();
    let mut started = vec![false; count];
    let mut pending = work.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut starting = true;
    loop {
        while starting && running.len() < concurrency.max(1) {
            if deadline.is_some_and(|d| Instant::now() >= d.start_by) {
                starting = false;
                break;
            }
            match pending.next() {
                Some((i, future)) => {
                    started[i] = true;
                    running.push(AssertUnwindSafe(future).catch_unwind().map(move |r| (i, r)));
                }
                None => starting = false,
            }
        }
        let next = match deadline {
            None => running.next().await,
            Some(d) => tokio::select! {
                next = running.next() => next,
                _ = tokio::time::sleep_until(d.cut_off) => break,
            },
        };
        let Some((i, result)) = next else { break };
        results[i] = Some(match result {
            Ok(output) => Settled::Handled(output),
            Err(panic) => Settled::Panicked(panic_text(panic.as_ref())),
        });
    }
    results
        .into_iter()
        .zip(started)
        .map(|(result, started)| match result {
            Some(settled) => settled,
            None if started => Settled::Abandoned,
            None => Settled::NotStarted,
        })
        .collect()
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn run_bounded_starts_nothing_after_start_by_and_abandons_what_runs_at_cut_off() {
        let d = Deadline::after(
            Duration::from_secs(10),
            Duration::from_secs(3),
            Duration::from_millis(500),
        );
        let started = Instant::now();
        // One at a time: 4 s, 4 s (starts at 4 s), then 4 s would start at 8 s > start_by 7 s.
        let work: Vec<_> = [4, 4, 4]
            .into_iter()
            .map(|s| async move { tokio::time::sleep(Duration::from_secs(s)).await })
            .collect();
        let results = run_bounded(work, 1, Some(d)).await;
        assert_eq!(
            results,
            [
                Settled::Handled(()),
                Settled::Handled(()),
                Settled::NotStarted
            ]
        );
        // A stall: started at once, still running at the cut-off.
        let work = vec![async { tokio::time::sleep(Duration::from_secs(60)).await }];
        let d = Deadline::after(
            Duration::from_secs(10),
            Duration::from_secs(3),
            Duration::from_millis(500),
        );
        let t = Instant::now();
        assert_eq!(run_bounded(work, 1, Some(d)).await, [Settled::Abandoned]);
        assert_eq!(t.elapsed(), Duration::from_millis(9_500));
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn run_bounded_isolates_a_panic_and_keeps_the_order_of_the_work() {
        let work: Vec<std::pin::Pin<Box<dyn Future<Output = u32> + Send>>> = vec![
            Box::pin(async { 1 }),
            Box::pin(async { panic!("boom") }),
            Box::pin(async { 3 }),
        ];
        let results = run_bounded(work, 2, None).await;
        assert_eq!(
            results,
            [
                Settled::Handled(1),
                Settled::Panicked("boom".into()),
                Settled::Handled(3)
            ]
        );
    }

    /// Issue 32: `cargo lambda watch` sends `Lambda-Runtime-Deadline-Ms: 600000`; read as epoch
    /// time that is a deadline in 1970 and every queue-fed invoke answered "not started before
    /// the invocation's deadline".
    #[test]
    fn cargo_lambda_watchs_constant_deadline_gives_that_long_from_now() {
        let before = Instant::now();
        let d = Deadline::from_epoch_ms(600_000, Duration::from_secs(1), Duration::ZERO)
            .expect("a deadline");
        assert!(d.start_by >= before + Duration::from_secs(598));
        assert!(d.cut_off >= before + Duration::from_secs(599));
        assert!(d.cut_off <= Instant::now() + Duration::from_secs(600));
    }

    #[test]
    fn a_non_epoch_deadline_is_capped_at_lambdas_longest_timeout() {
        let d = Deadline::from_epoch_ms(EPOCH_FLOOR_MS - 1, Duration::ZERO, Duration::ZERO)
            .expect("a deadline");
        assert!(d.cut_off <= Instant::now() + LAMBDA_MAX_TIMEOUT);
        assert!(d.cut_off + Duration::from_secs(1) >= Instant::now() + LAMBDA_MAX_TIMEOUT);
    }

    #[test]
    fn an_epoch_deadline_counts_from_the_clock() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = Deadline::from_epoch_ms(now_ms + 5_000, Duration::ZERO, Duration::ZERO)
            .expect("a deadline");
        assert!(d.cut_off <= Instant::now() + Duration::from_secs(5));
        assert!(d.cut_off + Duration::from_secs(1) >= Instant::now() + Duration::from_secs(5));
        let past = Deadline::from_epoch_ms(now_ms - 5_000, Duration::ZERO, Duration::ZERO)
            .expect("a deadline");
        assert!(past.start_by <= Instant::now());
    }

    #[test]
    fn a_context_without_a_deadline_sets_none() {
        assert_eq!(
            Deadline::from_epoch_ms(0, Duration::ZERO, Duration::ZERO),
            None
        );
    }
}
