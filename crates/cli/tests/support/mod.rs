//! Running the `flyte-auth` binary as a user would: a clean environment, a home directory and
//! a token cache of its own, a time limit on every run, and its output captured.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use std::{
    ffi::OsString,
    fmt,
    io::{BufRead as _, BufReader, Read as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use flyte_auth_tests::Idp;

/// The longest any run of the binary may take before the test fails ("does not hang").
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(90);

/// The binary under test.
pub(crate) fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_flyte-auth"))
}

/// A user of `flyte-auth`: an empty environment but `PATH`, a `HOME` of its own (so no
/// `~/.flyte/config.yaml` of the machine is read), and a file token store in a temporary
/// cache directory (the machine's keyring is never touched).
pub(crate) struct User {
    home: tempfile::TempDir,
    cache_dir: PathBuf,
    env: Vec<(OsString, OsString)>,
    args: Vec<String>,
}

impl User {
    /// A user with no configuration at all.
    pub(crate) fn new() -> Self {
        let home = tempfile::tempdir().expect("a temporary home directory");
        let cache_dir = home.path().join("token-cache");
        Self {
            home,
            cache_dir,
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    /// A user whose endpoint is `idp` (plain HTTP on loopback), as `--endpoint` and
    /// `--insecure` flags.
    pub(crate) fn of(idp: &Idp) -> Self {
        Self::new().args(["--endpoint", &idp.config_endpoint(), "--insecure"])
    }

    /// Adds options given on every run.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for every run.
    pub(crate) fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The user's home directory.
    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    /// The directory of the file token store.
    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The names of the files in the token cache (empty when it does not exist).
    pub(crate) fn cached_files(&self) -> Vec<String> {
        flyte_auth_tests::file_names_ending_with(&self.cache_dir, ".json")
    }

    /// The options of every run: the user's, then the file store's.
    pub(crate) fn options(&self) -> Vec<String> {
        let mut options = self.args.clone();
        options.extend([
            "--store".to_owned(),
            "file".to_owned(),
            "--cache-dir".to_owned(),
        ]);
        options.push(self.cache_dir.display().to_string());
        options
    }

    /// The command for `flyte-auth <args> <the user's options>`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .args(args)
            .args(&self.args)
            .args(["--store", "file", "--cache-dir"])
            .arg(&self.cache_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Runs `flyte-auth <args>` to its end (at most [`RUN_LIMIT`]).
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.spawn(args).finish()
    }

    /// Starts `flyte-auth <args>`, for a test that plays the user while it runs.
    pub(crate) fn spawn(&self, args: &[&str]) -> Running {
        let started = Instant::now();
        let mut child = self
            .command(args)
            .spawn()
            .expect("the flyte-auth binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut text);
            text
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines_tx, lines) = mpsc::channel();
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr_text);
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().expect("not poisoned").push_str(&line);
                collected.lock().expect("not poisoned").push('\n');
                let _ = lines_tx.send(line);
            }
        });
        Running {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            child,
            started,
            stdout: Some(stdout),
            stderr: Some(stderr),
            lines,
            stderr_text,
        }
    }
}

/// A running `flyte-auth`.
pub(crate) struct Running {
    args: Vec<String>,
    child: Child,
    started: Instant,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<()>>,
    lines: mpsc::Receiver<String>,
    stderr_text: Arc<Mutex<String>>,
}

