//! [`FileStore`]: one JSON file per endpoint, for machines without a keyring.
//!
//! Design, in short (the details are on [`FileStore`], where users of the crate see them):
//! writes replace the file atomically (temporary file in the same directory, `fsync`,
//! `rename`), so readers never see half a file and need no lock; reads and writes take no lock
//! at all, so they work while this process holds the endpoint's lock (a second `flock` on
//! another handle of the same file would block even within one process); only
//! [`TokenStore::lock`] locks, on a sidecar file, for the cache's "re-read, refresh, write".

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use flyte_auth_core::{Credentials, Endpoint, StoreError, StoreLock, TokenStore};
use serde::{Deserialize, Serialize};

use crate::disk;

const STORE: &str = "file";

/// The file format version this crate writes and reads.
const FORMAT_VERSION: u32 = 1;

/// A token file larger than this is not read (it cannot be ours).
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Credentials in one `0600` JSON file per endpoint, replaced atomically, with a
/// cross-process lock per endpoint.
///
/// # Where
///
/// The directory is, in order: the one given to [`FileStore::open`] / [`FileStore::in_dir`],
/// else `$FLYTE_AUTH_CACHE_DIR`, else `flyte-auth` under the user's cache directory
/// (`~/.cache/flyte-auth` on Linux, `~/Library/Caches/flyte-auth` on macOS,
/// `%LOCALAPPDATA%\flyte-auth` on Windows). It is created on the first write, with mode
/// `0700` on Unix.
///
/// Each endpoint has a file `<name>-<hash>.json`: `<name>` is the endpoint's key
/// ([`Endpoint::key`], so every spelling of a server shares the file) with every
/// character other than `A-Z a-z 0-9 . _ -` replaced by `_` (at most 64 of them), `<hash>`
/// the first 16 hex digits of the SHA-256 of the key, so that `host:443`, `host_443` and
/// `host/443` get distinct files and no endpoint can name a path outside the directory.
///
/// # Format
///
/// ```json
/// {"version":1,"credentials":{"access_token":"…","refresh_token":"…","for_endpoint":"flyte.example.org:443",
///  "expires_in":3600,"expires_at_unix":1767225600,"client_id":"flytectl","scopes":["all"]}}
/// ```
///
/// `credentials` is `flyte_auth_core::Credentials` as serde writes it. A file that cannot be
/// read, is not of this shape, has another `version`, or names another endpoint is treated as
/// "no credentials" with a warning; the next write replaces it.
///
/// # Atomic writes and locking
///
/// A write goes to a temporary file in the same directory, created with mode `0600` (never
/// widened, never `chmod`-ed afterwards), is flushed to disk (`fsync`), then renamed over the
/// token file. A rename within a directory is atomic, so a reader opens either the old file
/// or the new one, never a half-written one. Reads and writes take no lock at all: that is
/// what makes them safe to call while this process holds the endpoint's lock.
///
/// [`TokenStore::lock`] is the cross-process lock the credential cache takes around "re-read,
/// refresh if still stale, write": an exclusive advisory lock (`flock` on Unix, `LockFileEx` on
/// Windows, through `std::fs::File::lock`) on a sidecar file `<name>-<hash>.lock` next to the
/// token file. It is held by an open file handle, so it also excludes other threads of this
/// process that call `lock` for the same endpoint, and it is released when the returned guard
/// is dropped or the process dies. Waiting is bounded ([`FileStore::DEFAULT_LOCK_TIMEOUT`]),
/// then [`StoreError::Io`] with `operation: "lock"`. Lock files are never deleted (deleting a
/// lock file lets two processes lock two different files).
///
/// Advisory locks may not work on some network file systems; the atomic rename still keeps
/// every file whole there.
///
/// # Nothing on disk is used against the user
///
/// On Unix, a directory that belongs to another user (root's included, unless the program
/// runs as root), or that group or others may write to, is refused by `store`, `retrieve` and
/// `lock` with [`StoreError::Denied`] naming it and why; `delete` still removes the file (an
/// unlink harms nobody). Every file found by name (token, lock) is opened without following a
/// symbolic link and without blocking (a FIFO cannot stall a read), and the opened handle
/// must be a regular file of the same user: a link or another user's file at the token path
/// is refused by `retrieve` ([`StoreError::Denied`]; its target is never read), and at the
/// lock path by `lock` (its target is never created); a FIFO, socket or directory at the
/// token path is no credentials with a warning, and the next write replaces it. A write
/// replaces whatever is at the token path (a link is replaced, not followed).
///
/// A process killed in the middle of a write leaves its temporary file
/// (`.<name>-<hash>.json.<pid>.<n>.tmp`) behind; the next write or lock of that endpoint
/// removes the endpoint's temporary files that are more than a minute old (younger ones may
/// be another process's write in progress).
///
/// # Example
///
/// ```
/// use flyte_auth_store::{Credentials, Endpoint, FileStore, TokenStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = FileStore::in_dir(dir.path());
/// let endpoint = Endpoint::parse("dns:///flyte.example.org:443")?;
/// let login = Credentials::new("token", endpoint.key()).with_client_id("flytectl");
/// store.store(&endpoint, &login)?;
///
/// {
///     // What the credential cache does around a refresh:
///     let _guard = store.lock(&endpoint)?;
///     let current = store.retrieve(&endpoint)?.expect("stored above");
///     assert_eq!(current.client_id.as_deref(), Some("flytectl"));
///     store.store(&endpoint, &Credentials::new("new token", endpoint.key()))?;
/// } // unlocked here
///
/// store.delete(&endpoint)?;
/// assert!(store.retrieve(&endpoint)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl FileStore {
    /// The environment variable that overrides the default directory.
    pub const ENV_CACHE_DIR: &'static str = disk::ENV_CACHE_DIR;

    /// How long [`TokenStore::lock`] waits for another holder before it gives up.
    pub const DEFAULT_LOCK_TIMEOUT: Duration = disk::DEFAULT_LOCK_TIMEOUT;

    /// A store in `$FLYTE_AUTH_CACHE_DIR`, else in `flyte-auth` under the user's cache
    /// directory.
    ///
    /// Fails with [`StoreError::Unavailable`] when neither is known (no home directory).
    pub fn new() -> Result<Self, StoreError> {
        Self::open(None)
    }

    /// A store in `dir` when given, else as [`FileStore::new`].
    pub fn open(dir: Option<PathBuf>) -> Result<Self, StoreError> {
        disk::store_dir(dir)
            .map(Self::in_dir)
            .ok_or_else(|| StoreError::Unavailable {
                store: STORE,
                message: format!(
                    "no cache directory is known for this user; set {} or pass a directory",
                    Self::ENV_CACHE_DIR
                ),
            })
    }

    /// A store in exactly `dir` (created on the first write).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock_timeout: Self::DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Sets how long [`TokenStore::lock`] waits before it fails.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token file of `endpoint` (named by its [`key`](Endpoint::key)).
    pub fn path_for(&self, endpoint: &Endpoint) -> PathBuf {
        self.dir
            .join(format!("{}.json", disk::file_stem(endpoint.key())))
    }

    /// The sidecar lock file of `endpoint`.
    pub fn lock_path_for(&self, endpoint: &Endpoint) -> PathBuf {
        disk::lock_path(&self.dir, endpoint.key())
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> Result<(), StoreError> {
        disk::write_private_file(STORE, &self.dir, path, contents)
    }
}

