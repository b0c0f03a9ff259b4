//! `cargo xtask bench`: the criterion benchmarks, then whole processes against the local
//! OpenID provider, with medians and ratios written to `target/bench/summary.{json,txt}`.
//!
//! 1. `cargo bench` of `flyte-auth-core` (the credential cache) and `flyte-auth-store`
//!    (`FileStore`), with short warm-up and measurement times; the medians are read from
//!    criterion's `estimates.json`.
//! 2. `flyte-auth` built in release mode, `tests/idp/server.mjs` started on a free loopback
//!    port (`npm ci --prefix tests/idp` first when its packages are missing), then, as whole
//!    processes, [`RUNS`] times each after two unmeasured warm-up runs:
//!    - `flyte-auth token` logging in with client credentials (a fresh `--cache-dir` each
//!      time: discovery and one token request), against one raw token request (`curl` when
//!      installed, else an HTTP/1.1 POST written by this program);
//!    - `flyte-auth token` served from its file cache, against `/bin/true`.
//!
//!    The provider's request counters check that each login made one token request and each
//!    cached run none. The provider is stopped at the end, also on failure.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::cmd::{capture, cargo, run, show};
use crate::provider::Provider;
use crate::tasks::Outcome;

const MINUTE: Duration = Duration::from_secs(60);
/// Measured runs of each end-to-end command.
const RUNS: usize = 25;
/// Unmeasured runs before them (page cache, connection set-up in the provider).
const WARM_UP_RUNS: usize = 2;
/// The longest one measured process may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// The provider's `client_secret_basic` client (`BASIC_CLIENT` of `flyte-auth-tests`).
const CLIENT_ID: &str = "flyte-service";
const CLIENT_SECRET: &str = "s3cr:t/+%&= ~";
/// The variable `flyte-auth` reads the secret from.
const SECRET_ENV: &str = "FLYTE_AUTH_BENCH_CLIENT_SECRET";

/// The criterion benchmarks: package, bench target, and the ids read back from
/// `target/criterion/<group>/<function>/new/estimates.json`.
const CRITERION: &[(&str, &str, &[&str])] = &[
    (
        "flyte-auth-core",
        "authenticator",
        &[
            "authenticator/fetch_grpc_call_auth_metadata",
            "authenticator/fetch_grpc_call_auth_metadata_dyn",
            "authenticator/get_credentials_fresh",
            "single_flight/expired_token_1000_tasks",
        ],
    ),
    (
        "flyte-auth-store",
        "file_store",
        &[
            "file_store/retrieve",
            "file_store/retrieve_missing",
            "file_store/store",
            "file_store/lock_unlock",
        ],
    ),
];

