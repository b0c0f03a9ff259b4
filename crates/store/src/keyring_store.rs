//! [`KeyringStore`]: credentials in the OS keyring, in the layouts of every Flyte tool.
//!
//! The layouts, the metadata entry and the coherence rule are described in the crate's README;
//! the formats and the choice of the newest copy are in `layouts.rs`.
//! Every call goes through [`bounded::run`], which gives it a helper thread and a time limit.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use flyte_auth_core::{
    Credentials, Endpoint, SecretString, StoreError, StoreLock, TokenStore, unix_now,
};

use crate::{
    bounded, disk,
    keyring_cfg::KeyringCfg,
    layouts::{
        self, ACCESS_TOKEN, FLYTE2_TOKENS, FLYTECTL_SERVICE, ID_TOKEN, Layout, LoginCopy, METADATA,
        Metadata, Names, REFRESH_TOKEN, RawEntries, choose,
    },
};

const STORE: &str = "keyring";

/// The attribute Python's keyring puts on Secret Service items, and its value.
const PYTHON_APPLICATION_ATTRIBUTE: (&str, &str) = ("application", "Python keyring library");

/// The service of the probe entries ([`KeyringStore::probe`], [`KeyringStore::probe_writable`]).
const PROBE_SERVICE: &str = "flyte-auth-probe";

/// Credentials in the OS keyring (Secret Service, Keychain, Credential Manager), in the
/// entries of every Flyte tool, so that a login by any of them serves the others. The
/// crate's README has the layouts and the rule that keeps the copies coherent.
///
/// Creating it touches nothing. Every call is bounded by [`KeyringStore::DEFAULT_TIMEOUT`];
/// no keyring is [`StoreError::Unavailable`], a locked one [`StoreError::Denied`].
///
/// ```no_run
/// use flyte_auth_store::{Endpoint, KeyringStore, StoreError, TokenStore};
///
/// let store = KeyringStore::new();
/// match store.retrieve(&Endpoint::parse("dns:///flyte.example.org")?) {
///     Ok(found) => println!("logged in: {}", found.is_some()),
///     Err(StoreError::Unavailable { message, .. }) => println!("no keyring here: {message}"),
///     Err(e) => println!("{e}"),
/// }
/// # Ok::<(), flyte_auth_store::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyringStore {
    timeout: Duration,
    lock_dir: Option<PathBuf>,
    lock_timeout: Duration,
    all_layouts: bool,
    /// The Flyte 2 SDK's keyring file (`~/.flyte/keyring.cfg`), read as one more layout.
    keyring_cfg: Option<KeyringCfg>,
    /// Shared by clones: what was found per endpoint.
    shared: Arc<Mutex<Shared>>,
}

/// What clones of one store share.
#[derive(Debug, Default)]
struct Shared {
    /// By the endpoint as written (the names of its entries).
    seen: HashMap<String, Seen>,
    /// Entry writes allowed before the next one fails (`KeyringStore::fail_writes_after`,
    /// feature `test-hooks`); `None` otherwise.
    writes_left: Option<usize>,
}

/// What the last read or delete of an endpoint found.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// The layouts that held a login.
    layouts: BTreeSet<Layout>,
    /// The refresh tokens (fingerprints) the copies held, and those already retired.
    refresh_tokens: Vec<String>,
}