fn io_error(operation: &'static str, what: &str, path: &Path, e: io::Error) -> StoreError {
    disk::io_error(STORE, operation, what, path, e)
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    credentials: &'a Credentials,
}

/// The first look at a file: its version only (serde skips the rest).
#[derive(Deserialize)]
struct FileVersion {
    version: u32,
}

#[derive(Deserialize)]
struct FileV1 {
    credentials: Credentials,
}

/// Reads and checks a token file: `None` (with a warning) when it is not usable; an error
/// (and a warning) when a symbolic link or another user's file is at its place
/// ([`disk::open_found`]: never followed, never read).
fn read_file(path: &Path, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
    let bytes = match disk::read_limited(path, MAX_FILE_SIZE) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        // Something nobody but the user should have put there: refused, not skipped.
        Err(why @ (disk::Unusable::Link | disk::Unusable::Owner { .. })) => {
            tracing::warn!(path = %path.display(), reason = %why, "refusing the token file");
            return Err(disk::refused(STORE, "the token file", path, &why));
        }
        Err(why) => {
            tracing::warn!(path = %path.display(), reason = %why, "could not read the token file; continuing without stored credentials");
            return Ok(None);
        }
    };
    // Never log the contents, nor serde's messages about them: they may quote a token.
    let version = match serde_json::from_slice::<FileVersion>(&bytes) {
        Ok(v) => v.version,
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                line = e.line(),
                column = e.column(),
                "the token file is not valid JSON of the expected shape; ignoring it"
            );
            return Ok(None);
        }
    };
    if version != FORMAT_VERSION {
        tracing::warn!(
            path = %path.display(),
            version,
            "the token file has a format version this program does not know; ignoring it"
        );
        return Ok(None);
    }
    let mut credentials = match serde_json::from_slice::<FileV1>(&bytes) {
        Ok(v1) => v1.credentials,
        Err(_) => {
            tracing::warn!(
                path = %path.display(),
                "the token file's credentials are incomplete or malformed; ignoring them"
            );
            return Ok(None);
        }
    };
    if !is_for(&credentials.for_endpoint, endpoint) {
        tracing::warn!(
            path = %path.display(),
            endpoint = %endpoint,
            found = %credentials.for_endpoint,
            "the token file belongs to another endpoint; ignoring it"
        );
        return Ok(None);
    }
    endpoint.key().clone_into(&mut credentials.for_endpoint);
    Ok(Some(credentials))
}

/// Whether a file's `for_endpoint` names `endpoint`: its key, or another spelling of it (files
/// written by earlier versions).
fn is_for(found: &str, endpoint: &Endpoint) -> bool {
    found == endpoint.key()
        || Endpoint::parse(found)
            .is_ok_and(|f| f.with_insecure(endpoint.is_insecure()).key() == endpoint.key())
}

impl TokenStore for FileStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        let mut credentials = credentials.clone();
        endpoint.key().clone_into(&mut credentials.for_endpoint);
        let json = serde_json::to_vec(&FileOut {
            version: FORMAT_VERSION,
            credentials: &credentials,
        })
        .map_err(|e| StoreError::Io {
            store: STORE,
            operation: "write",
            message: format!("could not encode the credentials: {e}"),
            source: None,
        })?;
        self.write_file(&self.path_for(endpoint), &json)
    }

    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        if !disk::check_dir(STORE, &self.dir)? {
            return Ok(None);
        }
        read_file(&self.path_for(endpoint), endpoint)
    }

    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let path = self.path_for(endpoint);
        match fs::remove_file(&path) {
            Ok(()) => {
                disk::sync_dir(&self.dir);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("delete", "could not delete", &path, e)),
        }
    }

    fn lock(&self, endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        disk::lock(STORE, &self.dir, endpoint.key(), self.lock_timeout).map(Some)
    }

    fn name(&self) -> &'static str {
        STORE
    }

    fn directory(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }
}
