//! `cargo xtask demo`: every way of logging in, through the real `flyte-auth` binary, against
//! the local OpenID provider of `tests/idp`, ending with a table of what each step did.
//!
//! What it does, on a fresh machine:
//! 1. `npm ci --prefix tests/idp` when `tests/idp/node_modules` is missing;
//! 2. builds `flyte-auth`, the `demo_browser` example of `flyte-auth-cli` (the stand-in for
//!    the person at the browser: it signs in at the provider's pages and approves) and the
//!    `iap_token` example of `flyte-auth-google`, in one `cargo build`;
//! 3. starts three providers on free loopback ports (tokens living an hour, two seconds, and a
//!    Flyte 2 backend: ConnectRPC discovery, no `/config/v1/flyte_client`);
//! 4. runs `flyte-auth` with a `HOME` of its own (a `~/.flyte/config.yaml` naming the first
//!    provider) and `--store file` in a temporary directory, so the user's keyring and config
//!    are never touched: client credentials, the cache, a token command, logout and login
//!    again, a refused secret, the device flow, the browser login through `$BROWSER` (no
//!    nonce without `openid`), a logout that revokes its refresh token (the provider then
//!    refuses that token), a login asking for `openid` (a nonce, which the id token carries),
//!    and an automatic refresh after expiry; then a Union API key in `UNION_API_KEY` with no
//!    config file and its `status`, and a Flyte 2 login with `FLYTE_API_KEY` and its
//!    `status`; each step checks what the provider's request counters say; then the
//!    identity-aware proxy's token from a metadata server on loopback (`flyte-auth-google`'s
//!    `iap_token` example, then `flyte-auth --proxy-google-audience`, whose every request to
//!    the provider carries it);
//! 5. stops the providers and removes the directory, also when a step fails. On Ctrl-C the
//!    terminal stops every process of the group, and a provider also exits when the pipe to
//!    its stdin closes.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::{capture, cargo, run, show};
use crate::provider::{Provider, Stats};
use crate::tasks::Outcome;

const MINUTE: Duration = Duration::from_secs(60);
/// The longest one run of `flyte-auth` may take.
const STEP_LIMIT: Duration = Duration::from_secs(90);
/// The fixture's confidential client (`BASIC_CLIENT` of `flyte-auth-tests`) and its test secret.
const SERVICE_CLIENT: &str = "flyte-service";
const SERVICE_SECRET: &str = "s3cr:t/+%&= ~";
/// The fixture's client for API keys (`API_KEY_CLIENT` of `flyte-auth-tests`): no `:` in it.
const API_KEY_CLIENT: &str = "flyte-api-key";
const API_KEY_SECRET: &str = "api-key s3cret/+";
/// The identity-aware proxy's OAuth client id: the audience of the demo's Google ID token.
const IAP_AUDIENCE: &str = "123-iap-demo.apps.googleusercontent.com";
/// Lifetime of the tokens of the second provider, which shows the refresh.
const SHORT_TTL: Duration = Duration::from_secs(2);

/// `cargo xtask demo`.
pub(crate) fn demo() -> Outcome {
    let root = crate::workspace_root();
    let idp_dir = root.join("tests").join("idp");
    if !idp_dir.join("node_modules").is_dir() {
        run(
            Command::new("npm")
                .args(["ci", "--prefix", "tests/idp"])
                .current_dir(root),
            10 * MINUTE,
        )?;
    }
    let binaries = build()?;

    let work = WorkDir::create()?;
    let main_settings = [
        ("access-token-ttl", "3600".into()),
        ("device-poll-interval", "1".into()),
        ("flyte-redirect-uri", free_redirect_uri()?),
    ];
    let short_settings = [
        ("access-token-ttl", SHORT_TTL.as_secs().to_string()),
        ("device-poll-interval", "1".into()),
        ("flyte-redirect-uri", free_redirect_uri()?),
    ];
    let flyte2_settings = [("flyte-version", "2".into())];
    // Started side by side: each waits for its own ready line.
    let (main, short, flyte2) = std::thread::scope(|scope| {
        let main = scope.spawn(|| Provider::start(&idp_dir, &main_settings));
        let short = scope.spawn(|| Provider::start(&idp_dir, &short_settings));
        let flyte2 = scope.spawn(|| Provider::start(&idp_dir, &flyte2_settings));
        (joined(main), joined(short), joined(flyte2))
    });
    let (main, short, flyte2) = (main?, short?, flyte2?);
    std::fs::create_dir_all(work.home().join(".flyte")).map_err(|e| e.to_string())?;
    std::fs::write(
        work.home().join(".flyte").join("config.yaml"),
        format!(
            "admin:\n  endpoint: dns:///127.0.0.1:{}\n  insecure: true\n  pkceConfig:\n    \
             timeout: 60s\n  deviceFlowConfig:\n    timeout: 2m\n",
            main.port
        ),
    )
    .map_err(|e| format!("cannot write the demo's config file: {e}"))?;
    println!(
        "\nproviders: http://127.0.0.1:{} (tokens live an hour), http://127.0.0.1:{} \
         (tokens live {} s) and http://127.0.0.1:{} (a Flyte 2 backend)\nHOME={} (with \
         .flyte/config.yaml naming the first)",
        main.port,
        short.port,
        SHORT_TTL.as_secs(),
        flyte2.port,
        work.home().display()
    );

    let mut demo = Demo {
        cli: binaries.cli,
        browser: binaries.browser,
        iap_token: binaries.iap_token,
        work: &work,
        rows: Vec::new(),
    };
    let result = demo
        .steps(&main, &short)
        .and_then(|()| demo.union_api_key(&main))
        .and_then(|()| demo.flyte2_api_key(&flyte2))
        .and_then(|()| demo.iap_proxy_token(&main));
    demo.summary();
    result.map(|()| Some(format!("{} steps", demo.rows.len())))
}

