//! `KeyringStore` against a real Secret Service, and against Python's `keyring` (what pyflyte
//! uses) in both directions.
//!
//! These tests need a D-Bus session with an unlocked Secret Service; run them as
//! `.ci/with-secret-service cargo test -p flyte-auth-store`. Without one they fail (they are
//! not skipped), saying so.

#![cfg(all(feature = "keyring", unix, not(target_os = "macos")))]
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::{
    ffi::OsString,
    os::unix::net::UnixListener,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{child_role, python, spawn_self, unique};
use flyte_auth_store::{Credentials, Endpoint, KeyringStore, StoreError, TokenStore};
#[cfg(feature = "file")]
use flyte_auth_store::{DefaultStore, FileStore};

const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// A keyring store; fails the test, saying how to run it, when no Secret Service works here.
fn keyring() -> KeyringStore {
    let store = KeyringStore::new().with_timeout(Duration::from_secs(30));
    if let Err(e) = store.probe_writable() {
        panic!(
            "the keyring tests need a D-Bus session with an unlocked Secret Service; run them \
             as `.ci/with-secret-service cargo test -p flyte-auth-store` (the keyring said: {e})"
        );
    }
    store
}

/// An endpoint of its own for one test, written `host:443` (flytekit's service name); its
/// entries are deleted at the end.
struct Server(Endpoint);

impl Server {
    fn new(test: &str) -> Self {
        let written = format!("{}.flyte-auth-test.example.org:443", unique(test));
        Self(Endpoint::parse(&written).unwrap())
    }
    /// The endpoint as written: flytekit's service.
    fn as_str(&self) -> &str {
        self.0.as_written()
    }
    fn ep(&self) -> &Endpoint {
        &self.0
    }
    /// What stored credentials are for: the host, without the default port.
    fn key(&self) -> &str {
        self.0.key()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = KeyringStore::new().delete(&self.0);
    }
}

/// A JWT (unsigned) whose `exp` claim is `exp`.
fn jwt(subject: &str, exp: u64) -> String {
    let enc = |s: String| {
        // URL-safe base64 without padding, written out to need no extra dependency.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    };
    format!(
        "{}.{}.sig",
        enc(r#"{"alg":"none"}"#.to_owned()),
        enc(format!(r#"{{"sub":"{subject}","exp":{exp}}}"#))
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Python's keyring reads the three entries as flytekit's `KeyringStore.retrieve` does.
const PY_READ: &str = r#"
import json, os, keyring
svc = os.environ["SVC"]
print(json.dumps({u: keyring.get_password(svc, u) for u in ["access_token", "refresh_token", "id_token", "flyte_auth_metadata"]}))
"#;

/// Python's keyring writes what the environment holds, as flytekit's `KeyringStore.store`.
const PY_WRITE: &str = r#"
import os, keyring
svc = os.environ["SVC"]
for u in ["refresh_token", "access_token", "id_token"]:
    if os.environ.get(u.upper()):
        keyring.set_password(svc, u, os.environ[u.upper()])
"#;

/// How many Secret Service items hold `username` for the service.
const PY_COUNT: &str = r#"
import os, secretstorage
conn = secretstorage.dbus_init()
items = list(secretstorage.search_items(conn, {"service": os.environ["SVC"], "username": os.environ["USERNAME"]}))
print(len(items))
"#;

fn python_reads(endpoint: &Server) -> serde_json::Value {
    serde_json::from_str(&python(PY_READ, &[("SVC", endpoint.as_str())])).unwrap()
}

fn python_item_count(endpoint: &Server, username: &str) -> usize {
    python(
        PY_COUNT,
        &[("SVC", endpoint.as_str()), ("USERNAME", username)],
    )
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn credentials_round_trip_with_every_field() {
    let store = keyring();
    let endpoint = Server::new("round-trip");
    assert_eq!(store.retrieve(endpoint.ep()).unwrap(), None);

    let creds = Credentials::new("access-1", endpoint.key())
        .with_refresh_token("refresh-1")
        .with_id_token("id-1")
        .with_expires_in(3600)
        .with_client_id("flytectl")
        .with_scopes(["all", "offline"]);
    store.store(endpoint.ep(), &creds).unwrap();
    assert_eq!(store.retrieve(endpoint.ep()).unwrap(), Some(creds));

    store.delete(endpoint.ep()).unwrap();
    assert_eq!(store.retrieve(endpoint.ep()).unwrap(), None);
    store.delete(endpoint.ep()).unwrap(); // nothing to delete is fine
    assert_eq!(store.name(), "keyring");
}

#[cfg(feature = "file")]
#[test]
fn the_lock_is_the_sidecar_file_the_file_store_uses_too() {
    let dir = tempfile::tempdir().unwrap();
    let short = Duration::from_millis(200);
    let store = KeyringStore::new()
        .with_lock_dir(dir.path())
        .with_lock_timeout(short);
    let endpoint = &Endpoint::parse("flyte.example.org:443").unwrap();
    let held = store
        .lock(endpoint)
        .unwrap()
        .expect("the keyring store locks");

    let files = flyte_auth_store::FileStore::in_dir(dir.path()).with_lock_timeout(short);
    assert!(files.lock_path_for(endpoint).is_file());
    match files.lock(endpoint) {
        Err(StoreError::Io {
            operation: "lock", ..
        }) => {}
        other => panic!("the lock file was not shared: {other:?}"),
    }
    drop(held);
    assert!(files.lock(endpoint).unwrap().is_some());
    assert!(
        KeyringStore::new()
            .without_lock()
            .lock(endpoint)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_store_without_refresh_or_id_token_removes_the_old_ones() {
    let store = keyring();
    let endpoint = Server::new("replace");
    store
        .store(
            endpoint.ep(),
            &Credentials::new("access-1", endpoint.key())
                .with_refresh_token("refresh-1")
                .with_id_token("id-1"),
        )
        .unwrap();
    let bare = Credentials::new("access-2", endpoint.key()).with_expires_in(60);
    store.store(endpoint.ep(), &bare).unwrap();
    assert_eq!(store.retrieve(endpoint.ep()).unwrap(), Some(bare));
}

#[test]
fn a_login_stored_by_python_keyring_is_read() {
    let store = keyring();
    let endpoint = Server::new("from-python");
    let exp = now() + 1800;
    let access = jwt("user", exp);
    python(
        PY_WRITE,
        &[
            ("SVC", endpoint.as_str()),
            ("ACCESS_TOKEN", &access),
            ("REFRESH_TOKEN", "py-refresh"),
            ("ID_TOKEN", "py-id"),
        ],
    );

    let got = store
        .retrieve(endpoint.ep())
        .unwrap()
        .expect("python's entries");
    assert_eq!(got.access_token.expose_secret(), access);
    assert_eq!(got.refresh_token.unwrap().expose_secret(), "py-refresh");
    assert_eq!(got.id_token.unwrap().expose_secret(), "py-id");
    assert_eq!(got.for_endpoint, endpoint.key());
    // pyflyte stores no expiry: it comes from the token's `exp` claim.
    assert_eq!(got.expires_at_unix, Some(exp));
    assert_eq!(got.client_id, None);
}

#[test]
fn what_this_store_writes_is_read_by_python_keyring_like_pyflyte() {
    let store = keyring();
    let endpoint = Server::new("to-python");
    store
        .store(
            endpoint.ep(),
            &Credentials::new("rs-access", endpoint.key())
                .with_refresh_token("rs-refresh")
                .with_id_token("rs-id")
                .with_expires_in(3600)
                .with_client_id("flytectl"),
        )
        .unwrap();

    let seen = python_reads(&endpoint);
    assert_eq!(seen["access_token"], "rs-access");
    assert_eq!(seen["refresh_token"], "rs-refresh");
    assert_eq!(seen["id_token"], "rs-id");
    // The extra entry is plain metadata under a username pyflyte never asks for.
    let metadata: serde_json::Value =
        serde_json::from_str(seen["flyte_auth_metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata["version"], 1);
    assert_eq!(metadata["client_id"], "flytectl");
    assert!(metadata["expires_at_unix"].as_u64().unwrap() >= now() + 3500);
    let text = metadata.to_string();
    assert!(
        !text.contains("rs-access") && !text.contains("rs-refresh"),
        "{text}"
    );
}

#[test]
fn python_replacing_a_token_updates_the_same_item_and_stale_metadata_is_ignored() {
    let store = keyring();
    let endpoint = Server::new("py-replaces");
    store
        .store(
            endpoint.ep(),
            &Credentials::new("rs-access", endpoint.key())
                .with_refresh_token("rs-refresh")
                .with_expires_in(60)
                .with_client_id("flytectl"),
        )
        .unwrap();

    let exp = now() + 7200;
    let newer = jwt("user", exp);
    python(
        PY_WRITE,
        &[
            ("SVC", endpoint.as_str()),
            ("ACCESS_TOKEN", &newer),
            ("REFRESH_TOKEN", "py-refresh"),
        ],
    );
    // Python replaced our items instead of adding a second one beside each.
    assert_eq!(python_item_count(&endpoint, "access_token"), 1);
    assert_eq!(python_item_count(&endpoint, "refresh_token"), 1);

    let got = store.retrieve(endpoint.ep()).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), newer);
    assert_eq!(got.refresh_token.unwrap().expose_secret(), "py-refresh");
    // Our metadata described the old token: its 60 s expiry and client id no longer apply.
    assert_eq!(got.expires_at_unix, Some(exp));
    assert_eq!(got.client_id, None);

    // And the other way round: our write replaces Python's items.
    store
        .store(
            endpoint.ep(),
            &Credentials::new("rs-again", endpoint.key()).with_refresh_token("rs-refresh-2"),
        )
        .unwrap();
    assert_eq!(python_item_count(&endpoint, "access_token"), 1);
    assert_eq!(python_reads(&endpoint)["access_token"], "rs-again");
}

#[test]
fn an_id_token_alone_is_enough_and_a_refresh_token_alone_is_not() {
    let store = keyring();
    let endpoint = Server::new("id-only");
    python(
        PY_WRITE,
        &[("SVC", endpoint.as_str()), ("REFRESH_TOKEN", "py-refresh")],
    );
    assert_eq!(store.retrieve(endpoint.ep()).unwrap(), None);

    let id = jwt("user", now() + 600);
    python(PY_WRITE, &[("SVC", endpoint.as_str()), ("ID_TOKEN", &id)]);
    let got = store
        .retrieve(endpoint.ep())
        .unwrap()
        .expect("an id token is enough");
    assert_eq!(got.id_token.unwrap().expose_secret(), id);
    assert_eq!(
        got.access_token.expose_secret(),
        id,
        "the id token is the bearer token"
    );
    assert_eq!(got.refresh_token.unwrap().expose_secret(), "py-refresh");
}

#[test]
fn delete_removes_what_python_wrote_too() {
    let store = keyring();
    let endpoint = Server::new("delete-python");
    python(
        PY_WRITE,
        &[
            ("SVC", endpoint.as_str()),
            ("ACCESS_TOKEN", "a"),
            ("REFRESH_TOKEN", "r"),
            ("ID_TOKEN", "i"),
        ],
    );
    store.delete(endpoint.ep()).unwrap();
    let seen = python_reads(&endpoint);
    for user in [
        "access_token",
        "refresh_token",
        "id_token",
        "flyte_auth_metadata",
    ] {
        assert!(seen[user].is_null(), "{user} is still there: {seen}");
    }
}

#[test]
fn the_dns_prefix_of_flyte_configs_names_the_same_service() {
    let store = keyring();
    let endpoint = Server::new("dns-prefix");
    let prefixed = Endpoint::parse(&format!("dns:///{}", endpoint.as_str())).unwrap();
    store
        .store(&prefixed, &Credentials::new("prefixed", prefixed.key()))
        .unwrap();
    assert_eq!(python_reads(&endpoint)["access_token"], "prefixed");
    let got = store.retrieve(endpoint.ep()).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "prefixed");
}

/// Every call against the environment's keyring ends within its time limit, without a panic.
///
/// Run directly (with a Secret Service): the calls succeed. In a child whose D-Bus address
/// leads nowhere (`no-bus`) or to a peer that never answers (`silent-bus`), each call fails
/// with a typed `Unavailable` and no token in the message.
#[test]
fn keyring_calls_end_within_their_time_limit() {
    let role = child_role();
    let store = match role.as_deref() {
        Some("silent-bus") => KeyringStore::new().with_timeout(Duration::from_millis(500)),
        Some(_) => KeyringStore::new(),
        None => keyring(),
    };
    let endpoint = Endpoint::parse(&format!("{}.example.org", unique("bounded"))).unwrap();
    let creds =
        Credentials::new("SECRET-ACCESS", endpoint.key()).with_refresh_token("SECRET-REFRESH");
    let started = Instant::now();
    let results = [
        ("probe", store.probe().map(|()| String::new())),
        (
            "store",
            store.store(&endpoint, &creds).map(|()| String::new()),
        ),
        (
            "retrieve",
            store.retrieve(&endpoint).map(|c| format!("{c:?}")),
        ),
        ("delete", store.delete(&endpoint).map(|()| String::new())),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    for (call, result) in results {
        match (role.as_deref(), result) {
            (None, Ok(_)) => {}
            (Some(_), Err(e @ StoreError::Unavailable { .. })) => {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains("SECRET"), "{call}: {shown}");
                println!("{call}: {e}");
            }
            (role, other) => panic!("{call} ({role:?}): unexpected {other:?}"),
        }
    }
}

#[test]
fn without_a_session_bus_every_call_is_unavailable() {
    let finished = spawn_self(
        "keyring_calls_end_within_their_time_limit",
        "no-bus",
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            OsString::from("unix:path=/nonexistent/flyte-auth-test/bus"),
        )],
    )
    .wait(CHILD_LIMIT);
    finished.assert_test_passed();
    assert!(finished.stdout.contains("D-Bus"), "{}", finished.stdout);
}

#[test]
fn a_bus_that_never_answers_gives_unavailable_after_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent-bus");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    // Accept connections and never answer, until the test ends.
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let acceptor = thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + CHILD_LIMIT;
        while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
            match listener.accept() {
                Ok((conn, _)) => held.push(conn),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
        held.len()
    });

    let mut address = OsString::from("unix:path=");
    address.push(&socket);
    let finished = spawn_self(
        "keyring_calls_end_within_their_time_limit",
        "silent-bus",
        &[("DBUS_SESSION_BUS_ADDRESS", address)],
    )
    .wait(CHILD_LIMIT);
    stop.store(true, Ordering::SeqCst);
    let connections = acceptor.join().unwrap();
    finished.assert_test_passed();
    assert!(
        connections >= 1,
        "the child never connected to the silent bus"
    );
    assert!(
        finished.stdout.contains("did not answer"),
        "{}",
        finished.stdout
    );
}

/// A logout through the default store (the keyring, here) also removes a login an earlier
/// process saved to the file store while the keyring did not answer.
#[cfg(feature = "file")]
#[test]
fn a_default_store_logout_removes_the_login_from_the_keyring_and_the_file_store() {
    let _ = keyring();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Server::new("logout-both");
    let files = FileStore::in_dir(dir.path());
    files
        .store(
            endpoint.ep(),
            &Credentials::new("file-token", endpoint.key()),
        )
        .unwrap();

    let store = DefaultStore::new(Some(dir.path().to_owned()));
    store
        .store(
            endpoint.ep(),
            &Credentials::new("keyring-token", endpoint.key()),
        )
        .unwrap();
    assert_eq!(store.name(), "keyring");
    store.delete(endpoint.ep()).unwrap();

    assert_eq!(KeyringStore::new().retrieve(endpoint.ep()).unwrap(), None);
    assert_eq!(
        files.retrieve(endpoint.ep()).unwrap(),
        None,
        "the login kept in the file outlived the logout"
    );
}

/// The default store's fallback is visible and undone.
///
/// Run directly (with a Secret Service): the login goes to the keyring, nothing is reported
/// at `warn`. In a child with no session bus (`no-keyring`): the login goes to the file store
/// and the first save says so at `warn`, naming the file; a logout removes the file.
#[cfg(feature = "file")]
#[test]
fn a_login_saved_by_the_fallback_is_reported_and_removed_by_a_logout() {
    let (dir, _keep) = match std::env::var_os("FLYTE_AUTH_STORE_TEST_DIR") {
        Some(dir) => (std::path::PathBuf::from(dir), None),
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_owned(), Some(temp))
        }
    };
    let endpoint = Server::new("fallback");
    let path = FileStore::in_dir(&dir).path_for(endpoint.ep());
    let store = DefaultStore::new(Some(dir.clone()));
    let creds = Credentials::new("FALLBACK-TOKEN", endpoint.key());
    let (saved, logs) = common::capture_logs(|| store.store(endpoint.ep(), &creds));
    saved.unwrap();
    assert!(!logs.contains("FALLBACK-TOKEN"), "{logs}");
    // What the choice said (the directory's own checks may warn too).
    let said = |logs: &str| -> Vec<String> {
        logs.lines()
            .filter(|l| l.contains("WARN flyte_auth_store::select"))
            .map(str::to_owned)
            .collect()
    };
    let warnings = said(&logs);
    match child_role().as_deref() {
        Some("no-keyring") => {
            assert_eq!(store.name(), "file");
            assert!(path.is_file());
            assert!(
                warnings.len() == 1
                    && warnings[0].contains("keyring did not answer")
                    && warnings[0].contains(&path.display().to_string()),
                "{logs}"
            );
            // Once per store: a refresh saved later is not reported again.
            let (saved, logs) = common::capture_logs(|| store.store(endpoint.ep(), &creds));
            saved.unwrap();
            assert!(said(&logs).is_empty(), "{logs}");
            let (deleted, logs) = common::capture_logs(|| store.delete(endpoint.ep()));
            deleted.unwrap();
            assert!(said(&logs).is_empty(), "{logs}");
            assert!(!path.exists(), "the logout left the file");
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            assert_eq!(store.name(), "keyring", "{logs}");
            assert!(warnings.is_empty(), "{logs}");
            assert!(!path.exists());
            store.delete(endpoint.ep()).unwrap();
        }
    }
    println!("saved to {}", store.name());
}

#[cfg(feature = "file")]
#[test]
fn without_a_keyring_the_default_store_says_where_the_login_went() {
    let dir = tempfile::tempdir().unwrap();
    let finished = spawn_self(
        "a_login_saved_by_the_fallback_is_reported_and_removed_by_a_logout",
        "no-keyring",
        &[
            (
                "DBUS_SESSION_BUS_ADDRESS",
                OsString::from("unix:path=/nonexistent/flyte-auth-test/bus"),
            ),
            ("FLYTE_AUTH_STORE_TEST_DIR", OsString::from(dir.path())),
        ],
    )
    .wait(CHILD_LIMIT);
    finished.assert_test_passed();
    assert!(
        finished.stdout.contains("saved to file"),
        "{}",
        finished.stdout
    );
}