impl KeyringStore {
    /// How long one keyring call may take before it is abandoned.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A store on the platform's keyring, locking in `$FLYTE_AUTH_CACHE_DIR` or the user's
    /// cache directory.
    pub fn new() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            lock_dir: disk::store_dir(None),
            lock_timeout: disk::DEFAULT_LOCK_TIMEOUT,
            all_layouts: false,
            keyring_cfg: KeyringCfg::default_path().map(KeyringCfg::new),
            shared: Arc::default(),
        }
    }

    /// The Flyte 2 SDK's plaintext keyring file to read as one more layout (`None`: none); by
    /// default `.flyte/keyring.cfg` in `$HOME`. A new login is written back to it only when it
    /// held one (see the crate's README).
    #[must_use]
    pub fn with_keyring_cfg(mut self, path: Option<PathBuf>) -> Self {
        self.keyring_cfg = path.map(KeyringCfg::new);
        self
    }

    /// The Flyte 2 SDK's keyring file this store reads, if any.
    pub fn keyring_cfg(&self) -> Option<&Path> {
        self.cfg_file().map(KeyringCfg::path)
    }

    pub(crate) fn cfg_file(&self) -> Option<&KeyringCfg> {
        self.keyring_cfg.as_ref()
    }

    /// Writes every layout on each [`store`](TokenStore::store), not only those that held a
    /// login: one login then serves every Flyte tool. Off by default.
    #[must_use]
    pub fn write_all_layouts(mut self, all: bool) -> Self {
        self.all_layouts = all;
        self
    }

    /// For tests of crash safety (feature `test-hooks`): after `entries` more entry writes,
    /// every write fails with [`StoreError::Io`], as if the process had died there. The
    /// entries written so far stay.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn fail_writes_after(self, entries: usize) -> Self {
        self.shared().writes_left = Some(entries);
        self
    }

    /// Counts one entry write against `fail_writes_after`.
    fn may_write(&self) -> Result<(), StoreError> {
        let mut shared = self.shared();
        match shared.writes_left.as_mut() {
            Some(0) => Err(disk::failed(
                STORE,
                "write",
                "injected failure between two keyring writes".to_owned(),
            )),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Keeps the lock files in `dir` (created `0700` on first use).
    #[must_use]
    pub fn with_lock_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lock_dir = Some(dir.into());
        self
    }

    /// Offers no cross-process lock.
    #[must_use]
    pub fn without_lock(mut self) -> Self {
        self.lock_dir = None;
        self
    }

    /// Sets how long [`TokenStore::lock`] waits for another holder before it fails.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Where the lock files are, if this store locks.
    pub fn lock_dir(&self) -> Option<&Path> {
        self.lock_dir.as_deref()
    }

    /// Sets how long one call may take before it fails with [`StoreError::Unavailable`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time limit of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks that the keyring answers, by reading an entry that does not exist. Proves little
    /// (a Secret Service with no keyring set up answers reads and refuses every write):
    /// [`probe_writable`](Self::probe_writable) tells those apart.
    pub fn probe(&self) -> Result<(), StoreError> {
        bounded::run("probe", self.timeout, || {
            read_secret(PROBE_SERVICE, "probe").map(drop)
        })
    }

    /// Checks that the keyring can keep a secret: reads a missing entry, then writes and
    /// deletes a throw-away one (service `flyte-auth-probe`), as [`DefaultStore`](crate::DefaultStore) asks.
    pub fn probe_writable(&self) -> Result<(), StoreError> {
        bounded::run("probe", self.timeout, || {
            read_secret(PROBE_SERVICE, "probe")?;
            // One entry per call: parallel probes in one process must not delete each other's.
            static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let user = format!("probe-{}-{n}", std::process::id());
            entry(PROBE_SERVICE, &user)?
                .set_password("probe")
                .map_err(|e| map_error(e, "write"))?;
            delete_secret(PROBE_SERVICE, &user).map(drop)
        })
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, endpoint: &Endpoint, seen: Seen) {
        self.shared()
            .seen
            .insert(endpoint.as_written().to_owned(), seen);
    }

    fn seen(&self, endpoint: &Endpoint) -> Option<Seen> {
        self.shared().seen.get(endpoint.as_written()).cloned()
    }
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("timeout", &self.timeout)
            .field("lock_dir", &self.lock_dir)
            .field("lock_timeout", &self.lock_timeout)
            .field("all_layouts", &self.all_layouts)
            .field("keyring_cfg", &self.keyring_cfg())
            .finish()
    }
}

