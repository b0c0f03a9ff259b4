//! [`KeyringStore`]: credentials in the OS keyring, with pyflyte's layout.
//!
//! The layout, the metadata entry and the failure model are documented on [`KeyringStore`].
//! Every call goes through [`bounded::run`], which gives it a helper thread and a time limit.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use flyte_auth_core::{Credentials, SecretString, StoreError, StoreLock, TokenStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{bounded, lockfile, store_key};

const STORE: &str = "keyring";

/// The usernames pyflyte uses, and the one only this crate uses.
const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";
const ID_TOKEN: &str = "id_token";
const METADATA: &str = "flyte_auth_metadata";

/// The attribute Python's keyring puts on Secret Service items, and its value.
const PYTHON_APPLICATION_ATTRIBUTE: (&str, &str) = ("application", "Python keyring library");

/// The service of the probe entries ([`KeyringStore::probe`], [`KeyringStore::probe_writable`]).
const PROBE_SERVICE: &str = "flyte-auth-probe";

/// Credentials in the OS keyring: Secret Service (Linux, BSD), Keychain (macOS), Credential
/// Manager (Windows). Compatible with pyflyte's entries both ways.
///
/// Creating it touches nothing; the keyring is opened (once per process) by the first call.
///
/// # Layout
///
/// One keyring entry per token, exactly as flytekit's `KeyringStore` writes them with Python's
/// `keyring.set_password(endpoint, username, token)`:
///
/// | service | username | secret |
/// | --- | --- | --- |
/// | endpoint (without `dns:///`) | `access_token` | the access token |
/// | endpoint | `refresh_token` | the refresh token, when there is one |
/// | endpoint | `id_token` | the OpenID Connect id token, when there is one |
/// | endpoint | `flyte_auth_metadata` | a small JSON object (below); pyflyte never reads it |
///
/// The metadata entry holds what pyflyte does not store: the absolute expiry, `expires_in`,
/// the client id and the granted scopes, plus the first 16 hex digits of the SHA-256 of the
/// access token they belong to:
///
/// ```json
/// {"version":1,"access_token_sha256":"9f86d081884c7d65","expires_at_unix":1767225600,
///  "expires_in":3600,"client_id":"flytectl","scopes":["all","offline"]}
/// ```
///
/// When pyflyte later replaces the access token, the digest no longer matches and the
/// metadata is ignored (the expiry then comes from the token's JWT `exp` claim, if any), so
/// stale metadata never describes a newer token.
///
/// On the Secret Service, entries carry the attributes `service` and `username` like
/// Python's, and also `application = "Python keyring library"` as Python's do: Python's
/// `set_password` replaces an item only when all of its attributes match, so without it each
/// tool would add a second item beside the other's instead of updating it. When duplicates
/// exist anyway (written by older tools), a read takes the first, as Python does, and the
/// next write removes them all and keeps one item.
///
/// Sharing with pyflyte is tested against the Secret Service. On macOS both libraries write
/// Keychain generic passwords with service = endpoint and account = username. On Windows they
/// name Credential Manager entries differently (Python: target `endpoint` or
/// `username@endpoint`; this store: `username.endpoint`), so entries are not shared there.
///
/// # Bounded, typed failures
///
/// Every call runs on a helper thread and is abandoned after a time limit
/// ([`KeyringStore::DEFAULT_TIMEOUT`]) with [`StoreError::Unavailable`]; while an abandoned
/// call has not returned, later calls fail at once instead of queueing behind it. No D-Bus
/// session, no Secret Service, or a Secret Service with no collection to write to gives
/// [`StoreError::Unavailable`] (a caller can fall back to another store); a locked keyring
/// that refuses access gives [`StoreError::Denied`]; other failures give [`StoreError::Io`].
/// Nothing panics, and no token ever appears in an error or a log line.
///
/// # Cross-process lock
///
/// A keyring has no locks, so [`TokenStore::lock`] locks the same sidecar file as
/// [`FileStore`](crate::FileStore) would (`<endpoint name>-<hash>.lock`, mode `0600`, in
/// `$FLYTE_AUTH_CACHE_DIR` or the user's cache directory `flyte-auth`, or the directory given
/// to [`with_lock_dir`](Self::with_lock_dir)), waiting at most 30 s. That way two processes do
/// not both redeem the same rotating refresh token. Without a known directory (or after
/// [`without_lock`](Self::without_lock)) it offers no lock (`Ok(None)`).
///
/// # Example
///
/// ```no_run
/// use flyte_auth_store::{Credentials, KeyringStore, StoreError, TokenStore};
///
/// let store = KeyringStore::new();
/// match store.retrieve("flyte.example.org:443") {
///     Ok(Some(creds)) => println!("found a token for {}", creds.for_endpoint),
///     Ok(None) => println!("not logged in"),
///     Err(StoreError::Unavailable { message, .. }) => println!("no keyring here: {message}"),
///     Err(e) => println!("{e}"),
/// }
/// ```
#[derive(Clone)]
pub struct KeyringStore {
    timeout: Duration,
    lock_dir: Option<PathBuf>,
    lock_timeout: Duration,
}

