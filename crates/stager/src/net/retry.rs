//! When and how often a failed request is tried again: one policy for the document fetch and the
//! tarball download.
//!
//! The policy is our own small type rather than `backon` or `retry-policies` (reqwest-retry's):
//! the download restores its budget whenever an attempt got further into the tarball than any
//! before it, restarts resumed bytes
//! that fail their check once for free and refetches one integrity failure, and every wait is the
//! call's own abortable, deadline-bound sleep. `backon` drives a one-way backoff iterator from its
//! own loop and jitters by a factor in [1, 2); `retry-policies` is a stateless delay table with
//! another jitter shape, on wall-clock `SystemTime` and `rand`. Either would leave the decisions
//! here and only replace the five lines of backoff below, while changing its timing.

use crate::shared::call::Control;
use crate::shared::error::{Result, StageError};
use crate::shared::log::Level;
use crate::shared::text::clip;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Longest `Retry-After` we honour: a background update may wait, but not for an hour.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// First backoff step; doubles per attempt up to `MAX_BACKOFF`.
const BASE_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What one failed attempt did, as far as the policy cares.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// It continued from kept bytes.
    pub resumed: bool,
    /// The tarball offset its network bytes started at: the kept bytes it resumed, else 0.
    pub start: u64,
    /// Bytes it received from the network.
    pub received: u64,
}

impl Attempt {
    /// The furthest byte of the tarball it held: kept bytes and the network's.
    pub(crate) fn reached(&self) -> u64 {
        self.start.saturating_add(self.received)
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The error stands.
    GiveUp,
    /// Start again from byte 0 at once, at no cost to the retries.
    Restart,
    /// Download once more at once: a mirror may have served a bad copy.
    Refetch,
    /// Wait `delay`, then make retry number `attempt` of `of`.
    Wait {
        attempt: u32,
        of: u32,
        delay: Duration,
    },
}

/// The retry budget of one document fetch or one tarball download, and the rules that spend it.
#[derive(Debug)]
pub(crate) struct RetryPolicy {
    budget: u32,
    /// Backoff retries spent since the budget was last full.
    used: u32,
    /// An attempt that got further than the furthest byte held so far refills the budget.
    refill_on_progress: bool,
    /// The furthest byte of the tarball any attempt held, kept bytes included.
    furthest: u64,
    /// The one refetch after an integrity failure is still available.
    integrity_retry: bool,
    /// The one free restart of resumed bytes is still available.
    clean_restart: bool,
}

impl RetryPolicy {
    /// `budget` retries of transient failures, and nothing else.
    pub(crate) fn document(budget: u32) -> RetryPolicy {
        RetryPolicy {
            budget,
            used: 0,
            refill_on_progress: false,
            furthest: 0,
            integrity_retry: false,
            clean_restart: false,
        }
    }

    /// `budget` retries of transient failures, restored by any attempt that moved the furthest
    /// byte held forward, plus one refetch after an integrity failure and one free restart of resumed bytes.
    pub(crate) fn download(budget: u32) -> RetryPolicy {
        RetryPolicy {
            refill_on_progress: true,
            integrity_retry: true,
            clean_restart: true,
            ..RetryPolicy::document(budget)
        }
    }

    /// What to do after `attempt` failed with `e`; spends what the decision costs.
    pub(crate) fn decide(&mut self, e: &StageError, attempt: Attempt) -> Decision {
        match e {
            // Resumed bytes that fail to hash (or to be read back) may have been damaged on
            // disk, not by the registry: one clean download from byte 0 settles it, at no cost
            // to the retries. Any other failure with the right hash is the package's own.
            StageError::Integrity { .. } | StageError::Io { .. }
                if attempt.resumed && self.clean_restart =>
            {
                self.clean_restart = false;
                // The kept bytes are gone: the download from byte 0 is measured afresh. Both
                // restarts happen once at most, so this never resets progress without end.
                self.furthest = 0;
                Decision::Restart
            }
            StageError::Integrity { .. } if self.integrity_retry => {
                self.integrity_retry = false;
                self.furthest = 0;
                Decision::Refetch
            }
            e if e.is_retryable() => self.backoff_retry(e, attempt),
            _ => Decision::GiveUp,
        }
    }

