//! Choosing a store: `StoreKind`, `open_store`, and the automatic choice of `DefaultStore`.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::{
    ffi::OsString,
    path::PathBuf,
    time::{Duration, Instant},
};

use common::{child_role, spawn_self, spawn_self_without, unique};
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

/// What a task pod's environment lacks: a home, a cache directory, a session bus.
const POD_REMOVED: &[&str] = &[
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "FLYTE_AUTH_CACHE_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// A D-Bus address whose socket accepts connections and never answers: a probe of the keyring
/// there waits for its whole time limit. The socket lives as long as the returned directory.
#[cfg(unix)]
fn silent_bus() -> (
    tempfile::TempDir,
    std::os::unix::net::UnixListener,
    OsString,
) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    // Never accepted: connections wait in the backlog, and nothing is ever written to them.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let mut address = OsString::from("unix:path=");
    address.push(&socket);
    (dir, listener, address)
}

/// The automatic choice in the environment the parent test made: which store
/// (`FLYTE_AUTH_STORE_TEST_EXPECT`), decided well within the keyring probe's time limit, and
/// working. Run directly: the choice ends within the probe's limit and works.
#[test]
fn default_choice_is_bounded_and_works() {
    let expected = std::env::var("FLYTE_AUTH_STORE_TEST_EXPECT").ok();
    let dir = tempfile::tempdir().unwrap();
    let store = match child_role().as_deref() {
        Some("cache-dir-given") => DefaultStore::new(Some(dir.path().to_owned())),
        _ => DefaultStore::new(None),
    };
    let started = Instant::now();
    let chosen = store.chosen().name();
    let took = started.elapsed();
    let limit = match expected {
        // Nothing to ask: at once.
        Some(_) => Duration::from_secs(2),
        None => DefaultStore::PROBE_TIMEOUT + Duration::from_secs(5),
    };
    assert!(took < limit, "choosing took {took:?}");
    if let Some(expected) = &expected {
        assert_eq!(chosen, expected);
    }
    let endpoint =
        Endpoint::parse(&format!("{}.flyte-auth-test.example.org", unique("pod"))).unwrap();
    store
        .store(&endpoint, &Credentials::new("pod-token", endpoint.key()))
        .unwrap();
    let got = store.retrieve(&endpoint).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "pod-token");
    store.delete(&endpoint).unwrap();
    println!("chose {chosen} in {took:?}");
}

#[cfg(unix)]
#[test]
fn in_a_task_pod_without_a_home_tokens_stay_in_memory_and_no_bus_is_waited_on() {
    let (_dir, _bus, address) = silent_bus();
    let finished = spawn_self_without(
        "default_choice_is_bounded_and_works",
        "pod",
        &[
            ("KUBERNETES_SERVICE_HOST", OsString::from("10.96.0.1")),
            ("DBUS_SESSION_BUS_ADDRESS", address),
            ("FLYTE_AUTH_STORE_TEST_EXPECT", OsString::from("memory")),
        ],
        POD_REMOVED,
    )
    .wait(Duration::from_secs(120));
    finished.assert_test_passed();
}

#[cfg(all(unix, feature = "file"))]
#[test]
fn in_a_union_task_pod_with_a_cache_directory_tokens_go_to_files_at_once() {
    let (_dir, _bus, address) = silent_bus();
    let cache = tempfile::tempdir().unwrap();
    let finished = spawn_self_without(
        "default_choice_is_bounded_and_works",
        "pod",
        &[
            (
                "_U_EP_OVERRIDE",
                OsString::from("host.docker.internal:8090"),
            ),
            ("FLYTE_AUTH_CACHE_DIR", OsString::from(cache.path())),
            ("DBUS_SESSION_BUS_ADDRESS", address),
            ("FLYTE_AUTH_STORE_TEST_EXPECT", OsString::from("file")),
        ],
        &["HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"],
    )
    .wait(Duration::from_secs(120));
    finished.assert_test_passed();
}