impl TokenStore for KeyringStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        let (endpoint, credentials) = (endpoint.clone(), credentials.clone());
        let this = self.clone();
        bounded::run("write", self.timeout, move || {
            this.write(&endpoint, &credentials)
        })
    }

    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        let (endpoint, this) = (endpoint.clone(), self.clone());
        bounded::run("read", self.timeout, move || {
            let (copies, metadata) = this.read(&endpoint)?;
            let now = unix_now();
            Ok(choose(&copies, metadata.as_ref(), endpoint.key(), now))
        })
    }

    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let (endpoint, this) = (endpoint.clone(), self.clone());
        bounded::run("delete", self.timeout, move || this.remove(&endpoint))
    }

    fn lock(&self, endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        match &self.lock_dir {
            Some(dir) => disk::lock(STORE, dir, endpoint.key(), self.lock_timeout).map(Some),
            None => Ok(None),
        }
    }

    fn name(&self) -> &'static str {
        STORE
    }

    /// The lock directory: the keyring holds the tokens, the lock files and the discovery
    /// hints are there.
    fn directory(&self) -> Option<PathBuf> {
        self.lock_dir.clone()
    }
}

impl KeyringStore {
    /// Reads every layout's copy for `endpoint` (each entry once) and the metadata, and
    /// remembers which layouts held a login.
    fn read(&self, endpoint: &Endpoint) -> Result<(Vec<LoginCopy>, Option<Metadata>), StoreError> {
        let names = Names::new(endpoint.as_written());
        let service = names.flytekit.as_str();
        let go = |user| {
            names
                .go
                .as_deref()
                .map_or(Ok(None), |go| read_secret(go, user))
        };
        let entries = RawEntries {
            access_token: read_secret(service, ACCESS_TOKEN)?,
            id_token: read_secret(service, ID_TOKEN)?,
            refresh_token: read_secret(service, REFRESH_TOKEN)?,
            metadata: read_secret(service, METADATA)?,
            flyte2: read_secret(&names.flyte2, FLYTE2_TOKENS)?,
            go_access_token: go(ACCESS_TOKEN)?,
            go_refresh_token: go(REFRESH_TOKEN)?,
            flytectl: read_secret(FLYTECTL_SERVICE, &names.flytectl_user)?,
            flyte2_file: None,
        };
        let metadata = entries
            .metadata
            .as_deref()
            .and_then(|m| Metadata::parse(m, service));
        let mut copies = layouts::copies(&entries);
        if let Some(cfg) = &self.keyring_cfg {
            copies.extend(cfg.read(&names.flyte2).copy);
        }
        self.remember(
            endpoint,
            Seen {
                layouts: copies.iter().map(|c| c.layout).collect(),
                refresh_tokens: layouts::previous_refresh_tokens(&copies, metadata.as_ref()),
            },
        );
        Ok((copies, metadata))
    }

