//! What both persistent stores (and the discovery hints) share on disk: the directory, the
//! per-endpoint file names, atomic `0600` writes, and the cross-process lock on a sidecar file
//! (never deleted: deleting one would let two processes lock two files).
//!
//! Nothing found here is used against the user: the directory must be the user's and
//! writable by nobody else ([`check_dir`]); a file in it is opened and read by core's
//! [`open_found`](owned::open_found) as [`MINE`]: not through a link, not waiting on a FIFO,
//! a regular file of the effective user.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_core::{
    StoreError, StoreLock,
    owned::{self, NotOwn, Owners, Trust, Unreadable},
};
use sha2::{Digest, Sha256};

use crate::store_key;

/// The environment variable that overrides the default directory.
pub(crate) const ENV_CACHE_DIR: &str = "FLYTE_AUTH_CACHE_DIR";

/// How long a lock is waited for by default.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How many characters of the endpoint go into a file name.
const MAX_NAME_CHARS: usize = 64;

/// How old a temporary file must be before another write or lock removes it: a write takes
/// milliseconds, so an older one was left by a process that died (`kill -9`) mid-write.
pub(crate) const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// What a file found in the store directory must be: the effective user's own.
pub(crate) const MINE: Trust = Trust::Owned(Owners::User);

/// The bytes of the file at `path` ([`MINE`]), at most `max`; `None` when nothing is there.
pub(crate) fn read_found(path: &Path, max: u64) -> Result<Option<Vec<u8>>, Unreadable> {
    owned::read_found(path, max, MINE)
}

/// The error of a file or directory refused for the reason `why`, naming it.
pub(crate) fn refused(
    store: &'static str,
    what: &str,
    path: &Path,
    why: &Unreadable,
) -> StoreError {
    let advice = match why {
        Unreadable::NotOwn(NotOwn::Writable { .. }) => {
            "; make it private (`chmod 700`) or choose another directory"
        }
        Unreadable::Link | Unreadable::NotOwn(_) => "; remove it, or choose another directory",
        _ => "",
    };
    StoreError::Denied {
        store,
        message: format!("refusing {what} {}: {why}{advice}", path.display()),
    }
}

/// Checks that `dir` may hold tokens; `false` when it does not exist. On Unix it must be the
/// effective user's and writable by nobody else (a link to it is followed); readable by
/// others is a warning.
pub(crate) fn check_dir(store: &'static str, dir: &Path) -> Result<bool, StoreError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            let what = "could not inspect the directory";
            return Err(io_error(store, "open", what, dir, e));
        }
    };
    if !meta.is_dir() {
        let e = io::ErrorKind::NotADirectory.into();
        return Err(io_error(store, "open", "not a directory:", dir, e));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        owned::Ownership::effective(Owners::User)
            .private(&meta)
            .map_err(|why| refused(store, "the token directory", dir, &why.into()))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 && warn_once(dir) {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the token directory is readable by other users; the files in it are 0600"
            );
        }
    }
    Ok(true)
}

/// Whether `dir` is named for the first time in this process: a warning about it is given once,
/// not at every read, write and lock of a login.
#[cfg(unix)]
fn warn_once(dir: &Path) -> bool {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = !warned.iter().any(|d| d == dir);
    if first {
        warned.push(dir.to_path_buf());
    }
    first
}

/// The store directory: `explicit`, else `$FLYTE_AUTH_CACHE_DIR`, else `flyte-auth` under the
/// user's cache directory.
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
    format!("{name}-{}", fingerprint(key))
}

/// The first 16 hex digits of the SHA-256 of `text`: enough to tell tokens and endpoints
/// apart, useless to recover one.
pub(crate) fn fingerprint(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sidecar lock file of `endpoint` in `dir`.
pub(crate) fn lock_path(dir: &Path, endpoint: &str) -> PathBuf {
    dir.join(format!("{}.lock", file_stem(endpoint)))
}

/// Creates `dir` (and missing parents) `0700`, then checks it ([`check_dir`]).
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
    check_dir(store, dir).map(drop)
}