#[cfg(all(unix, not(target_os = "macos"), feature = "file"))]
#[test]
fn without_a_session_bus_or_a_home_the_choice_is_immediate_and_works() {
    let finished = spawn_self_without(
        "default_choice_is_bounded_and_works",
        "cache-dir-given",
        &[("FLYTE_AUTH_STORE_TEST_EXPECT", OsString::from("file"))],
        POD_REMOVED,
    )
    .wait(Duration::from_secs(120));
    finished.assert_test_passed();
}

/// Beside the file store (a task pod, a notebook without a keyring), the Flyte 2 SDK's
/// `keyring.cfg`: the child reads and writes what the parent's real SDK wrote and reads.
#[cfg(all(feature = "keyring", feature = "file"))]
#[test]
fn beside_the_file_store_the_flyte2_sdk_s_keyring_cfg_is_used() {
    let Some(role) = child_role() else {
        return run_keyring_cfg_children();
    };
    let endpoint =
        Endpoint::parse(&std::env::var("FLYTE_AUTH_STORE_TEST_ENDPOINT").unwrap()).unwrap();
    let store = DefaultStore::new(None);
    assert_eq!(store.chosen().name(), "file");
    let got = store.retrieve(&endpoint).unwrap().expect("a login");
    match role.as_str() {
        "cfg-first" => {
            assert_eq!(got.access_token.expose_secret(), "sdk-a1");
            assert_eq!(got.refresh_token.unwrap().expose_secret(), "sdk-r1");
            let rotated = Credentials::new("rs-a2", endpoint.key())
                .with_refresh_token("rs-r2")
                .with_expires_in(3600);
            store.store(&endpoint, &rotated).unwrap();
            let back = store.retrieve(&endpoint).unwrap().unwrap();
            assert_eq!(back.access_token.expose_secret(), "rs-a2");
            assert!(!back.has_stale_copies());
        }
        "cfg-second" => {
            // The SDK refreshed after this store wrote: its copy is the newer one.
            assert_eq!(got.access_token.expose_secret(), "sdk-a3");
            assert_eq!(
                got.refresh_token.as_ref().unwrap().expose_secret(),
                "sdk-r3"
            );
            assert!(got.has_stale_copies());
            store.store(&endpoint, &got).unwrap();
            assert!(
                !store
                    .retrieve(&endpoint)
                    .unwrap()
                    .unwrap()
                    .has_stale_copies()
            );
            store.delete(&endpoint).unwrap();
            assert_eq!(store.retrieve(&endpoint).unwrap(), None);
        }
        other => panic!("unknown role {other}"),
    }
}

#[cfg(all(feature = "keyring", feature = "file"))]
fn run_keyring_cfg_children() {
    use common::flyte2_file_keyring;

    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let written = format!("dns:///{}.flyte-auth-test.example.org", unique("cfg"));
    let sdk = |action: &str, extra: &[(&str, &str)]| {
        flyte2_file_keyring(home.path(), action, &written, extra)
    };
    let child = |role: &str| {
        spawn_self_without(
            "beside_the_file_store_the_flyte2_sdk_s_keyring_cfg_is_used",
            role,
            &[
                ("HOME", OsString::from(home.path())),
                ("FLYTE_AUTH_CACHE_DIR", OsString::from(cache.path())),
                ("KUBERNETES_SERVICE_HOST", OsString::from("10.96.0.1")),
                ("FLYTE_AUTH_STORE_TEST_ENDPOINT", OsString::from(&written)),
            ],
            &["XDG_CACHE_HOME"],
        )
        .wait(Duration::from_secs(120))
        .assert_test_passed();
    };

    sdk("store", &[("ACCESS", "sdk-a1"), ("REFRESH", "sdk-r1")]);
    child("cfg-first");
    let back = sdk("retrieve", &[]);
    assert_eq!(
        (back["access"].as_str(), back["refresh"].as_str()),
        (Some("rs-a2"), Some("rs-r2")),
        "the SDK reads the rotation: {back}"
    );

    // File times have at least the resolution of a few milliseconds.
    std::thread::sleep(Duration::from_millis(50));
    sdk("store", &[("ACCESS", "sdk-a3"), ("REFRESH", "sdk-r3")]);
    child("cfg-second");
    assert!(sdk("retrieve", &[]).is_null(), "logged out everywhere");
}