    /// Writes `credentials` to this store's layout and every other layout that held a login
    /// (or all of them), in the crash-safe order of the README.
    fn write(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        if self.seen(endpoint).is_none() {
            self.read(endpoint)?;
        }
        let seen = self.seen(endpoint).unwrap_or_default();
        let names = Names::new(endpoint.as_written());
        let service = names.flytekit.as_str();
        let access = Some(credentials.access_token.expose_secret());
        let refresh = exposed(&credentials.refresh_token);
        // flytekit's order (refresh, access, id); an absent token removes a stale one, so that
        // the entries always describe one login.
        self.put(service, REFRESH_TOKEN, refresh, true)?;
        self.put(service, ACCESS_TOKEN, access, true)?;
        self.put(service, ID_TOKEN, exposed(&credentials.id_token), true)?;
        let metadata = Metadata::of(credentials, unix_now(), &seen.refresh_tokens);
        let json = serde_json::to_string(&metadata).map_err(|e| {
            disk::failed(
                STORE,
                "write",
                format!("could not encode the token metadata: {e}"),
            )
        })?;
        self.put(service, METADATA, Some(&json), true)?;

        let wanted = |layout| self.all_layouts || seen.layouts.contains(&layout);
        let has_access = !credentials.access_token.is_empty();
        let mut written = BTreeSet::from([Layout::Flytekit]);
        if wanted(Layout::Flyte2) {
            let json = layouts::format_flyte2(credentials);
            self.put(&names.flyte2, FLYTE2_TOKENS, Some(&json), true)?;
            written.insert(Layout::Flyte2);
        }
        if wanted(Layout::Flytectl) && has_access {
            let json = layouts::format_flytectl(credentials);
            self.put(FLYTECTL_SERVICE, &names.flytectl_user, Some(&json), false)?;
            written.insert(Layout::Flytectl);
        }
        if let Some(go) = names.go.as_deref()
            && wanted(Layout::FlyteSdkGo)
            && has_access
        {
            // Go's items carry `service` and `username` only, as zalando/go-keyring writes
            // them; the refresh token first, as above.
            self.put(go, REFRESH_TOKEN, refresh, false)?;
            self.put(go, ACCESS_TOKEN, access, false)?;
            written.insert(Layout::FlyteSdkGo);
        }
        // Only where it held the login: the SDK reads it only in notebooks without a keyring.
        if let Some(cfg) = &self.keyring_cfg
            && seen.layouts.contains(&Layout::Flyte2File)
        {
            self.may_write()?;
            cfg.write(&names.flyte2, credentials)?;
            written.insert(Layout::Flyte2File);
        }
        let mut refresh_tokens = metadata.retired_refresh_sha256;
        refresh_tokens.extend(metadata.refresh_token_sha256);
        self.remember(
            endpoint,
            Seen {
                layouts: written,
                refresh_tokens,
            },
        );
        Ok(())
    }

    /// Writes `secret` to one entry, or removes the entry when there is none (or it is empty);
    /// `python_item` as in [`write_secret`].
    fn put(
        &self,
        service: &str,
        user: &str,
        secret: Option<&str>,
        python_item: bool,
    ) -> Result<(), StoreError> {
        match secret.filter(|s| !s.is_empty()) {
            Some(secret) => {
                self.may_write()?;
                write_secret(service, user, secret, python_item)
            }
            None => delete_secret(service, user).map(drop),
        }
    }

    /// Deletes every layout's entries for `endpoint`, and remembers which held a login (a new
    /// login stored by this process goes to them again).
    fn remove(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let names = Names::new(endpoint.as_written());
        let service = names.flytekit.as_str();
        let mut layouts = BTreeSet::new();
        for user in [ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, METADATA] {
            if delete_secret(service, user)? && user != METADATA {
                layouts.insert(Layout::Flytekit);
            }
        }
        if delete_secret(&names.flyte2, FLYTE2_TOKENS)? {
            layouts.insert(Layout::Flyte2);
        }
        if delete_secret(FLYTECTL_SERVICE, &names.flytectl_user)? {
            layouts.insert(Layout::Flytectl);
        }
        if let Some(go) = &names.go {
            let access = delete_secret(go, ACCESS_TOKEN)?;
            if delete_secret(go, REFRESH_TOKEN)? || access {
                layouts.insert(Layout::FlyteSdkGo);
            }
        }
        if let Some(cfg) = &self.keyring_cfg {
            match cfg.delete(&names.flyte2) {
                Ok(true) => {
                    layouts.insert(Layout::Flyte2File);
                }
                Ok(false) => {}
                // A file that cannot be read holds no login this store could have used.
                Err(e) => {
                    tracing::warn!(error = %e, "could not remove the login from the Flyte 2 SDK's keyring file")
                }
            }
        }
        self.remember(
            endpoint,
            Seen {
                layouts,
                refresh_tokens: Vec::new(),
            },
        );
        Ok(())
    }
}

