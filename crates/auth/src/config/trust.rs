//! Reading config files so that none can be used against the user or stall the program.
//!
//! A file **found by the search** (`./config.yaml`, `<git root>/.flyte/config.yaml`, `~/...`)
//! may have been put there by someone else: another user who owns `/tmp/.git` and
//! `/tmp/.flyte/config.yaml` would otherwise choose the `command` flyte-auth runs and the
//! server a client secret is sent to, for anyone working under `/tmp`. So, on Unix, git's
//! rule for the same attack (CVE-2022-24765, `safe.directory`) applies: such a file is used
//! only when it and the directory it sits in belong to the effective user (or to root) and
//! neither is writable by group or others; and it is opened without blocking and must be a
//! regular file. Anything else has a [`SkipReason`] and is skipped with a warning by the caller.
//! Whose file or directory is trusted is core's rule ([`flyte_auth_core::owned`]), the one the
//! token store applies to its directory and files too.
//!
//! A file the user **names** (`--config`, `FLYTECTL_CONFIG`, `UCTL_CONFIG`, the client secret
//! file) is used as named, whoever owns it; it may be a pipe (`--config <(...)`), so reading
//! it is bounded in size and in time ([`NAMED_FILE_TIMEOUT`]).

use std::{
    fmt,
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::mpsc,
    time::Duration,
};

use flyte_auth_core::owned::{NotOwn, is_regular_file};
#[cfg(unix)]
use flyte_auth_core::owned::{Owners, Ownership};

/// How long reading a named file that is not a regular file (a pipe, a FIFO) may take.
pub(crate) const NAMED_FILE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a config file found by the search was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The file or its directory belongs to another user (neither this user nor root).
    Owner {
        /// The file, or the directory it sits in.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
        /// The effective user id of this process.
        user: u32,
    },
    /// The file or its directory may be written by group or others.
    Writable {
        /// The file, or the directory it sits in.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file: a FIFO, a socket, a device or a directory.
    NotRegular {
        /// What it is, in words (`a FIFO`).
        kind: &'static str,
    },
    /// It could not be opened or inspected (no permission, a loop of links): another user's
    /// unreadable file must not stop the search for the user's own.
    Unreadable {
        /// The error, in words.
        error: String,
    },
}

impl SkipReason {
    /// Why `path` is not used, as core's rule for found files says.
    fn of(path: &Path, why: NotOwn) -> Self {
        match why {
            NotOwn::Owner { owner, user } => Self::Owner {
                path: path.to_owned(),
                owner,
                user,
            },
            NotOwn::Writable { mode } => Self::Writable {
                path: path.to_owned(),
                mode,
            },
            NotOwn::NotRegular { kind } => Self::NotRegular { kind },
            other => Self::Unreadable {
                error: other.to_string(),
            },
        }
    }

    /// The reason, of the config file `file`: `it ...` when it is about the file, `its
    /// directory <path> ...` when about the directory.
    pub(crate) fn of_file(&self, file: &Path) -> String {
        let subject = |path: &Path| {
            if path == file {
                "it".to_owned()
            } else {
                format!("its directory {}", path.display())
            }
        };
        match self {
            Self::Owner { path, owner, user } => format!(
                "{} belongs to user id {owner}, not to this user (id {user}) or root",
                subject(path)
            ),
            Self::Writable { path, mode } => format!(
                "{} is writable by group or others (mode {mode:o})",
                subject(path)
            ),
            Self::NotRegular { kind } => format!("it is {kind}, not a regular file"),
            Self::Unreadable { error } => format!("it cannot be read ({error})"),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner { path, .. } | Self::Writable { path, .. } => {
                write!(f, "{}: {}", path.display(), self.of_file(path))
            }
            Self::NotRegular { .. } | Self::Unreadable { .. } => {
                f.write_str(&self.of_file(Path::new("")))
            }
        }
    }
}

/// What the search found at one place.
pub(crate) enum Found {
    /// Nothing.
    Missing,
    /// A file that may be used, and its text.
    Text(String),
    /// A file that must not be used, and why.
    Untrusted(SkipReason),
}