/// What a thread started by [`std::thread::scope`] returned; its panic as an error.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    handle
        .join()
        .unwrap_or_else(|_| Err("a provider's start panicked".into()))
}

/// What the demo runs, built by one `cargo build`.
struct Binaries {
    /// `flyte-auth`.
    cli: PathBuf,
    /// The `demo_browser` example of `flyte-auth-cli`: the person at the browser.
    browser: PathBuf,
    /// The `iap_token` example of `flyte-auth-google`.
    iap_token: PathBuf,
}

/// Builds `flyte-auth` and the examples the demo runs (built here, not in a step, so that a
/// step's time is the time of what it shows).
fn build() -> Result<Binaries, String> {
    let mut cmd = cargo([
        "build",
        "-p",
        "flyte-auth-cli",
        "-p",
        "flyte-auth-google",
        "--bin",
        "flyte-auth",
        "--example",
        "demo_browser",
        "--example",
        "iap_token",
        "--message-format=json-render-diagnostics",
    ]);
    println!("$ {}", show(&cmd));
    let messages = capture(&mut cmd, 30 * MINUTE)?;
    let executable = |name: &str| {
        messages
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| format!("cargo build did not report the `{name}` executable"))
    };
    Ok(Binaries {
        cli: executable("flyte-auth")?,
        browser: executable("demo_browser")?,
        iap_token: executable("iap_token")?,
    })
}

/// A temporary directory holding the demo user's home and token caches; removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("flyte-auth-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home"))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    fn home(&self) -> PathBuf {
        self.0.join("home")
    }

    /// A token cache directory of its own for `name`.
    fn cache(&self, name: &str) -> PathBuf {
        self.0.join("cache").join(name)
    }

    /// A home with no Flyte config file in it.
    fn bare_home(&self) -> Result<PathBuf, String> {
        let home = self.0.join("bare-home");
        std::fs::create_dir_all(&home)
            .map_err(|e| format!("cannot create {}: {e}", home.display()))?;
        Ok(home)
    }

    fn browser_log(&self) -> PathBuf {
        self.0.join("demo-browser.log")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `http://127.0.0.1:{free port}/callback`.
fn free_redirect_uri() -> Result<String, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    Ok(format!("http://127.0.0.1:{port}/callback"))
}

/// How a run of `flyte-auth` ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// The token: exit status 0 and exactly one line on stdout.
    fn token(&self) -> Result<String, String> {
        let token = self.stdout.strip_suffix('\n').unwrap_or(&self.stdout);
        if self.code != Some(0) || token.is_empty() || token.contains('\n') {
            return Err(format!(
                "expected exit status 0 and one token on stdout, got {:?} with stdout {:?}",
                self.code,
                self.stdout.lines().count()
            ));
        }
        Ok(token.to_owned())
    }
}

/// One line of the summary.
struct Row {
    step: String,
    result: Result<String, String>,
    seconds: f64,
}

struct Demo<'a> {
    cli: PathBuf,
    browser: PathBuf,
    iap_token: PathBuf,
    work: &'a WorkDir,
    rows: Vec<Row>,
}

