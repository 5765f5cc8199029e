//! When and how often a failed request is tried again.

use crate::call::Control;
use crate::error::{clip, StageError};
use crate::log::Level;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest `Retry-After` we honour: a background update may wait, but not for an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// First backoff step; doubles per attempt up to `MAX_BACKOFF`.
const BASE_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Logs a retry: its reason (the error's code), which attempt it is and the delay before it.
pub fn log_retry(ctl: &Control, url: &str, e: &StageError, attempt: u32, of: u32, delay: Duration) {
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
pub fn retry_delay(e: &StageError, attempt: u32) -> Duration {
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
pub fn backoff(attempt: u32) -> Duration {
    let exp = BASE_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.5 + (nanos % 1000) as f64 / 2000.0;
    exp.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 0..20 {
            let d = backoff(n);
            let full = BASE_BACKOFF.saturating_mul(1 << n.min(16)).min(MAX_BACKOFF);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?}");
        }
    }
}
