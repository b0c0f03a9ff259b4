//! `cargo xtask bench [--with-peers]`: the criterion benchmarks, then whole processes against
//! the local OpenID provider, in one table written to `target/bench/summary.{json,txt}`.
//!
//! 1. `cargo bench` of `flyte-auth-core` (the credential cache) and `flyte-auth-store`
//!    (`FileStore`), with short warm-up and measurement times; the medians are read from
//!    criterion's `estimates.json`.
//! 2. `flyte-auth` installed as `cargo install --locked --path crates/cli` installs it (release
//!    profile, into `target/bench/install`), `tests/idp/server.mjs`
//!    started on a free loopback port (`npm ci --prefix tests/idp` first when its packages are
//!    missing), then two jobs, each participant run once per round, [`WARM_UP_RUNS`] unmeasured
//!    rounds and then [`FAST_RUNS`] measured ones for `flyte-auth` and its floor (milliseconds
//!    each: many runs steady the ratio of two short times) and [`RUNS`] for the peers (which
//!    take a second, in the first rounds), so that the machine's other work falls on all alike:
//!    - a cold token: `flyte-auth token` logging in with client credentials (a fresh
//!      `--cache-dir` each time: discovery and one token request) next to one `curl` POST of
//!      the same grant;
//!    - a cached token: `flyte-auth token` served from its file cache next to `/bin/true`
//!      and `rust-floor` (`xtask/floor`: a Rust program of the same release profile that
//!      prints one line, the part of the time any Rust program pays to start).
//!
//!    With `--with-peers`, flytekit 1.16 and the Flyte 2 SDK (`flyte==2.12.1`) are installed
//!    from PyPI into virtual environments under `target/bench/peers/` (once) and do the same
//!    two jobs (`bench/peers.py`): a client-credentials token request with their token
//!    client, and a token read from their keyring store (the `keyrings.alt` plaintext file
//!    backend, so no desktop keyring is needed).
//!
//!    `--cli PATH` times that `flyte-auth` binary instead of building one (another build of
//!    the same source, measured the same way).
//!
//!    The provider's request counters check that each cold run made one token request and
//!    each cached run none. Each participant's peak RSS is the median of [`RSS_RUNS`] more
//!    runs under GNU `time`; the bench fails when the cold `flyte-auth token`'s is above
//!    [`COLD_RSS_LIMIT_KB`] (6.5 MB, a regression guard). One cached and one cold `flyte-auth token` run under `strace -f` (when
//!    installed), which must see no certificate file opened, no thread started, and of the
//!    cached run no event loop (no async runtime). The provider is stopped at the end, also on failure.
//!
//! `cargo xtask bench --latency MS [--tls] [--with-peers]` measures only the cold token,
//! through a loopback proxy that delays every packet by MS milliseconds each way (with `--tls`,
//! in front of a TLS terminator with a throwaway CA): wall time, round trips, connections,
//! requests and the first connection's time per job (`bench/latency.rs`, written to
//! `target/bench/latency[-tls].{json,txt}`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Value, json};

use crate::cmd::{capture, cargo, run, show};

mod latency;
mod tls;
use crate::provider::Provider;
use crate::tasks::Outcome;
pub(crate) use latency::latency;

