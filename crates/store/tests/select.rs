//! Choosing a store: `StoreKind`, `open_store`, and the automatic choice of `DefaultStore`.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::{ffi::OsString, path::PathBuf, time::Duration};

use common::{child_role, spawn_self, unique};
use flyte_auth_store::{Credentials, DefaultStore, Endpoint, StoreKind, TokenStore, open_store};

#[test]
fn store_kinds_parse_from_their_names_and_print_back() {
    for kind in StoreKind::ALL {
        assert_eq!(kind.to_string().parse::<StoreKind>().unwrap(), kind);
        assert_eq!(
            kind.as_str().to_uppercase().parse::<StoreKind>().unwrap(),
            kind
        );
    }
    assert_eq!(StoreKind::default(), StoreKind::Auto);
    let err = "vault".parse::<StoreKind>().unwrap_err().to_string();
    assert!(
        err.contains("vault") && err.contains("auto, keyring, file, memory"),
        "{err}"
    );
}

#[test]
fn each_kind_opens_its_store_without_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let open = |kind| open_store(kind, Some(tokens.clone())).unwrap();
    assert_eq!(open(StoreKind::Memory).name(), "memory");
    assert_eq!(open(StoreKind::Auto).name(), "auto");
    #[cfg(feature = "file")]
    assert_eq!(open(StoreKind::File).name(), "file");
    #[cfg(feature = "keyring")]
    assert_eq!(open(StoreKind::Keyring).name(), "keyring");
    assert!(!tokens.exists(), "opening a store created its directory");
}

#[cfg(feature = "file")]
#[test]
fn the_file_kind_keeps_credentials_in_the_given_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(StoreKind::File, Some(dir.path().to_owned())).unwrap();
    let endpoint = Endpoint::parse("dns:///flyte.example.org").unwrap();
    store
        .store(&endpoint, &Credentials::new("t", endpoint.key()))
        .unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let again = open_store(StoreKind::File, Some(dir.path().to_owned())).unwrap();
    assert!(again.retrieve(&endpoint).unwrap().is_some());
}

#[cfg(not(feature = "keyring"))]
#[test]
fn a_kind_this_build_lacks_is_unavailable() {
    let err = open_store(StoreKind::Keyring, None).unwrap_err();
    assert!(
        matches!(err, flyte_auth_store::StoreError::Unavailable { .. }),
        "{err:?}"
    );
}

/// Which store `auto` picks, and that it works.
///
/// Run directly (the suite runs under a Secret Service): the keyring. In a child with no
/// session bus: the file store, in the directory the parent gave.
#[test]
fn auto_choice() {
    let (dir, _keep) = match std::env::var_os("FLYTE_AUTH_STORE_TEST_DIR") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_owned(), Some(temp))
        }
    };
    let store = DefaultStore::new(Some(dir.clone()));
    let expected = match child_role().as_deref() {
        Some("no-keyring") if cfg!(feature = "file") => "file",
        Some("no-keyring") => "memory",
        Some(other) => panic!("unknown role {other}"),
        None if cfg!(feature = "keyring") => "keyring",
        None if cfg!(feature = "file") => "file",
        None => "memory",
    };
    assert_eq!(store.name(), "auto");

    let endpoint =
        Endpoint::parse(&format!("{}.flyte-auth-test.example.org", unique("auto"))).unwrap();
    store
        .store(&endpoint, &Credentials::new("auto-token", endpoint.key()))
        .unwrap();
    assert_eq!(
        store.name(),
        expected,
        "the keyring tests need a Secret Service: run them as \
         `.ci/with-secret-service cargo test -p flyte-auth-store`"
    );
    let got = store.retrieve(&endpoint).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "auto-token");
    let in_files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) > 0;
    assert_eq!(in_files, expected == "file");
    store.delete(&endpoint).unwrap();
    assert!(store.retrieve(&endpoint).unwrap().is_none());
    println!("auto chose {}", store.name());
}

// The child's bad D-Bus address stands for "no keyring" only where the keyring is the
// Secret Service.
#[cfg(any(not(feature = "keyring"), all(unix, not(target_os = "macos"))))]
#[test]
fn auto_falls_back_to_files_when_no_keyring_answers() {
    let dir = tempfile::tempdir().unwrap();
    let finished = spawn_self(
        "auto_choice",
        "no-keyring",
        &[
            (
                "DBUS_SESSION_BUS_ADDRESS",
                OsString::from("unix:path=/nonexistent/flyte-auth-test/bus"),
            ),
            ("FLYTE_AUTH_STORE_TEST_DIR", OsString::from(dir.path())),
        ],
    )
    .wait(Duration::from_secs(120));
    finished.assert_test_passed();
    if cfg!(feature = "file") {
        assert!(
            finished.stdout.contains("auto chose file"),
            "{}",
            finished.stdout
        );
    }
}
