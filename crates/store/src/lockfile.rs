//! What both persistent stores (and the discovery hints) share on disk: the directory, the
//! per-endpoint file names, atomic `0600` writes, bounded reads, and the cross-process lock on
//! a sidecar file.
//!
//! The lock is an exclusive advisory lock (`std::fs::File::lock`: `flock` on Unix, `LockFileEx`
//! on Windows) on `<name>.lock` in the store directory, held by an open handle until the guard
//! is dropped or the process dies. Being per handle, it also excludes other threads of the same
//! process that lock the same endpoint. The file store and the keyring store use the same lock
//! file for an endpoint. Lock files are never deleted: deleting one would let two processes
//! lock two different files.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{self, Read as _, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use flyte_auth_core::{StoreError, StoreLock};
use sha2::{Digest, Sha256};

use crate::store_key;

/// The environment variable that overrides the default directory.
pub(crate) const ENV_CACHE_DIR: &str = "FLYTE_AUTH_CACHE_DIR";

/// How long a lock is waited for by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How many characters of the endpoint go into a file name.
const MAX_NAME_CHARS: usize = 64;

/// The store directory: `explicit`, else `$FLYTE_AUTH_CACHE_DIR`, else `flyte-auth` under the
/// user's cache directory. Reads the environment only.
pub(crate) fn store_dir(explicit: Option<PathBuf>) -> Option<PathBuf> {
    resolve_dir(
        explicit,
        std::env::var_os(ENV_CACHE_DIR).map(PathBuf::from),
        dirs::cache_dir().map(|d| d.join("flyte-auth")),
    )
}

/// The directory: the explicit one, else the environment's, else the platform default.
fn resolve_dir(
    explicit: Option<PathBuf>,
    env: Option<PathBuf>,
    default: Option<PathBuf>,
) -> Option<PathBuf> {
    explicit
        .or(env.filter(|p| !p.as_os_str().is_empty()))
        .or(default)
}

/// `<sanitized endpoint>-<16 hex digits of its SHA-256>`: safe as a file name, readable, and
/// distinct for distinct endpoints.
pub(crate) fn file_stem(endpoint: &str) -> String {
    let key = store_key(endpoint);
    let name: String = key
        .chars()
        .take(MAX_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash: String = Sha256::digest(key.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name}-{hash}")
}

/// The sidecar lock file of `endpoint` in `dir`.
pub(crate) fn lock_path(dir: &Path, endpoint: &str) -> PathBuf {
    dir.join(format!("{}.lock", file_stem(endpoint)))
}

/// Creates `dir` (and missing parents) with mode `0700` on Unix; warns when an existing one is
/// open to other users.
pub(crate) fn create_private_dir(
    store: &'static str,
    operation: &'static str,
    dir: &Path,
) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io_error(store, operation, "could not create the directory", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the token directory is accessible to other users; the files in it are 0600"
            );
        }
    }
    Ok(())
}

/// An I/O error as a store error naming the path (never file contents).
pub(crate) fn io_error(
    store: &'static str,
    operation: &'static str,
    what: &str,
    path: &Path,
    e: io::Error,
) -> StoreError {
    let message = format!("{what} {}: {e}", path.display());
    if e.kind() == io::ErrorKind::PermissionDenied {
        StoreError::Denied { store, message }
    } else {
        StoreError::Io {
            store,
            operation,
            message,
            source: Some(Arc::new(e)),
        }
    }
}