impl KeyringStore {
    /// How long one call ([`store`](TokenStore::store), [`retrieve`](TokenStore::retrieve),
    /// [`delete`](TokenStore::delete)) may take before it is abandoned.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A store on the platform's keyring, with [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT),
    /// locking in `$FLYTE_AUTH_CACHE_DIR` or the user's cache directory (only the environment
    /// is read here).
    pub fn new() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            lock_dir: lockfile::store_dir(None),
            lock_timeout: lockfile::DEFAULT_LOCK_TIMEOUT,
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

    /// Checks that the keyring answers, by reading an entry that does not exist.
    ///
    /// Writes nothing and needs no unlocked keyring, so it proves little: a Secret Service
    /// started by D-Bus activation on a machine where no keyring was ever set up answers reads
    /// and refuses every write. [`probe_writable`](Self::probe_writable) tells those apart.
    pub fn probe(&self) -> Result<(), StoreError> {
        bounded::run("probe", self.timeout, || {
            read_secret(PROBE_SERVICE, "probe").map(drop)
        })
    }

    /// Checks that the keyring can keep a secret: reads a missing entry, then writes and
    /// deletes a throw-away entry (service `flyte-auth-probe`, username `probe-<pid>`).
    ///
    /// This is what [`DefaultStore`](crate::DefaultStore) asks before it picks the keyring.
    pub fn probe_writable(&self) -> Result<(), StoreError> {
        bounded::run("probe", self.timeout, || {
            read_secret(PROBE_SERVICE, "probe")?;
            let user = format!("probe-{}", std::process::id());
            entry(PROBE_SERVICE, &user)?
                .set_password("probe")
                .map_err(|e| map_error(e, "write"))?;
            delete_secret(PROBE_SERVICE, &user)
        })
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
            .finish()
    }
}

impl TokenStore for KeyringStore {
    fn store(&self, credentials: &Credentials) -> Result<(), StoreError> {
        let credentials = credentials.clone();
        bounded::run("write", self.timeout, move || write_all(&credentials))
    }

    fn retrieve(&self, endpoint: &str) -> Result<Option<Credentials>, StoreError> {
        let endpoint = endpoint.to_owned();
        bounded::run("read", self.timeout, move || read_all(&endpoint))
    }

    fn delete(&self, endpoint: &str) -> Result<(), StoreError> {
        let service = store_key(endpoint).to_owned();
        bounded::run("delete", self.timeout, move || {
            for user in [ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, METADATA] {
                delete_secret(&service, user)?;
            }
            Ok(())
        })
    }

    fn lock(&self, endpoint: &str) -> Result<Option<StoreLock>, StoreError> {
        match &self.lock_dir {
            Some(dir) => lockfile::lock(STORE, dir, endpoint, self.lock_timeout).map(Some),
            None => Ok(None),
        }
    }

    fn name(&self) -> &'static str {
        STORE
    }
}

/// What the metadata entry holds (see the docs of [`KeyringStore`]).
#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    version: u32,
    access_token_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header_key: Option<String>,
}

const METADATA_VERSION: u32 = 1;