/// `cargo xtask bench`.
pub(crate) fn bench() -> Outcome {
    let root = crate::workspace_root();
    let target_dir = target_dir()?;

    let mut micro = Vec::new();
    for (package, bench, ids) in CRITERION {
        run(
            &mut cargo([
                "bench",
                "-p",
                package,
                "--bench",
                bench,
                "--",
                "--warm-up-time",
                "1",
                "--measurement-time",
                "3",
            ]),
            30 * MINUTE,
        )?;
        for id in *ids {
            micro.push((*id, criterion_median_ns(&target_dir, id)?));
        }
    }

    let end_to_end = end_to_end(root)?;

    let summary = Summary {
        machine: machine(),
        commit: capture(
            Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .current_dir(root),
            MINUTE,
        )
        .map(|s| s.trim().to_owned())
        .unwrap_or_default(),
        micro,
        end_to_end,
    };
    let out = target_dir.join("bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let text = summary.text();
    println!("\n{text}");
    for (name, contents) in [
        ("summary.json", summary.json()),
        ("summary.txt", text.clone()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(Some(format!(
        "written to {}",
        out.join("summary.{json,txt}").display()
    )))
}

/// The workspace's target directory, as cargo reports it.
fn target_dir() -> Result<PathBuf, String> {
    let metadata = capture(
        &mut cargo(["metadata", "--format-version", "1", "--no-deps"]),
        5 * MINUTE,
    )?;
    let doc: Value = serde_json::from_str(&metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    doc["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata names no target_directory".into())
}

/// The median of criterion's last run of `id`, in nanoseconds.
fn criterion_median_ns(target_dir: &Path, id: &str) -> Result<f64, String> {
    let path = target_dir
        .join("criterion")
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    doc["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{} has no median", path.display()))
}

/// The machine the numbers come from.
fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = capture(Command::new("uname").args(["-sr"]), MINUTE)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({ "nproc": cpus, "cpu": cpu_model, "os": kernel })
}

/// The end-to-end medians, in milliseconds.
struct EndToEnd {
    login_ms: f64,
    raw_post_ms: f64,
    raw_post_client: &'static str,
    cached_ms: f64,
    true_ms: f64,
}

struct Summary {
    machine: Value,
    commit: String,
    micro: Vec<(&'static str, f64)>,
    end_to_end: EndToEnd,
}

impl Summary {
    fn json(&self) -> String {
        let e = &self.end_to_end;
        let doc = json!({
            "machine": self.machine,
            "commit": self.commit,
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "criterion_median_ns": self.micro.iter().map(|(id, ns)| (id.to_string(), json!(ns))).collect::<serde_json::Map<_, _>>(),
            "end_to_end": {
                "runs": RUNS,
                "median_ms": {
                    "flyte_auth_token_login": e.login_ms,
                    "raw_token_post": e.raw_post_ms,
                    "flyte_auth_token_cached": e.cached_ms,
                    "bin_true": e.true_ms,
                },
                "raw_token_post_client": e.raw_post_client,
                "login_vs_raw_post": e.login_ms / e.raw_post_ms,
                "cached_vs_bin_true": e.cached_ms / e.true_ms,
            },
        });
        serde_json::to_string_pretty(&doc).expect("a JSON value serializes") + "\n"
    }

    fn text(&self) -> String {
        let e = &self.end_to_end;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "flyte-auth benchmarks (commit {}, {} CPUs, {}, {})",
            self.commit,
            self.machine["nproc"],
            self.machine["cpu"].as_str().unwrap_or("?"),
            self.machine["os"].as_str().unwrap_or("?")
        );
        let _ = writeln!(t, "\ncriterion medians:");
        for (id, ns) in &self.micro {
            let _ = writeln!(t, "  {id:<52} {}", human_ns(*ns));
        }
        let _ = writeln!(t, "\nwhole processes, median of {RUNS} runs:");
        let _ = writeln!(
            t,
            "  flyte-auth token, client-credentials login   {:>9.2} ms",
            e.login_ms
        );
        let _ = writeln!(
            t,
            "  one raw token POST ({:<4})                    {:>9.2} ms   login / raw POST = {:.2}x",
            e.raw_post_client,
            e.raw_post_ms,
            e.login_ms / e.raw_post_ms
        );
        let _ = writeln!(
            t,
            "  flyte-auth token, from the file cache         {:>9.2} ms",
            e.cached_ms
        );
        let _ = writeln!(
            t,
            "  /bin/true                                     {:>9.2} ms   cached / true = {:.2}x",
            e.true_ms,
            e.cached_ms / e.true_ms
        );
        t
    }
}

fn human_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let n = samples.len();
    let mid = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    mid.as_secs_f64() * 1_000.0
}

/// Runs `cmd` to its end with stdin closed and stdout captured; returns how long it took
/// (from just before the spawn to the exit) and its stdout. It is killed after `limit`.
fn timed(cmd: &mut Command, limit: Duration) -> Result<(Duration, String), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The watchdog thread exists before the clock starts, so it costs the run nothing.
    let (pid_tx, pid_rx) = mpsc::channel::<u32>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let Ok(pid) = pid_rx.recv() else { return false };
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return true;
        }
        false
    });
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", show(cmd)))?;
    let _ = pid_tx.send(child.id());
    let output = child.wait_with_output();
    let elapsed = started.elapsed();
    let _ = done_tx.send(());
    let killed = watchdog.join().unwrap_or(false);
    let output = output.map_err(|e| format!("cannot wait for `{}`: {e}", show(cmd)))?;
    if killed {
        return Err(format!(
            "`{}` did not finish within {} s and was stopped",
            show(cmd),
            limit.as_secs()
        ));
    }
    if !output.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            show(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// Runs `one` [`WARM_UP_RUNS`] + [`RUNS`] times; returns the median of the measured runs.
fn series(
    name: &str,
    mut one: impl FnMut(usize) -> Result<Duration, String>,
) -> Result<f64, String> {
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..WARM_UP_RUNS + RUNS {
        let took = one(i).map_err(|e| format!("{name}: {e}"))?;
        if i >= WARM_UP_RUNS {
            samples.push(took);
        }
    }
    let ms = median(samples);
    println!("{name}: median {ms:.2} ms of {RUNS} runs");
    Ok(ms)
}

fn end_to_end(root: &Path) -> Result<EndToEnd, String> {
    let idp_dir = root.join("tests").join("idp");
    if !idp_dir.join("node_modules").is_dir() {
        run(
            Command::new("npm")
                .args(["ci", "--prefix", "tests/idp"])
                .current_dir(root),
            10 * MINUTE,
        )?;
    }
    let cli = build_cli()?;
    let work = WorkDir::create()?;
    let provider = Provider::start(&idp_dir, &[("access-token-ttl", "3600".into())])?;
    println!("provider: http://127.0.0.1:{}", provider.port);

    let flyte_auth = |cache: &Path| {
        let mut cmd = Command::new(&cli);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.0.join("home"))
            .env(SECRET_ENV, CLIENT_SECRET)
            .args([
                "token",
                "--endpoint",
                &format!("dns:///127.0.0.1:{}", provider.port),
                "--insecure",
                "--auth-mode",
                "ClientSecret",
                "--client-id",
                CLIENT_ID,
                "--client-secret-env",
                SECRET_ENV,
                "--store",
                "file",
                "--cache-dir",
            ])
            .arg(cache);
        cmd
    };
    // Echoed without the environment: it holds the (test) secret.
    let mut shown = flyte_auth(Path::new("$TMP/DIR"));
    shown.env_clear();
    println!(
        "$ {}=*** {}",
        SECRET_ENV,
        show(&shown).replace(&cli.display().to_string(), "flyte-auth")
    );

    // A login per run: a cache directory of its own each time.
    let before = provider.stats()?.client_credentials;
    let login_ms = series("flyte-auth token (login)", |i| {
        let (took, token) = timed(
            &mut flyte_auth(&work.0.join(format!("login-{i}"))),
            RUN_LIMIT,
        )?;
        expect_token(&token)?;
        Ok(took)
    })?;
    let logins = provider.stats()?.client_credentials - before;
    let expected = (WARM_UP_RUNS + RUNS) as u64;
    if logins != expected {
        return Err(format!(
            "{expected} logins made {logins} client_credentials grants; each should make one"
        ));
    }

    let (raw_post_ms, raw_post_client) = raw_posts(provider.port)?;

    // One login fills the cache, then every run is served from it.
    let cached = work.0.join("cached");
    let (_, first) = timed(&mut flyte_auth(&cached), RUN_LIMIT)?;
    expect_token(&first)?;
    let before = provider.stats()?.client_credentials;
    let cached_ms = series("flyte-auth token (cached)", |_| {
        let (took, token) = timed(&mut flyte_auth(&cached), RUN_LIMIT)?;
        if token != first {
            return Err("a cached run printed another token than the login".into());
        }
        Ok(took)
    })?;
    let grants = provider.stats()?.client_credentials - before;
    if grants != 0 {
        return Err(format!(
            "runs served from the cache made {grants} token request(s); they should make none"
        ));
    }
    let true_ms = series("/bin/true", |_| {
        timed(&mut Command::new("/bin/true"), RUN_LIMIT).map(|(took, _)| took)
    })?;

    Ok(EndToEnd {
        login_ms,
        raw_post_ms,
        raw_post_client,
        cached_ms,
        true_ms,
    })
}

