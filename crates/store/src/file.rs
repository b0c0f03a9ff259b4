//! [`FileStore`]: one JSON file per endpoint, for machines without a keyring. Reads and
//! writes take no lock (a write is an atomic rename), so they work while this process holds
//! the endpoint's [`TokenStore::lock`].

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use flyte_auth_core::{
    Credentials, Endpoint, StoreError, StoreLock, TokenStore,
    owned::{NotOwn, Unreadable},
};
use serde::{Deserialize, Serialize};

use crate::disk;

const STORE: &str = "file";

/// The file format version this crate writes and reads.
const FORMAT_VERSION: u32 = 1;

/// A token file larger than this is not read (it cannot be ours).
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Credentials in one `0600` JSON file per endpoint, replaced atomically, with a
/// cross-process lock per endpoint (a sidecar `.lock` file).
///
/// A file that is unusable, of another version or of another endpoint is no credentials, with
/// a warning; a link or another user's file at the token path, or a directory others may
/// write to, is [`StoreError::Denied`]. The crate's README ("The file store") has the
/// directory, the naming, the format and the rules for what is found on disk.
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
/// (and a warning) when a symbolic link or another user's file is at its place.
fn read_file(path: &Path, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
    let ignored = |why: &str| {
        tracing::warn!(path = %path.display(), "ignoring the token file: {why}");
        Ok(None)
    };
    let bytes = match disk::read_found(path, MAX_FILE_SIZE) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        // Something nobody but the user should have put there: refused, not skipped.
        Err(why @ (Unreadable::Link | Unreadable::NotOwn(NotOwn::Owner { .. }))) => {
            tracing::warn!(path = %path.display(), reason = %why, "refusing the token file");
            return Err(disk::refused(STORE, "the token file", path, &why));
        }
        Err(why) => return ignored(&why.to_string()),
    };
    // Never log the contents, nor serde's messages about them: they may quote a token.
    let version = match serde_json::from_slice::<FileVersion>(&bytes) {
        Ok(v) => v.version,
        Err(e) => {
            let at = format!("line {}, column {}", e.line(), e.column());
            return ignored(&format!("it is not JSON of the expected shape ({at})"));
        }
    };
    if version != FORMAT_VERSION {
        return ignored(&format!(
            "format version {version} is unknown to this program"
        ));
    }
    let Ok(FileV1 { mut credentials }) = serde_json::from_slice(&bytes) else {
        return ignored("its credentials are incomplete or malformed");
    };
    if !is_for(&credentials.for_endpoint, endpoint) {
        let found = &credentials.for_endpoint;
        return ignored(&format!(
            "it belongs to another endpoint ({found}, not {endpoint})"
        ));
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
        .map_err(|e| {
            disk::failed(
                STORE,
                "write",
                format!("could not encode the credentials: {e}"),
            )
        })?;
        disk::write_private_file(STORE, &self.dir, &self.path_for(endpoint), &json)
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
            Err(e) => Err(disk::io_error(
                STORE,
                "delete",
                "could not delete",
                &path,
                e,
            )),
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