/// The first 16 hex digits of the SHA-256 of `token`: enough to tell tokens apart, useless to
/// recover one.
fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_all(credentials: &Credentials) -> Result<(), StoreError> {
    let service = store_key(&credentials.for_endpoint);
    let tokens = [
        (REFRESH_TOKEN, credentials.refresh_token.as_ref()),
        (ACCESS_TOKEN, Some(&credentials.access_token)),
        (ID_TOKEN, credentials.id_token.as_ref()),
    ];
    // pyflyte's order (refresh, access, id); an absent token removes a stale one, so that the
    // entries always describe one login.
    for (user, token) in tokens {
        match token.filter(|t| !t.is_empty()) {
            Some(token) => write_secret(service, user, token.expose_secret())?,
            None => delete_secret(service, user)?,
        }
    }
    let metadata = Metadata {
        version: METADATA_VERSION,
        access_token_sha256: fingerprint(credentials.access_token.expose_secret()),
        expires_at_unix: credentials.expires_at_unix,
        expires_in: credentials.expires_in,
        client_id: credentials.client_id.clone(),
        scopes: credentials.scopes.clone(),
        header_key: credentials.header_key.clone(),
    };
    let json = serde_json::to_string(&metadata).map_err(|e| StoreError::Io {
        store: STORE,
        operation: "write",
        message: format!("could not encode the token metadata: {e}"),
        source: None,
    })?;
    write_secret(service, METADATA, &json)
}

fn read_all(endpoint: &str) -> Result<Option<Credentials>, StoreError> {
    let service = store_key(endpoint);
    let access_token = read_secret(service, ACCESS_TOKEN)?.filter(|t| !t.is_empty());
    let id_token = read_secret(service, ID_TOKEN)?.filter(|t| !t.is_empty());
    // Like flytekit: nothing unless there is an access or an id token. With an id token only
    // (some identity providers issue nothing else), the id token is the bearer token.
    let Some(bearer) = access_token.or_else(|| id_token.clone()) else {
        return Ok(None);
    };
    let refresh_token = read_secret(service, REFRESH_TOKEN)?.filter(|t| !t.is_empty());

    let mut credentials = Credentials::new(SecretString::from(bearer), endpoint);
    if let Some(refresh_token) = refresh_token {
        credentials = credentials.with_refresh_token(refresh_token);
    }
    if let Some(id_token) = id_token {
        credentials = credentials.with_id_token(id_token);
    }
    if let Some(json) = read_secret(service, METADATA)? {
        apply_metadata(&mut credentials, &json, service);
    }
    Ok(Some(credentials))
}

/// Adds the metadata to `credentials` when it belongs to their access token.
fn apply_metadata(credentials: &mut Credentials, json: &str, service: &str) {
    let metadata: Metadata = match serde_json::from_str(json) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(
                service,
                error = %e,
                "ignoring the keyring's token metadata: it is not valid JSON of the expected shape"
            );
            return;
        }
    };
    if metadata.version != METADATA_VERSION {
        tracing::warn!(
            service,
            version = metadata.version,
            "ignoring the keyring's token metadata: written by another version of flyte-auth"
        );
        return;
    }
    if metadata.access_token_sha256 != fingerprint(credentials.access_token.expose_secret()) {
        tracing::debug!(
            service,
            "the keyring's token metadata describes another access token (pyflyte replaced it); ignoring it"
        );
        return;
    }
    if metadata.expires_at_unix.is_some() {
        credentials.expires_at_unix = metadata.expires_at_unix;
    }
    credentials.expires_in = metadata.expires_in;
    credentials.client_id = metadata.client_id;
    credentials.scopes = metadata.scopes;
    credentials.header_key = metadata.header_key;
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

fn write_secret(service: &str, user: &str, secret: &str) -> Result<(), StoreError> {
    let entry = entry(service, user)?;
    match entry.set_password(secret) {
        Ok(()) => {}
        Err(keyring::Error::Ambiguous(entries)) => {
            // Keep one item: remove them all, then create ours.
            for duplicate in entries {
                match duplicate.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => {}
                    Err(e) => return Err(map_error(e, "write")),
                }
            }
            entry
                .set_password(secret)
                .map_err(|e| map_error(e, "write"))?;
        }
        Err(e) => return Err(map_error(e, "write")),
    }
    mark_as_python_item(&entry, service, user);
    Ok(())
}