impl Demo<'_> {
    fn steps(&mut self, main: &Provider, short: &Provider) -> Result<(), String> {
        self.client_credentials(main)?;
        self.device_flow(main)?;
        self.browser_login(main)?;
        self.logout_revokes(main)?;
        self.openid_login(main)?;
        self.refresh(short)?;
        Ok(())
    }

    /// `flyte-auth <args>` for the demo user, tokens cached in `cache`. `env` is shown in the
    /// echoed command line; the run also gets `PATH` and the demo's `HOME`.
    fn command(&self, args: &[&str], cache: &str, env: &[(&str, &str)]) -> (Command, String) {
        self.command_in(&self.work.home(), args, cache, env)
    }

    /// [`Self::command`] with `home` as `HOME` (shown when it is not the demo's).
    fn command_in(
        &self,
        home: &Path,
        args: &[&str],
        cache: &str,
        env: &[(&str, &str)],
    ) -> (Command, String) {
        let cache_dir = self.work.cache(cache);
        let mut cmd = Command::new(&self.cli);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("FLYTE_AUTH_DEMO_BROWSER_LOG", self.work.browser_log())
            // No config file of the directory xtask runs in (or its git root) is found.
            .current_dir(&self.work.0)
            .args(args)
            .args(["--store", "file", "--cache-dir"])
            .arg(&cache_dir);
        let mut shown = Command::new("flyte-auth");
        if home != self.work.home() {
            shown.env(
                "HOME",
                Path::new("$TMP").join(home.strip_prefix(&self.work.0).unwrap_or(home)),
            );
        }
        shown
            .args(args)
            .args(["--store", "file", "--cache-dir"])
            .arg(
                Path::new("$TMP").join(cache_dir.strip_prefix(&self.work.0).unwrap_or(&cache_dir)),
            );
        for (name, value) in env {
            cmd.env(name, value);
            // The echoed command line shows no secret, not even the fixture's.
            shown.env(
                name,
                if name.contains("SECRET") || name.contains("KEY") {
                    "***"
                } else {
                    value
                },
            );
        }
        (cmd, show(&shown))
    }

    /// Runs a step: `body` does the work and says what happened; timed and recorded.
    fn step(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut Self) -> Result<String, String>,
    ) -> Result<(), String> {
        println!("\n==> {name}");
        let started = Instant::now();
        let result = body(self);
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(what) => println!("<== {name}: {what} ({seconds:.1} s)"),
            Err(e) => println!("<== {name}: FAILED ({seconds:.1} s): {e}"),
        }
        let failed = result.as_ref().err().cloned();
        self.rows.push(Row {
            step: name.to_owned(),
            result,
            seconds,
        });
        match failed {
            Some(e) => Err(format!("{name}: {e}")),
            None => Ok(()),
        }
    }

    /// Runs `flyte-auth`, its stderr shown indented as it comes; `on_line` sees each line of it
    /// (to approve a device code, say).
    fn flyte_auth(
        &self,
        (mut cmd, shown): (Command, String),
        mut on_line: impl FnMut(&str) -> Result<(), String>,
    ) -> Result<Finished, String> {
        println!("$ {shown}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.cli.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (stdout_tx, stdout_text) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut text);
            let _ = stdout_tx.send(text);
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines_tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let started = Instant::now();
        let mut stderr_text = String::new();
        let mut failure = None;
        let mut handle = |line: String, failure: &mut Option<String>| {
            println!("    | {line}");
            if failure.is_none()
                && let Err(e) = on_line(&line)
            {
                *failure = Some(e);
            }
            stderr_text.push_str(&line);
            stderr_text.push('\n');
        };
        let status = loop {
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => handle(line, &mut failure),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let over = started.elapsed() > STEP_LIMIT;
            if failure.is_some() || over {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failure.unwrap_or_else(|| {
                    format!(
                        "flyte-auth did not finish within {} s",
                        STEP_LIMIT.as_secs()
                    )
                }));
            }
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
        };
        // The rest of the output; bounded, in case something it started still holds the pipes.
        let drained = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = lines.recv_timeout(drained.saturating_duration_since(Instant::now())) {
            handle(line, &mut failure);
        }
        let stdout = stdout_text
            .recv_timeout(drained.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        Ok(Finished {
            code: status.code(),
            stdout,
            stderr: stderr_text,
        })
    }

    /// A token run that must succeed; the step's token is returned with the counters' change.
    fn token_run(
        &self,
        provider: &Provider,
        command: (Command, String),
        on_line: impl FnMut(&str) -> Result<(), String>,
    ) -> Result<(String, Stats), String> {
        let before = provider.stats()?;
        let finished = self.flyte_auth(command, on_line)?;
        let token = finished
            .token()
            .map_err(|e| format!("{e}\n{}", finished.stderr.trim_end()))?;
        if finished.stderr.contains(&token) {
            return Err("the token was written to stderr".into());
        }
        println!(
            "    (stdout: one line, a token of {} characters, fingerprint {})",
            token.len(),
            fingerprint(&token)
        );
        let after = provider.stats()?;
        Ok((token, diff(after, before)))
    }

    fn client_credentials(&mut self, main: &Provider) -> Result<(), String> {
        let service = |demo: &Self, cache: &str, secret: &str, sub: &str| {
            demo.command(
                &[
                    sub,
                    "--auth-mode",
                    "ClientSecret",
                    "--client-id",
                    SERVICE_CLIENT,
                    "--client-secret-env",
                    "DEMO_CLIENT_SECRET",
                ],
                cache,
                &[("DEMO_CLIENT_SECRET", secret)],
            )
        };
        let mut first = String::new();
        self.step("client credentials: token", |demo| {
            let (token, change) = demo.token_run(
                main,
                service(demo, "service", SERVICE_SECRET, "token"),
                |_| Ok(()),
            )?;
            expect(
                change.client_credentials == 1 && change.discovery >= 1,
                "discovery and one client_credentials grant",
                change,
            )?;
            first = token;
            Ok("logged in: discovery, one client_credentials grant".into())
        })?;
        self.step("client credentials: token again", |demo| {
            let (token, change) = demo.token_run(
                main,
                service(demo, "service", SERVICE_SECRET, "token"),
                |_| Ok(()),
            )?;
            expect(
                token == first && change.token_requests() == 0,
                "the same token, no request",
                change,
            )?;
            Ok("served from the cache: same token, no request".into())
        })?;
        self.step("external command: token", |demo| {
            // `flyte-auth token` as the token command of another `flyte-auth`.
            let inner = |program: String, cache: String| {
                serde_json::to_string(&[
                    program,
                    "token".into(),
                    "--auth-mode".into(),
                    "ClientSecret".into(),
                    "--client-id".into(),
                    SERVICE_CLIENT.into(),
                    "--client-secret-env".into(),
                    "DEMO_CLIENT_SECRET".into(),
                    "--store".into(),
                    "file".into(),
                    "--cache-dir".into(),
                    cache,
                ])
                .expect("strings serialize")
            };
            let real = inner(
                demo.cli.display().to_string(),
                demo.work.cache("service").display().to_string(),
            );
            let display = inner("flyte-auth".into(), "$TMP/cache/service".into());
            let (mut cmd, _) = demo.command(
                &["token", "--auth-mode", "ExternalCommand"],
                "command",
                &[("DEMO_CLIENT_SECRET", SERVICE_SECRET)],
            );
            cmd.env("FLYTE_CREDENTIALS_COMMAND", &real);
            let (_, shown) = demo.command(
                &["token", "--auth-mode", "ExternalCommand"],
                "command",
                &[("FLYTE_CREDENTIALS_COMMAND", &display)],
            );
            let (token, change) = demo.token_run(main, (cmd, shown), |_| Ok(()))?;
            expect(
                token == first && change.token_requests() == 0,
                "the cached client-credentials token",
                change,
            )?;
            Ok("the command (`flyte-auth token`) printed the cached token".into())
        })?;
        self.step("status", |demo| {
            let text = demo
                .flyte_auth(service(demo, "service", SERVICE_SECRET, "status"), |_| {
                    Ok(())
                })?;
            println!("    {}", text.stdout.trim_end().replace('\n', "\n    "));
            let (mut cmd, shown) = service(demo, "service", SERVICE_SECRET, "status");
            cmd.arg("--json");
            let json = demo.flyte_auth((cmd, format!("{shown} --json")), |_| Ok(()))?;
            if text.code != Some(0) || json.code != Some(0) {
                return Err(format!(
                    "status ended with {:?} and {:?}",
                    text.code, json.code
                ));
            }
            if text.stdout.contains(&first) || json.stdout.contains(&first) {
                return Err("status showed the token".into());
            }
            let doc: Value = serde_json::from_str(&json.stdout).map_err(|e| e.to_string())?;
            Ok(format!(
                "logged_in: {}, expires in {} s; no token or secret shown",
                doc["logged_in"], doc["credentials"]["expires_in_seconds"]
            ))
        })?;
        self.step("logout, then token", |demo| {
            let out = demo
                .flyte_auth(service(demo, "service", SERVICE_SECRET, "logout"), |_| {
                    Ok(())
                })?;
            if out.code != Some(0) {
                return Err(format!("logout ended with {:?}", out.code));
            }
            let (token, change) = demo.token_run(
                main,
                service(demo, "service", SERVICE_SECRET, "token"),
                |_| Ok(()),
            )?;
            expect(
                token != first && change.client_credentials == 1 && change.discovery == 0,
                "a new client_credentials grant and no discovery",
                change,
            )?;
            Ok(
                "logged out; the next token logged in again, straight to the token endpoint \
                 (the discovery answer was kept)"
                    .into(),
            )
        })?;
        self.step("client credentials: wrong secret", |demo| {
            let out = demo
                .flyte_auth(service(demo, "refused", "not-the-secret", "token"), |_| {
                    Ok(())
                })?;
            if out.code != Some(3)
                || !out.stderr.contains("invalid_client")
                || !out.stdout.is_empty()
            {
                return Err(format!(
                    "expected exit status 3 naming invalid_client, got {:?}",
                    out.code
                ));
            }
            if out.stderr.contains("not-the-secret") {
                return Err("the secret was printed".into());
            }
            Ok("refused: exit status 3, `invalid_client`, secret not shown".into())
        })
    }

    /// A Union API key, made as `union create api-key` / `flyte create api-key` make it
    /// (standard base64 of `endpoint:client_id:client_secret:None`), in `UNION_API_KEY` and
    /// nowhere else: a home without a config file, no client id or secret on the command line.
    /// `--endpoint` names the provider's port, which a key cannot hold (a fourth `:`).
    fn union_api_key(&mut self, main: &Provider) -> Result<(), String> {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .encode(format!("localhost:{API_KEY_CLIENT}:{API_KEY_SECRET}:None"));
        let endpoint = format!("http://127.0.0.1:{}", main.port);
        let home = self.work.bare_home()?;
        let run = |demo: &Self, sub: &str| {
            demo.command_in(
                &home,
                &[sub, "--endpoint", &endpoint],
                "union",
                &[("UNION_API_KEY", key.as_str())],
            )
        };
        let mut first = String::new();
        self.step("UNION_API_KEY: token", |demo| {
            let (token, change) = demo.token_run(main, run(demo, "token"), |_| Ok(()))?;
            expect(
                change.client_credentials == 1
                    && change.token_requests() == 1
                    && change.authorizations == 0
                    && change.device_authorizations == 0,
                "one client_credentials grant and no browser or device login",
                change,
            )?;
            first = token;
            Ok("logged in with the key's client: one client_credentials grant, no browser".into())
        })?;
        self.step("UNION_API_KEY: status", |demo| {
            let text = demo.flyte_auth(run(demo, "status"), |_| Ok(()))?;
            println!("    {}", text.stdout.trim_end().replace('\n', "\n    "));
            let (mut cmd, shown) = run(demo, "status");
            cmd.arg("--json");
            let json = demo.flyte_auth((cmd, format!("{shown} --json")), |_| Ok(()))?;
            if text.code != Some(0) || json.code != Some(0) {
                return Err(format!(
                    "status ended with {:?} and {:?}",
                    text.code, json.code
                ));
            }
            let want = format!("client id {API_KEY_CLIENT} (from UNION_API_KEY)");
            if !text.stdout.contains(&want) {
                return Err(format!("status did not say `{want}`"));
            }
            let doc: Value = serde_json::from_str(&json.stdout).map_err(|e| e.to_string())?;
            if doc["api_key"]["origin"] != "UNION_API_KEY"
                || doc["logged_in"] != true
                || !doc["config_file"].is_null()
            {
                return Err(format!(
                    "status --json: api_key {}, logged_in {}, config_file {}",
                    doc["api_key"], doc["logged_in"], doc["config_file"]
                ));
            }
            for shown in [&text.stdout, &text.stderr, &json.stdout, &json.stderr] {
                if shown.contains(&first) || shown.contains(API_KEY_SECRET) || shown.contains(&key)
                {
                    return Err("status showed the token, the key or its secret".into());
                }
            }
            Ok(format!(
                "the key's source named: {want}; no config file; no secret shown"
            ))
        })
    }

    /// A Flyte 2 backend (no `/config/v1/flyte_client`; ConnectRPC discovery) and a Flyte 2
    /// API key in `FLYTE_API_KEY`; `--endpoint` names the provider (a key cannot hold a port).
    fn flyte2_api_key(&mut self, flyte2: &Provider) -> Result<(), String> {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .encode(format!("localhost:{API_KEY_CLIENT}:{API_KEY_SECRET}:"));
        let endpoint = format!("http://127.0.0.1:{}", flyte2.port);
        let run = |demo: &Self, sub: &str| {
            demo.command(
                &[sub, "--endpoint", &endpoint],
                "flyte2",
                &[("FLYTE_API_KEY", key.as_str())],
            )
        };
        let mut first = String::new();
        self.step("Flyte 2 backend, FLYTE_API_KEY: token", |demo| {
            let (token, change) = demo.token_run(flyte2, run(demo, "token"), |_| Ok(()))?;
            expect(
                change.client_credentials == 1,
                "one client_credentials grant after ConnectRPC discovery",
                change,
            )?;
            first = token;
            Ok("logged in: ConnectRPC discovery, one client_credentials grant".into())
        })?;
        self.step("Flyte 2 backend: status", |demo| {
            let out = demo.flyte_auth(run(demo, "status"), |_| Ok(()))?;
            println!("    {}", out.stdout.trim_end().replace('\n', "\n    "));
            let want = format!("API key in use for 127.0.0.1:{}", flyte2.port);
            if out.code != Some(0) || !out.stdout.contains(&want) {
                return Err(format!("status did not say `{want}`"));
            }
            if out.stdout.contains(&first) || out.stdout.contains(API_KEY_SECRET) {
                return Err("status showed the token or the key's secret".into());
            }
            Ok(format!(
                "{want}, client id {API_KEY_CLIENT}; no secret shown"
            ))
        })
    }

    fn device_flow(&mut self, main: &Provider) -> Result<(), String> {
        let mut first = String::new();
        self.step("device flow: token", |demo| {
            let browser = demo.browser.clone();
            let mut url = None;
            let mut approved = None;
            let command = demo.command(&["token", "--auth-mode", "DeviceFlow"], "device", &[]);
            let (token, change) = demo.token_run(main, command, |line| {
                let word = line.trim();
                if word.starts_with("http") && word.contains("/device") {
                    url = Some(word.to_owned());
                }
                if let (Some(url), Some(code), None) = (&url, user_code(line), &approved) {
                    run(Command::new(&browser).arg(url).arg(&code), MINUTE)?;
                    approved = Some(code);
                }
                Ok(())
            })?;
            let code = approved.ok_or("no user code was shown")?;
            expect(
                change.device_authorizations == 1 && change.device_code >= 1,
                "one device login",
                change,
            )?;
            first = token;
            let polls = match change.device_code {
                1 => "1 poll".to_owned(),
                n => format!("{n} polls"),
            };
            Ok(format!(
                "code {code} approved by the stand-in browser; logged in after {polls}"
            ))
        })?;
        self.step("device flow: token again", |demo| {
            let command = demo.command(&["token", "--auth-mode", "DeviceFlow"], "device", &[]);
            let (token, change) = demo.token_run(main, command, |_| Ok(()))?;
            expect(
                token == first && change.token_requests() == 0 && change.device_authorizations == 0,
                "the same token, no request",
                change,
            )?;
            Ok("served from the cache: same token, no request".into())
        })
    }

    fn browser_login(&mut self, main: &Provider) -> Result<(), String> {
        let mut first = String::new();
        let browser = self.browser.display().to_string();
        self.step("browser login (PKCE): token", |demo| {
            let command = demo.command(
                &["token", "--auth-mode", "Pkce"],
                "browser",
                &[("BROWSER", &browser)],
            );
            let mut nonce = None;
            let (token, change) = demo.token_run(main, command, |line| {
                if let Some(url) = authorization_url(line) {
                    nonce = Some(query_param(&url, "nonce"));
                }
                Ok(())
            })?;
            expect(
                change.authorizations == 1 && change.authorization_code == 1,
                "one browser login",
                change,
            )?;
            match nonce {
                None => return Err("no authorization URL was shown".into()),
                // The provider refuses a nonce without `openid`, which this login does not ask.
                Some(Some(_)) => return Err("a nonce was sent without the openid scope".into()),
                Some(None) => {}
            }
            first = token;
            println!(
                "    {}",
                browser_log(demo.work).trim_end().replace('\n', "\n    ")
            );
            Ok(
                "$BROWSER signed in and approved; one authorization_code grant; no nonce sent"
                    .into(),
            )
        })?;
        self.step("browser login (PKCE): token again", |demo| {
            let command = demo.command(
                &["token", "--auth-mode", "Pkce"],
                "browser",
                &[("BROWSER", &browser)],
            );
            let (token, change) = demo.token_run(main, command, |_| Ok(()))?;
            expect(
                token == first && change.token_requests() == 0 && change.authorizations == 0,
                "the same token, no request",
                change,
            )?;
            Ok("served from the cache: same token, no request, no browser".into())
        })
    }

    /// A browser login asking for `openid`: the authorization request carries a nonce, and the
    /// id token the login stores carries the same nonce (`flyte-auth` refuses one that does
    /// not). A login without `openid` sends no nonce (the providers that refuse one).
    fn openid_login(&mut self, main: &Provider) -> Result<(), String> {
        let browser = self.browser.display().to_string();
        self.step("browser login asking for openid: nonce", |demo| {
            let command = demo.command(
                &[
                    "token",
                    "--auth-mode",
                    "Pkce",
                    "--scopes",
                    "openid,offline,all",
                ],
                "openid",
                &[("BROWSER", &browser)],
            );
            let mut sent = None;
            let (_, change) = demo.token_run(main, command, |line| {
                if let Some(url) = authorization_url(line) {
                    sent = query_param(&url, "nonce");
                }
                Ok(())
            })?;
            expect(change.authorization_code == 1, "one browser login", change)?;
            let sent = sent.ok_or("the authorization request carried no nonce")?;
            let stored = stored_credentials(&demo.work.cache("openid"))?;
            let id_token = stored["id_token"]
                .as_str()
                .ok_or("no id token was stored")?;
            if jwt_claim(id_token, "nonce").as_deref() != Some(sent.as_str()) {
                return Err("the stored id token does not carry the nonce sent".into());
            }
            Ok(format!(
                "the request sent a nonce ({} characters); the stored id token carries it",
                sent.len()
            ))
        })
    }

    /// `flyte-auth logout` of the browser login: the refresh token is revoked at the provider
    /// (its `revocation_endpoint`) before the file is deleted, so a refresh with the old token
    /// is refused by the provider.
    fn logout_revokes(&mut self, main: &Provider) -> Result<(), String> {
        self.step("logout revokes the refresh token", |demo| {
            let cache = demo.work.cache("browser");
            let refresh_token = stored_refresh_token(&cache)?;
            let command = demo.command(&["logout", "--auth-mode", "Pkce"], "browser", &[]);
            let out = demo.flyte_auth(command, |_| Ok(()))?;
            if out.code != Some(0) || !out.stderr.contains("revoked at the server") {
                return Err(format!(
                    "expected logout to say the refresh token was revoked; it ended with {:?}",
                    out.code
                ));
            }
            if stored_refresh_token(&cache).is_ok() {
                return Err("the login is still stored".into());
            }
            let url = format!("http://127.0.0.1:{}/token", main.port);
            println!(
                "$ POST {url} grant_type=refresh_token client_id=flytectl refresh_token=<the \
                 old one>"
            );
            let (status, answer) = refresh_with(&url, &refresh_token)?;
            println!("    {status} {answer}");
            if status != 400 || answer["error"] != "invalid_grant" {
                return Err(format!(
                    "expected the provider to refuse the old refresh token with invalid_grant, \
                     got {status} {answer}"
                ));
            }
            Ok(
                "revoked at the provider, then deleted; a refresh with the old token: 400 \
                invalid_grant"
                    .into(),
            )
        })
    }

    fn refresh(&mut self, short: &Provider) -> Result<(), String> {
        let endpoint = short.endpoint();
        let browser = self.browser.display().to_string();
        let args = [
            "token",
            "--auth-mode",
            "Pkce",
            "--endpoint",
            endpoint.as_str(),
        ];
        let mut first = String::new();
        self.step(
            &format!("browser login, {} s tokens", SHORT_TTL.as_secs()),
            |demo| {
                let command = demo.command(&args, "refresh", &[("BROWSER", &browser)]);
                let (token, change) = demo.token_run(short, command, |_| Ok(()))?;
                expect(change.authorization_code == 1, "one browser login", change)?;
                first = token;
                Ok("logged in (--endpoint overrides the config file)".into())
            },
        )?;
        // The login ended after the token was issued, so it is past its expiry by then.
        let wait = SHORT_TTL + Duration::from_millis(250);
        println!(
            "\n(waiting {:.2} s for the token to expire)",
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        self.step("token after expiry", |demo| {
            let command = demo.command(&args, "refresh", &[("BROWSER", &browser)]);
            let (token, change) = demo.token_run(short, command, |_| Ok(()))?;
            expect(
                token != first && change.refresh_token == 1 && change.authorizations == 0,
                "one refresh_token grant and no login",
                change,
            )?;
            Ok("refreshed automatically: one refresh_token grant, no browser".into())
        })
    }

    /// The identity-aware proxy's token from a metadata server on loopback, through
    /// `flyte-auth-google`'s `iap_token` example: what a job on Google Cloud sends in
    /// `proxy-authorization`, with no `gcloud` run. The second header comes from the cache.
    fn iap_proxy_token(&mut self, main: &Provider) -> Result<(), String> {
        let server = crate::metadata::MetadataServer::start()?;
        self.step("IAP proxy token from the metadata server", |demo| {
            let mut cmd = Command::new(&demo.iap_token);
            cmd.arg(IAP_AUDIENCE)
                .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
                .env("GCE_METADATA_HOST", &server.host)
                .env("CLOUDSDK_CONFIG", demo.work.cache("gcloud"));
            println!("$ {}", show(&cmd));
            let out = capture(&mut cmd, STEP_LIMIT)?;
            let tokens: Vec<&str> = out
                .lines()
                .filter_map(|line| line.strip_prefix("proxy-authorization: Bearer "))
                .collect();
            let ok = tokens.len() == 2 && tokens[0] == tokens[1] && server.tokens() == 1;
            if !ok {
                return Err(format!(
                    "expected two equal proxy-authorization headers from one metadata request; \
                     got {} header(s), {} request(s)",
                    tokens.len(),
                    server.tokens()
                ));
            }
            Ok(format!(
                "proxy-authorization: Bearer <{}> (ID token for {IAP_AUDIENCE}); one metadata \
                 request for two calls",
                fingerprint(tokens[0])
            ))
        })?;
        // The same through `flyte-auth`: a service's token with the proxy's ID token in
        // `proxy-authorization` on every request to the Flyte endpoint.
        self.step("IAP proxy token through flyte-auth", |demo| {
            let before = server.tokens();
            let command = demo.command(
                &[
                    "token",
                    "--auth-mode",
                    "ClientSecret",
                    "--client-id",
                    SERVICE_CLIENT,
                    "--client-secret-env",
                    "DEMO_CLIENT_SECRET",
                    "--proxy-google-audience",
                    IAP_AUDIENCE,
                ],
                "iap",
                &[
                    ("DEMO_CLIENT_SECRET", SERVICE_SECRET),
                    ("GCE_METADATA_HOST", &server.host),
                ],
            );
            let (_, change) = demo.token_run(main, command, |_| Ok(()))?;
            let fetched = server.tokens() - before;
            expect(
                change.client_credentials == 1
                    && change.requests >= 2
                    && change.proxy_bearer == change.requests
                    && fetched == 1,
                "a proxy-authorization bearer on every request, one metadata request",
                change,
            )
            .map_err(|e| format!("{e}; metadata requests: {fetched}"))?;
            Ok(format!(
                "proxy-authorization: Bearer <ID token> on all {} requests to the provider; one \
                 metadata request",
                change.requests
            ))
        })
    }

    fn summary(&self) {
        println!("\n==> demo summary");
        let width = self
            .rows
            .iter()
            .map(|r| r.step.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<width$}  {:>7}  result", "step", "seconds");
        for row in &self.rows {
            let result = match &row.result {
                Ok(what) => what.clone(),
                Err(e) => format!("FAILED: {}", e.lines().next().unwrap_or_default()),
            };
            println!("{:<width$}  {:>7.1}  {result}", row.step, row.seconds);
        }
    }
}

/// `after - before`, field by field.
fn diff(after: Stats, before: Stats) -> Stats {
    Stats {
        client_credentials: after
            .client_credentials
            .saturating_sub(before.client_credentials),
        authorization_code: after
            .authorization_code
            .saturating_sub(before.authorization_code),
        refresh_token: after.refresh_token.saturating_sub(before.refresh_token),
        device_code: after.device_code.saturating_sub(before.device_code),
        device_authorizations: after
            .device_authorizations
            .saturating_sub(before.device_authorizations),
        authorizations: after.authorizations.saturating_sub(before.authorizations),
        discovery: after.discovery.saturating_sub(before.discovery),
        requests: after.requests.saturating_sub(before.requests),
        proxy_bearer: after.proxy_bearer.saturating_sub(before.proxy_bearer),
    }
}

fn expect(ok: bool, what: &str, change: Stats) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("expected {what}; the provider counted {change:?}"))
    }
}