    /// A retry after a transient failure, while the budget lasts. An attempt that got further
    /// than any before it (kept bytes count as held) refills it first: on a link that drops
    /// every few MB each attempt moves the download on, and the call's deadline still bounds
    /// them all. Bytes received again, as from a server that answers from byte 0 and cuts at
    /// the same offset each time, are no progress: that attempt counts.
    fn backoff_retry(&mut self, e: &StageError, attempt: Attempt) -> Decision {
        let held = self.furthest.max(attempt.start);
        self.furthest = held.max(attempt.reached());
        if self.refill_on_progress && attempt.reached() > held {
            self.used = 0;
        }
        if self.used >= self.budget {
            return Decision::GiveUp;
        }
        let n = self.used;
        self.used += 1;
        Decision::Wait {
            attempt: n + 1,
            of: self.budget,
            delay: retry_delay(e, n),
        }
    }

    /// Whether to try `url` again after `attempt` failed with `e`: logs the retry and waits its
    /// delay first. `Ok(false)` when `e` stands; an error when the wait was cut by the deadline or
    /// an abort. No retry starts after the deadline, nor once the call is aborted (which ends it
    /// with `EABORTED`).
    pub(crate) async fn retry(
        &mut self,
        ctl: &Control,
        url: &str,
        e: &StageError,
        attempt: Attempt,
    ) -> Result<bool> {
        let decision = self.decide(e, attempt);
        if decision == Decision::GiveUp {
            return Ok(false);
        }
        if ctl.is_aborted() {
            return Err(StageError::Aborted);
        }
        if ctl.expired() {
            return Ok(false);
        }
        match decision {
            Decision::GiveUp | Decision::Restart => {}
            Decision::Refetch => ctl.log(
                Level::Warn,
                "the tarball failed its integrity check: downloading it once more",
                &[("url", url.into())],
            ),
            Decision::Wait { attempt, of, delay } => {
                log_retry(ctl, url, e, attempt, of, delay);
                ctl.sleep(url, delay).await?;
            }
        }
        Ok(!ctl.expired())
    }
}

/// Logs a retry: its reason (the error's code), which attempt it is and the delay before it.
fn log_retry(ctl: &Control, url: &str, e: &StageError, attempt: u32, of: u32, delay: Duration) {
    ctl.log(
        Level::Warn,
        format!(
            "retrying {} after {} in {} ms (retry {attempt} of {of})",
            clip(url),
            e.code(),
            delay.as_millis()
        ),
        &[
            ("url", url.into()),
            ("reason", e.code().into()),
            ("attempt", u64::from(attempt).into()),
            ("delayMs", (delay.as_millis() as u64).into()),
        ],
    );
}

/// How long to wait before retry number `attempt` (from 0) after `e`: the server's `Retry-After`
/// when it sent one, else the backoff.
fn retry_delay(e: &StageError, attempt: u32) -> Duration {
    match e {
        StageError::Http {
            retry_after: Some(d),
            ..
        } => *d,
        _ => backoff(attempt),
    }
}

/// Exponential backoff with jitter: 250 ms, 500 ms, 1 s ... capped at 8 s, each scaled by a
/// random factor in [0.5, 1.0) so many clients hit by one outage do not retry in lockstep.
fn backoff(attempt: u32) -> Duration {
    full_backoff(attempt).mul_f64(0.5 + unit_random() / 2.0)
}

/// The backoff before jitter: 250 ms doubled per attempt, at most 8 s.
fn full_backoff(attempt: u32) -> Duration {
    BASE_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF)
}