/// Gives a Secret Service item the `application` attribute of Python's items (see the docs
/// of [`KeyringStore`]). Elsewhere there are no attributes to set, and failing here loses
/// nothing that matters now, so errors are only logged.
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

fn delete_secret(service: &str, user: &str) -> Result<(), StoreError> {
    match entry(service, user)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(keyring::Error::Ambiguous(entries)) => {
            for duplicate in entries {
                match duplicate.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => {}
                    Err(e) => return Err(map_error(e, "delete")),
                }
            }
            Ok(())
        }
        Err(e) => Err(map_error(e, "delete")),
    }
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
    match &error {
        keyring::Error::NoDefaultStore => StoreError::Unavailable {
            store: STORE,
            message: match initialization_failure() {
                Some(why) => format!("{}: {why}", unavailable_hint()),
                None => unavailable_hint().to_owned(),
            },
        },
        keyring::Error::NotSupportedByStore(_) => StoreError::Unavailable {
            store: STORE,
            message: describe(&error),
        },
        keyring::Error::NoStorageAccess(_) if describe(&error).contains("result not returned") => {
            StoreError::Unavailable {
                store: STORE,
                message: format!(
                    "the Secret Service has no default collection to keep secrets in (no \
                     keyring was ever set up or unlocked in this session): {}",
                    describe(&error)
                ),
            }
        }
        keyring::Error::NoStorageAccess(_) => StoreError::Denied {
            store: STORE,
            message: format!(
                "{}; unlock the keyring (log in to the desktop session, or unlock it with its \
                 password) or use another store",
                describe(&error)
            ),
        },
        keyring::Error::PlatformFailure(_) if is_unreachable(&describe(&error)) => {
            StoreError::Unavailable {
                store: STORE,
                message: format!("{}: {}", unavailable_hint(), describe(&error)),
            }
        }
        _ => {
            let message = describe(&error);
            StoreError::Io {
                store: STORE,
                operation,
                source: Some(Arc::new(SafeError(message.clone()))),
                message,
            }
        }
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
#[derive(Debug)]
struct SafeError(String);

impl fmt::Display for SafeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SafeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_short_stable_and_tell_tokens_apart() {
        // SHA-256("test") = 9f86d081884c7d65...
        assert_eq!(fingerprint("test"), "9f86d081884c7d65");
        assert_ne!(fingerprint("token-a"), fingerprint("token-b"));
    }

    #[test]
    fn metadata_applies_only_to_the_token_it_describes() {
        let json = serde_json::to_string(&Metadata {
            version: METADATA_VERSION,
            access_token_sha256: fingerprint("current"),
            expires_at_unix: Some(2_000_000_000),
            expires_in: Some(3600),
            client_id: Some("flytectl".into()),
            scopes: vec!["all".into()],
            header_key: Some("flyte-authorization".into()),
        })
        .unwrap();

        let mut current = Credentials::new("current", "e");
        apply_metadata(&mut current, &json, "e");
        assert_eq!(current.expires_at_unix, Some(2_000_000_000));
        assert_eq!(current.client_id.as_deref(), Some("flytectl"));
        assert_eq!(current.scopes, ["all"]);
        assert_eq!(current.header_key.as_deref(), Some("flyte-authorization"));

        let mut replaced = Credentials::new("replaced-by-pyflyte", "e");
        apply_metadata(&mut replaced, &json, "e");
        assert_eq!(replaced.expires_at_unix, None);
        assert_eq!(replaced.client_id, None);
    }

    #[test]
    fn broken_or_foreign_metadata_is_ignored() {
        for json in [
            "not json",
            "{}",
            r#"{"version":2,"access_token_sha256":"9f86d081884c7d65","client_id":"x"}"#,
        ] {
            let mut creds = Credentials::new("test", "e");
            apply_metadata(&mut creds, json, "e");
            assert_eq!(creds.client_id, None, "{json}");
        }
    }

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
