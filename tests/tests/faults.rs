//! What a user sees when something underneath breaks: a server that hangs up in the middle of
//! its answer, answers 500 and recovers, or answers too slowly; a token store on a disk that
//! cannot be written or runs out of room; no keyring, or a locked one; a token file full of
//! garbage. Each case ends in a typed error the caller can act on (`is_transient`) or in the
//! documented fall-back, and never loses what was stored before.
//!
//! Conditions a test process cannot create for itself run in a child process of this test
//! binary: a file size limit (`ulimit -f 0`, so that every write to a file fails as on a full
//! disk), no D-Bus session, and a private session bus whose GNOME Keyring collection is
//! locked. They fail, saying what to install, when `sh`, `dbus-run-session`,
//! `gnome-keyring-daemon` or `dbus-send` are missing.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    ffi::OsString,
    io::{Read, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_clientcreds::{ClientCredentialsAuthenticator, ClientCredentialsFlow};
use flyte_auth_core::{
    Authenticator, CachingAuthenticator, Credentials, Endpoint, Error, OAuthErrorCode, StoreError,
    TokenStore,
};
use flyte_auth_oauth::{HttpSettings, OAuthClient, Overrides, RetryPolicy};
use flyte_auth_store::{FileStore, KeyringStore, StoreKind, open_store};
use flyte_auth_tests::{BASIC_CLIENT, Fault, GRANT_CLIENT_CREDENTIALS, Idp, context};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};
use tracing_subscriber::util::SubscriberInitExt;

/// Bounds every wait on the code under test: a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(60);

/// Bounds every child process.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Set in a child's environment: what the child is to do.
const ROLE_ENV: &str = "FLYTE_AUTH_FAULTS_CHILD";
/// The token endpoint a child uses (the parent's provider).
const TOKEN_URL_ENV: &str = "FLYTE_AUTH_FAULTS_TOKEN_URL";
/// The file store directory a child uses.
const STORE_DIR_ENV: &str = "FLYTE_AUTH_FAULTS_STORE_DIR";

/// The key credentials are stored under in the tests that need no provider's address.
const ENDPOINT: &str = "flyte.faults.example.org";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));

fn http(request_timeout: Duration) -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .request_timeout(request_timeout)
            // Each fault below is one failed attempt, and what is checked is how that one
            // failure is classified and what it leaves stored; retries have their own tests
            // (crates/oauth/tests/retry.rs, the factory's maxRetries test).
            .retry(RetryPolicy::new().max_retries(0)),
    )
    .unwrap()
}

/// Client credentials (Basic) against `token_url`, stored in `store` under [`ENDPOINT`].
fn client_credentials(
    token_url: &str,
    store: Arc<dyn TokenStore>,
    request_timeout: Duration,
) -> ClientCredentialsAuthenticator {
    let overrides = Overrides::new().token_endpoint(token_url).scopes(["all"]);
    let ctx = context(ENDPOINT, http(request_timeout), None, overrides);
    let flow = ClientCredentialsFlow::builder(ctx, BASIC_CLIENT.id(), BASIC_CLIENT.secret())
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).store(store).build()
}

async fn get(auth: &impl Authenticator) -> Result<Arc<Credentials>, Error> {
    tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .expect("get_credentials must not hang")
}

/// The basic client's credentials that expired a minute ago, as a previous run left them.
fn expired(access: &str) -> Credentials {
    Credentials::new(access, ENDPOINT)
        .with_client_id(BASIC_CLIENT.id())
        .with_expires_at(SystemTime::now() - Duration::from_secs(60))
}

fn token_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !name.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// Captured logs.