/// Replaces `path` in `dir` with `contents` atomically: a temporary file in the same
/// directory, created `0600` (never widened), synced, renamed over `path`; `dir` is created
/// `0700` first. A reader sees the old file or the new one, never half of one.
pub(crate) fn write_private_file(
    store: &'static str,
    dir: &Path,
    path: &Path,
    contents: &[u8],
) -> Result<(), StoreError> {
    create_private_dir(store, "write", dir)?;
    let temp = temp_path(path);
    let result = write_new_private_file(&temp, contents)
        .map_err(|e| io_error(store, "write", "could not write", &temp, e))
        .and_then(|()| {
            fs::rename(&temp, path)
                .map_err(|e| io_error(store, "write", "could not replace", path, e))
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    sync_dir(dir);
    Ok(())
}

/// A temporary name next to `path`, unique in this process and across processes.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Creates `path` (which must not exist) readable by its owner only, writes and syncs it.
fn write_new_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes a rename or removal in `dir` durable (Unix); best effort.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The buffer [`read_limited`] starts with: a login with a refresh and an id token fits.
const INITIAL_READ: u64 = 8 * 1024;

/// The bytes of `path`, at most `max`; `None` when it does not exist, an error when it is
/// larger (it cannot be ours) or cannot be read.
pub(crate) fn read_limited(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // Room for a usual token file up front: one read instead of a doubling series of them.
    let initial = usize::try_from(max.saturating_add(1).min(INITIAL_READ)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(initial);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// Holds the exclusive lock on a sidecar file until dropped.
#[derive(Debug)]
struct HeldLock {
    file: File,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Closing the handle releases the lock too; unlocking first says so explicitly.
        let _ = self.file.unlock();
    }
}

/// Takes the exclusive lock of `endpoint` in `dir`, waiting at most `timeout`.
pub(crate) fn lock(
    store: &'static str,
    dir: &Path,
    endpoint: &str,
    timeout: Duration,
) -> Result<StoreLock, StoreError> {
    create_private_dir(store, "lock", dir)?;
    let path = lock_path(dir, endpoint);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| io_error(store, "lock", "could not open the lock file", &path, e))?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(StoreLock::new(HeldLock { file })),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(io_error(store, "lock", "could not lock", &path, e));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(StoreError::Io {
                store,
                operation: "lock",
                message: format!(
                    "another process held {} for more than {}s",
                    path.display(),
                    timeout.as_secs_f32()
                ),
                source: None,
            });
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_the_explicit_one_then_the_environment_then_the_default() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(resolve_dir(p("/a"), p("/b"), p("/c")), p("/a"));
        assert_eq!(resolve_dir(None, p("/b"), p("/c")), p("/b"));
        assert_eq!(resolve_dir(None, p(""), p("/c")), p("/c"));
        assert_eq!(resolve_dir(None, None, p("/c")), p("/c"));
        assert_eq!(resolve_dir(None, None, None), None);
    }

    #[test]
    fn file_names_are_safe_readable_and_distinct() {
        let endpoints = [
            "flyte.example.org:443",
            "flyte.example.org_443",
            "flyte.example.org/443",
            "FLYTE.example.org:443",
            "../../etc/passwd",
            "",
            "ünïcode:1",
        ];
        let stems: Vec<String> = endpoints.iter().map(|e| file_stem(e)).collect();
        for (i, stem) in stems.iter().enumerate() {
            assert!(
                stem.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                "{stem}"
            );
            for other in &stems[i + 1..] {
                assert_ne!(stem, other);
            }
        }
        assert!(
            stems[0].starts_with("flyte.example.org_443-"),
            "{}",
            stems[0]
        );
        assert_eq!(file_stem("dns:///flyte.example.org:443"), stems[0]);
        assert!(file_stem(&"x".repeat(500)).len() < 100);
    }

    #[test]
    fn a_lock_excludes_a_second_handle_until_released_and_the_wait_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let short = Duration::from_millis(100);
        let held = lock("file", dir.path(), "e", short).unwrap();
        let busy = lock("file", dir.path(), "e", short).unwrap_err();
        assert!(
            matches!(
                busy,
                StoreError::Io {
                    operation: "lock",
                    ..
                }
            ),
            "{busy:?}"
        );
        assert!(lock("file", dir.path(), "other", short).is_ok());
        drop(held);
        assert!(lock("file", dir.path(), "e", short).is_ok());
    }
}