impl Running {
    /// Waits for a line of standard error for which `find` returns something, and returns
    /// that; fails the test (killing the process) when none comes within `limit`.
    pub(crate) fn wait_for_stderr<T>(
        &mut self,
        limit: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = find(&line) {
                        return found;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "flyte-auth {:?} did not print the expected line within {limit:?}; \
                         its stderr:\n{}",
                        self.args,
                        self.stderr_text.lock().expect("not poisoned")
                    );
                }
            }
        }
    }

    /// Waits for the end of the process (killing it after [`RUN_LIMIT`]).
    pub(crate) fn finish(mut self) -> Output {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for flyte-auth") {
                break status;
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "flyte-auth {:?} ran longer than {RUN_LIMIT:?} and was killed; its stderr:\n{}",
                    self.args,
                    self.stderr_text.lock().expect("not poisoned")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        let stdout = self
            .stdout
            .take()
            .expect("joined once")
            .join()
            .expect("the stdout reader does not panic");
        self.stderr
            .take()
            .expect("joined once")
            .join()
            .expect("the stderr reader does not panic");
        let stderr = self.stderr_text.lock().expect("not poisoned").clone();
        Output {
            args: self.args.clone(),
            status,
            stdout,
            stderr,
            elapsed,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a run printed and how it ended.
pub(crate) struct Output {
    pub(crate) args: Vec<String>,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Output {
    /// The exit status (`None` when killed by a signal).
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts success and returns the token: standard output must be exactly one line.
    #[track_caller]
    pub(crate) fn token(&self) -> String {
        assert!(self.status.success(), "flyte-auth failed: {self:?}");
        let token = self
            .stdout
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("stdout does not end with a newline: {self:?}"));
        assert!(
            !token.is_empty() && !token.contains('\n') && token.trim() == token,
            "stdout is not one token: {self:?}"
        );
        assert!(
            !self.stderr.contains(token),
            "the token was written to stderr: {self:?}"
        );
        token.to_owned()
    }

    /// Asserts failure with `code`, nothing on stdout, and one line on stderr starting with
    /// `flyte-auth:`; returns that line.
    #[track_caller]
    pub(crate) fn error(&self, code: i32) -> String {
        assert_eq!(self.code(), Some(code), "unexpected exit status: {self:?}");
        assert!(self.stdout.is_empty(), "stdout is not empty: {self:?}");
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("flyte-auth: "))
            .unwrap_or_else(|| panic!("no `flyte-auth:` error line: {self:?}"));
        line.to_owned()
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flyte-auth {:?} ended with {} after {:.1?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args, self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// A loopback port nobody listens on (bound, then released).
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a bound address").port()
}

/// `http://127.0.0.1:{free port}/callback`, for a browser login whose callback server must
/// not collide with another test's.
pub(crate) fn free_redirect_uri() -> String {
    format!("http://127.0.0.1:{}/callback", closed_port())
}

/// The user code of a device prompt line (`... enter the code ABCD-EFGH.` or `... check that it
/// shows the code ABCD-EFGH.`).
pub(crate) fn user_code(line: &str) -> Option<String> {
    let rest = &line[line.find("the code ")? + "the code ".len()..];
    let code: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!code.is_empty()).then_some(code)
}

/// The authorization URL in a browser-login prompt line.
pub(crate) fn authorization_url(line: &str) -> Option<url::Url> {
    let word = line.trim();
    (word.starts_with("http") && word.contains("/auth?"))
        .then(|| url::Url::parse(word).ok())
        .flatten()
}

/// Writes an executable shell script `name` into `dir` and returns its path.
pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
    path
}

/// How long a test waits for a login prompt on stderr (or for the browser to be started).
pub(crate) const PROMPT_LIMIT: Duration = Duration::from_secs(60);

/// Runs `flyte-auth <args>` in device mode and approves the code it prints, as the user.
pub(crate) async fn device_login(idp: &Idp, user: &User, args: &[&str]) -> Output {
    let mut running = user.spawn(args);
    let code = running.wait_for_stderr(PROMPT_LIMIT, user_code);
    idp.approve_device_code(&code).await.unwrap_or_else(|e| {
        panic!("approving the device code failed: {e}");
    });
    running.finish()
}

/// Runs `flyte-auth <args>` with `--no-browser` and logs in at the URL it prints, as the user.
pub(crate) async fn browser_login(idp: &Idp, user: &User, args: &[&str]) -> Output {
    let mut running = user.spawn(args);
    let url = running.wait_for_stderr(PROMPT_LIMIT, authorization_url);
    complete_at(idp, &url).await;
    running.finish()
}

/// Signs in and approves at `url` as the user; the client's callback server must answer 200.
async fn complete_at(idp: &Idp, url: &url::Url) {
    let answer = idp
        .complete_browser_login(url)
        .await
        .unwrap_or_else(|e| panic!("the browser login failed: {e}"));
    assert_eq!(
        answer.status(),
        200,
        "the callback server answered {answer:?}"
    );
}

/// The browser `$BROWSER` names: a script that appends every URL it is started with to a
/// file, so the test learns what `flyte-auth` opened and follows it as the user.
pub(crate) struct RecordingBrowser {
    script: PathBuf,
    opened: PathBuf,
}

impl RecordingBrowser {
    /// Writes the script into `dir`.
    pub(crate) fn new(dir: &Path) -> Self {
        let opened = dir.join("opened-urls");
        let script = script(
            dir,
            "browser",
            &format!("printf '%s\\n' \"$1\" >> '{}'", opened.display()),
        );
        Self { script, opened }
    }

    /// The script, for `$BROWSER`.
    pub(crate) fn path(&self) -> &Path {
        &self.script
    }

    /// Every URL the browser was started with, in order.
    pub(crate) fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(&self.opened)
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The URL the browser is started with after it was started `before` times, waiting up
    /// to [`PROMPT_LIMIT`] for it.
    pub(crate) async fn url_after(&self, before: usize) -> url::Url {
        let deadline = Instant::now() + PROMPT_LIMIT;
        while Instant::now() < deadline {
            if let Some(line) = self.opened().get(before) {
                return url::Url::parse(line)
                    .unwrap_or_else(|e| panic!("the browser got no URL ({e}): {line}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser was not started within {PROMPT_LIMIT:?}");
    }

    /// Runs `flyte-auth <args>` (whose environment names this browser) and logs in at the URL
    /// the browser was started with, as the user; checks that stderr showed the same URL.
    pub(crate) async fn login(&self, idp: &Idp, user: &User, args: &[&str]) -> Output {
        let before = self.opened().len();
        let mut running = user.spawn(args);
        let printed = running.wait_for_stderr(PROMPT_LIMIT, authorization_url);
        let url = self.url_after(before).await;
        assert_eq!(url, printed, "the browser and stderr got different URLs");
        complete_at(idp, &url).await;
        running.finish()
    }
}