/// The user code of a device prompt line (`... enter the code ABCD-EFGH.`).
fn user_code(line: &str) -> Option<String> {
    let rest = &line[line.find("the code ")? + "the code ".len()..];
    let code: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!code.is_empty()).then_some(code)
}

/// A short, stable fingerprint of a token, to show which tokens are the same without showing
/// any of them.
fn fingerprint(token: &str) -> String {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut hasher = DefaultHasher::new();
    token.hash(&mut hasher);
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

/// The refresh token of the one login stored in the file store directory `dir`.
fn stored_refresh_token(dir: &Path) -> Result<String, String> {
    stored_credentials(dir)?["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the login in {} has no refresh token", dir.display()))
}

/// The credentials of the one login stored in the file store directory `dir`.
fn stored_credentials(dir: &Path) -> Result<Value, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    let [file] = files.as_slice() else {
        return Err(format!(
            "expected one stored login in {}, found {}",
            dir.display(),
            files.len()
        ));
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut doc: Value = serde_json::from_str(&text)
        .map_err(|_| format!("{} is not the file store's JSON", file.display()))?;
    Ok(doc["credentials"].take())
}

/// The authorization URL of the browser prompt's line, if it is that line.
fn authorization_url(line: &str) -> Option<url::Url> {
    let word = line.trim();
    if !word.contains("/auth?") {
        return None;
    }
    url::Url::parse(word).ok()
}

