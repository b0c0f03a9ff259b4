//! [`CancelHandle`]: stops a device login that is waiting for the user.

use std::sync::Arc;

use tokio::sync::watch;

/// Cancels the device logins of one authenticator that are running when
/// [`cancel`](Self::cancel) is called: they end at once with
/// [`Error::Cancelled`](flyte_auth_core::Error::Cancelled), whether they are requesting a
/// code, waiting between polls or polling. Logins started afterwards are not affected.
///
/// Cloning is cheap; clones cancel the same logins. Dropping the future of
/// `get_credentials` stops a login too (nothing runs in the background).
///
/// ```no_run
/// # async fn run(auth: flyte_auth_device::DeviceCodeAuthenticator) {
/// use flyte_auth_core::{Authenticator, Error};
///
/// let cancel = auth.flow().cancel_handle();
/// // e.g. from a "Cancel" button or a Ctrl-C handler:
/// tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
///     cancel.cancel();
/// });
/// match auth.get_credentials().await {
///     Err(Error::Cancelled) => eprintln!("login cancelled"),
///     other => { let _ = other; }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CancelHandle {
    generation: Arc<watch::Sender<u64>>,
}

impl Default for CancelHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelHandle {
    /// A handle that no login listens to yet.
    pub fn new() -> Self {
        Self {
            generation: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Cancels the logins running now.
    pub fn cancel(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Resolves when [`cancel`](Self::cancel) is called after this method was called.
    pub(crate) fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.generation.subscribe();
        async move {
            if receiver.changed().await.is_err() {
                // The handle is gone, so nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    #[tokio::test]
    async fn only_logins_running_at_cancel_time_are_cancelled() {
        let handle = CancelHandle::new();
        handle.cancel();
        let later = handle.cancelled();
        let mut later = Box::pin(later);
        assert!(
            (&mut later).now_or_never().is_none(),
            "an earlier cancel must not end a later login"
        );
        handle.clone().cancel();
        assert!(later.now_or_never().is_some());
    }
}