/// Reads a config file found by the search, if it may be used (see the module
/// documentation); at most `cap` bytes.
pub(crate) fn read_found(path: &Path, cap: u64) -> io::Result<Found> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        // `O_NONBLOCK`: opening a FIFO returns at once (it is then refused, never read);
        // `O_NOCTTY`: a terminal does not become ours. The bits are small positive numbers.
        let flags = OFlags::NONBLOCK | OFlags::NOCTTY;
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, flags.bits() as i32);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // A link on the way (`/tmp/.flyte -> ...`, `/tmp/config.yaml -> ...`) is itself an entry
    // someone made: it must be the user's or root's, like what it points to.
    #[cfg(unix)]
    for entry in [path, dir] {
        match std::fs::symlink_metadata(entry) {
            // A link's own mode means nothing (always `rwxrwxrwx`): its owner does.
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Err(why) = found_rule().owned(&meta) {
                    return Ok(Found::Untrusted(SkipReason::of(entry, why)));
                }
            }
            Ok(_) => {}
            Err(e) if is_absent(&e) => return Ok(Found::Missing),
            Err(e) => return Ok(unreadable(&e)),
        }
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(Found::Missing),
        Err(e) => return Ok(unreadable(&e)),
    };
    // The opened file's own metadata: what is read is what was checked.
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Ok(unreadable(&e)),
    };
    if let Err(why) = is_regular_file(&meta) {
        return Ok(Found::Untrusted(SkipReason::of(path, why)));
    }
    #[cfg(unix)]
    {
        if let Err(why) = found_rule().private(&meta) {
            return Ok(Found::Untrusted(SkipReason::of(path, why)));
        }
        match std::fs::metadata(dir) {
            Ok(dir_meta) => {
                if let Err(why) = found_rule().private(&dir_meta) {
                    return Ok(Found::Untrusted(SkipReason::of(dir, why)));
                }
            }
            Err(e) => return Ok(unreadable(&e)),
        }
    }
    read_capped(file, cap).map(Found::Text)
}

/// Nothing to use at that place: no such file, or a path through something that is not a
/// directory (`/tmp/.flyte` a plain file).
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn unreadable(e: &io::Error) -> Found {
    Found::Untrusted(SkipReason::Unreadable {
        error: e.to_string(),
    })
}

/// Reads a file the user named, at most `cap` bytes. A regular file is read at once; anything
/// else (a pipe, a FIFO) is opened and read on a thread of its own, for at most
/// [`NAMED_FILE_TIMEOUT`] (a FIFO nobody writes to would otherwise block for ever; the
/// thread is then left blocked, and the caller goes on with an error).
pub(crate) fn read_named(path: &Path, cap: u64) -> io::Result<String> {
    read_named_within(path, cap, NAMED_FILE_TIMEOUT)
}

fn read_named_within(path: &Path, cap: u64, limit: Duration) -> io::Result<String> {
    // `stat` does not open the file, so it does not block on a FIFO.
    if std::fs::metadata(path)?.is_file() {
        return read_capped(File::open(path)?, cap);
    }
    let (tx, rx) = mpsc::channel();
    let owned = path.to_owned();
    std::thread::Builder::new()
        .name("flyte-auth-read-config".into())
        .spawn(move || {
            let result = File::open(&owned).and_then(|file| read_capped(file, cap));
            // The caller may have given up waiting; then nobody needs the answer.
            let _ = tx.send(result);
        })?;
    rx.recv_timeout(limit).unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "it is not a regular file, and reading it took more than {}s",
                limit.as_secs()
            ),
        ))
    })
}

/// The text of `file`, refusing more than `cap` bytes (a path such as `/dev/zero` must not
/// exhaust memory).
fn read_capped(file: File, cap: u64) -> io::Result<String> {
    let mut text = String::new();
    file.take(cap + 1).read_to_string(&mut text)?;
    if text.len() as u64 > cap {
        return Err(io::Error::other(format!(
            "the file is larger than {cap} bytes"
        )));
    }
    Ok(text)
}

/// Core's rule for what is found on disk, for config files: the effective user's or root's,
/// and writable by nobody else.
#[cfg(unix)]
fn found_rule() -> Ownership {
    Ownership::new(rustix::process::geteuid().as_raw(), Owners::UserOrRoot)
}

/// Where the search for a git root from `start` stops: at `home` (the user's home directory,
/// which is still searched), and on Unix before a directory on another file system (as git
/// does without `GIT_DISCOVERY_ACROSS_FILESYSTEM`). The directories to search, nearest first,
/// at most 64.
pub(crate) fn walk_up<'a>(start: &'a Path, home: Option<&Path>) -> Vec<&'a Path> {
    // What tells directories apart: the device and inode on Unix, the path elsewhere.
    #[cfg(unix)]
    let id = |p: &Path| {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    };
    #[cfg(not(unix))]
    let id = |p: &Path| Some((0, p.to_path_buf()));
    let home = home.and_then(id);
    let Some((device, _)) = id(start) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for dir in start.ancestors().take(64) {
        let Some(here) = id(dir) else { break };
        if here.0 != device {
            break;
        }
        dirs.push(dir);
        if Some(here) == home {
            break;
        }
    }
    dirs
}

