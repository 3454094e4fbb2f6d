//! The one backoff schedule of dm-apply, and the retry policy built on it.
//!
//! Who retries what (one layer per kind of request, never two nested):
//! - reads are retried by the client (`DmClient`), with its `ClientOptions::retry`;
//! - mutations are retried by the apply executor (`apply::ApplyOptions::retry`), the only layer that knows whether
//!   a mutation may be repeated and that can settle a lost answer by re-reading; its client sends each mutation
//!   exactly once (`DmClient::sending_mutations_once`);
//! - a client used outside apply (single commands, tests) retries a mutation only when it certainly did not happen
//!   (connection refused, DM's 46024 latch): it is then the only layer retrying;
//! - waiting for a task's or relay's stage is polling, not retrying: it uses the same [`Backoff`] without jitter.

use std::time::Duration;

/// Exponentially growing delays: `base`, `2·base`, `4·base`, ... capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before try number `n + 1` (`n` = 0 for the first delay), without jitter: for polling.
    pub fn delay(&self, n: u32) -> Duration {
        self.base.saturating_mul(1u32 << n.min(16)).min(self.max.max(self.base))
    }

    /// [`Self::delay`] with "equal jitter": between half of it and all of it. Clients retrying together spread out,
    /// and the total wait stays at least half the schedule (so a retry budget outlasts a latch held that long).
    pub fn jittered(&self, n: u32) -> Duration {
        let d = self.delay(n);
        d / 2 + (d / 2).mul_f64(rand::random::<f64>())
    }
}

/// How often, and how far apart, a request that failed in a retryable way is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry): a request is sent at most this many times.
    pub max_attempts: u32,
    /// First delay; doubles per retry.
    pub base_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// Send once, never again.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    pub fn backoff(&self) -> Backoff {
        Backoff { base: self.base_delay, max: self.max_delay }
    }

    /// After `attempts_made` failed attempts: the delay before the next one, or `None` when the budget is spent.
    pub fn next_delay(&self, attempts_made: u32) -> Option<Duration> {
        (attempts_made < self.max_attempts).then(|| self.backoff().jittered(attempts_made.saturating_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff { base: Duration::from_millis(10), max: Duration::from_millis(50) };
        let d: Vec<u128> = (0..5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, vec![10, 20, 40, 50, 50]);
        for n in 0..5 {
            let j = b.jittered(n);
            assert!(j >= b.delay(n) / 2 && j <= b.delay(n), "{j:?}");
        }
    }

    #[test]
    fn the_budget_counts_attempts() {
        let p =
            RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(1) };
        assert!(p.next_delay(1).is_some());
        assert!(p.next_delay(2).is_some());
        assert!(p.next_delay(3).is_none());
        assert!(RetryPolicy::none().next_delay(1).is_none());
    }
}