/// A uniform random number in [0, 1). std's `RandomState` keys its hasher from the OS's random
/// source (once per thread, then a step per new state), so each call hashes to a fresh value
/// without a random-number crate.
fn unit_random() -> f64 {
    let bits = RandomState::new().build_hasher().finish();
    // The top 53 bits fill an f64's mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::error::Op;
    use crate::shared::phase::Phase;

    fn network() -> StageError {
        StageError::Network {
            url: "u".into(),
            phase: Phase::Downloading,
            message: "reset".into(),
        }
    }

    fn integrity() -> StageError {
        StageError::Integrity {
            url: "u".into(),
            expected: "sha512-a".into(),
            actual: "sha512-b".into(),
        }
    }

    fn io() -> StageError {
        StageError::io(
            Op::Reading,
            std::path::Path::new("kept"),
            std::io::Error::other("short"),
        )
    }

    fn http(status: u16, retry_after: Option<Duration>) -> StageError {
        StageError::Http {
            url: "u".into(),
            status,
            retry_after,
        }
    }

    const NOTHING: Attempt = Attempt {
        resumed: false,
        start: 0,
        received: 0,
    };
    const PROGRESS: Attempt = Attempt {
        resumed: false,
        start: 0,
        received: 10,
    };
    const RESUMED: Attempt = Attempt {
        resumed: true,
        start: 0,
        received: 0,
    };

    /// An attempt that held the tarball's bytes from `start` to `start + received`.
    fn held(start: u64, received: u64) -> Attempt {
        Attempt {
            resumed: start > 0,
            start,
            received,
        }
    }

    /// The retry numbers a run of decisions gives, `None` where it gives up.
    fn attempts(p: &mut RetryPolicy, e: &StageError, runs: &[Attempt]) -> Vec<Option<u32>> {
        runs.iter()
            .map(|a| match p.decide(e, *a) {
                Decision::Wait { attempt, of, .. } => {
                    assert_eq!(of, p.budget);
                    Some(attempt)
                }
                Decision::GiveUp => None,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 0..20 {
            let d = backoff(n);
            let full = BASE_BACKOFF.saturating_mul(1 << n.min(16)).min(MAX_BACKOFF);
            assert_eq!(full_backoff(n), full);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?}");
        }
        assert_eq!(full_backoff(0), Duration::from_millis(250));
        assert_eq!(full_backoff(5), MAX_BACKOFF);
    }

    #[test]
    fn jitter_is_spread_over_its_range() {
        let draws: Vec<f64> = (0..2000).map(|_| unit_random()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        // Each quarter of the range gets its share: 500 expected, far from 0 or 2000.
        for q in 0..4 {
            let lo = q as f64 / 4.0;
            let n = draws
                .iter()
                .filter(|u| (lo..lo + 0.25).contains(*u))
                .count();
            assert!((350..650).contains(&n), "quarter {q}: {n}");
        }
    }

    #[test]
    fn a_document_spends_its_budget_counting_up_and_ignores_progress() {
        let mut p = RetryPolicy::document(3);
        let runs = [NOTHING, PROGRESS, NOTHING, PROGRESS];
        assert_eq!(
            attempts(&mut p, &network(), &runs),
            [Some(1), Some(2), Some(3), None]
        );
        // A document fetch never refetches or restarts.
        let mut p = RetryPolicy::document(3);
        assert_eq!(p.decide(&integrity(), RESUMED), Decision::GiveUp);
        assert_eq!(p.decide(&io(), RESUMED), Decision::GiveUp);
    }

    #[test]
    fn a_download_that_got_further_gets_its_budget_back() {
        let mut p = RetryPolicy::download(2);
        let runs = [NOTHING, NOTHING, PROGRESS, NOTHING, NOTHING];
        assert_eq!(
            attempts(&mut p, &network(), &runs),
            [Some(1), Some(2), Some(1), Some(2), None]
        );
        // Each attempt resumes where the last stopped and gets further.
        let mut p = RetryPolicy::download(1);
        let runs = [held(0, 100), held(100, 100), held(200, 100), held(300, 0)];
        assert_eq!(
            attempts(&mut p, &network(), &runs),
            [Some(1), Some(1), Some(1), None]
        );
    }

    #[test]
    fn bytes_received_again_are_no_progress() {
        // A server that answers from byte 0 each time and cuts at the same offset: only the
        // first attempt moved the furthest byte forward; the rest spend the budget.
        let mut p = RetryPolicy::download(3);
        let runs = [held(0, 20_000); 5];
        assert_eq!(
            attempts(&mut p, &network(), &runs),
            [Some(1), Some(2), Some(3), None, None]
        );
        // Falling short of the furthest byte held, or resuming kept bytes and getting nothing
        // more, is no progress either; passing it is.
        let mut p = RetryPolicy::download(2);
        let runs = [
            held(0, 500),
            held(0, 400),
            held(500, 0),
            held(0, 501),
            held(0, 10),
        ];
        assert_eq!(
            attempts(&mut p, &network(), &runs),
            [Some(1), Some(2), None, Some(1), Some(2)]
        );
        // Kept bytes from an earlier call count as held: resuming them with nothing new counts.
        let mut p = RetryPolicy::download(1);
        let runs = [held(5_000, 0), held(5_000, 0)];
        assert_eq!(attempts(&mut p, &network(), &runs), [Some(1), None]);
    }

    #[test]
    fn no_budget_means_no_retry_even_after_progress() {
        let mut p = RetryPolicy::download(0);
        assert_eq!(attempts(&mut p, &network(), &[PROGRESS]), [None]);
        let mut p = RetryPolicy::document(0);
        assert_eq!(attempts(&mut p, &http(503, None), &[NOTHING]), [None]);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let mut p = RetryPolicy::download(3);
        for e in [http(404, None), http(401, None), StageError::Aborted, io()] {
            assert_eq!(p.decide(&e, PROGRESS), Decision::GiveUp, "{e}");
        }
        for e in [http(500, None), http(429, None), http(408, None)] {
            assert!(
                matches!(p.decide(&e, PROGRESS), Decision::Wait { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn retry_after_is_the_delay_and_the_backoff_is_the_fallback() {
        let mut p = RetryPolicy::document(3);
        let e = http(429, Some(Duration::from_secs(7)));
        let Decision::Wait { delay, .. } = p.decide(&e, NOTHING) else {
            panic!()
        };
        assert_eq!(delay, Duration::from_secs(7));
        let Decision::Wait { delay, .. } = p.decide(&http(503, None), NOTHING) else {
            panic!()
        };
        // The second retry's backoff: 500 ms, jittered into [250, 500).
        assert!(delay >= Duration::from_millis(250) && delay < Duration::from_millis(500));
    }

    #[test]
    fn integrity_failures_restart_resumed_bytes_once_then_refetch_once() {
        let mut p = RetryPolicy::download(3);
        assert_eq!(p.decide(&integrity(), RESUMED), Decision::Restart);
        // The restart is spent: a resumed attempt that fails again gets the one refetch.
        assert_eq!(p.decide(&integrity(), RESUMED), Decision::Refetch);
        assert_eq!(p.decide(&integrity(), NOTHING), Decision::GiveUp);
        // Neither costs a retry.
        assert_eq!(attempts(&mut p, &network(), &[NOTHING]), [Some(1)]);

        // Kept bytes that cannot be read back restart once; a fresh download's EIO stands.
        let mut p = RetryPolicy::download(3);
        assert_eq!(p.decide(&io(), NOTHING), Decision::GiveUp);
        assert_eq!(p.decide(&io(), RESUMED), Decision::Restart);
        assert_eq!(p.decide(&io(), RESUMED), Decision::GiveUp);
        // An integrity failure of a fresh download is refetched once, and still may restart
        // resumed bytes later.
        let mut p = RetryPolicy::download(3);
        assert_eq!(p.decide(&integrity(), NOTHING), Decision::Refetch);
        assert_eq!(p.decide(&integrity(), NOTHING), Decision::GiveUp);
        assert_eq!(p.decide(&integrity(), RESUMED), Decision::Restart);
    }

    #[tokio::test]
    async fn retry_waits_and_stops_at_the_deadline_or_an_abort() {
        let (ctl, abort) = Control::new(Duration::from_secs(20));
        let mut p = RetryPolicy::document(1);
        let e = http(503, Some(Duration::from_millis(10)));
        assert!(p.retry(&ctl, "u", &e, NOTHING).await.unwrap());
        assert!(!p.retry(&ctl, "u", &e, NOTHING).await.unwrap());
        let mut p = RetryPolicy::document(1);
        abort.abort();
        let aborted = p.retry(&ctl, "u", &e, NOTHING).await.unwrap_err();
        assert_eq!(aborted.code(), "EABORTED");

        let (ctl, _abort) = Control::new(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut p = RetryPolicy::download(3);
        assert!(!p.retry(&ctl, "u", &integrity(), NOTHING).await.unwrap());
        // The deadline cuts a wait that would outlast it.
        let (ctl, _abort) = Control::new(Duration::from_millis(50));
        let e = http(503, Some(Duration::from_secs(10)));
        let cut = p.retry(&ctl, "u", &e, NOTHING).await.unwrap_err();
        assert_eq!(cut.code(), "ETIMEDOUT");
    }
}