/// Every log line of this thread, all levels, as the user's terminal would show them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures the logs of this thread until the guard is dropped. With tokio's default
    /// (current-thread) test runtime, that is everything the code under test logs.
    fn capture() -> (Self, impl Drop) {
        let logs = Self::default();
        let writer = logs.clone();
        let guard = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .set_default();
        (logs, guard)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The warning lines.
    fn warnings(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(" WARN "))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A server that hangs up in the middle of its answer.

/// Answers every request with `200`, a `Content-Length` of 4096 and the first bytes of a
/// token response (with an access token in them), then closes the connection.
struct HangUpServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// What the cut-off answer carries before the connection closes.
const PARTIAL_TOKEN: &str = "partial-access-token-3f9c1e";

impl HangUpServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let exchange = async {
                        read_request(&mut stream).await?;
                        counter.fetch_add(1, Ordering::SeqCst);
                        let body = format!(
                            "{{\"access_token\":\"{PARTIAL_TOKEN}\",\"token_type\":\"Bearer\",\"expi"
                        );
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                    Content-Length: 4096\r\n\r\n";
                        stream.write_all(head.as_bytes()).await?;
                        stream.write_all(body.as_bytes()).await?;
                        stream.flush().await?;
                        stream.shutdown().await
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(10), exchange).await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HangUpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body (at most 64 KiB).
async fn read_request(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            if buf.len() >= end + 4 + length {
                return Ok(());
            }
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

#[tokio::test]
async fn a_connection_closed_in_the_middle_of_the_token_answer_is_a_transient_error() {
    let server = HangUpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::in_dir(dir.path()));
    let auth = client_credentials(
        &server.url("/token"),
        store.clone(),
        Duration::from_secs(10),
    );

    let err = get(&auth).await.unwrap_err();

    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transient(), "{err}");
    assert!(!err.is_rejected_grant(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(PARTIAL_TOKEN),
        "the error quotes the cut-off body: {shown}"
    );
    assert!(server.requests() >= 1);
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());
    assert!(store.retrieve(&EP).unwrap().is_none());
    assert!(token_files(dir.path()).is_empty(), "nothing half-written");
}

// ---------------------------------------------------------------------------------------------
// 500 answers, then recovery.

#[tokio::test]
async fn a_500_from_the_token_endpoint_is_transient_and_the_next_call_succeeds() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::in_dir(dir.path()));
    let auth = client_credentials(
        idp.token_endpoint().as_str(),
        store.clone(),
        Duration::from_secs(10),
    );

    // The provider's JSON error with a 500.
    idp.inject_fault(Fault::token(500)).await;
    let err = get(&auth).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.oauth().map(|e| e.code.clone()),
        Some(OAuthErrorCode::TemporarilyUnavailable),
        "{err}"
    );
    assert!(store.retrieve(&EP).unwrap().is_none());

    // A proxy's HTML page with a 500.
    idp.inject_fault(
        Fault::token(500)
            .body("<html><body><h1>500 Internal Server Error</h1></body></html>")
            .content_type("text/html"),
    )
    .await;
    let err = get(&auth).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidResponse {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient(), "{err}");
    assert!(store.retrieve(&EP).unwrap().is_none());
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());

    // The server is back.
    let creds = get(&auth).await.unwrap();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 3);
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token, creds.access_token);
    assert!(auth.fetch_grpc_call_auth_metadata().is_some());
}

// ---------------------------------------------------------------------------------------------
// A slow server.

#[tokio::test]
async fn a_token_endpoint_slower_than_the_request_timeout_ends_in_a_timeout_error() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::in_dir(dir.path()));
    store.store(&EP, &expired("old-access-token-b2")).unwrap();
    let before = std::fs::read(store.path_for(&EP)).unwrap();
    let auth = client_credentials(
        idp.token_endpoint().as_str(),
        store.clone(),
        Duration::from_secs(1),
    );
    idp.inject_fault(Fault::token(200).delay(Duration::from_secs(40)))
        .await;
    let started = Instant::now();

    let err = get(&auth).await.unwrap_err();

    // Generous: proves the request timeout applied rather than the server's 40 s.
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    match &err {
        Error::Timeout { after, .. } => assert_eq!(*after, Duration::from_secs(1)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.is_transient());
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(std::fs::read(store.path_for(&EP)).unwrap(), before);

    // The next call gets the server's normal answer.
    let creds = get(&auth).await.unwrap();
    assert_eq!(
        store.retrieve(&EP).unwrap().unwrap().access_token,
        creds.access_token
    );
}

// ---------------------------------------------------------------------------------------------
// A token store that cannot be written.