fn exposed(token: &Option<SecretString>) -> Option<&str> {
    token.as_ref().map(SecretString::expose_secret)
}

/// An entry handle; fails when no keyring could be opened in this process.
fn entry(service: &str, user: &str) -> Result<keyring::Entry, StoreError> {
    keyring::Entry::new(service, user).map_err(|e| map_error(e, "open"))
}

fn read_secret(service: &str, user: &str) -> Result<Option<String>, StoreError> {
    match entry(service, user)?.get_password() {
        Ok(secret) => Ok(Some(secret)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(keyring::Error::Ambiguous(entries)) => {
            // Several items match (two tools created one each). Read the first that reads,
            // as Python's keyring does.
            tracing::warn!(
                service,
                username = user,
                count = entries.len(),
                "several keyring items match; using the first (the next write keeps only one)"
            );
            for entry in entries {
                match entry.get_password() {
                    Ok(secret) => return Ok(Some(secret)),
                    Err(e) => check_readable(e, service, user)?,
                }
            }
            Ok(None)
        }
        Err(e) => {
            check_readable(e, service, user)?;
            Ok(None)
        }
    }
}

/// A value that is not text is a warning and no value; any other error is returned.
fn check_readable(error: keyring::Error, service: &str, user: &str) -> Result<(), StoreError> {
    match error {
        keyring::Error::NoEntry => Ok(()),
        keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => {
            tracing::warn!(
                service,
                username = user,
                "ignoring a keyring entry whose value is not text"
            );
            Ok(())
        }
        e => Err(map_error(e, "read")),
    }
}

/// Writes one entry; `python_item` gives it the attribute Python's keyring adds.
fn write_secret(
    service: &str,
    user: &str,
    secret: &str,
    python_item: bool,
) -> Result<(), StoreError> {
    let entry = entry(service, user)?;
    match entry.set_password(secret) {
        Ok(()) => {}
        Err(keyring::Error::Ambiguous(entries)) => {
            // Keep one item: remove them all, then create ours.
            delete_all(entries.iter().map(|e| e.delete_credential()), "write")?;
            entry
                .set_password(secret)
                .map_err(|e| map_error(e, "write"))?;
        }
        Err(e) => return Err(map_error(e, "write")),
    }
    if python_item {
        mark_as_python_item(&entry, service, user);
    }
    Ok(())
}

/// Gives a Secret Service item the `application` attribute of Python's items (elsewhere there
/// are none); a failure is only logged.
fn mark_as_python_item(entry: &keyring::Entry, service: &str, user: &str) {
    if !cfg!(all(
        unix,
        not(any(
            target_os = "macos",
            target_os = "ios",
            target_os = "android"
        ))
    )) {
        return;
    }
    let (key, value) = PYTHON_APPLICATION_ATTRIBUTE;
    let wanted = HashMap::from([(key, value)]);
    match entry.inner.get_attributes() {
        Ok(current) if current.get(key).map(String::as_str) == Some(value) => {}
        _ => {
            if let Err(e) = entry.inner.update_attributes(&wanted) {
                tracing::debug!(service, username = user, error = %describe(&e), "could not set the item's application attribute");
            }
        }
    }
}

/// Deletes one entry; says whether there was one.
fn delete_secret(service: &str, user: &str) -> Result<bool, StoreError> {
    match entry(service, user)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(keyring::Error::Ambiguous(entries)) => {
            delete_all(entries.iter().map(|e| e.delete_credential()), "delete").map(|()| true)
        }
        Err(e) => Err(map_error(e, "delete")),
    }
}

/// Runs the deletions of several items that match one entry; a missing one is no error.
fn delete_all(
    deletions: impl IntoIterator<Item = keyring::Result<()>>,
    operation: &'static str,
) -> Result<(), StoreError> {
    for deletion in deletions {
        match deletion {
            Ok(()) | Err(keyring::Error::NoEntry) => {}
            Err(e) => return Err(map_error(e, operation)),
        }
    }
    Ok(())
}

