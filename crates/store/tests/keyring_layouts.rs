//! `KeyringStore` and the other Flyte tools' layouts, in a real Secret Service: the real
//! flytekit and the real Flyte 2 SDK (their `KeyringStore`s, run in Python subprocesses), and
//! flytectl's entry written exactly as Go's keyring writes it (Secret Service item with the
//! attributes `service` and `username`, JSON of `oauth2.Token`), flyte-sdk-go's entries written
//! as its keyring (zalando/go-keyring) writes them, and the Flyte 2 SDK's `keyring.cfg` written
//! and read by the SDK's own file keyring backend.
//!
//! Run as `.ci/with-secret-service cargo test -p flyte-auth-store`; needs
//! `pip install flytekit 'flyte==2.12.1'` (`.ci/run` installs them).

#![cfg(all(feature = "keyring", unix, not(target_os = "macos")))]
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{flyte2_file_keyring, python, unique};
use flyte_auth_store::{Credentials, Endpoint, KeyringStore, TokenStore};

/// The endpoint of one test, written as a flytectl config writes it; every tool's entries for
/// it are deleted at the end.
struct Server {
    endpoint: Endpoint,
}

impl Server {
    fn new(test: &str) -> Self {
        let written = format!("dns:///{}.flyte-auth-test.example.org", unique(test));
        Self {
            endpoint: Endpoint::parse(&written).unwrap(),
        }
    }
    fn store(&self) -> KeyringStore {
        let store = KeyringStore::new()
            .with_timeout(Duration::from_secs(30))
            .without_lock();
        if let Err(e) = store.probe_writable() {
            panic!(
                "the keyring tests need a D-Bus session with an unlocked Secret Service; run \
                 them as `.ci/with-secret-service cargo test -p flyte-auth-store` ({e})"
            );
        }
        store
    }
    fn key(&self) -> &str {
        self.endpoint.key()
    }
    fn ep(&self) -> &Endpoint {
        &self.endpoint
    }
    fn written(&self) -> &str {
        self.endpoint.as_written()
    }
    /// flytekit's service: the endpoint as configured, without `dns:///`.
    fn flytekit_service(&self) -> &str {
        self.written().strip_prefix("dns:///").unwrap()
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ENDPOINT", self.written().to_owned()),
            ("FLYTEKIT_SERVICE", self.flytekit_service().to_owned()),
        ]
    }
    fn py(&self, script: &str, extra: &[(&str, &str)]) -> serde_json::Value {
        let env = self.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        let out = python(script, &all);
        serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = KeyringStore::new().delete(&self.endpoint);
    }
}

/// The real flytekit's `KeyringStore`.
const FLYTEKIT_STORE: &str = r#"
import os
from flytekit.clients.auth.keyring import Credentials, KeyringStore
KeyringStore.store(Credentials(access_token=os.environ["ACCESS"], refresh_token=os.environ.get("REFRESH") or None,
                               for_endpoint=os.environ["FLYTEKIT_SERVICE"], id_token=os.environ.get("ID") or None))
print("null")
"#;
const FLYTEKIT_RETRIEVE: &str = r#"
import json, os
from flytekit.clients.auth.keyring import KeyringStore
c = KeyringStore.retrieve(os.environ["FLYTEKIT_SERVICE"])
print(json.dumps(None if c is None else {"access": c.access_token, "refresh": c.refresh_token, "id": c.id_token}))
"#;

/// The real Flyte 2 SDK's `KeyringStore` (it strips the scheme from the endpoint itself).
const FLYTE2_STORE: &str = r#"
import os
from flyte.remote._client.auth._keyring import Credentials, KeyringStore
KeyringStore.store(Credentials(access_token=os.environ["ACCESS"], refresh_token=os.environ.get("REFRESH") or None,
                               for_endpoint=os.environ["ENDPOINT"]))
print("null")
"#;
const FLYTE2_RETRIEVE: &str = r#"
import json, os
from flyte.remote._client.auth._keyring import KeyringStore
c = KeyringStore.retrieve(os.environ["ENDPOINT"])
print(json.dumps(None if c is None else {"access": c.access_token, "refresh": c.refresh_token}))
"#;