#[tokio::test]
async fn a_cache_directory_that_cannot_be_created_still_gives_a_token_with_a_warning() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    // These fail for root too: a path below a regular file (ENOTDIR), and, on Linux, sysfs
    // (EPERM, or EROFS where it is mounted read-only).
    let not_a_dir = dir.path().join("not-a-directory");
    std::fs::write(&not_a_dir, b"a regular file").unwrap();
    let mut unwritable = vec![not_a_dir.join("flyte-auth")];
    if cfg!(target_os = "linux") {
        unwritable.push(PathBuf::from("/sys/flyte-auth"));
    }

    for cache_dir in unwritable {
        let store = Arc::new(FileStore::in_dir(&cache_dir));
        let probe = store.store(&EP, &Credentials::new("probe-token", ENDPOINT));
        assert!(
            matches!(
                probe,
                Err(StoreError::Io { .. } | StoreError::Denied { .. })
            ),
            "{}: {probe:?}",
            cache_dir.display()
        );
        idp.reset_stats().await;
        let (logs, guard) = Logs::capture();

        let first = client_credentials(
            idp.token_endpoint().as_str(),
            store.clone(),
            Duration::from_secs(10),
        );
        let creds = get(&first).await.unwrap();
        // A second process cannot reuse the login, so it logs in again: documented.
        let second = client_credentials(
            idp.token_endpoint().as_str(),
            store.clone(),
            Duration::from_secs(10),
        );
        let again = get(&second).await.unwrap();
        drop(guard);

        assert!(!creds.access_token.expose_secret().is_empty());
        assert_ne!(again.access_token, creds.access_token);
        assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 2);
        let warnings = logs.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("could not save credentials") && w.contains("file")),
            "{}: no warning about the unsaved login:\n{}",
            cache_dir.display(),
            logs.text()
        );
        assert!(!cache_dir.exists());
    }
}

#[test]
fn a_write_failing_like_on_a_full_disk_keeps_the_old_token_file_and_the_login_works() {
    if child_role().as_deref() == Some("file-size-limit") {
        return child_with_file_size_limit();
    }
    runtime().block_on(async {
        let idp = Idp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::in_dir(dir.path());
        store.store(&EP, &expired("old-access-token-c3")).unwrap();
        let before = std::fs::read(store.path_for(&EP)).unwrap();

        // Every write to a file fails in the child (EFBIG), as on a full disk (ENOSPC).
        let mut command = Command::new("sh");
        command.args(["-c", "trap '' XFSZ && ulimit -f 0 && exec \"$0\" \"$@\""]);
        let finished = run_self(
            command,
            "a_write_failing_like_on_a_full_disk_keeps_the_old_token_file_and_the_login_works",
            "file-size-limit",
            &[
                (TOKEN_URL_ENV, idp.token_endpoint().as_str().into()),
                (STORE_DIR_ENV, dir.path().into()),
            ],
        );

        finished.assert_test_passed();
        assert_eq!(
            std::fs::read(store.path_for(&EP)).unwrap(),
            before,
            "the old token file must be intact"
        );
        assert_eq!(
            token_files(dir.path()),
            vec![
                store
                    .path_for(&EP)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            ],
            "no temporary file left behind"
        );
        assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    });
}

fn child_with_file_size_limit() {
    let dir = PathBuf::from(std::env::var_os(STORE_DIR_ENV).unwrap());
    let token_url = std::env::var(TOKEN_URL_ENV).unwrap();
    // The condition holds: writing a byte to a file fails.
    let probe = dir.join("probe");
    let written = std::fs::write(&probe, b"x");
    let _ = std::fs::remove_file(&probe);
    let err = written.expect_err("the file size limit is in force");
    assert_eq!(err.raw_os_error(), Some(27), "EFBIG expected: {err}");

    runtime().block_on(async {
        let store = Arc::new(FileStore::in_dir(&dir));
        let direct = store.store(&EP, &Credentials::new("probe-token", ENDPOINT));
        assert!(matches!(direct, Err(StoreError::Io { .. })), "{direct:?}");
        let (logs, guard) = Logs::capture();
        let auth = client_credentials(&token_url, store.clone(), Duration::from_secs(10));

        let creds = get(&auth).await.unwrap();
        drop(guard);

        assert_ne!(creds.access_token.expose_secret(), "old-access-token-c3");
        assert!(
            logs.warnings()
                .iter()
                .any(|w| w.contains("could not save credentials")),
            "{}",
            logs.text()
        );
        let kept = store.retrieve(&EP).unwrap().unwrap();
        assert_eq!(kept.access_token.expose_secret(), "old-access-token-c3");
    });
}

// ---------------------------------------------------------------------------------------------
// No keyring, a locked keyring.

// The bad D-Bus address stands for "no keyring" where the keyring is the Secret Service.
#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn without_a_keyring_the_automatic_store_falls_back_to_files() {
    if child_role().as_deref() == Some("no-keyring") {
        return child_auto_store_uses_files();
    }
    runtime().block_on(async {
        let idp = Idp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let finished = run_self(
            Command::new(std::env::current_exe().unwrap()),
            "without_a_keyring_the_automatic_store_falls_back_to_files",
            "no-keyring",
            &[
                (
                    "DBUS_SESSION_BUS_ADDRESS",
                    "unix:path=/nonexistent/flyte-auth-faults/bus".into(),
                ),
                (TOKEN_URL_ENV, idp.token_endpoint().as_str().into()),
                (STORE_DIR_ENV, dir.path().into()),
            ],
        );

        finished.assert_test_passed();
        let stored = FileStore::in_dir(dir.path())
            .retrieve(&EP)
            .unwrap()
            .unwrap();
        assert!(!stored.access_token.expose_secret().is_empty());
        assert_eq!(
            idp.token_requests(GRANT_CLIENT_CREDENTIALS).await,
            1,
            "the second authenticator reused the stored login"
        );
    });
}