/// A description of a keyring error that never includes secret bytes.
fn describe(error: &keyring::Error) -> String {
    match error {
        // Their `Debug` would show the raw value; their `Display` does not, but say it plainly.
        keyring::Error::BadEncoding(_) => "the stored value is not UTF-8 text".to_owned(),
        keyring::Error::BadDataFormat(..) => "the stored value is malformed".to_owned(),
        keyring::Error::Ambiguous(entries) => {
            format!("{} keyring items match the entry", entries.len())
        }
        other => other.to_string(),
    }
}

/// The failure of the process-wide keyring initialization, when it failed.
fn initialization_failure() -> Option<String> {
    keyring::Entry::store_status().as_ref().err().map(describe)
}

fn unavailable_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "the macOS keychain could not be opened"
    } else if cfg!(windows) {
        "the Windows Credential Manager could not be opened"
    } else {
        "no Secret Service answers on the D-Bus session bus (headless machine, ssh session \
         without DBUS_SESSION_BUS_ADDRESS, no gnome-keyring/KWallet running); use the file \
         store (`--store file`) there"
    }
}

/// Maps a keyring error to the store error a caller can act on.
fn map_error(error: keyring::Error, operation: &'static str) -> StoreError {
    let why = describe(&error);
    let unavailable = |message| StoreError::Unavailable {
        store: STORE,
        message,
    };
    match &error {
        keyring::Error::NoDefaultStore => unavailable(match initialization_failure() {
            Some(why) => format!("{}: {why}", unavailable_hint()),
            None => unavailable_hint().to_owned(),
        }),
        keyring::Error::NotSupportedByStore(_) => unavailable(why),
        keyring::Error::NoStorageAccess(_) if why.contains("result not returned") => {
            unavailable(format!(
                "the Secret Service has no default collection to keep secrets in (no keyring \
                 was ever set up or unlocked in this session): {why}"
            ))
        }
        keyring::Error::NoStorageAccess(_) => StoreError::Denied {
            store: STORE,
            message: format!(
                "{why}; unlock the keyring (log in to the desktop session, or unlock it with its \
                 password) or use another store"
            ),
        },
        keyring::Error::PlatformFailure(_) if is_unreachable(&why) => {
            unavailable(format!("{}: {why}", unavailable_hint()))
        }
        _ => StoreError::Io {
            store: STORE,
            operation,
            source: Some(Arc::new(SafeError(why.clone()))),
            message: why,
        },
    }
}

/// Whether a platform failure means that no keyring service is there to answer.
fn is_unreachable(description: &str) -> bool {
    [
        "ServiceUnknown",
        "NameHasNoOwner",
        "No such file or directory",
        "Connection refused",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.NoServer",
        "org.freedesktop.DBus.Error.Spawn",
        "no secret service provider",
    ]
    .iter()
    .any(|needle| description.contains(needle))
}

/// A keyring error reduced to its (secret-free) description, for `StoreError`'s source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SafeError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_what_a_caller_acts_on() {
        let denied = map_error(keyring::Error::NoStorageAccess("Locked".into()), "read");
        assert!(matches!(denied, StoreError::Denied { .. }), "{denied:?}");
        let gone = map_error(
            keyring::Error::PlatformFailure(
                "org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable".into(),
            ),
            "read",
        );
        assert!(matches!(gone, StoreError::Unavailable { .. }), "{gone:?}");
        let other = map_error(keyring::Error::TooLong("service".into(), 10), "write");
        assert!(
            matches!(
                other,
                StoreError::Io {
                    operation: "write",
                    ..
                }
            ),
            "{other:?}"
        );
    }

    #[test]
    fn errors_about_stored_values_never_show_them() {
        let e = map_error(
            keyring::Error::BadEncoding(b"secret-bytes\xff".to_vec()),
            "read",
        );
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("115, 101, 99"), "{shown}");
    }
}