/// The value of `name` in `url`'s query.
fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A string claim of a JWT's payload (not verified: the demo only compares it).
fn jwt_claim(jwt: &str, name: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims[name].as_str().map(str::to_owned)
}

/// A `refresh_token` grant as the public client `flytectl`: the status and JSON answer.
fn refresh_with(url: &str, refresh_token: &str) -> Result<(u16, Value), String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", "flytectl")
        .append_pair("refresh_token", refresh_token)
        .finish();
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .and_then(|client| {
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        })
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap_or(Value::Null);
    // Only what says why: never anything else the provider might echo.
    let answer = serde_json::json!({
        "error": answer["error"],
        "error_description": answer["error_description"],
    });
    Ok((status, answer))
}

/// What the stand-in browser wrote (it runs without a terminal when started as `$BROWSER`).
fn browser_log(work: &WorkDir) -> String {
    std::fs::read_to_string(work.browser_log()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_read_from_both_prompt_wordings() {
        assert_eq!(
            user_code("and enter the code WDJB-MJHT. The code is valid for 10 minutes.").as_deref(),
            Some("WDJB-MJHT")
        );
        assert_eq!(
            user_code("and check that it shows the code ABCD-EFGH.").as_deref(),
            Some("ABCD-EFGH")
        );
        assert_eq!(user_code("no code here"), None);
    }

    #[test]
    fn the_refresh_token_is_read_from_the_one_stored_login() {
        let dir = std::env::temp_dir().join(format!("xtask-demo-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(stored_refresh_token(&dir).unwrap_err().contains("found 0"));
        let file = dir.join("127.0.0.1_1234-0123456789abcdef.json");
        std::fs::write(
            &file,
            r#"{"version":1,"credentials":{"access_token":"a","refresh_token":"r-1"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join(".127.0.0.1_1234-0123456789abcdef.lock"), "").unwrap();
        assert_eq!(stored_refresh_token(&dir).unwrap(), "r-1");
        std::fs::write(&file, r#"{"version":1,"credentials":{"access_token":"a"}}"#).unwrap();
        assert!(
            stored_refresh_token(&dir)
                .unwrap_err()
                .contains("no refresh token")
        );
        std::fs::remove_file(&file).unwrap();
        assert!(stored_refresh_token(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_nonce_is_read_from_the_prompt_and_the_id_token() {
        use base64::Engine as _;
        let line =
            "    http://127.0.0.1:1/auth?client_id=flytectl&scope=openid+all&nonce=n-1&state=s";
        let url = authorization_url(line).unwrap();
        assert_eq!(query_param(&url, "nonce").as_deref(), Some("n-1"));
        assert_eq!(query_param(&url, "scope").as_deref(), Some("openid all"));
        assert!(authorization_url("Opening the browser to log in").is_none());
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"nonce":"n-1"}"#);
        assert_eq!(
            jwt_claim(&format!("e30.{payload}.sig"), "nonce").as_deref(),
            Some("n-1")
        );
        assert_eq!(jwt_claim("not a jwt", "nonce"), None);
    }

    #[test]
    fn counters_are_compared_field_by_field() {
        let before = Stats {
            client_credentials: 2,
            refresh_token: 1,
            ..Stats::default()
        };
        let after = Stats {
            client_credentials: 3,
            refresh_token: 1,
            discovery: 2,
            ..Stats::default()
        };
        let change = diff(after, before);
        assert_eq!(change.client_credentials, 1);
        assert_eq!(change.discovery, 2);
        assert_eq!(change.token_requests(), 1);
    }
}
