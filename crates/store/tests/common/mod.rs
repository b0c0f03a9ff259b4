//! Helpers shared by the integration tests: child processes of the test binary itself,
//! Python's `keyring`, unique names, captured logs.

#![allow(dead_code, reason = "each test file uses a part of these helpers")]

use std::{
    ffi::OsString,
    io::{Read, Write},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Set in the environment of a child process started by [`spawn_self`]; its value says what
/// the child is asked to do.
pub(crate) const CHILD_ENV: &str = "FLYTE_AUTH_STORE_TEST_CHILD";

/// The role this process was given by its parent test, if it is a child.
pub(crate) fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A name no other test (in this or a parallel run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running child process with its output collected in the background.
pub(crate) struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    what: String,
}

/// What a finished child printed.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    /// Panics with the child's output unless it exited successfully after running exactly
    /// one test.
    pub(crate) fn assert_test_passed(&self) {
        assert!(
            self.status.success() && self.stdout.contains("1 passed"),
            "child test failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

impl Running {
    fn start(mut command: Command, what: String) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {what}: {e}"));
        let stdout = collect(child.stdout.take().expect("piped"));
        let stderr = collect(child.stderr.take().expect("piped"));
        Self {
            child,
            stdout,
            stderr,
            what,
        }
    }

    /// Whether the child is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits at most `limit`; kills the child and panics when it takes longer.
    pub(crate) fn wait(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stdout = self.stdout.join().unwrap_or_default();
                    let stderr = self.stderr.join().unwrap_or_default();
                    panic!(
                        "{} did not finish within {limit:?}; killed it\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                        self.what
                    );
                }
                Err(e) => panic!("waiting for {}: {e}", self.what),
            }
        };
        Finished {
            status,
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}

/// Starts this test binary again, running only the test `test_name`, with [`CHILD_ENV`] set
/// to `role` and the extra environment `env`.
pub(crate) fn spawn_self(test_name: &str, role: &str, env: &[(&str, OsString)]) -> Running {
    spawn_self_without(test_name, role, env, &[])
}

/// [`spawn_self`], with the variables `removed` taken out of the child's environment.
pub(crate) fn spawn_self_without(
    test_name: &str,
    role: &str,
    env: &[(&str, OsString)],
    removed: &[&str],
) -> Running {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role);
    for key in removed {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    Running::start(command, format!("child test `{test_name}` ({role})"))
}

/// Runs a Python script (with the environment `env`) and returns its standard output.
///
/// Panics, with what to install, when Python or its `keyring` package is missing.
pub(crate) fn python(script: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(script)
        .env("PYTHONIOENCODING", "utf-8");
    for (key, value) in env {
        command.env(key, value);
    }
    let finished = Running::start(command, "python3".to_owned()).wait(Duration::from_secs(60));
    assert!(
        finished.status.success(),
        "python3 failed ({}); the cross-compatibility tests need python3 with the `keyring` and \
         `secretstorage` packages (`python3 -m pip install 'keyring>=25,<26' 'secretstorage>=3.3,<4'`)\n\
         --- stdout\n{}\n--- stderr\n{}",
        finished.status,
        finished.stdout,
        finished.stderr
    );
    finished.stdout
}

/// Log output captured by [`capture_logs`].
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with every log line of this thread (all levels) captured; returns its result and
/// the logs.
pub(crate) fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, logs.text())
}

/// The real Flyte 2 SDK's `KeyringStore` on its own file keyring backend (what Python's
/// `keyring` picks in a notebook), with the file in `$HOME/.flyte/keyring.cfg`.
const FLYTE2_FILE_KEYRING: &str = r#"
import json, os, keyring
from flyte._keyring.file import SimplePlainTextKeyring
from flyte.remote._client.auth._keyring import Credentials, KeyringStore
keyring.set_keyring(SimplePlainTextKeyring())
ep = os.environ["ENDPOINT"]
if os.environ["ACTION"] == "store":
    KeyringStore.store(Credentials(access_token=os.environ["ACCESS"], refresh_token=os.environ.get("REFRESH") or None, for_endpoint=ep))
    print("null")
else:
    c = KeyringStore.retrieve(ep)
    print(json.dumps(None if c is None else {"access": c.access_token, "refresh": c.refresh_token}))
"#;

/// Runs the real Flyte 2 SDK's `KeyringStore` on its file keyring backend with `home` as
/// `$HOME`: `action` `store` (with `ACCESS` and `REFRESH` in `extra`) or `retrieve` (its
/// login as `{"access", "refresh"}`, or `null`).
pub(crate) fn flyte2_file_keyring(
    home: &std::path::Path,
    action: &str,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> serde_json::Value {
    let home = home.to_str().expect("a UTF-8 temporary directory");
    let mut env = vec![("HOME", home), ("ACTION", action), ("ENDPOINT", endpoint)];
    env.extend_from_slice(extra);
    let out = python(FLYTE2_FILE_KEYRING, &env);
    serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null)
}
