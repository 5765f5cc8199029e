//! The download's rate cap (`maxBytesPerSecond`).

use std::time::Duration;
use tokio::time::Instant;

/// A token bucket on the download stream: `take` waits (a tokio sleep, never a thread) until
/// the bytes fit under `rate` per second.
pub(crate) struct Throttle {
    rate: f64,
    /// Bytes that may pass now; negative while paying off a slice already passed.
    allowance: f64,
    last: Instant,
}

impl Throttle {
    pub(crate) fn new(bytes_per_second: u64) -> Throttle {
        Throttle {
            rate: bytes_per_second.max(1) as f64,
            // Starts empty: the first bytes wait like the rest, so the measured rate holds.
            allowance: 0.0,
            last: Instant::now(),
        }
    }

    /// The largest slice to pass at once: a tenth of a second's worth, so the stream (and the
    /// progress reported from it) moves steadily instead of in bursts.
    pub(crate) fn slice(&self) -> usize {
        ((self.rate / 10.0) as usize).clamp(1024, 1 << 20)
    }

    pub(crate) async fn take(&mut self, n: usize) {
        let now = Instant::now();
        // Unused allowance is capped at one slice: an idle moment never turns into a burst.
        self.allowance = (self.allowance + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.slice() as f64);
        self.last = now;
        self.allowance -= n as f64;
        if self.allowance < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.allowance / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttle_holds_the_rate_from_the_first_byte() {
        let rate = 1_000_000u64;
        let mut t = Throttle::new(rate);
        assert_eq!(t.slice(), 100_000);
        let start = std::time::Instant::now();
        for _ in 0..30 {
            t.take(10_000).await;
        }
        let secs = start.elapsed().as_secs_f64();
        // 300 KB at 1 MB/s: 0.3 s, give or take the timer's granularity.
        assert!((0.27..0.45).contains(&secs), "{secs}");
        // An idle moment earns at most one slice of burst.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let start = std::time::Instant::now();
        t.take(300_000).await;
        let secs = start.elapsed().as_secs_f64();
        assert!((0.17..0.35).contains(&secs), "{secs}");
    }
}
