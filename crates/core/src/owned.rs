//! What flyte-auth finds on disk rather than is told: whether a file or directory is the
//! user's own ([`Ownership`], Unix), and the one way to open and read a file found there
//! ([`open_found`], [`read_found`]): never through a link, never waiting on a FIFO, bounded in
//! size. `flyte-auth-store` and `flyte-auth-google` use it; `flyte-auth`'s config search
//! shares the ownership rule (it also accepts a link the user owns).

use std::{
    fs::{File, FileType, Metadata, OpenOptions},
    io::{self, Read as _},
    path::Path,
};

/// Why a file or directory found on disk is not the user's own. Never holds file contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotOwn {
    /// It belongs to another user (neither the effective user nor, where allowed, root).
    #[error("it belongs to user id {owner}, not to this user (id {user})")]
    Owner {
        /// Its owner's user id.
        owner: u32,
        /// The effective user id of this process.
        user: u32,
    },
    /// Group or others may write to it.
    #[error("other users may write to it (mode {mode:o})")]
    Writable {
        /// Its permission bits.
        mode: u32,
    },
    /// A FIFO, a socket, a device, a directory or a link where a regular file should be.
    #[error("it is {kind}, not a regular file")]
    NotRegular {
        /// What it is, in words ([`kind_of`]).
        kind: &'static str,
    },
}

/// Whose files and directories are trusted besides the effective user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Owners {
    /// The effective user's only (the token directory and its files).
    User,
    /// The effective user's or root's (as git trusts a repository).
    UserOrRoot,
}

/// The rule that says whether a file or directory found on disk is the user's own (Unix):
/// `Ownership::effective(Owners::User).private(&meta)`.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    user: u32,
    owners: Owners,
}

#[cfg(unix)]
impl Ownership {
    /// The rule for the user id `user`, trusting `owners`.
    pub fn new(user: u32, owners: Owners) -> Self {
        Self { user, owners }
    }

    /// The rule for this process's effective user (`geteuid`), trusting `owners`.
    pub fn effective(owners: Owners) -> Self {
        Self::new(rustix::process::geteuid().as_raw(), owners)
    }

    /// Whether `meta` belongs to the user (or root, where allowed). All that matters of a
    /// symbolic link's own entry (its mode is always `rwxrwxrwx`).
    ///
    /// # Errors
    ///
    /// [`NotOwn::Owner`] naming the owner.
    pub fn owned(&self, meta: &Metadata) -> Result<(), NotOwn> {
        use std::os::unix::fs::MetadataExt as _;
        let owner = meta.uid();
        if owner == self.user || (owner == 0 && self.owners == Owners::UserOrRoot) {
            Ok(())
        } else {
            Err(NotOwn::Owner {
                owner,
                user: self.user,
            })
        }
    }

    /// Whether `meta` is [`owned`](Self::owned) and has no group or other write bit: a
    /// directory whose entries, or a file whose contents, decide something.
    ///
    /// # Errors
    ///
    /// [`NotOwn::Owner`], else [`NotOwn::Writable`] with the permission bits.
    pub fn private(&self, meta: &Metadata) -> Result<(), NotOwn> {
        use std::os::unix::fs::MetadataExt as _;
        self.owned(meta)?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 == 0 {
            Ok(())
        } else {
            Err(NotOwn::Writable { mode })
        }
    }
}

/// Whether `meta` is a regular file (on every platform).
///
/// # Errors
///
/// [`NotOwn::NotRegular`] saying what it is instead.
pub fn is_regular_file(meta: &Metadata) -> Result<(), NotOwn> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(NotOwn::NotRegular {
            kind: kind_of(meta.file_type()),
        })
    }
}

/// What an entry that is not a regular file is, in words for a message: `a FIFO`, `a
/// socket`, `a device`, `a directory`, `a symbolic link`, else `something other than a file`.
pub fn kind_of(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "something other than a file"
    }
}

/// What [`open_found`] requires of a file besides being a regular file. The owner checks
/// apply on Unix only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// Named by the user: whoever owns it, and through a symbolic link if it is one.
    Named,
    /// Found: not a symbolic link, and [`owned`](Ownership::owned) by the effective user (or
    /// root, as [`Owners`] says).
    Owned(Owners),
    /// Found, and its contents decide something: as [`Trust::Owned`], and
    /// [`private`](Ownership::private).
    Private(Owners),
}

/// Why a file was not opened or read ([`open_found`], [`read_found`]). Never holds file
/// contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unreadable {
    /// A symbolic link where none is followed.
    #[error("it is a symbolic link (not followed)")]
    Link,
    /// Not a regular file, or not the user's own.
    #[error(transparent)]
    NotOwn(#[from] NotOwn),
    /// Larger than the reader allows.
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    /// It could not be opened or read.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Opens `path` with `options` so that nothing planted there stalls the program or is used
/// against the user; `None` when nothing is there (or a parent is not a directory).
///
/// On Unix the file is opened without blocking (`O_NONBLOCK`: a FIFO opens at once; it changes
/// nothing for the regular file then required, so it stays set), without taking a terminal
/// (`O_NOCTTY`) and, unless [`Trust::Named`], without following a link (`O_NOFOLLOW`:
/// [`Unreadable::Link`]). The opened handle (its `fstat`, not a second look at the path) must
/// be a regular file that `trust` accepts.
///
/// # Errors
///
/// [`Unreadable`]: a link, a file that is not regular or not trusted, or an I/O error.
pub fn open_found(
    path: &Path,
    options: &mut OpenOptions,
    trust: Trust,
) -> Result<Option<File>, Unreadable> {
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
        if trust != Trust::Named {
            flags |= OFlags::NOFOLLOW;
        }
        // The bits of these flags are small positive numbers on every Unix.
        std::os::unix::fs::OpenOptionsExt::custom_flags(options, flags.bits() as i32);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        #[cfg(unix)]
        Err(e)
            if trust != Trust::Named
                && rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::LOOP) =>
        {
            return Err(Unreadable::Link);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    is_regular_file(&meta)?;
    #[cfg(unix)]
    match trust {
        Trust::Named => {}
        Trust::Owned(owners) => Ownership::effective(owners).owned(&meta)?,
        Trust::Private(owners) => Ownership::effective(owners).private(&meta)?,
    }
    #[cfg(not(unix))]
    let _ = trust;
    Ok(Some(file))
}

/// The bytes of the file at `path`, opened for reading by [`open_found`]; `None` when nothing
/// is there.
///
/// # Errors
///
/// As [`open_found`], and [`Unreadable::TooLarge`] when it holds more than `max` bytes.
pub fn read_found(path: &Path, max: u64, trust: Trust) -> Result<Option<Vec<u8>>, Unreadable> {
    let Some(file) = open_found(path, OpenOptions::new().read(true), trust)? else {
        return Ok(None);
    };
    // Room for a usual file up front: one read instead of a doubling series of them.
    let initial = usize::try_from(max.saturating_add(1).min(8 * 1024)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(initial);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Unreadable::TooLarge(max));
    }
    Ok(Some(bytes))
}
