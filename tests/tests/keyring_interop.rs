//! One login for every Flyte tool on the machine, in a real Secret Service (run inside
//! `.ci/with-secret-service`), against the local OpenID provider (rotating refresh tokens,
//! reuse revokes the grant):
//!
//! - logins stored by the real flytekit and the real Flyte 2 SDK (their `KeyringStore`s, in
//!   Python subprocesses) and by flytectl (its entry written as Go's keyring writes it) are
//!   used without a new login, and after flyte-auth refreshes, every layout holds the new
//!   refresh token, which still redeems;
//! - an expired opaque token stored by flytekit is not printed by `flyte-auth token`: one
//!   refresh, and the next process makes no request (the id token's later `exp` changes
//!   nothing);
//! - a write interrupted after any keyring entry leaves a state the next process recovers
//!   from without a new login.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, OnceLock},
    thread,
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_core::{
    Authenticator, CachingAuthenticator, Credentials, Endpoint, MemoryStore, TokenStore,
};
use flyte_auth_device::{DeviceCodeAuthenticator, DeviceCodeFlow, DeviceCodeFlowBuilder};
use flyte_auth_oauth::{ClientContext, HttpSettings, OAuthClient, RemoteClientConfigStore};
use flyte_auth_store::KeyringStore;
use flyte_auth_tests::{GRANT_REFRESH_TOKEN, Idp};
use tokio::sync::mpsc;

/// Bounds every wait on the code under test.
const NO_HANG: Duration = Duration::from_secs(60);
/// Bounds every child process.
const CHILD_LIMIT: Duration = Duration::from_secs(120);
/// Bounds building the `flyte-auth` binary.
const BUILD_LIMIT: Duration = Duration::from_secs(900);

fn http() -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .request_timeout(Duration::from_secs(10)),
    )
    .unwrap()
}

/// The provider's endpoint as a flytectl config writes it (`dns:///127.0.0.1:PORT`, insecure).
fn endpoint(idp: &Idp) -> Endpoint {
    Endpoint::parse(&idp.config_endpoint())
        .unwrap()
        .with_insecure(true)
}

/// A keyring store, locking in `dir`.
fn keyring(dir: &Path) -> KeyringStore {
    let store = KeyringStore::new()
        .with_timeout(Duration::from_secs(30))
        .with_lock_dir(dir);
    store.probe_writable().unwrap_or_else(|e| {
        panic!("these tests need an unlocked Secret Service: run them inside `.ci/with-secret-service` ({e})")
    });
    store
}

/// The device flow at `idp`, for its endpoint as a flytectl config writes it (the spelling
/// the other tools name their keyring entries by).
fn device_flow(idp: &Idp, http: OAuthClient) -> DeviceCodeFlowBuilder {
    let discovery = RemoteClientConfigStore::from_base_url(idp.base_url().as_str(), http.clone());
    let ctx = ClientContext::builder(endpoint(idp))
        .http_client(http)
        .discovery(Arc::new(discovery))
        .build()
        .unwrap();
    DeviceCodeFlow::builder(ctx)
        .poll_interval(Duration::from_millis(200))
        .timeout(Duration::from_secs(60))
}

/// A device-flow authenticator on `store` that fails (cancels) instead of starting a login.
fn no_login_authenticator(idp: &Idp, store: Arc<dyn TokenStore>) -> DeviceCodeAuthenticator {
    let cancel: Arc<OnceLock<flyte_auth_device::CancelHandle>> = Arc::new(OnceLock::new());
    let on_prompt = Arc::clone(&cancel);
    let flow = device_flow(idp, http())
        .timeout(Duration::from_secs(30))
        .prompt(move |_| {
            if let Some(handle) = on_prompt.get() {
                handle.cancel();
            }
        })
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(flow).store(store).build();
    cancel.set(auth.flow().cancel_handle()).unwrap();
    auth
}

