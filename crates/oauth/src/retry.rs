//! Retries of transient failures for the requests that are safe to repeat (discovery, the
//! client-credentials and refresh-token grants; never a code exchange or a device poll).

use std::{
    future::Future,
    hash::{BuildHasher as _, RandomState},
    time::Duration,
};

use tokio::time::Instant;

use flyte_auth_core::Error;

use crate::transport::RawResponse;

/// The time allowed for each attempt by default: 15 s, as Flyte's Go client
/// (`admin.perRetryTimeout`).
pub const DEFAULT_PER_RETRY_TIMEOUT: Duration = Duration::from_secs(15);

/// How many times a transient failure is retried by default: four, as Flyte's Go client
/// (`admin.maxRetries`), at most 3.75 s of waiting.
pub const DEFAULT_MAX_RETRIES: u32 = 4;

/// How requests that are safe to repeat are retried after a transient failure: no answer, a
/// time-out, HTTP 5xx or 429. The wait before retry `n` (from 0) is `base_delay * 2^n`, at
/// most `max_delay`, with up to half of it taken off at random, or the server's `Retry-After`
/// (in seconds); no retry starts past `max_elapsed`.
///
/// ```
/// use std::time::Duration;
/// use flyte_auth_oauth::{HttpSettings, RetryPolicy};
/// let settings = HttpSettings::new().retry(
///     RetryPolicy::new()
///         .max_retries(4)
///         .per_attempt_timeout(Duration::from_secs(15)),
/// );
/// assert_eq!(settings.retry.max_retries, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct RetryPolicy {
    /// Retries after the first attempt (Flyte's `maxRetries`).
    pub max_retries: u32,
    /// The time allowed for each attempt (Flyte's `perRetryTimeout`); `None`: the request
    /// time-out only.
    pub per_attempt_timeout: Option<Duration>,
    /// The wait before the first retry, doubled for each next one.
    pub base_delay: Duration,
    /// The longest wait between two attempts (a longer `Retry-After` is honoured up to
    /// `max_elapsed`).
    pub max_delay: Duration,
    /// The time after which no retry is started.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            per_attempt_timeout: Some(DEFAULT_PER_RETRY_TIMEOUT),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The default: [`DEFAULT_MAX_RETRIES`] retries, [`DEFAULT_PER_RETRY_TIMEOUT`] per
    /// attempt, 250 ms doubling up to 5 s, none started after 60 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The time allowed for each attempt (Flyte's `perRetryTimeout`).
    pub fn per_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.per_attempt_timeout = Some(timeout);
        self
    }

    /// The first wait, and the longest.
    pub fn delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max;
        self
    }

    /// The time after which no retry is started.
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        self.max_elapsed = limit;
        self
    }

    /// The wait before retry `n` (from 0), jitter included.
    fn backoff(&self, n: u32) -> Duration {
        let full = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(n))
            .min(self.max_delay);
        // Up to half of the wait taken off, so that clients failing together spread out.
        let jitter = RandomState::new().hash_one(n) % 1000;
        full - full / 2 * u32::try_from(jitter).unwrap_or(0) / 1000
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy says stop; with a
    /// `deadline`, everything ends within it: each attempt is cut at the time left, and no
    /// retry is made that could not start before it.
    pub(crate) async fn run<F, Fut>(
        &self,
        operation: &str,
        deadline: Option<Duration>,
        mut attempt: F,
    ) -> Result<RawResponse, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RawResponse, Error>>,
    {
        let start = Instant::now();
        let mut n = 0;
        loop {
            // The per-attempt limit cuts the attempt when it comes before the deadline.
            let per_attempt = self.per_attempt_timeout.filter(|limit| {
                deadline.is_none_or(|deadline| start.elapsed().saturating_add(*limit) < deadline)
            });
            let result =
                match (per_attempt, deadline) {
                    (Some(limit), _) => tokio::time::timeout(limit, attempt())
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::Timeout {
                                operation: format!("{operation} (one attempt, perRetryTimeout)"),
                                after: limit,
                            })
                        }),
                    (None, Some(deadline)) => {
                        until_deadline(operation, start, deadline, attempt()).await
                    }
                    (None, None) => attempt().await,
                };
            let retry_after = match &result {
                Ok(raw) if raw.status >= 500 || raw.status == 429 => raw.retry_after,
                Err(e) if e.is_transient() => None,
                _ => return result,
            };
            if n >= self.max_retries {
                return result;
            }
            let wait = retry_after.unwrap_or_else(|| self.backoff(n));
            let next = start.elapsed().saturating_add(wait);
            if next > self.max_elapsed || deadline.is_some_and(|limit| next >= limit) {
                tracing::debug!(
                    operation,
                    "not retrying: the next attempt would start too late"
                );
                return result;
            }
            n += 1;
            tracing::debug!(
                operation,
                retry = n,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "transient failure; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// `future`, cut at `deadline` after `start` (on tokio's clock); a time-out of its own that
/// ends there too is reported as the deadline's.
pub(crate) async fn until_deadline<T>(
    operation: &str,
    start: Instant,
    deadline: Duration,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let left = deadline.saturating_sub(start.elapsed());
    match tokio::time::timeout(left, future).await {
        Ok(Err(Error::Timeout { .. })) if start.elapsed() >= deadline => {}
        Ok(result) => return result,
        Err(_) => {}
    }
    Err(Error::Timeout {
        operation: format!("{operation} (the deadline, retries included)"),
        after: deadline,
    })
}

/// `Retry-After` in seconds (an HTTP date falls back to the backoff).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_half_taken_off() {
        let policy = RetryPolicy::new().delays(Duration::from_millis(100), Duration::from_secs(1));
        for (n, full) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (10, 1000),
        ] {
            let wait = policy.backoff(n);
            let full = Duration::from_millis(full);
            assert!(wait <= full && wait >= full / 2, "retry {n}: {wait:?}");
        }
    }

    /// An attempt that takes `takes` on tokio's clock and fails with a transient error; it
    /// counts the attempts.
    fn failing_attempt(
        takes: Duration,
        count: &std::cell::Cell<u32>,
    ) -> impl Future<Output = Result<RawResponse, Error>> + '_ {
        count.set(count.get() + 1);
        async move {
            tokio::time::sleep(takes).await;
            Err(Error::Timeout {
                operation: "a test request".into(),
                after: takes,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_time_limit_is_measured_on_the_clock_the_waits_run_on() {
        // Waits of 0.5 to 1 s: at most 21 attempts fit in 10 s, however the jitter falls.
        let policy = RetryPolicy::new()
            .max_retries(100)
            .delays(Duration::from_secs(1), Duration::from_secs(1))
            .max_elapsed(Duration::from_secs(10));
        let attempts = std::cell::Cell::new(0);
        let start = Instant::now();
        let result = policy
            .run("a test request", None, || {
                failing_attempt(Duration::ZERO, &attempts)
            })
            .await;
        assert!(result.is_err());
        assert!(attempts.get() <= 21, "{} attempts", attempts.get());
        assert!(
            start.elapsed() <= Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_measured_on_the_clock_the_attempts_run_on() {
        let policy = RetryPolicy::new()
            .max_retries(100)
            .delays(Duration::from_millis(100), Duration::from_millis(100));
        let deadline = Duration::from_secs(2);
        let attempts = std::cell::Cell::new(0);
        let start = Instant::now();
        let Err(err) = policy
            .run("a test request", Some(deadline), || {
                failing_attempt(Duration::from_millis(400), &attempts)
            })
            .await
        else {
            panic!("an answer from an attempt that always fails");
        };
        assert!(start.elapsed() <= deadline, "{:?}", start.elapsed());
        assert!(attempts.get() <= 5, "{} attempts", attempts.get());
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