const MINUTE: Duration = Duration::from_secs(60);
/// Measured runs of each peer's end-to-end command.
const RUNS: usize = 25;
/// Measured runs of `flyte-auth` and the floors (`curl`, `/bin/true`, `rust-floor`), a few
/// milliseconds each.
const FAST_RUNS: usize = 201;
/// Runs of each participant under GNU `time` for its peak RSS, of which the median is shown
/// (one run's peak varies by a few hundred KB with what the kernel maps around its faults).
const RSS_RUNS: usize = 5;
/// The cached token's second floor: a Rust program built with the same profile that prints
/// one line (`xtask/floor`), the cost of starting any Rust program.
const RUST_FLOOR: &str = "rust-floor (a Rust program printing one line, same profile)";
/// The cold `flyte-auth token`'s median peak RSS above which the bench fails, in KiB (6.5 MB
/// as the table shows it): a regression guard, not a target (the code the kernel maps from
/// the binary's page-cache folios makes up most of the peak, not memory the program allocates).
const COLD_RSS_LIMIT_KB: u64 = 6_656;
/// Unmeasured runs before them (page cache, connection set-up in the provider).
const WARM_UP_RUNS: usize = 2;
/// The longest one measured process may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// The provider's `client_secret_basic` client (`BASIC_CLIENT` of `flyte-auth-tests`).
const CLIENT_ID: &str = "flyte-service";
const CLIENT_SECRET: &str = "s3cr:t/+%&= ~";
/// The variable `flyte-auth` (and the peers' script) reads the secret from.
const SECRET_ENV: &str = "FLYTE_AUTH_BENCH_CLIENT_SECRET";
/// The peers: short name, distribution, what pip installs.
const PEERS: &[(&str, &str, &str)] = &[
    ("flytekit", "flytekit", "flytekit>=1.16,<1.17"),
    ("flyte2", "flyte", "flyte==2.12.1"),
];
/// The peers' side of each job.
const PEERS_PY: &str = include_str!("bench/peers.py");

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