/// In the child: `open_store(Auto)` picks the file store, a login is kept there and a second
/// authenticator (with a second store handle) uses it.
fn child_auto_store_uses_files() {
    let dir = PathBuf::from(std::env::var_os(STORE_DIR_ENV).unwrap());
    let token_url = std::env::var(TOKEN_URL_ENV).unwrap();
    runtime().block_on(async {
        let store = open_store(StoreKind::Auto, Some(dir.clone())).unwrap();
        let auth = client_credentials(&token_url, Arc::clone(&store), Duration::from_secs(10));
        let started = Instant::now();

        let creds = get(&auth).await.unwrap();

        assert!(started.elapsed() < Duration::from_secs(45), "bounded probe");
        assert_eq!(store.name(), "file");
        assert_eq!(
            FileStore::in_dir(&dir)
                .retrieve(&EP)
                .unwrap()
                .unwrap()
                .access_token,
            creds.access_token
        );
        let again_store = open_store(StoreKind::Auto, Some(dir.clone())).unwrap();
        let again = client_credentials(&token_url, again_store, Duration::from_secs(10));
        assert_eq!(get(&again).await.unwrap().access_token, creds.access_token);
    });
}

/// Starts gnome-keyring-daemon on the private session bus of `dbus-run-session`, with a
/// default `login` collection that it then locks, checks that it is locked, and runs the
/// command given as arguments.
const LOCKED_KEYRING_SCRIPT: &str = r#"
set -u
for tool in gnome-keyring-daemon dbus-send timeout; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "locked-keyring: '$tool' not found; install: apt-get install dbus gnome-keyring libsecret-tools coreutils" >&2
        exit 97
    }
done
state="$(mktemp -d "${TMPDIR:-/tmp}/flyte-auth-locked-keyring.XXXXXX")"
mkdir -m 700 "$state/data" "$state/run"
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; fi
    rm -rf "$state"
}
trap cleanup EXIT
secrets() {
    timeout 10 dbus-send --session --print-reply --dest=org.freedesktop.secrets "$@" 2>&1
}
printf '%s' 'faults-test-keyring-password' |
    XDG_DATA_HOME="$state/data" XDG_RUNTIME_DIR="$state/run" \
    gnome-keyring-daemon --foreground --unlock --components=secrets \
        --control-directory="$state/run/keyring" >"$state/daemon.log" 2>&1 &
daemon=$!
i=0
until timeout 5 dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
    i=$((i + 1))
    if [ "$i" -ge 200 ]; then
        echo "locked-keyring: gnome-keyring-daemon did not start" >&2
        cat "$state/daemon.log" >&2
        exit 98
    fi
    sleep 0.1
done
collection=/org/freedesktop/secrets/collection/login
i=0
until secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.ReadAlias string:default | grep -q "$collection"; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then
        echo "locked-keyring: no default login collection" >&2
        exit 98
    fi
    sleep 0.1
done
secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.Lock "array:objpath:$collection" >/dev/null
locked="$(secrets "$collection" org.freedesktop.DBus.Properties.Get \
    string:org.freedesktop.Secret.Collection string:Locked)"
case "$locked" in
    *"boolean true"*) ;;
    *) echo "locked-keyring: the collection did not lock: $locked" >&2; exit 98 ;;
esac
echo "locked-keyring: the default collection is locked" >&2
"$0" "$@"
status=$?
exit "$status"
"#;

#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn a_locked_keyring_is_a_typed_error_and_the_automatic_store_falls_back_to_files() {
    if child_role().as_deref() == Some("locked-keyring") {
        return child_locked_keyring();
    }
    runtime().block_on(async {
        let idp = Idp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("dbus-run-session");
        command.args(["--", "sh", "-c", LOCKED_KEYRING_SCRIPT]);
        let finished = run_self(
            command,
            "a_locked_keyring_is_a_typed_error_and_the_automatic_store_falls_back_to_files",
            "locked-keyring",
            &[
                (TOKEN_URL_ENV, idp.token_endpoint().as_str().into()),
                (STORE_DIR_ENV, dir.path().into()),
            ],
        );

        finished.assert_test_passed();
        assert!(
            finished.stderr.contains("the default collection is locked"),
            "{}",
            finished.stderr
        );
        assert!(
            FileStore::in_dir(dir.path())
                .retrieve(&EP)
                .unwrap()
                .is_some()
        );
        assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    });
}