/// A [`StoreError::Io`] without a source: `message` says what failed (never a token).
pub(crate) fn failed(store: &'static str, operation: &'static str, message: String) -> StoreError {
    StoreError::Io {
        store,
        operation,
        message,
        source: None,
    }
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

/// Replaces `path` in `dir` with `contents` atomically: a `0600` temporary file in `dir`
/// (created [`create_private_dir`]), synced, renamed over whatever is at `path` (a link is
/// replaced, not followed). A reader sees the old file or the new one, never half of one.
pub(crate) fn write_private_file(
    store: &'static str,
    dir: &Path,
    path: &Path,
    contents: &[u8],
) -> Result<(), StoreError> {
    create_private_dir(store, "write", dir)?;
    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
        remove_stale_temp_files(dir, stem);
    }
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

/// A temporary name next to `path`, unique in this process and across processes:
/// `.<file name>.<pid>.<n>.tmp`.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Whether `name` is a temporary file of one of the files named `<stem>.<extension>`
/// ([`temp_path`]: `.<stem>.<extension>.<pid>.<n>.tmp`).
fn is_temp_of(name: &str, stem: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(stem))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = rest.split('.').collect();
    matches!(
        parts.as_slice(),
        [extension, pid, n]
            if !extension.is_empty()
                && extension.bytes().all(|b| b.is_ascii_alphabetic())
                && digits(pid)
                && digits(n)
    )
}

/// Removes the temporary files of `<stem>.*` in `dir` (one endpoint's) that a process killed
/// mid-write left: those at least [`STALE_TEMP_AGE`] old (younger ones may be a write in
/// progress). Best effort, logged at `debug`.
pub(crate) fn remove_stale_temp_files(dir: &Path, stem: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|name| is_temp_of(name, stem)) {
            continue;
        }
        // The entry's own metadata (`lstat`): a link is judged, and removed, as itself.
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        if !stale {
            continue;
        }
        let path = entry.path();
        let removed = fs::remove_file(&path);
        tracing::debug!(path = %path.display(), ?removed, "removing a temporary file an interrupted write left behind");
    }
}

/// Creates `path` readable by its owner only, writes and syncs it. It must not exist:
/// `O_EXCL` refuses a link there too, dangling or not.
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

/// Takes the exclusive lock of `endpoint` in `dir` (created [`create_private_dir`]), waiting
/// at most `timeout`, then removes the endpoint's stale temporary files. The lock file is
/// opened as [`MINE`]: a link, a FIFO or another user's file there is [`StoreError::Denied`].
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
    // Created when missing: only a race with a deletion finds nothing.
    let found = owned::open_found(&path, &mut options, MINE)
        .and_then(|file| file.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound).into()));
    let file = match found {
        Ok(file) => file,
        Err(Unreadable::Io(e)) => {
            let what = "could not open the lock file";
            return Err(io_error(store, "lock", what, &path, e));
        }
        Err(why) => {
            tracing::warn!(path = %path.display(), reason = %why, "refusing the lock file");
            return Err(refused(store, "the lock file", &path, &why));
        }
    };
    // `Duration::MAX` (wait as long as it takes) must not overflow: then there is no deadline.
    let deadline = Instant::now().checked_add(timeout);
    let mut pause = Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => {
                remove_stale_temp_files(dir, &file_stem(endpoint));
                // Closing the file releases the lock.
                return Ok(StoreLock::new(file));
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(io_error(store, "lock", "could not lock", &path, e));
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            let message = format!(
                "another process held {} for more than {}s",
                path.display(),
                timeout.as_secs_f32()
            );
            return Err(failed(store, "lock", message));
        }
        thread::sleep(deadline.map_or(pause, |deadline| pause.min(deadline - now)));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_timeout_of_any_size_takes_a_free_lock() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("tokens");
        assert!(lock("file", &dir, "flyte.example.org", Duration::MAX).is_ok());
    }

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
    fn temporary_names_are_recognised_per_endpoint() {
        let stem = file_stem("flyte.example.org:443");
        let temp = temp_path(&Path::new("/d").join(format!("{stem}.json")));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(is_temp_of(name, &stem), "{name}");
        assert!(is_temp_of(&format!(".{stem}.discovery.12.3.tmp"), &stem));
        for other in [
            format!("{stem}.json"),
            format!("{stem}.lock"),
            format!(".{stem}.json.12.tmp"),
            format!(".{stem}.json.12.x.tmp"),
            format!(".{stem}.json.12.3.tmp.more"),
            format!(".{}.json.12.3.tmp", file_stem("other.example.org:443")),
            format!(".{stem}x.json.12.3.tmp"),
        ] {
            assert!(!is_temp_of(&other, &stem), "{other}");
        }
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
