//! How long to wait before trying again: the one backoff every retry loop in cru uses
//! (registry requests, git pushes that lost a race, mirror blobs whose source broke off).
//! Exponential, capped and jittered so that racing clients do not retry in lockstep; for
//! HTTP, a server's `Retry-After` is honoured within a cap. This module only computes waits
//! and counts: each caller sleeps in its own way (tokio or a thread) and within its own
//! deadline, and keeps its own limits.

use std::time::Duration;

/// A capped, jittered exponential backoff: retry `n` (from 0) waits a random time in
/// `[d/2, d]`, `d = min(base·2ⁿ, max)`, and there are at most `retries` retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first wait's upper bound; it doubles each retry.
    pub base: Duration,
    /// The longest single wait.
    pub max: Duration,
}

impl Backoff {
    /// Whether another retry is allowed after `failures` failed attempts.
    pub fn allows(&self, failures: u32) -> bool {
        failures < self.retries
    }

    /// The wait before retry `retry` (from 0), jittered.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, random_fraction())
    }

    /// The wait before retry `retry` for a given jitter `fraction` in `[0, 1)`.
    pub fn delay_with(&self, retry: u32, fraction: f64) -> Duration {
        let d = self.base.saturating_mul(1 << retry.min(16)).min(self.max);
        d / 2 + d.mul_f64(fraction.clamp(0.0, 1.0) / 2.0)
    }
}

/// How an HTTP client answers `429 Too Many Requests`: waits as long as `Retry-After` asks
/// (or `default` when it does not say), at most `retries` times, and gives up when asked to
/// wait longer than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    /// Retries after a 429.
    pub retries: u32,
    /// The wait when the answer has no (readable) `Retry-After`.
    pub default: Duration,
    /// The longest wait accepted.
    pub max: Duration,
}

impl RetryAfter {
    /// The wait before trying again after the `rate_limited`-th 429 (from 0) that asked for
    /// `asked`, or `None` to give up.
    pub fn wait(&self, rate_limited: u32, asked: Option<Duration>) -> Option<Duration> {
        let wait = asked.unwrap_or(self.default);
        (rate_limited < self.retries && wait <= self.max).then_some(wait)
    }
}

/// A number in `[0, 1)` from the standard library's per-process random hash keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn waits_double_within_their_jitter_and_stop_at_the_cap() {
        let b = Backoff {
            retries: 8,
            base: MS(100),
            max: MS(4000),
        };
        assert_eq!(b.delay_with(0, 0.0), MS(50));
        assert_eq!(b.delay_with(0, 1.0), MS(100));
        assert_eq!(b.delay_with(1, 0.0), MS(100));
        assert_eq!(b.delay_with(3, 1.0), MS(800));
        assert_eq!(b.delay_with(6, 1.0), MS(4000));
        assert_eq!(b.delay_with(u32::MAX, 0.0), MS(2000));
        for retry in 0..20 {
            let d = b.delay(retry);
            let top = b.delay_with(retry, 1.0);
            assert!(d >= top / 2 && d <= top, "{retry}: {d:?}");
        }
        assert!(b.allows(7) && !b.allows(8));
    }

    #[test]
    fn jitter_spreads_racing_clients() {
        let b = Backoff {
            retries: 1,
            base: MS(1000),
            max: MS(1000),
        };
        let waits: std::collections::BTreeSet<Duration> = (0..20).map(|_| b.delay(0)).collect();
        assert!(waits.len() > 1, "{waits:?}");
    }

    #[test]
    fn retry_after_is_honoured_within_its_cap_and_count() {
        let r = RetryAfter {
            retries: 3,
            default: MS(5000),
            max: MS(60_000),
        };
        assert_eq!(r.wait(0, Some(MS(7000))), Some(MS(7000)));
        assert_eq!(r.wait(0, None), Some(MS(5000)));
        assert_eq!(r.wait(0, Some(MS(61_000))), None);
        assert_eq!(r.wait(2, Some(MS(0))), Some(MS(0)));
        assert_eq!(r.wait(3, Some(MS(0))), None);
    }
}