#[cfg(all(test, unix))]
mod tests {
    use std::{os::unix::fs::PermissionsExt as _, time::Instant};

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_private_file_in_a_private_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "admin: {}\n").unwrap();
        chmod(&path, 0o644);
        match read_found(&path, 100).unwrap() {
            Found::Text(text) => assert_eq!(text, "admin: {}\n"),
            _ => panic!("not read"),
        }
        assert!(matches!(
            read_found(&dir.path().join("none"), 100).unwrap(),
            Found::Missing
        ));
    }

    #[test]
    fn a_file_or_directory_others_may_write_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "admin: {}\n").unwrap();
        chmod(&path, 0o664);
        let Found::Untrusted(why) = read_found(&path, 100).unwrap() else {
            panic!("read")
        };
        assert_eq!(
            why,
            SkipReason::Writable {
                path: path.clone(),
                mode: 0o664
            }
        );
        assert!(why.to_string().contains("writable by group or others"));
        chmod(&path, 0o600);
        chmod(dir.path(), 0o1777);
        let Found::Untrusted(why) = read_found(&path, 100).unwrap() else {
            panic!("read")
        };
        assert_eq!(
            why,
            SkipReason::Writable {
                path: dir.path().to_owned(),
                mode: 0o1777
            }
        );
    }

    #[test]
    fn a_fifo_found_by_the_search_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let started = Instant::now();
        let Found::Untrusted(why) = read_found(&path, 100).unwrap() else {
            panic!("read")
        };
        assert_eq!(why, SkipReason::NotRegular { kind: "a FIFO" });
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_named_fifo_is_read_when_written_and_given_up_on_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let started = Instant::now();
        let err = read_named_within(&path, 100, Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(3));

        // Another FIFO: the thread given up on above still waits to read the first one.
        let path = dir.path().join("written");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || std::fs::write(writer_path, "admin: {}\n"));
        let text = read_named_within(&path, 100, Duration::from_secs(10)).unwrap();
        assert_eq!(text, "admin: {}\n");
        writer.join().unwrap().unwrap();
    }

    #[test]
    fn what_cannot_be_read_is_skipped_not_fatal_and_a_plain_file_on_the_way_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // `.flyte` a plain file: there is no config there.
        std::fs::write(dir.path().join(".flyte"), "").unwrap();
        assert!(matches!(
            read_found(&dir.path().join(".flyte/config.yaml"), 100).unwrap(),
            Found::Missing
        ));
        // A loop of links: an error to skip, never one that ends the search.
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let Found::Untrusted(why) = read_found(&dir.path().join("a/config.yaml"), 100).unwrap()
        else {
            panic!("not skipped")
        };
        assert!(matches!(why, SkipReason::Unreadable { .. }), "{why:?}");
        assert!(why.to_string().contains("cannot be read"), "{why}");
    }

    #[test]
    fn a_link_another_user_made_on_the_way_is_not_followed() {
        // Only root can give a link to another user; CI runs as root.
        if rustix::process::geteuid().as_raw() != 0 {
            panic!("this test must run as root (as CI does) to make another user's link");
        }
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("config.yaml"), "admin: {}\n").unwrap();
        for link in [".flyte", "config.yaml"] {
            let at = dir.path().join(link);
            let target = if link == ".flyte" {
                mine.clone()
            } else {
                mine.join("config.yaml")
            };
            std::os::unix::fs::symlink(&target, &at).unwrap();
            std::os::unix::fs::lchown(&at, Some(65534), Some(65534)).unwrap();
        }
        for (found, link) in [
            (
                dir.path().join(".flyte/config.yaml"),
                dir.path().join(".flyte"),
            ),
            (
                dir.path().join("config.yaml"),
                dir.path().join("config.yaml"),
            ),
        ] {
            let Found::Untrusted(why) = read_found(&found, 100).unwrap() else {
                panic!("{} was read through another user's link", found.display())
            };
            assert!(
                matches!(&why, SkipReason::Owner { path, owner: 65534, .. } if *path == link),
                "{why:?}"
            );
        }
        // The same links made by this user are followed.
        std::os::unix::fs::lchown(dir.path().join(".flyte"), Some(0), Some(0)).unwrap();
        match read_found(&dir.path().join(".flyte/config.yaml"), 100).unwrap() {
            Found::Text(_) => {}
            Found::Untrusted(why) => panic!("not read: {why:?}"),
            Found::Missing => panic!("not found"),
        }
    }

    #[test]
    fn the_walk_up_stops_at_home() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("home/project/src");
        std::fs::create_dir_all(&deep).unwrap();
        let home = dir.path().join("home");
        let dirs = walk_up(&deep, Some(&home));
        assert_eq!(dirs.last().copied(), Some(home.as_path()));
        assert_eq!(dirs.len(), 3);
        // Not under home: up to the root of this file system.
        let all = walk_up(&deep, Some(Path::new("/nonexistent")));
        assert!(all.len() > 3);
    }
}
