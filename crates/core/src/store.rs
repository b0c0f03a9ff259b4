//! [`TokenStore`]: where credentials persist, and [`MemoryStore`].

use std::{
    collections::HashMap,
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use crate::{Credentials, Endpoint, StoreError};

/// Persists [`Credentials`] by endpoint: flytekit's `KeyringStore` interface.
///
/// Files tokens under [`Endpoint::key`] (other tools' entries by [`Endpoint::as_written`]).
/// Calls are blocking, never on the per-request hot path. A store several processes share
/// should offer a [`lock`](TokenStore::lock) per endpoint, so that two CLIs started at once do
/// not both redeem the same rotating refresh token.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// Saves `credentials` as the login of `endpoint`, replacing what was there. The store
    /// files them under `endpoint`; their [`for_endpoint`](Credentials::for_endpoint) is not
    /// consulted.
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError>;

    /// The credentials stored for `endpoint`, if any, with
    /// [`for_endpoint`](Credentials::for_endpoint) set to its [`key`](Endpoint::key).
    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError>;

    /// Removes what is stored for `endpoint`; removing nothing is not an error.
    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError>;

    /// Takes a cross-process lock for `endpoint`, held until the returned guard is dropped.
    ///
    /// `Ok(None)` means the store has no such lock (the default). Implementations must not
    /// wait forever: give up after a bounded time with an error, and the cache goes on unlocked.
    fn lock(&self, endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        let _ = endpoint;
        Ok(None)
    }

    /// A short name for logs and status output (`keyring`, `file`, `memory`).
    fn name(&self) -> &'static str;

    /// The directory this store keeps its files in, if any: where other things remembered
    /// about an endpoint ([`DiscoveryHints`](crate::DiscoveryHints)) go. Touches nothing.
    fn directory(&self) -> Option<PathBuf> {
        None
    }
}

impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        (**self).store(endpoint, credentials)
    }
    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        (**self).retrieve(endpoint)
    }
    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        (**self).delete(endpoint)
    }
    fn lock(&self, endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        (**self).lock(endpoint)
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn directory(&self) -> Option<PathBuf> {
        (**self).directory()
    }
}

/// A held cross-process lock; dropping it releases the lock.
pub struct StoreLock {
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// Wraps whatever releases the lock when dropped (a locked file, a mutex guard).
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Keeps credentials in this process only: for tests, and for tools that must not persist.
///
/// It can also be told to fail its next calls, to test how callers cope with a broken store.
///
/// ```
/// use flyte_auth_core::{Credentials, Endpoint, MemoryStore, TokenStore};
/// let store = MemoryStore::new();
/// let endpoint = Endpoint::parse("dns:///flyte.example.org")?;
/// store.store(&endpoint, &Credentials::new("t", endpoint.key()))?;
/// // Any spelling of the server finds the login.
/// let same = Endpoint::parse("https://flyte.example.org:443")?;
/// assert!(store.retrieve(&same)?.is_some());
/// store.delete(&endpoint)?;
/// assert!(store.retrieve(&endpoint)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Credentials>>,
    fail_next: Mutex<Vec<StoreError>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call (of any kind) fail with `error`; queued errors are used in order.
    pub fn fail_next(&self, error: StoreError) {
        self.lock_failures().push(error);
    }

    /// How many entries are stored.
    pub fn len(&self) -> usize {
        self.lock_entries().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn injected(&self) -> Result<(), StoreError> {
        let mut failures = self.lock_failures();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.remove(0))
        }
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Credentials>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, Vec<StoreError>> {
        self.fail_next.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TokenStore for MemoryStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        self.injected()?;
        let mut credentials = credentials.clone();
        endpoint.key().clone_into(&mut credentials.for_endpoint);
        self.lock_entries()
            .insert(endpoint.key().to_owned(), credentials);
        Ok(())
    }

    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        self.injected()?;
        Ok(self.lock_entries().get(endpoint.key()).cloned())
    }

    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.injected()?;
        self.lock_entries().remove(endpoint.key());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