/// flytectl's entry as Go's keyring (zalando/go-keyring) writes it on the Secret Service: an
/// item in the default collection with the attributes `username` and `service` only.
const FLYTECTL_WRITE: &str = r#"
import os, secretstorage
conn = secretstorage.dbus_init()
coll = secretstorage.get_default_collection(conn)
user = os.environ["ENDPOINT"] + ":flytectl-user"
coll.create_item(f"Password for '{user}' on 'flytectl'", {"username": user, "service": "flytectl"},
                 os.environ["TOKEN_JSON"].encode(), replace=True)
print("null")
"#;
const FLYTECTL_READ: &str = r#"
import json, os, secretstorage
conn = secretstorage.dbus_init()
user = os.environ["ENDPOINT"] + ":flytectl-user"
items = list(secretstorage.search_items(conn, {"username": user, "service": "flytectl"}))
print(json.dumps({"count": len(items), "token": json.loads(items[0].get_secret().decode()) if items else None}))
"#;

/// flyte-sdk-go's entries as zalando/go-keyring writes them on the Secret Service: items with
/// the attributes `username` and `service` only; the service is the host without its port.
const GO_WRITE: &str = r#"
import os, secretstorage
conn = secretstorage.dbus_init()
coll = secretstorage.get_default_collection(conn)
for user in ("access_token", "refresh_token"):
    if os.environ.get(user.upper()):
        coll.create_item(f"Password for '{user}' on '{os.environ['GO_SERVICE']}'",
                         {"username": user, "service": os.environ["GO_SERVICE"]},
                         os.environ[user.upper()].encode(), replace=True)
print("null")
"#;
const GO_READ: &str = r#"
import json, os, secretstorage
conn = secretstorage.dbus_init()
out = {}
for user in ("access_token", "refresh_token"):
    items = list(secretstorage.search_items(conn, {"username": user, "service": os.environ["GO_SERVICE"]}))
    out[user] = [i.get_secret().decode() for i in items]
print(json.dumps(out))
"#;