/// `cargo xtask bench`; `cli` is a `flyte-auth` binary to time instead of the release build
/// (`--cli`: another build of the same source, measured the same way).
pub(crate) fn bench(with_peers: bool, cli: Option<&Path>) -> Outcome {
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

    let end_to_end = end_to_end(root, &target_dir, with_peers, cli)?;

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

/// One measured process: what it did, its median, the floor it is compared with, its peak RSS.
struct Row {
    job: &'static str,
    name: String,
    median_ms: f64,
    /// The row of the same job this one is divided by (`curl`, `/bin/true`).
    floor: Option<usize>,
    peak_rss_kb: Option<u64>,
}

/// The end-to-end results.
struct EndToEnd {
    rows: Vec<Row>,
    /// Files under a certificate directory that a cached `flyte-auth token` opened, and the
    /// threads it started, counted with `strace -f`; `None` without strace.
    cached_trace: Option<Trace>,
    /// The same of a cold `flyte-auth token` (a login over plain HTTP, which needs no
    /// certificate either).
    cold_trace: Option<Trace>,
    /// The size of `flyte-auth` as built and stripped, in bytes.
    binary: (u64, Option<u64>),
    /// The binary given with `--cli`, timed instead of the release build.
    given: Option<PathBuf>,
}

impl EndToEnd {
    /// Which `flyte-auth` was timed: the installed one, or the path given with `--cli`.
    fn binary_name(&self) -> String {
        self.given.as_ref().map_or_else(
            || "cargo install --locked --path crates/cli".into(),
            |p| p.display().to_string(),
        )
    }
}

/// What `strace -f` saw of one run.
struct Trace {
    ca_files_opened: usize,
    files_opened: usize,
    threads_started: usize,
    /// `epoll` instances created: an async runtime with I/O started.
    event_loops: usize,
}

impl Trace {
    fn json(&self) -> Value {
        json!({
            "ca_files_opened": self.ca_files_opened,
            "files_opened": self.files_opened,
            "threads_started": self.threads_started,
            "event_loops": self.event_loops,
        })
    }
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
        let rows: Vec<Value> = e
            .rows
            .iter()
            .map(|r| {
                let floor = r.floor.map(|f| &e.rows[f]);
                json!({
                    "job": r.job,
                    "process": r.name,
                    "median_ms": r.median_ms,
                    "vs": floor.map(|f| f.name.clone()),
                    "ratio": floor.map(|f| r.median_ms / f.median_ms),
                    "peak_rss_kb": r.peak_rss_kb,
                })
            })
            .collect();
        let doc = json!({
            "machine": self.machine,
            "commit": self.commit,
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "criterion_median_ns": self.micro.iter().map(|(id, ns)| (id.to_string(), json!(ns))).collect::<serde_json::Map<_, _>>(),
            "end_to_end": {
                "runs": { "flyte_auth_and_floors": FAST_RUNS, "peers": RUNS, "peak_rss": RSS_RUNS },
                "rows": rows,
                "binary": e.binary_name(),
                "binary_bytes": e.binary.0,
                "binary_stripped_bytes": e.binary.1,
                "cached_run_strace": e.cached_trace.as_ref().map(Trace::json),
                "cold_run_strace": e.cold_trace.as_ref().map(Trace::json),
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
        let _ = writeln!(
            t,
            "\nwhole processes, medians of interleaved runs ({FAST_RUNS} of flyte-auth and the \
             floors, {RUNS} of the peers; peak RSS: the median of {RSS_RUNS} more runs):\n"
        );
        t.push_str(&e.table());
        let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
        let _ = writeln!(
            t,
            "\nflyte-auth binary ({}): {:.1} MB as built, {} stripped",
            e.binary_name(),
            mb(e.binary.0),
            e.binary.1.map_or_else(
                || "? MB (no strip program)".into(),
                |b| format!("{:.1} MB", mb(b))
            )
        );
        for (run, trace) in [("cached", &e.cached_trace), ("cold", &e.cold_trace)] {
            if let Some(trace) = trace {
                let _ = writeln!(
                    t,
                    "\nstrace -f of one {run} flyte-auth token: {} files opened, {} of them \
                     certificates; {} threads started; {} async event loops",
                    trace.files_opened,
                    trace.ca_files_opened,
                    trace.threads_started,
                    trace.event_loops
                );
            }
        }
        t
    }
}

impl EndToEnd {
    /// The one table: job, process, median, ratio to the job's floor, peak RSS.
    fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "| job | process | median | ratio | peak RSS |\n| --- | --- | --- | --- | --- |"
        );
        for row in &self.rows {
            let ratio = row
                .floor
                .map(|f| &self.rows[f])
                .map(|f| format!("{:.2}x {}", row.median_ms / f.median_ms, f.name))
                .unwrap_or_default();
            let rss = row
                .peak_rss_kb
                .map(|kb| format!("{:.1} MB", kb as f64 / 1024.0))
                .unwrap_or_else(|| "?".into());
            let _ = writeln!(
                t,
                "| {} | {} | {:.2} ms | {ratio} | {rss} |",
                row.job, row.name, row.median_ms
            );
        }
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

/// How to build a participant's command for run `i`.
type Make<'a> = Box<dyn Fn(usize) -> Command + 'a>;

/// One participant of an interleaved series: a name, its measured runs, its command.
struct Participant<'a> {
    name: String,
    runs: usize,
    make: Make<'a>,
}

impl<'a> Participant<'a> {
    fn new(name: impl Into<String>, runs: usize, make: impl Fn(usize) -> Command + 'a) -> Self {
        Self {
            name: name.into(),
            runs,
            make: Box::new(make),
        }
    }

    /// Its runs, warm-up included.
    fn all_runs(&self) -> usize {
        WARM_UP_RUNS + self.runs
    }
}

/// Runs each of `participants` once per round, [`WARM_UP_RUNS`] rounds unmeasured and then
/// as many as its `runs`, so that what else the machine does falls on all of them alike while
/// they all run; checks each output with `check`. Returns the median of the measured runs of
/// each, in milliseconds.
fn interleaved(
    participants: &[Participant<'_>],
    check: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Result<Vec<f64>, String> {
    let mut samples: Vec<Vec<Duration>> = participants
        .iter()
        .map(|p| Vec::with_capacity(p.runs))
        .collect();
    let rounds = participants
        .iter()
        .map(Participant::all_runs)
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        for (p, samples) in participants.iter().zip(&mut samples) {
            if round >= p.all_runs() {
                continue;
            }
            let (took, stdout) =
                timed(&mut (p.make)(round), RUN_LIMIT).map_err(|e| format!("{}: {e}", p.name))?;
            check(&p.name, &stdout)?;
            if round >= WARM_UP_RUNS {
                samples.push(took);
            }
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    for (p, ms) in participants.iter().zip(&medians) {
        println!("{}: median {ms:.2} ms of {} runs", p.name, p.runs);
    }
    Ok(medians)
}

/// The peak resident set size of one run of `cmd`, in KiB, as GNU time (`wait4`) reports it
/// into `report`. The run sees only `PATH` and the variables `cmd` sets, and is stopped after
/// [`RUN_LIMIT`] like a timed one.
fn peak_rss_kb(cmd: &Command, report: &Path) -> Result<u64, String> {
    let mut time = Command::new("/usr/bin/time");
    time.args(["-f", "%M", "-o"])
        .arg(report)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    if !Path::new("/usr/bin/time").exists() {
        return Err("/usr/bin/time is missing (apt-get install time)".into());
    }
    timed(&mut time, RUN_LIMIT)?;
    let text = std::fs::read_to_string(report)
        .map_err(|e| format!("cannot read {}: {e}", report.display()))?;
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("/usr/bin/time wrote no peak RSS: {text}"))
}

/// Counts, with `strace -f`, what one run of `cmd` opens and how many threads it starts.
fn trace(cmd: &Command, out: &Path) -> Result<Option<Trace>, String> {
    if timed(Command::new("strace").arg("-V"), MINUTE).is_err() {
        println!("strace is not installed (apt-get install strace): the cached run is not traced");
        return Ok(None);
    }
    let mut traced = Command::new("strace");
    traced
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,clone,clone3,epoll_create,epoll_create1",
            "-o",
        ])
        .arg(out)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    timed(&mut traced, RUN_LIMIT)?;
    let log =
        std::fs::read_to_string(out).map_err(|e| format!("cannot read {}: {e}", out.display()))?;
    let opened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("open(") || l.contains("openat("))
        .filter(|l| !l.contains("= -1"))
        .collect();
    let ca_files_opened = opened
        .iter()
        .filter(|l| l.contains("/ssl/") || l.contains("cert") || l.contains("/pki/"))
        .count();
    let threads_started = log
        .lines()
        .filter(|l| l.contains("clone(") || l.contains("clone3("))
        .filter(|l| l.contains("CLONE_THREAD"))
        .count();
    let event_loops = log
        .lines()
        .filter(|l| l.contains("epoll_create"))
        .filter(|l| !l.contains("= -1"))
        .count();
    Ok(Some(Trace {
        ca_files_opened,
        files_opened: opened.len(),
        threads_started,
        event_loops,
    }))
}

fn end_to_end(
    root: &Path,
    target_dir: &Path,
    with_peers: bool,
    given: Option<&Path>,
) -> Result<EndToEnd, String> {
    let idp_dir = root.join("tests").join("idp");
    if !idp_dir.join("node_modules").is_dir() {
        run(
            Command::new("npm")
                .args(["ci", "--prefix", "tests/idp"])
                .current_dir(root),
            10 * MINUTE,
        )?;
    }
    if timed(Command::new("curl").arg("--version"), MINUTE).is_err() {
        return Err(
            "curl is the floor of the cold token: install it (apt-get install curl)".into(),
        );
    }
    let peers = if with_peers {
        peer_venvs(target_dir)?
    } else {
        println!("peers (flytekit, the Flyte 2 SDK) not measured: add --with-peers");
        Vec::new()
    };
    let (cli, rust_floor) = install(&target_dir.join("bench").join("install"), given)?;
    let work = WorkDir::create()?;
    let binary = binary_sizes(&cli, &work.0.join("flyte-auth.stripped"))?;
    let provider = Provider::start(&idp_dir, &[("access-token-ttl", "3600".into())])?;
    println!("provider: http://127.0.0.1:{}", provider.port);
    let endpoint = format!("dns:///127.0.0.1:{}", provider.port);
    let token_url = format!("http://127.0.0.1:{}/token", provider.port);

    let flyte_auth = |cache: &Path| {
        let mut cmd = Command::new(&cli);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.0.join("home"))
            .env(SECRET_ENV, CLIENT_SECRET)
            .args([
                "token",
                "--endpoint",
                &endpoint,
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
    let authorization = format!(
        "Authorization: Basic {}",
        BASE64.encode(format!(
            "{}:{}",
            form_encode(CLIENT_ID),
            form_encode(CLIENT_SECRET)
        ))
    );
    let curl = || {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "10",
            "-H",
            &authorization,
            "-d",
            "grant_type=client_credentials",
            "-d",
            "scope=all",
            &token_url,
        ]);
        cmd
    };
    println!(
        "$ curl -sS --max-time 10 -H 'Authorization: Basic ***' -d grant_type=client_credentials \
         -d scope=all {token_url}"
    );
    let peer = |python: &Path, sdk: &str, job: &str, data: &Path| {
        let mut cmd = Command::new(python);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.0.join("home"))
            .env("XDG_DATA_HOME", data)
            .env(
                "PYTHON_KEYRING_BACKEND",
                "keyrings.alt.file.PlaintextKeyring",
            )
            .env("FLYTE_AUTH_BENCH_CLIENT_ID", CLIENT_ID)
            .env(SECRET_ENV, CLIENT_SECRET)
            .arg(work.0.join("peers.py"))
            .args([sdk, job, &endpoint, &token_url]);
        cmd
    };
    std::fs::write(work.0.join("peers.py"), PEERS_PY)
        .map_err(|e| format!("cannot write peers.py: {e}"))?;

    let check_token = |name: &str, stdout: &str| -> Result<(), String> {
        // curl prints the token answer, the others the token.
        let token = stdout.trim();
        let token = serde_json::from_str::<Value>(token)
            .ok()
            .and_then(|doc| doc["access_token"].as_str().map(str::to_owned))
            .unwrap_or_else(|| token.to_owned());
        if token.is_empty() || token.contains(char::is_whitespace) {
            Err(format!(
                "{name} printed no single token ({} bytes)",
                stdout.len()
            ))
        } else {
            Ok(())
        }
    };

    // Cold: a login per run (flyte-auth: a cache directory of its own each time).
    let mut cold = vec![
        Participant::new(
            "flyte-auth token (client credentials, empty cache)",
            FAST_RUNS,
            |i| flyte_auth(&work.0.join(format!("login-{i}"))),
        ),
        Participant::new("curl, one token POST", FAST_RUNS, |_| curl()),
    ];
    for (sdk, label, python) in &peers {
        let data = work.0.join(format!("{sdk}-login"));
        cold.push(Participant::new(
            format!("{label} (token request)"),
            RUNS,
            move |_| peer(python, sdk, "login", &data),
        ));
    }
    let before = provider.stats()?.client_credentials;
    let cold_ms = interleaved(&cold, &check_token)?;
    let grants = provider.stats()?.client_credentials - before;
    let expected = cold.iter().map(Participant::all_runs).sum::<usize>() as u64;
    if grants != expected {
        return Err(format!(
            "{expected} cold runs made {grants} client_credentials grants; each should make one"
        ));
    }

    // Cached: one login fills each cache, then every run is served from it.
    let cached_dir = work.0.join("cached");
    let (_, first) = timed(&mut flyte_auth(&cached_dir), RUN_LIMIT)?;
    let first = first.trim().to_owned();
    let mut cached = vec![
        Participant::new("flyte-auth token (file cache)", FAST_RUNS, |_| {
            flyte_auth(&cached_dir)
        }),
        Participant::new("/bin/true", FAST_RUNS, |_| Command::new("/bin/true")),
        Participant::new(RUST_FLOOR, FAST_RUNS, |_| Command::new(&rust_floor)),
    ];
    for (sdk, label, python) in &peers {
        let data = work.0.join(format!("{sdk}-cached"));
        timed(&mut peer(python, sdk, "store", &data), RUN_LIMIT)?;
        cached.push(Participant::new(
            format!("{label} (keyring, plaintext file backend)"),
            RUNS,
            move |_| peer(python, sdk, "cached", &data),
        ));
    }
    let before = provider.stats()?.client_credentials;
    let check_cached = |name: &str, stdout: &str| -> Result<(), String> {
        if name.starts_with("flyte-auth") && stdout.trim() != first {
            return Err("a cached run printed another token than the login".into());
        }
        if name == "/bin/true" || name == RUST_FLOOR {
            return Ok(());
        }
        check_token(name, stdout)
    };
    let cached_ms = interleaved(&cached, &check_cached)?;
    let grants = provider.stats()?.client_credentials - before;
    if grants != 0 {
        return Err(format!(
            "runs served from a cache made {grants} token request(s); they should make none"
        ));
    }

    // Peak RSS, the median of RSS_RUNS runs each, outside the timing.
    let mut rows = Vec::new();
    for (job, participants, medians, floor) in [
        ("cold token", &cold, &cold_ms, 1),
        ("cached token", &cached, &cached_ms, 1),
    ] {
        let base = rows.len();
        for (i, (p, ms)) in participants.iter().zip(medians).enumerate() {
            // Run numbers no measured run had (a fresh cache directory for each cold login).
            let mut peaks = (1..=RSS_RUNS)
                .map(|k| peak_rss_kb(&(p.make)(p.all_runs() + k), &work.0.join("peak-rss.txt")))
                .collect::<Result<Vec<u64>, String>>()
                .map_err(|e| format!("{}: {e}", p.name))?;
            peaks.sort_unstable();
            let rss = peaks[peaks.len() / 2];
            rows.push(Row {
                job,
                name: p.name.clone(),
                median_ms: *ms,
                floor: (i != floor).then_some(base + floor),
                peak_rss_kb: Some(rss),
            });
        }
    }

    cold_rss_guard(rows[0].peak_rss_kb)?;

    let cached_trace = trace(&flyte_auth(&cached_dir), &work.0.join("cached.strace"))?;
    let cold_trace = trace(
        &flyte_auth(&work.0.join("login-traced")),
        &work.0.join("cold.strace"),
    )?;
    for (run, t) in [("cached", &cached_trace), ("cold", &cold_trace)] {
        if let Some(t) = t
            && t.ca_files_opened > 0
        {
            return Err(format!(
                "a {run} flyte-auth token over plain HTTP opened {} certificate file(s); it \
                 should open none",
                t.ca_files_opened
            ));
        }
    }
    if let Some(t) = &cached_trace
        && (t.threads_started > 0 || t.event_loops > 0)
    {
        return Err(format!(
            "a cached flyte-auth token started {} thread(s) and {} event loop(s); it should \
             start no async runtime",
            t.threads_started, t.event_loops
        ));
    }
    // Over plain HTTP nothing needs a thread (TLS roots load on one): a thread here is a
    // regression of the cold token's time and memory.
    if let Some(t) = &cold_trace
        && t.threads_started > 0
    {
        return Err(format!(
            "a cold flyte-auth token over plain HTTP started {} thread(s); it should start none",
            t.threads_started
        ));
    }
    Ok(EndToEnd {
        rows,
        cached_trace,
        cold_trace,
        binary,
        given: given.map(Path::to_path_buf),
    })
}