fn child_locked_keyring() {
    let dir = PathBuf::from(std::env::var_os(STORE_DIR_ENV).unwrap());
    let token_url = std::env::var(TOKEN_URL_ENV).unwrap();
    let lock_dir = tempfile::tempdir().unwrap();

    // The keyring itself: a typed error, in bounded time, no panic.
    let keyring = KeyringStore::new()
        .with_timeout(Duration::from_secs(10))
        .with_lock_dir(lock_dir.path());
    let started = Instant::now();
    let refused = keyring.store(&EP, &Credentials::new("locked-token", ENDPOINT));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        matches!(
            refused,
            Err(StoreError::Denied { .. } | StoreError::Unavailable { .. } | StoreError::Io { .. })
        ),
        "{refused:?}"
    );
    assert!(keyring.probe_writable().is_err());

    // The automatic choice: files; the login works and is kept.
    runtime().block_on(async {
        let store = open_store(StoreKind::Auto, Some(dir.clone())).unwrap();
        let auth = client_credentials(&token_url, Arc::clone(&store), Duration::from_secs(10));

        let creds = get(&auth).await.unwrap();

        assert_eq!(store.name(), "file");
        assert_eq!(
            FileStore::in_dir(&dir)
                .retrieve(&EP)
                .unwrap()
                .unwrap()
                .access_token,
            creds.access_token
        );
    });
}

// ---------------------------------------------------------------------------------------------
// A token file full of garbage.

#[tokio::test]
async fn a_garbage_token_file_means_a_new_login_and_is_replaced_by_a_valid_one() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::in_dir(dir.path()));
    let path = store.path_for(&EP);
    let valid = {
        store
            .store(
                &EP,
                &Credentials::new("a-valid-token", ENDPOINT).with_expires_in(3600),
            )
            .unwrap();
        std::fs::read(&path).unwrap()
    };
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", (0u8..=255).cycle().take(3000).collect()),
        ("text", b"this is not a token file\n".to_vec()),
        ("cut off", valid[..valid.len() / 2].to_vec()),
        (
            "other version",
            br#"{"version":99,"credentials":{}}"#.to_vec(),
        ),
        (
            "wrong shape",
            br#"{"version":1,"credentials":{"access_token":42}}"#.to_vec(),
        ),
        ("array", b"[1,2,3]".to_vec()),
    ];

    for (n, (what, bytes)) in garbage.into_iter().enumerate() {
        std::fs::write(&path, &bytes).unwrap();
        let auth = client_credentials(
            idp.token_endpoint().as_str(),
            store.clone(),
            Duration::from_secs(10),
        );

        let creds = get(&auth).await.unwrap_or_else(|e| panic!("{what}: {e}"));

        assert_eq!(
            idp.token_requests(GRANT_CLIENT_CREDENTIALS).await,
            n as u64 + 1,
            "{what}: a new login"
        );
        let rewritten = store
            .retrieve(&EP)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the file was not rewritten"));
        assert_eq!(rewritten.access_token, creds.access_token, "{what}");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{what}: the rewritten file is not JSON: {e}"));
        assert_eq!(json["version"], 1, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes of this test binary.

fn child_role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What a finished child printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    what: String,
}

impl Finished {
    /// Fails with the child's output unless it ran exactly one test, successfully.
    fn assert_test_passed(&self) {
        assert!(
            self.status.success() && self.stdout.contains("1 passed"),
            "{} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs the test `test` of this binary again, as the last arguments of `command` (the binary
/// itself, or a wrapper that runs `"$@"`), with the role `role` and the extra environment
/// `env`. Waits at most [`CHILD_LIMIT`], then kills it and fails.
fn run_self(mut command: Command, test: &str, role: &str, env: &[(&str, OsString)]) -> Finished {
    let exe = std::env::current_exe().unwrap();
    if command.get_program() != exe.as_os_str() {
        command.arg(&exe);
    }
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let what = format!("child `{test}` ({role})");
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "could not start {what} with {:?}: {e} (install it: apt-get install dbus gnome-keyring)",
            command.get_program()
        )
    });
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CHILD_LIMIT:?}; killed it");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = std::io::stderr().flush();
    Finished {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        what,
    }
}
