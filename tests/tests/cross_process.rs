//! Several processes sharing one token file: when the cached access token has expired and the
//! provider rotates refresh tokens, processes started at the same moment must redeem the
//! refresh token once between them (a second redemption of a rotated token would revoke the
//! whole login), and every one of them must end up with a working token.
//!
//! Two kinds of processes are started together against the real OpenID provider: the
//! `flyte-auth` command (`flyte-auth token --store file --cache-dir DIR`, built by the test with
//! `cargo build -p flyte-auth-cli`), and children of this test binary, each with its own
//! device-flow authenticator on a `FileStore` in the same directory.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    ffi::OsString,
    io::{BufRead as _, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{Arc, OnceLock, mpsc as std_mpsc},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use flyte_auth_core::{Authenticator, Credentials, Error, TokenStore};
use flyte_auth_device::DeviceCodeAuthenticator;
use flyte_auth_oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore};
use flyte_auth_store::FileStore;
use flyte_auth_tests::{GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN, Idp};
use tokio::sync::mpsc;

/// Bounds every wait on the code under test.
const NO_HANG: Duration = Duration::from_secs(60);
/// Bounds every child process.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Set in a child's environment: what the child is to do.
const ROLE_ENV: &str = "FLYTE_AUTH_CROSS_PROCESS_CHILD";
/// The provider's Flyte endpoint (`dns:///127.0.0.1:PORT`).
const ENDPOINT_ENV: &str = "FLYTE_AUTH_CROSS_PROCESS_ENDPOINT";
/// The shared token directory.
const STORE_DIR_ENV: &str = "FLYTE_AUTH_CROSS_PROCESS_STORE_DIR";
/// When the children start their request, in milliseconds since the Unix epoch.
const START_AT_ENV: &str = "FLYTE_AUTH_CROSS_PROCESS_START_AT";

/// Bounds building the `flyte-auth` binary (a first build compiles its dependencies).
const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// What a child prints on standard output when it has a token.
const TOKEN_LINE: &str = "access token: ";

fn http() -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .request_timeout(Duration::from_secs(10)),
    )
    .unwrap()
}

/// A device-flow authenticator for `config_endpoint` (discovery), keeping its login in
/// `store`, whose prompts go to `prompt`.
fn device_authenticator(
    config_endpoint: &str,
    store: Arc<dyn TokenStore>,
    prompt: impl Fn(&flyte_auth_device::DevicePrompt) + Send + Sync + 'static,
) -> DeviceCodeAuthenticator {
    let http = http();
    let discovery = RemoteClientConfigStore::new(config_endpoint, true, http.clone()).unwrap();
    let ctx = flyte_auth_tests::context(
        config_endpoint,
        http,
        Some(Arc::new(discovery)),
        flyte_auth_oauth::Overrides::new(),
    );
    let flow = flyte_auth_device::DeviceCodeFlow::builder(ctx)
        .poll_interval(Duration::from_millis(200))
        .timeout(Duration::from_secs(60))
        .prompt(prompt)
        .build()
        .unwrap();
    flyte_auth_core::CachingAuthenticator::builder(flow)
        .store(store)
        .build()
}

/// Logs in once with the device flow (the test approves the code) and stores the login in a
/// `FileStore` in `dir`.
async fn log_in(idp: &Idp, dir: &Path) -> Arc<Credentials> {
    let (tx, mut prompts) = mpsc::unbounded_channel();
    let auth = device_authenticator(
        &idp.config_endpoint(),
        Arc::new(FileStore::in_dir(dir)),
        move |p| {
            let _ = tx.send(p.user_code.clone());
        },
    );
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

#[test]
fn processes_started_together_on_an_expired_token_refresh_it_once() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("refresh") {
        return child_refreshes();
    }
    runtime().block_on(async {
        let idp = Idp::builder()
            .access_token_ttl(Duration::from_secs(2))
            .start()
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::in_dir(dir.path());
        let endpoint = idp.endpoint();
        let login = log_in(&idp, dir.path()).await;
        let polls = idp.token_requests(GRANT_DEVICE_CODE).await;

        // Round 1: the token expired by itself. Rounds 2 and 3: the stored token is marked
        // expired again, to race once more on the rotated refresh token.
        let expires_at = login.expires_at().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while SystemTime::now() <= expires_at {
            assert!(Instant::now() < deadline, "the token never expired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut previous = login;
        for round in 1..=3u64 {
            if round > 1 {
                let stored = store.retrieve(&endpoint).unwrap().unwrap();
                store
                    .store(
                        &endpoint,
                        &stored.with_expires_at(SystemTime::now() - Duration::from_secs(60)),
                    )
                    .unwrap();
            }
            let stored = store.retrieve(&endpoint).unwrap().unwrap();
            assert_eq!(stored.refresh_token, previous.refresh_token);

            let tokens = run_together(&idp, dir.path(), 4);

            assert_eq!(
                idp.token_requests(GRANT_REFRESH_TOKEN).await,
                round,
                "round {round}: one refresh for all the processes"
            );
            let stored = store.retrieve(&endpoint).unwrap().unwrap();
            assert!(
                tokens
                    .iter()
                    .all(|t| t == stored.access_token.expose_secret()),
                "round {round}: every process uses the refreshed token"
            );
            assert_ne!(stored.access_token, previous.access_token, "round {round}");
            assert_ne!(
                stored.refresh_token, previous.refresh_token,
                "round {round}"
            );
            previous = Arc::new(stored);
        }
        let stats = idp.stats().await;
        assert_eq!(stats.device_authorization_requests, 1, "no second login");
        assert_eq!(stats.token_requests(GRANT_DEVICE_CODE), polls);
    });
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
        let finished = Child::start(command, "cargo build -p flyte-auth-cli".to_owned())
            .wait_at_most(BUILD_LIMIT);
        assert!(
            finished.status.success(),
            "building flyte-auth failed ({}):\n{}",
            finished.status,
            finished.stderr
        );
        finished
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| {
                message["reason"] == "compiler-artifact"
                    && message["target"]["name"] == "flyte-auth"
            })
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo named no flyte-auth executable:\n{}", finished.stdout))
    })
}

