//! Whether a file or directory found on disk is the user's own: the one rule for what
//! flyte-auth finds rather than is told, used by `flyte-auth`'s config search and by
//! `flyte-auth-store` (the token directory and the files in it).
//!
//! An entry is used only when it belongs to the effective user (or root, where the caller
//! allows it: [`Owners`]) and, where it decides something, neither group nor others may
//! write to it ([`Ownership`]). A file is judged by its opened handle and must be a regular
//! file; opening it without blocking (`O_NONBLOCK`, `O_NOCTTY`) and, where a link must not be
//! followed, `O_NOFOLLOW`, is the caller's part. On other platforms than Unix only
//! [`is_regular_file`] and [`kind_of`] exist.

use std::fs::{FileType, Metadata};

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
    #[error("group or others may write to it (mode {mode:o})")]
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
    /// The effective user's only (the token directory and its files: root's are refused to
    /// anyone else).
    User,
    /// The effective user's or root's (config files found by the search, as git trusts a
    /// repository).
    UserOrRoot,
}

/// The rule that says whether a file or directory found on disk is the user's own (Unix).
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::fs::MetadataExt as _;
/// use flyte_auth_core::owned::{NotOwn, Owners, Ownership};
///
/// let root_dir = std::fs::metadata("/").unwrap();
/// assert!(Ownership::new(root_dir.uid(), Owners::User).owned(&root_dir).is_ok());
/// let someone_else = root_dir.uid() + 1;
/// assert!(Ownership::new(someone_else, Owners::UserOrRoot).owned(&root_dir).is_ok());
/// assert!(matches!(
///     Ownership::new(someone_else, Owners::User).owned(&root_dir),
///     Err(NotOwn::Owner { .. })
/// ));
/// # }
/// ```
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    user: u32,
    owners: Owners,
}

#[cfg(unix)]
impl Ownership {
    /// The rule for the effective user `user` (`geteuid`), trusting `owners`.
    pub fn new(user: u32, owners: Owners) -> Self {
        Self { user, owners }
    }

    /// The effective user id the rule is for.
    pub fn user(&self) -> u32 {
        self.user
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

    /// Whether `meta` is [`owned`](Self::owned) and writable by nobody else (no group or
    /// other write bit): a directory whose entries, or a file whose contents, decide
    /// something.
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

    /// Whether the opened file with metadata `meta` (its `fstat`) is a regular file and
    /// [`owned`](Self::owned).
    ///
    /// # Errors
    ///
    /// [`NotOwn::NotRegular`], else [`NotOwn::Owner`].
    pub fn regular_file(&self, meta: &Metadata) -> Result<(), NotOwn> {
        is_regular_file(meta)?;
        self.owned(meta)
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