fn expect_token(stdout: &str) -> Result<(), String> {
    let token = stdout.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        Err(format!(
            "flyte-auth token printed no single token ({} bytes)",
            stdout.len()
        ))
    } else {
        Ok(())
    }
}

/// The median of one raw token request: `curl` as a process when installed, else an HTTP/1.1
/// POST from this process.
fn raw_posts(port: u16) -> Result<(f64, &'static str), String> {
    let url = format!("http://127.0.0.1:{port}/token");
    let authorization = format!(
        "Authorization: Basic {}",
        base64(format!("{}:{}", form_encode(CLIENT_ID), form_encode(CLIENT_SECRET)).as_bytes())
    );
    let has_curl = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_curl {
        println!(
            "$ curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' -H 'Authorization: Basic ***' \
             -d grant_type=client_credentials -d scope=all {url}"
        );
        let ms = series("raw token POST (curl)", |_| {
            let (took, status) = timed(
                Command::new("curl").args([
                    "-sS",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    &authorization,
                    "-d",
                    "grant_type=client_credentials",
                    "-d",
                    "scope=all",
                    &url,
                ]),
                RUN_LIMIT,
            )?;
            if status.trim() != "200" {
                return Err(format!("the provider answered HTTP {}", status.trim()));
            }
            Ok(took)
        })?;
        return Ok((ms, "curl"));
    }
    println!("curl is not installed: one HTTP/1.1 POST from this process instead");
    let body = "grant_type=client_credentials&scope=all";
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let ms = series("raw token POST (std)", |_| {
        let started = Instant::now();
        let answer = http_exchange(port, &request)?;
        let took = started.elapsed();
        if !answer.starts_with("HTTP/1.1 200") {
            return Err(format!(
                "the provider answered {}",
                answer.lines().next().unwrap_or("nothing")
            ));
        }
        Ok(took)
    })?;
    Ok((ms, "std"))
}