/// The regression guard on the cold `flyte-auth token`'s median peak RSS (`kb`, in KiB):
/// an error naming the figure and the limit when it is above [`COLD_RSS_LIMIT_KB`].
fn cold_rss_guard(kb: Option<u64>) -> Result<(), String> {
    match kb {
        Some(kb) if kb > COLD_RSS_LIMIT_KB => Err(format!(
            "peak RSS regression: the cold flyte-auth token's median peak RSS is {:.1} MB \
             ({kb} KiB), above the guard of {:.1} MB ({COLD_RSS_LIMIT_KB} KiB)",
            kb as f64 / 1024.0,
            COLD_RSS_LIMIT_KB as f64 / 1024.0
        )),
        _ => Ok(()),
    }
}

/// The size of the binary as built, and stripped of its symbols (`strip`, when installed).
fn binary_sizes(cli: &Path, stripped: &Path) -> Result<(u64, Option<u64>), String> {
    let size = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let built = size(cli)?;
    let stripped = timed(
        Command::new("strip").arg("-o").arg(stripped).arg(cli),
        MINUTE,
    )
    .ok()
    .map(|_| size(stripped))
    .transpose()?;
    Ok((built, stripped))
}

/// The peers' SDKs, each in a virtual environment of its own under `target/bench/peers/`,
/// installed from PyPI on first use: (short name, label with version, python).
fn peer_venvs(target_dir: &Path) -> Result<Vec<(&'static str, String, PathBuf)>, String> {
    let mut venvs = Vec::new();
    for (sdk, distribution, requirement) in PEERS {
        let dir = target_dir.join("bench").join("peers").join(sdk);
        let python = dir.join("bin").join("python");
        if !python.is_file() {
            let system =
                std::env::var("FLYTE_AUTH_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
            run(
                Command::new(&system).args(["-m", "venv"]).arg(&dir),
                5 * MINUTE,
            )?;
        }
        let installed = timed(
            Command::new(&python).args([
                "-c",
                &format!("import importlib.metadata as m; print(m.version('{distribution}'))"),
            ]),
            MINUTE,
        )
        .ok()
        .map(|(_, stdout)| stdout.trim().to_owned());
        if installed.is_none() {
            run(
                Command::new(&python).args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    requirement,
                    "keyrings.alt",
                ]),
                30 * MINUTE,
            )?;
        }
        let version = capture(
            Command::new(&python).args([
                "-c",
                &format!("import importlib.metadata as m; print(m.version('{distribution}'))"),
            ]),
            MINUTE,
        )?;
        venvs.push((*sdk, format!("{distribution} {}", version.trim()), python));
    }
    Ok(venvs)
}

