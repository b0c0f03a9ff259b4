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

use flyte_auth_core::owned::{
    NotOwn, Owners, Ownership, Trust, Unreadable, is_regular_file, kind_of, open_found, read_found,
};

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
        assert_eq!(is_regular_file(&meta), Ok(()));
        assert_eq!(rule.owned(&meta), Ok(()));
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
    let refused = Ownership::new(other, Owners::User).owned(&meta);
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
        assert_eq!(rule.owned(&meta), Ok(()));
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
        assert_eq!(
            is_regular_file(&meta).unwrap_err().to_string(),
            format!("it is {kind}, not a regular file")
        );
    }
    let link_meta = std::fs::symlink_metadata(&link).unwrap();
    assert_eq!(kind_of(link_meta.file_type()), "a symbolic link");
}

const MINE: Trust = Trust::Owned(Owners::User);

/// `read_found` of `path` as `trust` says, on a thread: a read that waits fails the test.
fn read_bounded(path: &Path, max: u64, trust: Trust) -> Result<Option<Vec<u8>>, Unreadable> {
    let (done, result) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || done.send(read_found(&path, max, trust)));
    result
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the read waits")
}

#[test]
fn a_found_file_is_read_whole_and_bounded_and_a_missing_one_is_none() {
    let dir = TempDir::new();
    let file = dir.0.join("token.json");
    std::fs::write(&file, "1234").unwrap();
    chmod(&file, 0o644);
    for trust in [Trust::Named, MINE, Trust::Private(Owners::User)] {
        assert_eq!(
            read_bounded(&file, 4, trust).unwrap(),
            Some(b"1234".to_vec())
        );
        assert!(matches!(
            read_bounded(&file, 3, trust),
            Err(Unreadable::TooLarge(3))
        ));
        assert!(
            read_bounded(&dir.0.join("missing"), 4, trust)
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(
        read_bounded(&file, 3, MINE).unwrap_err().to_string(),
        "it is larger than 3 bytes"
    );
}

#[test]
fn a_fifo_is_refused_at_once_named_or_found() {
    let dir = TempDir::new();
    let fifo = dir.0.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for trust in [Trust::Named, MINE] {
        assert!(matches!(
            read_bounded(&fifo, 1024, trust),
            Err(Unreadable::NotOwn(NotOwn::NotRegular { kind: "a FIFO" }))
        ));
    }
    // Opened to write (a lock file), too.
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true);
    assert!(matches!(
        open_found(&fifo, &mut options, MINE),
        Err(Unreadable::NotOwn(NotOwn::NotRegular { kind: "a FIFO" }))
    ));
}

#[test]
fn a_link_is_followed_only_to_a_named_file() {
    let dir = TempDir::new();
    let target = dir.0.join("target");
    std::fs::write(&target, "theirs").unwrap();
    let link = dir.0.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(
        read_bounded(&link, 1024, Trust::Named).unwrap(),
        Some(b"theirs".to_vec())
    );
    for trust in [MINE, Trust::Private(Owners::UserOrRoot)] {
        let refused = read_bounded(&link, 1024, trust).unwrap_err();
        assert!(matches!(refused, Unreadable::Link), "{refused:?}");
        assert_eq!(refused.to_string(), "it is a symbolic link (not followed)");
    }
    // A dangling link is refused too, and nothing is created through it.
    let dangling = dir.0.join("dangling");
    std::os::unix::fs::symlink(dir.0.join("created"), &dangling).unwrap();
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create(true).truncate(false);
    assert!(matches!(
        open_found(&dangling, &mut create, MINE),
        Err(Unreadable::Link)
    ));
    assert!(!dir.0.join("created").exists());
}

/// The tests run as root, who can give a file to `nobody`.
#[test]
fn a_found_file_of_another_user_or_open_to_others_is_refused_a_named_one_is_read() {
    const NOBODY: u32 = 65534;
    let dir = TempDir::new();
    let file = dir.0.join("config.yaml");
    std::fs::write(&file, "admin: {}").unwrap();
    chmod(&file, 0o664);
    assert!(read_bounded(&file, 1024, MINE).unwrap().is_some());
    for owners in [Owners::User, Owners::UserOrRoot] {
        assert!(matches!(
            read_bounded(&file, 1024, Trust::Private(owners)),
            Err(Unreadable::NotOwn(NotOwn::Writable { mode: 0o664 }))
        ));
    }
    chmod(&file, 0o644);
    assert!(
        read_bounded(&file, 1024, Trust::Private(Owners::User))
            .unwrap()
            .is_some()
    );

    std::os::unix::fs::chown(&file, Some(NOBODY), None).unwrap_or_else(|e| {
        panic!(
            "chown {} to nobody: {e} (the tests run as root)",
            file.display()
        )
    });
    for trust in [MINE, Trust::Private(Owners::UserOrRoot)] {
        assert!(matches!(
            read_bounded(&file, 1024, trust),
            Err(Unreadable::NotOwn(NotOwn::Owner { owner: NOBODY, .. }))
        ));
    }
    assert!(read_bounded(&file, 1024, Trust::Named).unwrap().is_some());
}