/// `flyte-auth token` for the provider's endpoint in device-flow mode, as a user with a home
/// of their own (no config file) and a file token store in `cache_dir`.
fn flyte_auth_token(idp: &Idp, home: &Path, cache_dir: &Path) -> Command {
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
            "file",
            "--cache-dir",
        ])
        .arg(cache_dir)
        .args(["--timeout", "10"]);
    command
}

/// The one line `flyte-auth token` printed: the token.
fn printed_token(finished: &Finished) -> String {
    assert!(
        finished.status.success(),
        "{} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        finished.what,
        finished.status,
        finished.stdout,
        finished.stderr
    );
    let token = finished.stdout.trim_end_matches('\n');
    assert!(
        !token.is_empty() && !token.contains('\n'),
        "{} printed more than a token: {:?}",
        finished.what,
        finished.stdout
    );
    token.to_owned()
}

/// The user code in the device prompt `flyte-auth` prints on standard error.
fn user_code(line: &str) -> Option<String> {
    let rest = &line[line.find("the code ")? + "the code ".len()..];
    let code: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!code.is_empty()).then_some(code)
}

#[tokio::test]
async fn two_flyte_auth_token_processes_on_an_expired_login_refresh_it_once() {
    let idp = Idp::builder()
        .access_token_ttl(Duration::from_secs(2))
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await;
    let home = tempfile::tempdir().unwrap();
    let cache_dir = home.path().join("token-cache");
    let store = FileStore::in_dir(&cache_dir);
    let endpoint = idp.endpoint();

    // The first `flyte-auth token` logs in with the device flow; the test approves the code.
    let mut login = Child::start(
        flyte_auth_token(&idp, home.path(), &cache_dir),
        "flyte-auth token (login)".to_owned(),
    );
    let code = login.wait_for_stderr(user_code);
    idp.approve_device_code(&code).await.unwrap();
    let first = printed_token(&login.wait());
    let stored = store.retrieve(&endpoint).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), first);
    assert!(stored.refresh_token.is_some());
    let polls = idp.token_requests(GRANT_DEVICE_CODE).await;

    // Round 1: the token expired by itself. Rounds 2 and 3: the stored token is marked
    // expired again, to race once more on the rotated refresh token.
    let expires_at = stored.expires_at().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while SystemTime::now() <= expires_at {
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut previous = stored;
    for round in 1..=3u64 {
        if round > 1 {
            store
                .store(
                    &endpoint,
                    &previous
                        .clone()
                        .with_expires_at(SystemTime::now() - Duration::from_secs(60)),
                )
                .unwrap();
        }

        let both: Vec<_> = (0..2)
            .map(|n| {
                Child::start(
                    flyte_auth_token(&idp, home.path(), &cache_dir),
                    format!("flyte-auth token (round {round}, process {n})"),
                )
            })
            .collect();
        let tokens: Vec<String> = both.into_iter().map(|p| printed_token(&p.wait())).collect();

        assert_eq!(
            idp.token_requests(GRANT_REFRESH_TOKEN).await,
            round,
            "round {round}: one refresh for both processes"
        );
        let stored = store.retrieve(&endpoint).unwrap().unwrap();
        assert_eq!(tokens[0], tokens[1], "round {round}");
        assert_eq!(
            tokens[0],
            stored.access_token.expose_secret(),
            "round {round}"
        );
        assert_ne!(stored.access_token, previous.access_token, "round {round}");
        assert_ne!(
            stored.refresh_token, previous.refresh_token,
            "round {round}"
        );
        previous = stored;
    }
    let stats = idp.stats().await;
    assert_eq!(stats.device_authorization_requests, 1, "no second login");
    assert_eq!(stats.token_requests(GRANT_DEVICE_CODE), polls);
}

