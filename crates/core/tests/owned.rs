//! The one rule for what is found on disk: whose files and directories are the user's own.

#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use flyte_auth_core::owned::{NotOwn, Owners, Ownership, is_regular_file, kind_of};

/// A fresh directory of this process under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "flyte-auth-core-owned-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).unwrap();
        chmod(&path, 0o700);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The rule for the user who owns `path`.
fn owner_of(path: &Path, owners: Owners) -> Ownership {
    Ownership::new(std::fs::metadata(path).unwrap().uid(), owners)
}

#[test]
fn a_private_file_in_a_private_directory_is_the_users_own() {
    let dir = TempDir::new();
    let file = dir.0.join("config.yaml");
    std::fs::write(&file, "admin: {}\n").unwrap();
    chmod(&file, 0o644);
    for owners in [Owners::User, Owners::UserOrRoot] {
        let rule = owner_of(&file, owners);
        let meta = std::fs::File::open(&file).unwrap().metadata().unwrap();
        assert_eq!(rule.regular_file(&meta), Ok(()));
        assert_eq!(rule.private(&meta), Ok(()));
        assert_eq!(rule.private(&std::fs::metadata(&dir.0).unwrap()), Ok(()));
    }
}

#[test]
fn another_users_entry_is_refused_and_roots_only_where_allowed() {
    // `/` is root's: as seen by a user who is not root.
    let root_dir = std::fs::metadata("/").unwrap();
    assert_eq!(root_dir.uid(), 0);
    let user = 4242;
    assert_eq!(
        Ownership::new(user, Owners::User).owned(&root_dir),
        Err(NotOwn::Owner { owner: 0, user })
    );
    assert_eq!(
        Ownership::new(user, Owners::UserOrRoot).owned(&root_dir),
        Ok(())
    );
    // A file of the user running the test (root, in CI), as seen by another user.
    let dir = TempDir::new();
    let file = dir.0.join("token.json");
    std::fs::write(&file, "{}").unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    let other = meta.uid() + 1;
    let refused = Ownership::new(other, Owners::User).regular_file(&meta);
    assert_eq!(
        refused,
        Err(NotOwn::Owner {
            owner: meta.uid(),
            user: other
        })
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "it belongs to user id {}, not to this user (id {other})",
            meta.uid()
        )
    );
}

#[test]
fn an_entry_group_or_others_may_write_to_is_not_private() {
    let dir = TempDir::new();
    let file = dir.0.join("config.yaml");
    std::fs::write(&file, "admin: {}\n").unwrap();
    let rule = owner_of(&file, Owners::UserOrRoot);
    for mode in [0o664, 0o646, 0o666] {
        chmod(&file, mode);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(rule.private(&meta), Err(NotOwn::Writable { mode }));
        // Only the owner counts for a file whose contents decide nothing.
        assert_eq!(rule.regular_file(&meta), Ok(()));
    }
    chmod(&dir.0, 0o1777);
    assert_eq!(
        rule.private(&std::fs::metadata(&dir.0).unwrap()),
        Err(NotOwn::Writable { mode: 0o1777 })
    );
    // Readable by others is still private.
    chmod(&dir.0, 0o755);
    assert_eq!(rule.private(&std::fs::metadata(&dir.0).unwrap()), Ok(()));
}

#[test]
fn only_a_regular_file_is_a_file_and_the_others_are_named() {
    let dir = TempDir::new();
    let socket = dir.0.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let link = dir.0.join("link");
    std::os::unix::fs::symlink("/", &link).unwrap();
    for (path, kind) in [
        (socket.as_path(), "a socket"),
        (Path::new("/dev/null"), "a device"),
        (dir.0.as_path(), "a directory"),
    ] {
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(is_regular_file(&meta), Err(NotOwn::NotRegular { kind }));
        let rule = Ownership::new(meta.uid(), Owners::User);
        assert_eq!(rule.regular_file(&meta), Err(NotOwn::NotRegular { kind }));
        assert_eq!(
            rule.regular_file(&meta).unwrap_err().to_string(),
            format!("it is {kind}, not a regular file")
        );
    }
    let link_meta = std::fs::symlink_metadata(&link).unwrap();
    assert_eq!(kind_of(link_meta.file_type()), "a symbolic link");
}