/// Sends `request` to 127.0.0.1:`port` and reads the answer to its end.
fn http_exchange(port: u16, request: &str) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let exchange = || -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.take(1 << 20).read_to_end(&mut answer)?;
        Ok(answer)
    };
    exchange()
        .map(|a| String::from_utf8_lossy(&a).into_owned())
        .map_err(|e| format!("HTTP request to {addr}: {e}"))
}

/// `application/x-www-form-urlencoded` bytes (RFC 6749 Appendix B), for the Basic header.
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Builds `flyte-auth` in release mode; returns its path.
fn build_cli() -> Result<PathBuf, String> {
    let mut cmd = cargo([
        "build",
        "--release",
        "-p",
        "flyte-auth-cli",
        "--bin",
        "flyte-auth",
        "--message-format=json-render-diagnostics",
    ]);
    println!("$ {}", show(&cmd));
    let messages = capture(&mut cmd, 30 * MINUTE)?;
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "flyte-auth")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo build did not report the `flyte-auth` executable".into())
}

/// A temporary directory for the runs' home and token caches; removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("flyte-auth-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home"))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_then_base64() {
        assert_eq!(form_encode("s3cr:t/+%&= ~"), "s3cr%3At%2F%2B%25%26%3D+%7E");
        assert_eq!(
            base64(b"flyte-service:s3cr3t"),
            "Zmx5dGUtc2VydmljZTpzM2NyM3Q="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect();
        assert!((median(ms(&[3, 1, 2])) - 2.0).abs() < 1e-9);
        assert!((median(ms(&[4, 1, 3, 2])) - 2.5).abs() < 1e-9);
    }

    #[test]
    fn a_timed_command_reports_its_output_failure_and_time_limit() {
        let (_, out) =
            timed(Command::new("sh").args(["-c", "echo hi"]), RUN_LIMIT).expect("echo succeeds");
        assert_eq!(out, "hi\n");
        let err =
            timed(Command::new("sh").args(["-c", "exit 3"]), RUN_LIMIT).expect_err("exit 3 fails");
        assert!(err.contains("exit status: 3"), "{err}");
        let started = Instant::now();
        let err = timed(Command::new("sleep").arg("30"), Duration::from_millis(300))
            .expect_err("sleep 30 outlives 300 ms");
        assert!(err.contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(25));
    }
}