// ---------------------------------------------------------------------------------------------
// Children of this test binary.

/// Starts `count` children that ask for a token at the same instant; returns the access
/// token each printed.
fn run_together(idp: &Idp, dir: &Path, count: usize) -> Vec<String> {
    let start_at = SystemTime::now() + Duration::from_millis(1500);
    let start_at_ms = start_at.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let children: Vec<_> = (0..count)
        .map(|_| {
            Child::start_self(
                "processes_started_together_on_an_expired_token_refresh_it_once",
                &[
                    (ROLE_ENV, "refresh".into()),
                    (ENDPOINT_ENV, idp.config_endpoint().into()),
                    (STORE_DIR_ENV, dir.into()),
                    (START_AT_ENV, start_at_ms.to_string().into()),
                ],
            )
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let finished = child.wait();
            finished.assert_test_passed();
            finished
                .stdout
                .lines()
                .find_map(|l| l.split_once(TOKEN_LINE))
                .map(|(_, token)| token.trim().to_owned())
                .unwrap_or_else(|| panic!("no token printed:\n{}", finished.stdout))
        })
        .collect()
}

/// In a child: waits for the common start, then gets credentials from the shared store.
#[allow(
    clippy::print_stdout,
    reason = "the child reports its token to the parent on standard output"
)]
fn child_refreshes() {
    let endpoint = std::env::var(ENDPOINT_ENV).unwrap();
    let dir = PathBuf::from(std::env::var_os(STORE_DIR_ENV).unwrap());
    let start_at: u64 = std::env::var(START_AT_ENV).unwrap().parse().unwrap();
    runtime().block_on(async {
        let cancel = Arc::new(std::sync::OnceLock::new());
        let on_prompt = Arc::clone(&cancel);
        let auth = device_authenticator(&endpoint, Arc::new(FileStore::in_dir(&dir)), move |_| {
            eprintln!("unexpected: a new device login started");
            if let Some(handle) = on_prompt.get() {
                flyte_auth_device::CancelHandle::cancel(handle);
            }
        });
        cancel.set(auth.flow().cancel_handle()).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let wait = u64::try_from(u128::from(start_at).saturating_sub(now)).unwrap();
        tokio::time::sleep(Duration::from_millis(wait)).await;

        let credentials: Result<Arc<Credentials>, Error> =
            tokio::time::timeout(NO_HANG, auth.get_credentials())
                .await
                .expect("get_credentials must not hang");

        let credentials = credentials.unwrap();
        println!("{TOKEN_LINE}{}", credentials.access_token.expose_secret());
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A running child process with its output collected in the background.
struct Child {
    child: std::process::Child,
    stdout: thread::JoinHandle<String>,
    stderr: thread::JoinHandle<String>,
    stderr_lines: std_mpsc::Receiver<String>,
    what: String,
}

/// What a finished child printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    what: String,
}

impl Child {
    /// Runs the test `test` of this binary again, with the extra environment `env`.
    fn start_self(test: &str, env: &[(&str, OsString)]) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args([test, "--exact", "--nocapture", "--test-threads=1"]);
        for (key, value) in env {
            command.env(key, value);
        }
        Self::start(command, format!("child `{test}`"))
    }

    fn start(mut command: Command, what: String) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {what}: {e}"));
        let mut stdout = child.stdout.take().unwrap();
        let stdout = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, stderr_lines) = std_mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
                let _ = lines_tx.send(line);
            }
            text
        });
        Self {
            child,
            stdout,
            stderr,
            stderr_lines,
            what,
        }
    }

    /// Waits for a line of standard error for which `find` returns something; kills the
    /// child and fails when none comes within [`NO_HANG`].
    fn wait_for_stderr<T>(&mut self, find: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + NO_HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = find(&line) {
                        return found;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not print the expected line within {NO_HANG:?}",
                        self.what
                    );
                }
            }
        }
    }

    /// Waits at most [`CHILD_LIMIT`]; kills the child and fails when it takes longer.
    fn wait(self) -> Finished {
        self.wait_at_most(CHILD_LIMIT)
    }

    /// Waits at most `limit`; kills the child and fails when it takes longer.
    fn wait_at_most(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not finish within {CHILD_LIMIT:?}; killed it",
                    self.what
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
            what: self.what,
        }
    }
}

impl Finished {
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