/// Logs in once with the device flow (the test approves the code), keeping the login in
/// `store`.
async fn log_in(idp: &Idp, store: Arc<dyn TokenStore>) -> Arc<Credentials> {
    let (tx, mut prompts) = mpsc::unbounded_channel();
    let flow = device_flow(idp, http())
        .prompt(move |p| {
            let _ = tx.send(p.user_code.clone());
        })
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(flow).store(store).build();
    let user = async {
        let code = prompts.recv().await.unwrap();
        idp.approve_device_code(&code).await.unwrap();
    };
    let (login, ()) = tokio::time::timeout(NO_HANG, async {
        tokio::join!(auth.get_credentials(), user)
    })
    .await
    .expect("the device login must not hang");
    login.unwrap()
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(NO_HANG, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

// ---------------------------------------------------------------------------------------------
// The other tools, through Python (flytekit, the Flyte 2 SDK) and secretstorage (flytectl's
// entry as Go's keyring writes it).

const FLYTEKIT_STORE: &str = r#"
import os
from flytekit.clients.auth.keyring import Credentials, KeyringStore
KeyringStore.store(Credentials(access_token=os.environ["ACCESS"], refresh_token=os.environ["REFRESH"],
                               for_endpoint=os.environ["FLYTEKIT_SERVICE"], id_token=os.environ.get("ID") or None))
"#;
const FLYTEKIT_RETRIEVE: &str = r#"
import json, os
from flytekit.clients.auth.keyring import KeyringStore
c = KeyringStore.retrieve(os.environ["FLYTEKIT_SERVICE"])
print(json.dumps(None if c is None else {"access": c.access_token, "refresh": c.refresh_token}))
"#;
const FLYTE2_STORE: &str = r#"
import os
from flyte.remote._client.auth._keyring import Credentials, KeyringStore
KeyringStore.store(Credentials(access_token=os.environ["ACCESS"], refresh_token=os.environ["REFRESH"],
                               for_endpoint=os.environ["ENDPOINT"]))
"#;
const FLYTE2_RETRIEVE: &str = r#"
import json, os
from flyte.remote._client.auth._keyring import KeyringStore
c = KeyringStore.retrieve(os.environ["ENDPOINT"])
print(json.dumps(None if c is None else {"access": c.access_token, "refresh": c.refresh_token}))
"#;
const FLYTECTL_WRITE: &str = r#"
import json, os, secretstorage
conn = secretstorage.dbus_init()
coll = secretstorage.get_default_collection(conn)
user = os.environ["ENDPOINT"] + ":flytectl-user"
token = {"access_token": os.environ["ACCESS"], "token_type": "bearer", "refresh_token": os.environ["REFRESH"],
         "expiry": os.environ["EXPIRY"]}
coll.create_item(f"Password for '{user}' on 'flytectl'", {"username": user, "service": "flytectl"},
                 json.dumps(token, separators=(",", ":")).encode(), replace=True)
"#;
const FLYTECTL_READ: &str = r#"
import json, os, secretstorage
conn = secretstorage.dbus_init()
user = os.environ["ENDPOINT"] + ":flytectl-user"
items = list(secretstorage.search_items(conn, {"username": user, "service": "flytectl"}))
t = json.loads(items[0].get_secret().decode()) if items else None
print(json.dumps(None if t is None else {"access": t["access_token"], "refresh": t.get("refresh_token")}))
"#;
const RFC3339: &str = r#"
import datetime, os
print(datetime.datetime.fromtimestamp(int(os.environ["T"]), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
"#;

/// Runs a Python script with the endpoint's names in its environment; returns its output.
fn python(idp: &Idp, script: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(script)
        .env("ENDPOINT", idp.config_endpoint())
        .env("FLYTEKIT_SERVICE", idp.host_port());
    for (k, v) in env {
        command.env(k, v);
    }
    let finished = run(command, "python3");
    assert!(
        finished.0,
        "python3 failed; these tests need `pip install keyring secretstorage flytekit 'flyte==2.12.1'`\n{}\n{}",
        finished.1, finished.2
    );
    finished.1
}

/// What a tool retrieves: `(access, refresh)`.
fn retrieved(idp: &Idp, script: &str) -> (String, String) {
    let json: serde_json::Value = serde_json::from_str(python(idp, script, &[]).trim()).unwrap();
    (
        json["access"].as_str().unwrap_or_default().to_owned(),
        json["refresh"].as_str().unwrap_or_default().to_owned(),
    )
}

fn tokens(c: &Credentials) -> (String, String) {
    (
        c.access_token.expose_secret().to_owned(),
        c.refresh_token.as_ref().unwrap().expose_secret().to_owned(),
    )
}

/// Runs a child process with a time limit: (success, stdout, stderr).
fn run(command: Command, what: &str) -> (bool, String, String) {
    run_for(command, what, CHILD_LIMIT)
}

fn run_for(mut command: Command, what: &str, limit: Duration) -> (bool, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

/// Deletes every layout's entries for the provider's endpoint when dropped.
struct Cleanup(KeyringStore, Endpoint);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.delete(&self.1);
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logins_of_flytekit_flyte2_and_flytectl_are_used_and_a_refresh_updates_every_layout() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = keyring(dir.path());
    let _cleanup = Cleanup(store.clone(), endpoint(&idp));
    let login = log_in(&idp, Arc::new(MemoryStore::new())).await;
    let (access, refresh) = tokens(&login);
    let expiry = python(
        &idp,
        RFC3339,
        &[("T", &login.expires_at_unix.unwrap().to_string())],
    );
    let env = [
        ("ACCESS", access.as_str()),
        ("REFRESH", refresh.as_str()),
        ("EXPIRY", expiry.trim()),
    ];
    python(&idp, FLYTEKIT_STORE, &env);
    python(&idp, FLYTE2_STORE, &env);
    python(&idp, FLYTECTL_WRITE, &env);

    // Used without a new login and without a request.
    let auth = no_login_authenticator(&idp, Arc::new(store.clone()));
    let got = within("get_credentials", auth.get_credentials())
        .await
        .unwrap();
    assert_eq!(tokens(&got), (access.clone(), refresh.clone()));
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 0);

    // flyte-auth refreshes (the provider rotates the refresh token) ...
    let new = within("refresh", auth.refresh_credentials()).await.unwrap();
    let (new_access, new_refresh) = tokens(&new);
    assert_ne!(new_refresh, refresh);
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 1);
    // ... and every tool now retrieves the new tokens.
    for (tool, script) in [
        ("flytekit", FLYTEKIT_RETRIEVE),
        ("Flyte 2 SDK", FLYTE2_RETRIEVE),
        ("flytectl", FLYTECTL_READ),
    ] {
        assert_eq!(
            retrieved(&idp, script),
            (new_access.clone(), new_refresh.clone()),
            "{tool}"
        );
    }
    // The refresh token they hold still redeems: a new process refreshes it, no login.
    let other = no_login_authenticator(&idp, Arc::new(keyring(dir.path())));
    let again = within("refresh", other.refresh_credentials())
        .await
        .unwrap();
    assert_ne!(tokens(&again).1, new_refresh);
    assert_eq!(idp.stats().await.device_authorization_requests, 1);
}

#[tokio::test]
async fn an_interrupted_write_is_recovered_by_the_next_process_without_a_new_login() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = keyring(dir.path()).write_all_layouts(true);
    let _cleanup = Cleanup(store.clone(), endpoint(&idp));
    log_in(&idp, Arc::new(store.clone())).await;

    // refresh_token, access_token, metadata, Flyte 2, flytectl: stop after each of the first four.
    for written in 1..5 {
        let failing = keyring(dir.path()).fail_writes_after(written);
        let dying = no_login_authenticator(&idp, Arc::new(failing));
        let refreshed = within("refresh", dying.refresh_credentials())
            .await
            .unwrap();

        let next = no_login_authenticator(&idp, Arc::new(keyring(dir.path())));
        // Found the new refresh token (the old one was rotated away: redeeming it would fail
        // and start a login, which this authenticator refuses). Where the write stopped before
        // the metadata, the new access token's expiry is unknown, so it is refreshed once.
        let got = within("get_credentials", next.get_credentials())
            .await
            .unwrap_or_else(|e| panic!("after {written} writes: {e}"));
        if written >= 3 {
            assert_eq!(tokens(&got), tokens(&refreshed), "after {written} writes");
        }
        // Every layout holds it again, and it redeems.
        assert_eq!(
            retrieved(&idp, FLYTE2_RETRIEVE).1,
            tokens(&got).1,
            "after {written} writes"
        );
        assert_eq!(
            retrieved(&idp, FLYTECTL_READ).1,
            tokens(&got).1,
            "after {written} writes"
        );
        within("refresh", next.refresh_credentials())
            .await
            .unwrap_or_else(|e| panic!("after {written} writes: {e}"));
    }
    assert_eq!(
        idp.stats().await.device_authorization_requests,
        1,
        "no new login"
    );
}

// ---------------------------------------------------------------------------------------------
// The `flyte-auth` command.

/// The `flyte-auth` binary, built once per test run with the cargo that runs the tests.
fn cli_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut command = Command::new(cargo);
        command
            .arg("build")
            .arg("--manifest-path")
            .arg(&manifest)
            .args([
                "-p",
                "flyte-auth-cli",
                "--bin",
                "flyte-auth",
                "--message-format=json-render-diagnostics",
            ]);
        let (ok, stdout, stderr) = run_for(command, "cargo build -p flyte-auth-cli", BUILD_LIMIT);
        assert!(ok, "building flyte-auth failed:\n{stderr}");
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "flyte-auth")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo named no flyte-auth executable:\n{stdout}"))
    })
}

