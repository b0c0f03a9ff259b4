//! What both persistent stores (and the discovery hints) share on disk: the directory, the
//! per-endpoint file names, atomic `0600` writes, bounded reads, and the cross-process lock on
//! a sidecar file (never deleted: deleting one would let two processes lock two files).
//!
//! Nothing found here is used against the user (Unix): the directory must be the effective
//! user's and writable by nobody else ([`check_dir`]); a file found by name is opened without
//! following a link or blocking on a FIFO and must be a regular file of the user
//! ([`open_found`]), by core's rule for what is found on disk ([`flyte_auth_core::owned`]).

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{self, Read as _, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

#[cfg(not(unix))]
use flyte_auth_core::owned::is_regular_file;
#[cfg(unix)]
use flyte_auth_core::owned::{Owners, Ownership};
use flyte_auth_core::{StoreError, StoreLock, owned::NotOwn};
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

/// Why a file (or the directory) was not used. Never holds file contents.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unusable {
    /// A symbolic link: not followed.
    #[error("it is a symbolic link (not followed)")]
    Link,
    /// A FIFO, socket, device or directory where a regular file should be.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Not owned by the effective user.
    #[error("it belongs to user id {owner}, not to this user (id {user})")]
    Owner {
        /// The owner's user id.
        owner: u32,
        /// The effective user id of this process.
        user: u32,
    },
    /// A directory other users may write to (they could replace the files in it).
    #[error("other users may write to it (mode {mode:o})")]
    OpenToOthers {
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than a file of ours can be.
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    /// It could not be opened or read.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<NotOwn> for Unusable {
    fn from(why: NotOwn) -> Self {
        match why {
            NotOwn::Owner { owner, user } => Self::Owner { owner, user },
            NotOwn::Writable { mode } => Self::OpenToOthers { mode },
            NotOwn::NotRegular { kind } => Self::NotRegular(kind),
            other => Self::Io(io::Error::other(other.to_string())),
        }
    }
}

/// The error of a file or directory refused for the reason `why`, naming it.
pub(crate) fn refused(store: &'static str, what: &str, path: &Path, why: &Unusable) -> StoreError {
    let advice = match why {
        Unusable::OpenToOthers { .. } => {
            "; make it private (`chmod 700`) or choose another directory"
        }
        Unusable::Owner { .. } | Unusable::Link | Unusable::NotRegular(_) => {
            "; remove it, or choose another directory"
        }
        Unusable::TooLarge(_) | Unusable::Io(_) => "",
    };
    StoreError::Denied {
        store,
        message: format!("refusing {what} {}: {why}{advice}", path.display()),
    }
}

/// Core's rule for what is found on disk, for the store: the effective user's only.
#[cfg(unix)]
fn store_rule() -> Ownership {
    Ownership::new(rustix::process::geteuid().as_raw(), Owners::User)
}

/// Opens a file found by name in the store directory (token, lock or hint file), with
/// `options`, so that nothing planted there can be used against the user or stall the
/// program. On Unix: without following a symbolic link (`O_NOFOLLOW`: a link is
/// [`Unusable::Link`], its target is neither created nor read), without blocking
/// (`O_NONBLOCK`: opening a FIFO returns at once; it has no effect on the regular file that
/// is then required, so it is not cleared) and without taking a terminal (`O_NOCTTY`); the
/// opened handle (`fstat`, not a second look at the path) must be a regular file owned by
/// the effective user. `None` when nothing is there.
pub(crate) fn open_found(path: &Path, options: &mut OpenOptions) -> Result<Option<File>, Unusable> {
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
        // The bits of these flags are small positive numbers on every Unix.
        std::os::unix::fs::OpenOptionsExt::custom_flags(options, flags.bits() as i32);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::LOOP) => {
            return Err(Unusable::Link);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    #[cfg(unix)]
    store_rule().regular_file(&meta)?;
    #[cfg(not(unix))]
    is_regular_file(&meta)?;
    Ok(Some(file))
}

/// Checks that `dir` may hold tokens; `false` when it does not exist.
///
/// On Unix it must be a directory owned by the effective user (root's directory is refused
/// to anyone else) that no other user may write to (group or others could replace the files
/// in it); a directory other users may only read is a warning (the files in it are `0600`).
/// A symbolic link to the directory is followed: what matters is the directory itself.
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
        use std::os::unix::fs::PermissionsExt as _;
        store_rule()
            .private(&meta)
            .map_err(|why| refused(store, "the token directory", dir, &why.into()))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the token directory is readable by other users; the files in it are 0600"
            );
        }
    }
    Ok(true)
}

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

/// Creates `dir` (and missing parents) with mode `0700` on Unix, then checks it
/// ([`check_dir`]): a directory of another user, or one others may write to, is refused.
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

/// Replaces `path` in `dir` with `contents` atomically: a temporary file in the same
/// directory, created `0600` (never widened), synced, renamed over `path`; `dir` is created
/// `0700` first (and refused when unsafe, [`create_private_dir`]), and stale temporary files
/// of the same name are removed ([`remove_stale_temp_files`]). A reader sees the old file or
/// the new one, never half of one. Whatever was at `path` (a link included) is replaced, not
/// followed.
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

/// Removes the temporary files of the files named `<stem>.*` in `dir` (one endpoint's) that
/// are at least [`STALE_TEMP_AGE`] old: a process killed mid-write leaves its temporary file
/// behind, complete or not. Younger ones may be another process's write in progress and are
/// kept. Best effort: what cannot be removed is logged at `debug` and left.
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
        match fs::remove_file(&path) {
            Ok(()) => tracing::debug!(
                path = %path.display(),
                "removed a temporary file an interrupted write left behind"
            ),
            Err(e) => tracing::debug!(
                path = %path.display(),
                error = %e,
                "could not remove a stale temporary file"
            ),
        }
    }
}

/// Creates `path` (which must not exist, and is never a link followed) readable by its owner
/// only, writes and syncs it.
fn write_new_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            rustix::fs::OFlags::NOFOLLOW.bits() as i32,
        );
    }
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

/// The bytes of `path`, at most `max`; `None` when it does not exist; an error when it is
/// larger (it cannot be ours), cannot be read, or is not a regular file of this user
/// ([`open_found`]: never a link followed, never a FIFO waited on).
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Option<Vec<u8>>, Unusable> {
    let Some(file) = open_found(path, OpenOptions::new().read(true))? else {
        return Ok(None);
    };
    // Room for a usual token file up front: one read instead of a doubling series of them.
    let initial = usize::try_from(max.saturating_add(1).min(INITIAL_READ)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(initial);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Unusable::TooLarge(max));
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

/// Takes the exclusive lock of `endpoint` in `dir`, waiting at most `timeout`; then removes
/// the endpoint's stale temporary files ([`remove_stale_temp_files`]).
///
/// The directory is checked ([`create_private_dir`]) and the lock file opened as
/// [`open_found`] says: a link, a FIFO or another user's file at its place is refused
/// ([`StoreError::Denied`], naming it), never followed or created through.
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
    let found = open_found(&path, &mut options)
        .and_then(|file| file.ok_or_else(|| Unusable::Io(io::ErrorKind::NotFound.into())));
    let file = match found {
        Ok(file) => file,
        Err(Unusable::Io(e)) => {
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
                return Ok(StoreLock::new(HeldLock { file }));
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
