//! Several processes sharing one token file: when the cached access token has expired and the
//! provider rotates refresh tokens, processes started at the same moment must redeem the
//! refresh token once between them (a second redemption of a rotated token would revoke the
//! whole login), and every one of them must end up with a working token.
//!
//! The processes are children of this test binary, each with its own device-flow
//! authenticator on a `FileStore` in the same directory, started together against the real
//! OpenID provider.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    ffi::OsString,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::Arc,
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
    DeviceCodeAuthenticator::builder(config_endpoint)
        .cfg_store(Arc::new(discovery))
        .http_client(http)
        .store(store)
        .poll_interval(Duration::from_millis(200))
        .timeout(Duration::from_secs(60))
        .prompt(prompt)
        .build()
        .unwrap()
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
        let endpoint = idp.host_port();
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
                    .store(&stored.with_expires_at(SystemTime::now() - Duration::from_secs(60)))
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
        cancel.set(auth.cancel_handle()).unwrap();
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
        let collect = |mut pipe: Box<dyn Read + Send>| {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        Self {
            stdout: collect(Box::new(child.stdout.take().unwrap())),
            stderr: collect(Box::new(child.stderr.take().unwrap())),
            child,
            what,
        }
    }

    /// Waits at most [`CHILD_LIMIT`]; kills the child and fails when it takes longer.
    fn wait(mut self) -> Finished {
        let deadline = Instant::now() + CHILD_LIMIT;
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