/// `flyte-auth token` for the provider in device-flow mode, on the keyring, as a user with a
/// home of their own (no config file).
fn flyte_auth_token(idp: &Idp, home: &Path) -> Command {
    let mut command = Command::new(cli_binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .args(["token", "--endpoint", &idp.config_endpoint(), "--insecure"])
        .args([
            "--auth-mode",
            "DeviceFlow",
            "--store",
            "keyring",
            "--cache-dir",
        ])
        .arg(home.join("cache"))
        .args(["--timeout", "10"]);
    if let Some(bus) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        command.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    command
}

#[tokio::test]
async fn an_expired_opaque_token_stored_by_flytekit_is_refreshed_once_not_printed() {
    let idp = Idp::builder()
        .access_token_ttl(Duration::from_secs(4))
        .start()
        .await;
    let home = tempfile::tempdir().unwrap();
    let store = keyring(home.path());
    let _cleanup = Cleanup(store.clone(), endpoint(&idp));
    let login = log_in(&idp, Arc::new(MemoryStore::new())).await;
    let (dead, refresh) = tokens(&login);
    // flytekit stores it with the id token, whose `exp` is an hour away, and no expiry.
    let id = match &login.id_token {
        Some(id) => id.expose_secret().to_owned(),
        None => {
            use base64::Engine as _;
            let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let exp = login.expires_at_unix.unwrap() + 3600;
            format!(
                "{}.{}.sig",
                enc.encode(br#"{"alg":"none"}"#),
                enc.encode(format!(r#"{{"sub":"u","exp":{exp}}}"#))
            )
        }
    };
    python(
        &idp,
        FLYTEKIT_STORE,
        &[("ACCESS", &dead), ("REFRESH", &refresh), ("ID", &id)],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while SystemTime::now() <= login.expires_at().unwrap() + Duration::from_secs(1) {
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cli = cli_binary().to_owned();
    assert!(cli.is_file());

    let (ok, first, stderr) = run(flyte_auth_token(&idp, home.path()), "flyte-auth token");
    assert!(ok, "flyte-auth token failed:\n{stderr}");
    let first = first.trim().to_owned();
    assert_ne!(first, dead, "the dead token was printed");
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 1);

    // The next process right after: the expiry is stored now, no request.
    let (ok, second, stderr) = run(flyte_auth_token(&idp, home.path()), "flyte-auth token");
    assert!(ok, "flyte-auth token failed:\n{stderr}");
    assert_eq!(second.trim(), first);
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 1);
    assert_eq!(
        idp.stats().await.device_authorization_requests,
        1,
        "no new login"
    );
    // flytekit sees the refreshed login too.
    assert_eq!(retrieved(&idp, FLYTEKIT_RETRIEVE).0, first);
}

// ---------------------------------------------------------------------------------------------
// The README's quick start: a config spelled as the user writes it, `get_authenticator` with
// the default store, and nothing else.

/// Runs a Python script with `env`; returns its output.
fn python_with(script: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new("python3");
    command.arg("-c").arg(script);
    for (k, v) in env {
        command.env(k, v);
    }
    let finished = run(command, "python3");
    assert!(
        finished.0,
        "python3 failed; these tests need `pip install keyring secretstorage flytekit`\n{}\n{}",
        finished.1, finished.2
    );
    finished.1
}

/// An access token whose own `exp` claim is an hour away (unsigned: only `exp` is read).
fn jwt_valid_for_an_hour() -> String {
    use base64::Engine as _;
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.signature",
        b64.encode(r#"{"alg":"none"}"#),
        b64.encode(format!(r#"{{"exp":{exp}}}"#))
    )
}

/// The quick start's authenticator: `get_authenticator` on a `DefaultStore` (as
/// `default_store()` makes it, with its files in `dir`) for `written`, nothing registered.
fn quick_start(written: &str, dir: &Path) -> Arc<dyn flyte_auth::Authenticator> {
    let cfg = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(written)
        .auth_mode(flyte_auth::AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let store = Arc::new(flyte_auth_store::DefaultStore::new(Some(dir.to_owned())));
    assert_eq!(
        store.chosen().name(),
        "keyring",
        "this test needs an unlocked Secret Service: run it inside `.ci/with-secret-service`"
    );
    flyte_auth::get_authenticator(&cfg, Some(store)).unwrap()
}

/// Deletes every layout's entries for an endpoint when dropped.
struct Forget(Endpoint);

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = KeyringStore::new().delete(&self.0);
    }
}

#[test]
fn the_quick_start_finds_a_flytectl_login_under_the_endpoint_as_written() {
    let written = format!(
        "dns:///quick-start-flytectl-{}.flyte-auth-test.example.org",
        std::process::id()
    );
    let _forget = Forget(Endpoint::parse(&written).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let expiry = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let expiry = python_with(RFC3339, &[("T", &expiry.to_string())]);
    python_with(
        FLYTECTL_WRITE,
        &[
            ("ENDPOINT", &written),
            ("ACCESS", "flytectl-access"),
            ("REFRESH", "flytectl-refresh"),
            ("EXPIRY", expiry.trim()),
        ],
    );

    let auth = quick_start(&written, dir.path());
    let found = auth
        .fresh_credentials()
        .expect("flytectl's login, under `<endpoint as written>:flytectl-user`");
    assert_eq!(found.access_token.expose_secret(), "flytectl-access");
}

#[test]
fn the_quick_start_finds_a_flytekit_login_under_host_443() {
    let host = format!(
        "quick-start-flytekit-{}.flyte-auth-test.example.org",
        std::process::id()
    );
    let written = format!("dns:///{host}:443");
    let _forget = Forget(Endpoint::parse(&written).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let access = jwt_valid_for_an_hour();
    python_with(
        FLYTEKIT_STORE,
        &[
            ("FLYTEKIT_SERVICE", &format!("{host}:443")),
            ("ACCESS", &access),
            ("REFRESH", "flytekit-refresh"),
        ],
    );

    let auth = quick_start(&written, dir.path());
    let found = auth
        .fresh_credentials()
        .expect("flytekit's login, under the service `host:443`");
    assert_eq!(found.access_token.expose_secret(), access);
}
