//! Bounded, jittered retries of operations that lost a wait cycle.

use std::time::Duration;

/// How many times an operation that PostgreSQL aborted for a concurrent
/// transaction (a deadlock, a lock timeout) runs in all before the caller
/// sees [`factos::StoreError::Contention`].
pub(crate) const ATTEMPTS: u32 = 8;

/// The first pause; each later one may be twice as long, up to [`CAP`].
const BASE: Duration = Duration::from_millis(2);
const CAP: Duration = Duration::from_millis(200);

/// Pauses between attempts: exponential, with full jitter, so that the
/// members of a broken wait cycle do not meet again at once.
#[derive(Debug)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { attempt: 1 }
    }

    /// Waits before the next attempt and returns `true`, or returns `false`
    /// at once when the attempts are spent.
    pub(crate) async fn retry(&mut self) -> bool {
        if self.attempt >= ATTEMPTS {
            return false;
        }
        tokio::time::sleep(pause(self.attempt)).await;
        self.attempt += 1;
        true
    }
}

/// A random pause of at most `BASE * 2^(attempt - 1)`, capped.
pub(crate) fn pause(attempt: u32) -> Duration {
    let ceiling = BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(CAP);
    ceiling.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_stay_under_the_cap() {
        for attempt in 1..40 {
            let ceiling = BASE.saturating_mul(1 << (attempt - 1).min(16)).min(CAP);
            assert!(pause(attempt) <= ceiling);
        }
    }

    #[tokio::test]
    async fn the_attempts_are_bounded() {
        let mut backoff = Backoff::new();
        let mut runs = 1;
        while backoff.retry().await {
            runs += 1;
        }
        assert_eq!(runs, ATTEMPTS);
    }
}