/// `application/x-www-form-urlencoded` bytes (RFC 6749 Appendix B), for the Basic header.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Installs `rust-floor` (`xtask/floor`) and, unless `given`, `flyte-auth` into
/// `root/bin` as `cargo install --locked --path` does for a user (built in the workspace's
/// target directory with the release profile and the lockfile, then copied); returns the
/// paths of `flyte-auth` (or `given`) and `rust-floor`.
///
/// The installed copies are what runs, not the linker's output in `target/release`: the same
/// bytes started about 15% slower from the file the linker wrote than from a copy of it (two
/// interleaved series of 300 cached-token runs), the page cache holding the two differently.
fn install(root: &Path, given: Option<&Path>) -> Result<(PathBuf, PathBuf), String> {
    let install = |package: &str| {
        let mut cmd = cargo([
            "install", "--locked", "--force", "--path", package, "--root",
        ]);
        cmd.arg(root);
        run(&mut cmd, 30 * MINUTE)
    };
    install("xtask/floor")?;
    let cli = match given {
        // Absolute, so that a bare name is not looked up in PATH.
        Some(path) => {
            std::fs::canonicalize(path).map_err(|e| format!("--cli {}: {e}", path.display()))?
        }
        None => {
            install("crates/cli")?;
            root.join("bin").join("flyte-auth")
        }
    };
    Ok((cli, root.join("bin").join("rust-floor")))
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
            BASE64.encode("flyte-service:s3cr3t"),
            "Zmx5dGUtc2VydmljZTpzM2NyM3Q="
        );
    }

    #[test]
    fn the_cold_peak_rss_guard_fails_above_six_and_a_half_mb() {
        assert_eq!(cold_rss_guard(Some(5_900)), Ok(()));
        assert_eq!(cold_rss_guard(Some(6_656)), Ok(()));
        assert_eq!(cold_rss_guard(None), Ok(()));
        let err = cold_rss_guard(Some(6_657)).expect_err("above the guard");
        assert!(err.contains("peak RSS regression"), "{err}");
        assert!(err.contains("6.5 MB"), "{err}");
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
