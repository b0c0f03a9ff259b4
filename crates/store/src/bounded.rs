//! Runs a blocking keyring call on a helper thread and waits for it a bounded time: the
//! keyring libraries have none (a Secret Service that never answers, an unlock prompt nobody
//! sees). Past the limit the call is abandoned ([`StoreError::Unavailable`]), and while it
//! runs, later calls fail at once instead of queueing behind it on the shared connection.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use flyte_auth_core::StoreError;

/// How many of the keyring's calls in this process (they share one connection to the
/// keyring) timed out and have not returned yet.
static KEYRING_ABANDONED: AtomicUsize = AtomicUsize::new(0);

enum Slot<T> {
    Running,
    Done(Result<T, StoreError>),
    Taken,
    Abandoned,
}

/// Runs `call` on a helper thread and waits at most `timeout` for its result.
///
/// `what` names the operation in the error (`read`, `write`, ...); it never holds a secret.
pub(crate) fn run<T, F>(what: &'static str, timeout: Duration, call: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    run_on(&KEYRING_ABANDONED, what, timeout, call)
}

/// [`run`], counting the abandoned calls in `abandoned_calls`.
fn run_on<T, F>(
    abandoned_calls: &'static AtomicUsize,
    what: &'static str,
    timeout: Duration,
    call: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    let abandoned = abandoned_calls.load(Ordering::SeqCst);
    if abandoned > 0 {
        return Err(StoreError::Unavailable {
            store: "keyring",
            message: format!(
                "an earlier keyring call did not answer within its time limit and has not \
                 returned yet ({abandoned} pending); not waiting on the keyring again"
            ),
        });
    }

    let shared = Arc::new((Mutex::new(Slot::<T>::Running), Condvar::new()));
    let worker = Arc::clone(&shared);
    thread::Builder::new()
        .name(format!("flyte-auth-keyring-{what}"))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
                Err(StoreError::Unavailable {
                    store: "keyring",
                    message: "the keyring library panicked".to_owned(),
                })
            });
            let (slot, ready) = &*worker;
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*slot, Slot::Abandoned) {
                abandoned_calls.fetch_sub(1, Ordering::SeqCst);
                tracing::debug!(
                    operation = what,
                    "a keyring call that had timed out has returned"
                );
            } else {
                *slot = Slot::Done(result);
                ready.notify_all();
            }
        })
        .map_err(|e| StoreError::Io {
            store: "keyring",
            operation: what,
            message: format!("could not start a thread for the keyring call: {e}"),
            source: Some(Arc::new(e)),
        })?;

    let (slot, ready) = &*shared;
    let slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    let (mut slot, _) = ready
        .wait_timeout_while(slot, timeout, |s| matches!(s, Slot::Running))
        .unwrap_or_else(|p| p.into_inner());
    match std::mem::replace(&mut *slot, Slot::Taken) {
        Slot::Done(result) => result,
        _ => {
            *slot = Slot::Abandoned;
            abandoned_calls.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(
                operation = what,
                timeout_secs = timeout.as_secs_f32(),
                "the keyring did not answer in time; giving up on it"
            );
            Err(StoreError::Unavailable {
                store: "keyring",
                message: format!(
                    "the keyring did not answer within {}s (a Secret Service that hangs, or an \
                     unlock prompt nobody can answer); use another store, e.g. the file store",
                    timeout.as_secs_f32()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_quick_call_returns_its_result() {
        static B: AtomicUsize = AtomicUsize::new(0);
        let got = run_on(&B, "read", Duration::from_secs(30), || Ok(42));
        assert_eq!(got.unwrap(), 42);
    }

    #[test]
    fn a_panicking_call_is_an_error_not_a_panic() {
        static B: AtomicUsize = AtomicUsize::new(0);
        let got: Result<(), _> = run_on(&B, "read", Duration::from_secs(30), || panic!("boom"));
        assert!(matches!(got, Err(StoreError::Unavailable { .. })));
    }

    #[test]
    fn a_hanging_call_times_out_and_later_calls_fail_fast_until_it_returns() {
        static B: AtomicUsize = AtomicUsize::new(0);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let started = Instant::now();
        let got: Result<(), _> = run_on(&B, "write", Duration::from_millis(200), move || {
            let _ = wait.recv_timeout(Duration::from_secs(60));
            Ok(())
        });
        let Err(StoreError::Unavailable { message, .. }) = got else {
            panic!("expected Unavailable, got {got:?}");
        };
        assert!(message.contains("did not answer"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(30));

        let again: Result<(), _> = run_on(&B, "read", Duration::from_secs(30), || Ok(()));
        assert!(matches!(again, Err(StoreError::Unavailable { .. })));

        release.send(()).unwrap();
        // The abandoned call returns; then calls go through again (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if run_on(&B, "read", Duration::from_secs(30), || Ok(())).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the abandoned call never returned"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}
