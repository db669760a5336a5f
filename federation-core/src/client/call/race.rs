//! The hedge timer: parallel attempts of one call, the first good answer wins.
//!
//! **Failure prevented.** Backup requests that are never stopped (two answers for one call, a
//! slow attempt holding its connection after the call returned) or that are sent although the
//! first attempt already answered. [`race`] runs the first attempt; each time `delay` passes
//! without a winner it asks for one more attempt (at most `max_extra`); the first outcome that
//! wins ends the race, and every attempt still in flight is dropped there (its connection is
//! closed, its breaker permit handed back unjudged). When every attempt has finished without a
//! winner, the last to finish decides (the call's retry loop takes it from there).

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

/// How a race ended.
pub(super) struct Race<T> {
    /// The slot (0 = the first attempt, then hedges in launch order) and outcome the call goes
    /// on with: the first that won, or else the last to finish.
    pub(super) decided: (usize, T),
    /// The other attempts that finished, with their slots.
    pub(super) finished: Vec<(usize, T)>,
    /// Slots still in flight when the race was decided: they were dropped.
    pub(super) cancelled: Vec<usize>,
}

/// Runs `first`; while nothing has won, every `delay` calls `launch(slot)` for one more attempt
/// (up to `max_extra`; `None` ends the hedging of this race). See the module docs.
pub(super) async fn race<T, F>(
    first: F,
    delay: Duration,
    max_extra: u32,
    mut launch: impl FnMut(usize) -> Option<F>,
    won: impl Fn(&T) -> bool,
) -> Race<T>
where
    F: Future<Output = T>,
{
    let mut pending = FuturesUnordered::new();
    pending.push(tagged(0, first));
    let mut launched = 1usize;
    let max_slots = 1 + usize::try_from(max_extra).unwrap_or(usize::MAX);
    let mut hedging = launched < max_slots;
    let mut next_at = Instant::now() + delay;
    let mut finished: Vec<(usize, T)> = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some((slot, out)) = pending.next() => {
                if won(&out) || pending.is_empty() {
                    let cancelled = (0..launched)
                        .filter(|s| *s != slot && !finished.iter().any(|(f, _)| f == s))
                        .collect();
                    return Race { decided: (slot, out), finished, cancelled };
                }
                finished.push((slot, out));
            }
            () = tokio::time::sleep_until(next_at), if hedging => {
                match launch(launched) {
                    Some(attempt) => {
                        pending.push(tagged(launched, attempt));
                        launched += 1;
                        hedging = launched < max_slots;
                        next_at = Instant::now() + delay;
                    }
                    None => hedging = false,
                }
            }
        }
    }
}

async fn tagged<F: Future>(slot: usize, attempt: F) -> (usize, F::Output) {
    (slot, attempt.await)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::pin::Pin;

    use super::*;

    type Attempt = Pin<Box<dyn Future<Output = (&'static str, bool)>>>;

    /// An attempt answering after `ms` with `good` (a winning answer or a failure).
    fn answer(name: &'static str, ms: u64, good: bool) -> Attempt {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (name, good)
        })
    }

    /// Races `first` against the `hedges` (name, answer after, good), recording when each
    /// hedge was launched (ms after the start).
    async fn run(
        first: Attempt,
        delay_ms: u64,
        max_extra: u32,
        hedges: &[(&'static str, u64, bool)],
    ) -> (Race<(&'static str, bool)>, Vec<u128>, u128) {
        let start = Instant::now();
        let launches = RefCell::new(Vec::new());
        let race = race(
            first,
            Duration::from_millis(delay_ms),
            max_extra,
            |slot| {
                launches.borrow_mut().push(start.elapsed().as_millis());
                let (name, ms, good) = *hedges.get(slot - 1)?;
                Some(answer(name, ms, good))
            },
            |(_, good)| *good,
        )
        .await;
        (race, launches.into_inner(), start.elapsed().as_millis())
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_answer_sends_no_hedge() {
        let (race, launches, took) = run(answer("first", 30, true), 50, 2, &[]).await;
        assert_eq!(race.decided.0, 0);
        assert!(launches.is_empty(), "hedge launched at {launches:?}");
        assert_eq!(took, 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_answer_loses_to_the_hedge_sent_after_the_delay() {
        let hedges = [("hedge", 10, true)];
        let (race, launches, took) = run(answer("first", 200, true), 50, 1, &hedges).await;
        assert_eq!(launches, vec![50]);
        assert_eq!(race.decided, (1, ("hedge", true)));
        assert_eq!(race.cancelled, vec![0], "the slow first attempt is dropped");
        assert_eq!(took, 60);
    }

    #[tokio::test(start_paused = true)]
    async fn hedges_are_spaced_by_the_delay_and_capped() {
        let hedges = [("h1", 500, true), ("h2", 500, true), ("h3", 5, true)];
        let (race, launches, took) = run(answer("first", 300, true), 40, 2, &hedges).await;
        assert_eq!(
            launches,
            vec![40, 80],
            "max_extra 2: the third is never asked for"
        );
        assert_eq!(race.decided.0, 0);
        assert_eq!(race.cancelled, vec![1, 2]);
        assert_eq!(took, 300);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_attempt_does_not_win_while_another_is_in_flight() {
        let hedges = [("hedge", 100, true)];
        let (race, _, took) = run(answer("first", 70, false), 50, 1, &hedges).await;
        assert_eq!(race.decided, (1, ("hedge", true)));
        assert_eq!(race.finished.len(), 1);
        assert!(race.cancelled.is_empty());
        assert_eq!(took, 150);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_hedge_target_the_first_attempt_decides_alone() {
        // `launch` has nothing to offer (no other instance, or the budget is spent).
        let (race, launches, took) = run(answer("first", 120, false), 50, 3, &[]).await;
        assert_eq!(launches, vec![50], "asked once, then hedging stops");
        assert_eq!(race.decided, (0, ("first", false)));
        assert_eq!(took, 120);
    }
}
