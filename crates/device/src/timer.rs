//! [`PollTimer`]: how the device flow tells time and waits between polls.

use std::{
    fmt,
    time::{Duration, Instant},
};

use flyte_auth_core::BoxFuture;

/// The time source of the poll loop: when it is now, and how to wait.
///
/// The default, [`TokioTimer`], uses `tokio::time`, so a test running with paused time
/// (`#[tokio::test(start_paused = true)]`) controls it. A test that talks to a real socket
/// (a mock HTTP server) cannot use paused time reliably, because tokio advances a paused
/// clock whenever the runtime waits for I/O; such a test injects a timer of its own whose
/// [`sleep`](Self::sleep) advances a virtual time and returns at once, and asserts the exact
/// poll schedule in that virtual time.
///
/// ```
/// use std::{sync::Mutex, time::{Duration, Instant}};
/// use flyte_auth_core::BoxFuture;
/// use flyte_auth_device::PollTimer;
///
/// /// Virtual time: sleeping advances it and returns at once.
/// #[derive(Debug)]
/// struct ManualTimer { start: Instant, offset: Mutex<Duration> }
///
/// impl PollTimer for ManualTimer {
///     fn now(&self) -> Instant {
///         self.start + *self.offset.lock().unwrap()
///     }
///     fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
///         *self.offset.lock().unwrap() += duration;
///         Box::pin(async {})
///     }
/// }
/// ```
pub trait PollTimer: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Waits `duration`. The returned future is created when the wait is decided and
    /// awaited at once.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// [`PollTimer`] on `tokio::time`: the default, and what paused-time tests control.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

impl PollTimer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_timer_follows_paused_time() {
        let timer = TokioTimer;
        let start = timer.now();
        timer.sleep(Duration::from_secs(600)).await;
        let elapsed = timer.now() - start;
        assert!(elapsed >= Duration::from_secs(600), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(601), "{elapsed:?}");
    }
}