/// A JWT (unsigned) whose `exp` is `exp`.
fn jwt(exp: u64, tag: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.sig",
        b64(r#"{"alg":"none"}"#.to_owned()),
        b64(format!(r#"{{"exp":{exp},"sub":"{tag}"}}"#))
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_login_stored_by_the_real_flytekit_is_used_and_an_id_token_sets_no_expiry() {
    let server = Server::new("flytekit-in");
    let store = server.store();
    python_store(
        &server,
        FLYTEKIT_STORE,
        "fk-access",
        Some("fk-refresh"),
        Some("fk-id"),
    );
    let got = store
        .retrieve(server.ep())
        .unwrap()
        .expect("flytekit's login");
    assert_eq!(got.access_token.expose_secret(), "fk-access");
    assert_eq!(
        got.refresh_token.as_ref().unwrap().expose_secret(),
        "fk-refresh"
    );
    assert_eq!(got.for_endpoint, server.key());
    assert!(!got.expiry_is_known(), "flytekit stores no expiry");
    assert!(!got.has_stale_copies());
    assert_eq!(got.id_token.unwrap().expose_secret(), "fk-id");
}

#[test]
fn a_login_stored_by_the_real_flyte2_sdk_is_used() {
    let server = Server::new("flyte2-in");
    let store = server.store();
    python_store(&server, FLYTE2_STORE, "f2-access", Some("f2-refresh"), None);
    let got = store
        .retrieve(server.ep())
        .unwrap()
        .expect("Flyte 2's login");
    assert_eq!(got.access_token.expose_secret(), "f2-access");
    assert!(!got.expiry_is_known());
    assert_eq!(got.refresh_token.unwrap().expose_secret(), "f2-refresh");
}

#[test]
fn flytectl_s_entry_is_read_with_its_expiry_and_written_back_as_go_writes_it() {
    let server = Server::new("flytectl");
    let store = server.store();
    let expiry = now() + 1800;
    let expiry_text = rfc3339(expiry);
    let json = format!(
        r#"{{"access_token":"ctl-access","token_type":"bearer","refresh_token":"ctl-refresh","expiry":"{expiry_text}","expires_in":1800}}"#
    );
    server.py(FLYTECTL_WRITE, &[("TOKEN_JSON", &json)]);
    let got = store
        .retrieve(server.ep())
        .unwrap()
        .expect("flytectl's login");
    assert_eq!(got.access_token.expose_secret(), "ctl-access");
    assert_eq!(got.expires_at_unix, Some(expiry));
    assert_eq!(got.refresh_token.unwrap().expose_secret(), "ctl-refresh");

    // Go's zero time: expiry unknown.
    let zero = r#"{"access_token":"ctl-2","expiry":"0001-01-01T00:00:00Z"}"#;
    server.py(FLYTECTL_WRITE, &[("TOKEN_JSON", zero)]);
    let got = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "ctl-2");
    assert!(!got.expiry_is_known());

    // A new login goes to flytectl's entry too (it held one), in Go's format, replacing the
    // item Go wrote rather than adding one beside it.
    store
        .store(
            server.ep(),
            &Credentials::new("rs-access", server.key())
                .with_refresh_token("rs-refresh")
                .with_expires_in(3600),
        )
        .unwrap();
    let seen = server.py(FLYTECTL_READ, &[]);
    assert_eq!(seen["count"], 1, "{seen}");
    let token = &seen["token"];
    assert_eq!(token["access_token"], "rs-access");
    assert_eq!(token["refresh_token"], "rs-refresh");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    let written = token["expiry"].as_str().unwrap();
    assert!(written.ends_with('Z') && written.len() == 20, "{written}");
    let back = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(back.access_token.expose_secret(), "rs-access");
    assert!(!back.has_stale_copies());
}

#[test]
fn flyte_auth_s_login_is_retrieved_by_every_tool_when_all_layouts_are_written() {
    let server = Server::new("all-layouts");
    let store = server.store().write_all_layouts(true);
    let creds = Credentials::new("rs-access", server.key())
        .with_refresh_token("rs-refresh")
        .with_id_token("rs-id")
        .with_expires_in(3600)
        .with_client_id("flytectl");
    store.store(server.ep(), &creds).unwrap();

    let fk = server.py(FLYTEKIT_RETRIEVE, &[]);
    assert_eq!(
        (&fk["access"], &fk["refresh"], &fk["id"]),
        (
            &"rs-access".into(),
            &"rs-refresh".into(),
            &serde_json::Value::from("rs-id")
        )
    );
    let f2 = server.py(FLYTE2_RETRIEVE, &[]);
    assert_eq!(f2["access"], "rs-access");
    assert_eq!(f2["refresh"], "rs-refresh");
    let ctl = server.py(FLYTECTL_READ, &[]);
    assert_eq!(ctl["token"]["access_token"], "rs-access");
    assert_eq!(ctl["token"]["refresh_token"], "rs-refresh");

    let back = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(back, creds);

    // `delete` removes every layout's entry.
    store.delete(server.ep()).unwrap();
    assert!(server.py(FLYTEKIT_RETRIEVE, &[]).is_null());
    assert!(server.py(FLYTE2_RETRIEVE, &[]).is_null());
    assert_eq!(server.py(FLYTECTL_READ, &[])["count"], 0);
    assert_eq!(store.retrieve(server.ep()).unwrap(), None);
}

#[test]
fn only_the_layouts_that_held_a_login_are_updated_and_a_newer_copy_wins() {
    let server = Server::new("coherent");
    let store = server.store();
    // flyte-auth and the Flyte 2 SDK share one login.
    python_store(&server, FLYTE2_STORE, "a1", Some("r1"), None);
    let first = store.retrieve(server.ep()).unwrap().unwrap();
    store
        .store(
            server.ep(),
            &first
                .clone()
                .with_expires_in(3600)
                .with_client_id("flytectl"),
        )
        .unwrap();
    assert_eq!(
        server.py(FLYTECTL_READ, &[])["count"],
        0,
        "flytectl never logged in"
    );
    assert_eq!(server.py(FLYTE2_RETRIEVE, &[])["access"], "a1");

    // The Flyte 2 SDK refreshes on its own: its copy is newer than what flyte-auth wrote.
    python_store(&server, FLYTE2_STORE, "a2", Some("r2"), None);
    let got = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "a2");
    assert_eq!(got.refresh_token.as_ref().unwrap().expose_secret(), "r2");
    assert!(got.has_stale_copies(), "flytekit's copy still holds r1");

    // Writing it back makes every copy agree; r1 is retired.
    store.store(server.ep(), &got).unwrap();
    let fk = server.py(FLYTEKIT_RETRIEVE, &[]);
    assert_eq!(
        (fk["access"].as_str(), fk["refresh"].as_str()),
        (Some("a2"), Some("r2"))
    );
    assert!(
        !store
            .retrieve(server.ep())
            .unwrap()
            .unwrap()
            .has_stale_copies()
    );

    // An old copy holding the retired r1 (a tool that never saw the refresh) is never used.
    python_store(&server, FLYTE2_STORE, "a1", Some("r1"), None);
    let got = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(got.refresh_token.as_ref().unwrap().expose_secret(), "r2");
    assert!(got.has_stale_copies());
}

#[test]
#[cfg(feature = "test-hooks")]
fn a_write_interrupted_at_any_entry_leaves_the_new_refresh_token_found() {
    let server = Server::new("crash");
    server
        .store()
        .write_all_layouts(true)
        .store(
            server.ep(),
            &Credentials::new("a1", server.key())
                .with_refresh_token("r1")
                .with_expires_in(3600),
        )
        .unwrap();
    // refresh, access, metadata, Flyte 2, flytectl: five entry writes.
    for written in 1..5 {
        let failing = server.store().fail_writes_after(written);
        let new = Credentials::new(format!("a-{written}"), server.key())
            .with_refresh_token(format!("r-{written}"))
            .with_expires_in(3600);
        failing.retrieve(server.ep()).unwrap();
        assert!(
            failing.store(server.ep(), &new).is_err(),
            "the injected failure"
        );

        // The next process finds the new refresh token, and knows the copies disagree.
        let next = server.store();
        let got = next.retrieve(server.ep()).unwrap().unwrap();
        assert_eq!(
            got.refresh_token.as_ref().unwrap().expose_secret(),
            format!("r-{written}"),
            "after {written} writes"
        );
        assert!(got.has_stale_copies(), "after {written} writes");
        next.store(server.ep(), &got).unwrap();
        let f2 = server.py(FLYTE2_RETRIEVE, &[]);
        assert_eq!(f2["refresh"], format!("r-{written}"));
        assert_eq!(
            server.py(FLYTECTL_READ, &[])["token"]["refresh_token"],
            format!("r-{written}")
        );
        assert!(
            !next
                .retrieve(server.ep())
                .unwrap()
                .unwrap()
                .has_stale_copies()
        );
    }
}

fn python_store(
    server: &Server,
    script: &str,
    access: &str,
    refresh: Option<&str>,
    id: Option<&str>,
) {
    server.py(
        script,
        &[
            ("ACCESS", access),
            ("REFRESH", refresh.unwrap_or("")),
            ("ID", id.unwrap_or("")),
        ],
    );
}

/// `2026-12-02T01:10:19Z` for Unix seconds, through Python (the test's reference clock).
fn rfc3339(unix: u64) -> String {
    python(
        "import datetime, os; print(datetime.datetime.fromtimestamp(int(os.environ['T']), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))",
        &[("T", &unix.to_string())],
    )
    .trim()
    .to_owned()
}

#[test]
fn flyte_sdk_go_s_login_is_read_with_the_jwt_expiry_and_kept_coherent() {
    // With a port, Go's service (the host) differs from flytekit's (host:port).
    let written = format!("dns:///{}.flyte-auth-test.example.org:8443", unique("go"));
    let server = Server {
        endpoint: Endpoint::parse(&written).unwrap(),
    };
    let go_service = written
        .trim_start_matches("dns:///")
        .trim_end_matches(":8443")
        .to_owned();
    let go = |script: &str, extra: &[(&str, &str)]| {
        let mut env = vec![("GO_SERVICE", go_service.as_str())];
        env.extend_from_slice(extra);
        server.py(script, &env)
    };
    let store = server.store();
    let exp = now() + 1200;
    let access = jwt(exp, "go-1");
    go(
        GO_WRITE,
        &[("ACCESS_TOKEN", &access), ("REFRESH_TOKEN", "go-r1")],
    );

    let got = store.retrieve(server.ep()).unwrap().expect("Go's login");
    assert_eq!(got.access_token.expose_secret(), access);
    assert_eq!(got.refresh_token.as_ref().unwrap().expose_secret(), "go-r1");
    assert_eq!(got.expires_at_unix, Some(exp), "the access token's JWT exp");

    // A rotation goes to Go's entries too, replacing Go's items instead of adding beside them.
    let rotated = Credentials::new(jwt(exp + 3600, "rs-2"), server.key())
        .with_refresh_token("rs-r2")
        .with_expires_in(3600);
    store.store(server.ep(), &rotated).unwrap();
    let seen = go(GO_READ, &[]);
    assert_eq!(
        seen["access_token"],
        serde_json::json!([jwt(exp + 3600, "rs-2")]),
        "{seen}"
    );
    assert_eq!(
        seen["refresh_token"],
        serde_json::json!(["rs-r2"]),
        "{seen}"
    );
    let back = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(
        back.refresh_token.as_ref().unwrap().expose_secret(),
        "rs-r2"
    );
    assert!(!back.has_stale_copies());

    // Go refreshes on its own: its copy is newer than what flyte-auth wrote.
    let access = jwt(exp + 7200, "go-3");
    go(
        GO_WRITE,
        &[("ACCESS_TOKEN", &access), ("REFRESH_TOKEN", "go-r3")],
    );
    let got = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(got.refresh_token.as_ref().unwrap().expose_secret(), "go-r3");
    assert!(
        got.has_stale_copies(),
        "flytekit's entries still hold rs-r2"
    );

    // `delete` removes Go's entries.
    store.delete(server.ep()).unwrap();
    let seen = go(GO_READ, &[]);
    assert_eq!(seen["access_token"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["refresh_token"], serde_json::json!([]), "{seen}");
    assert_eq!(store.retrieve(server.ep()).unwrap(), None);
}

#[test]
fn the_flyte2_sdk_s_keyring_cfg_is_read_and_a_rotation_is_written_back_for_the_sdk() {
    let server = Server::new("keyring-cfg");
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join(".flyte").join("keyring.cfg");
    let sdk = |action: &str, endpoint: &str, extra: &[(&str, &str)]| {
        flyte2_file_keyring(home.path(), action, endpoint, extra)
    };
    // The SDK logs in to this endpoint and to another one, in its file.
    sdk(
        "store",
        server.written(),
        &[("ACCESS", "cfg-a1"), ("REFRESH", "cfg-r1")],
    );
    sdk(
        "store",
        "https://other.flyte-auth-test.example.org",
        &[("ACCESS", "other-a"), ("REFRESH", "other-r")],
    );
    let store = server.store().with_keyring_cfg(Some(cfg.clone()));
    let got = store
        .retrieve(server.ep())
        .unwrap()
        .expect("the SDK's login in keyring.cfg");
    assert_eq!(got.access_token.expose_secret(), "cfg-a1");
    assert_eq!(
        got.refresh_token.as_ref().unwrap().expose_secret(),
        "cfg-r1"
    );
    assert!(!got.expiry_is_known(), "the SDK stores no expiry");

    // A rotation is written back to the file, where the SDK finds it; the other login stays.
    store
        .store(
            server.ep(),
            &Credentials::new("rs-a2", server.key())
                .with_refresh_token("rs-r2")
                .with_expires_in(3600),
        )
        .unwrap();
    let back = sdk("retrieve", server.written(), &[]);
    assert_eq!(
        (back["access"].as_str(), back["refresh"].as_str()),
        (Some("rs-a2"), Some("rs-r2")),
        "{back}"
    );
    let other = sdk("retrieve", "https://other.flyte-auth-test.example.org", &[]);
    assert_eq!(other["refresh"], "other-r", "{other}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        !store
            .retrieve(server.ep())
            .unwrap()
            .unwrap()
            .has_stale_copies()
    );

    // The SDK refreshes on its own: its copy comes first.
    sdk(
        "store",
        server.written(),
        &[("ACCESS", "cfg-a3"), ("REFRESH", "cfg-r3")],
    );
    let got = store.retrieve(server.ep()).unwrap().unwrap();
    assert_eq!(
        got.refresh_token.as_ref().unwrap().expose_secret(),
        "cfg-r3"
    );
    assert!(got.has_stale_copies());

    // `delete` removes it from the file, and only it.
    store.delete(server.ep()).unwrap();
    assert!(sdk("retrieve", server.written(), &[]).is_null());
    assert_eq!(
        sdk("retrieve", "https://other.flyte-auth-test.example.org", &[])["access"],
        "other-a"
    );
}
