//! `cargo xtask bench --latency MS [--tls] [--with-peers]`: the cold token through a delaying
//! TCP proxy, so that round trips count as they do on a network (MS milliseconds each way).
//!
//! The proxy ([`DelayProxy`]) listens on loopback only, in front of the local provider. Each
//! chunk is passed on `MS` after it arrived, in order, in both directions, and the first bytes
//! of a connection not before three one-way delays after its accept (the client's SYN, the
//! server's SYN-ACK and the data itself, which a loopback `connect` does not pay). It counts
//! the connections, notes when the first one came, and over plain HTTP counts the requests
//! (request lines) and replaces the provider's origin by its own in the answers, so that the
//! endpoints the provider announces are reached through it too. With `--tls` a TLS terminator
//! with a throwaway CA sits behind the delay instead (`tls.rs`): the handshake pays its round
//! trips, and the terminator counts the requests and makes the announced URLs the proxy's
//! `https://` ones. It is bounded: at most [`MAX_CONNECTIONS`] at a time, each at most
//! [`CONNECTION_LIFETIME`], and it stops when dropped.
//!
//! Each participant runs [`LATENCY_RUNS`] times (interleaved, after a warm-up round); one table
//! per job shows per participant the median wall time, that time in round trips (process start
//! included), the connections and requests of a run, and how long after the spawn the first
//! connection came. `flyte-auth` does three jobs (discovery needed, the discovery answer kept
//! by an earlier run, `tokenUrl` and `scopes` configured); `curl`'s one POST and, with
//! `--with-peers`, flytekit's and the Flyte 2 SDK's token clients (given the token URL, as
//! in the loopback bench) do the last. Then the cached token, next to `/bin/true`: the bench
//! fails if it makes a connection. Written to `target/bench/latency[-tls].{json,txt}`.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    CLIENT_ID, CLIENT_SECRET, PEERS_PY, RUN_LIMIT, SECRET_ENV, WorkDir, form_encode, install,
    median, peer_venvs, target_dir, timed, tls,
};
use crate::provider::Provider;
use crate::tasks::Outcome;

/// Measured runs of each participant (each takes a few round trips of `MS`).
const LATENCY_RUNS: usize = 7;
/// Unmeasured rounds before them.
const LATENCY_WARM_UP: usize = 1;
/// Connections the proxy serves at once; more wait in the listen queue.
pub(super) const MAX_CONNECTIONS: usize = 32;
/// The longest a proxied connection lives.
pub(super) const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What one run of a participant does, for run number `i`.
type MakeRun<'a> = Box<dyn Fn(usize) -> Result<Command, String> + 'a>;

/// One measured run: wall time, connections, requests, and when the first connection came
/// after the start (`None`: no connection).
type Sample = (Duration, usize, usize, Option<Duration>);

/// `cargo xtask bench --latency MS [--tls] [--with-peers] [--cli PATH]`.
pub(crate) fn latency(one_way_ms: u64, cli: Option<&Path>, tls: bool, with_peers: bool) -> Outcome {
    if !(1..=1_000).contains(&one_way_ms) {
        return Err(format!(
            "--latency {one_way_ms}: give the one-way delay in milliseconds, 1 to 1000"
        ));
    }
    let one_way = Duration::from_millis(one_way_ms);
    let root = crate::workspace_root();
    let target_dir = target_dir()?;
    let idp_dir = root.join("tests").join("idp");
    let peers = if with_peers {
        peer_venvs(&target_dir)?
    } else {
        println!("peers (flytekit, the Flyte 2 SDK) not measured: add --with-peers");
        Vec::new()
    };
    let (cli, _) = install(&target_dir.join("bench").join("install"), cli)?;
    let work = WorkDir::create()?;
    let provider = Provider::start(&idp_dir, &[("access-token-ttl", "3600".into())])?;
    let upstream: SocketAddr = ([127, 0, 0, 1], provider.port).into();
    // With TLS: the delay in front of a TLS terminator in front of the provider.
    let (proxy, terminator, ca) = if tls {
        let pki = tls::Pki::generate()?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot start the TLS terminator: {e}"))?;
        let behind = listener
            .local_addr()
            .map_err(|e| format!("the TLS terminator has no address: {e}"))?;
        let proxy = DelayProxy::start(behind, one_way, false)?;
        let rewrite = tls::Rewrite {
            from: format!("http://{upstream}"),
            to: format!("https://127.0.0.1:{}", proxy.port),
        };
        let terminator =
            tls::Terminator::start(listener, &pki, upstream, rewrite, Arc::clone(&proxy.counts))?;
        let ca = work.0.join("bench-ca.pem");
        std::fs::write(&ca, &pki.ca_pem)
            .map_err(|e| format!("cannot write {}: {e}", ca.display()))?;
        (proxy, Some(terminator), Some(ca))
    } else {
        (DelayProxy::start(upstream, one_way, true)?, None, None)
    };
    let scheme = if tls { "https" } else { "http" };
    println!(
        "provider: http://{upstream}, behind {}a proxy delaying {one_way_ms} ms each way at \
         {scheme}://127.0.0.1:{}",
        if tls {
            "a TLS terminator (a throwaway CA) and "
        } else {
            ""
        },
        proxy.port
    );
    let endpoint = format!("dns:///127.0.0.1:{}", proxy.port);
    let token_url = format!("{scheme}://127.0.0.1:{}/token", proxy.port);

    // `tokenUrl` and `scopes` only come from a config file; both jobs use one.
    let config = |name: &str, extra: &str| -> Result<std::path::PathBuf, String> {
        let path = work.0.join(name);
        let ca = ca.as_ref().map_or_else(String::new, |ca| {
            format!("  caCertFilePath: {}\n", ca.display())
        });
        std::fs::write(
            &path,
            format!(
                "admin:\n  endpoint: {endpoint}\n  insecure: {}\n{ca}  authType: ClientSecret\n  \
                 clientId: {CLIENT_ID}\n  clientSecretEnvVar: {SECRET_ENV}\n{extra}",
                !tls
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    };
    let discovering = config("discovering.yaml", "")?;
    let configured = config(
        "configured.yaml",
        &format!("  tokenUrl: {token_url}\n  scopes:\n    - all\n"),
    )?;
    let flyte_auth = |cache: &Path, config: &Path| {
        let mut cmd = Command::new(&cli);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.0.join("home"))
            .env(SECRET_ENV, CLIENT_SECRET)
            .arg("token")
            .arg("--config")
            .arg(config)
            .args(["--store", "file", "--cache-dir"])
            .arg(cache);
        cmd
    };
    // A directory holding only the discovery answer a first run kept.
    let answered = work.0.join("answered");
    timed(&mut flyte_auth(&answered, &discovering), RUN_LIMIT)?;
    let hints: Vec<_> = std::fs::read_dir(&answered)
        .map_err(|e| format!("cannot read {}: {e}", answered.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "discovery"))
        .collect();
    if hints.len() != 1 {
        return Err(format!(
            "the first run kept {} discovery hints in {}; expected one",
            hints.len(),
            answered.display()
        ));
    }
    let with_answer = |i: usize| -> Result<std::path::PathBuf, String> {
        let dir = work.0.join(format!("answer-{i}"));
        create_private_dir(&dir)?;
        let name = hints[0].file_name().unwrap_or_default();
        std::fs::copy(&hints[0], dir.join(name))
            .map_err(|e| format!("cannot copy the discovery hint: {e}"))?;
        Ok(dir)
    };
    let authorization = format!(
        "Authorization: Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", form_encode(CLIENT_ID), form_encode(CLIENT_SECRET))
        )
    );
    let curl = || {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "10"]);
        if let Some(ca) = &ca {
            cmd.arg("--cacert").arg(ca);
        }
        cmd.args([
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
    let peers_py = work.0.join("peers.py");
    std::fs::write(&peers_py, PEERS_PY).map_err(|e| format!("cannot write peers.py: {e}"))?;
    let peer = |python: &Path, sdk: &str| {
        let mut cmd = Command::new(python);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.0.join("home"))
            .env("FLYTE_AUTH_BENCH_CLIENT_ID", CLIENT_ID)
            .env(SECRET_ENV, CLIENT_SECRET);
        if let Some(ca) = &ca {
            cmd.env("FLYTE_AUTH_BENCH_CA", ca);
        }
        cmd.arg(&peers_py)
            .args([sdk, "login", &endpoint, &token_url]);
        cmd
    };

    const DISCOVERY: &str = "client credentials, discovery needed";
    const ANSWER_KEPT: &str = "client credentials, the discovery answer kept by an earlier run";
    const CONFIGURED: &str = "client credentials, tokenUrl and scopes configured";
    // The cached token: its file cache filled by one login first.
    let cached = work.0.join("cached");
    timed(&mut flyte_auth(&cached, &configured), RUN_LIMIT)?;
    let mut participants: Vec<(&str, String, MakeRun<'_>)> = vec![
        (
            DISCOVERY,
            "flyte-auth token".into(),
            Box::new(|i| Ok(flyte_auth(&work.0.join(format!("cold-{i}")), &discovering))),
        ),
        (
            ANSWER_KEPT,
            "flyte-auth token".into(),
            Box::new(|i| Ok(flyte_auth(&with_answer(i)?, &discovering))),
        ),
        (
            CONFIGURED,
            "flyte-auth token".into(),
            Box::new(|i| {
                Ok(flyte_auth(
                    &work.0.join(format!("configured-{i}")),
                    &configured,
                ))
            }),
        ),
        (
            CONFIGURED,
            "curl, one token POST".into(),
            Box::new(|_| Ok(curl())),
        ),
    ];
    for (sdk, label, python) in &peers {
        participants.push((
            CONFIGURED,
            format!("{label} (its token client, the token URL given)"),
            Box::new(move |_| Ok(peer(python, sdk))),
        ));
    }
    participants.push((
        CACHED_JOB,
        CACHED.into(),
        Box::new(|_| Ok(flyte_auth(&cached, &configured))),
    ));
    participants.push((
        CACHED_JOB,
        "/bin/true".into(),
        Box::new(|_| Ok(Command::new("/bin/true"))),
    ));

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); participants.len()];
    for round in 0..LATENCY_WARM_UP + LATENCY_RUNS {
        for ((_, name, make), samples) in participants.iter().zip(&mut samples) {
            let mut cmd = make(round)?;
            proxy.reset();
            let started = Instant::now();
            let (took, stdout) = timed(&mut cmd, RUN_LIMIT).map_err(|e| format!("{name}: {e}"))?;
            if stdout.trim().is_empty() && name != "/bin/true" {
                return Err(format!("{name} printed no token"));
            }
            if round >= LATENCY_WARM_UP {
                let first = proxy
                    .first_connection()
                    .map(|t| t.saturating_duration_since(started));
                samples.push((took, proxy.connections(), proxy.requests(), first));
            }
        }
    }

    let rtt = 2.0 * one_way.as_secs_f64() * 1_000.0;
    let transport = if tls {
        "TLS terminated behind the delay (a throwaway CA)"
    } else {
        "plain HTTP"
    };
    let mut text = format!(
        "cold token at {rtt:.0} ms RTT ({one_way_ms} ms each way), {transport}, median of \
         {LATENCY_RUNS} runs (RTT = wall time / {rtt:.0} ms, process start included; first \
         connection: from just before the spawn to the proxy's accept)\n"
    );
    let mut rows = Vec::new();
    let mut job = "";
    for ((this_job, name, _), samples) in participants.iter().zip(samples) {
        if *this_job != job {
            job = this_job;
            let _ = write!(
                text,
                "\n{job}\n\n| process | wall | RTT | connections | requests | first connection |\n\
                 | --- | --- | --- | --- | --- | --- |\n"
            );
        }
        let row = LatencyRow::of(&samples);
        let first = row
            .first_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
        let _ = writeln!(
            text,
            "| {name} | {:.1} ms | {:.1} | {} | {} | {first} |",
            row.wall_ms,
            row.wall_ms / rtt,
            row.connections,
            row.requests
        );
        rows.push(json!({
            "job": job,
            "process": name,
            "median_ms": row.wall_ms,
            "rtt": row.wall_ms / rtt,
            "connections": row.connections,
            "requests": row.requests,
            "first_connection_ms": row.first_ms,
        }));
    }
    println!("\n{text}");
    cached_made_no_connection(&rows)?;
    let out = target_dir.join("bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let summary = json!({
        "one_way_ms": one_way_ms,
        "runs": LATENCY_RUNS,
        "tls": tls,
        "results": rows,
    });
    let stem = if tls { "latency-tls" } else { "latency" };
    for (ext, contents) in [("json", summary.to_string()), ("txt", text)] {
        let path = out.join(format!("{stem}.{ext}"));
        std::fs::write(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    drop(proxy);
    drop(terminator);
    Ok(Some(format!(
        "written to {}",
        out.join(format!("{stem}.{{json,txt}}")).display()
    )))
}

/// The job of the cached token and its `flyte-auth` row.
const CACHED_JOB: &str = "cached token (file cache), next to /bin/true";
const CACHED: &str = "flyte-auth token (file cache)";

/// An error when the cached `flyte-auth token` row of `rows` (the JSON rows of the table)
/// made a connection: a cached token is served without the network.
fn cached_made_no_connection(rows: &[serde_json::Value]) -> Result<(), String> {
    for row in rows {
        if row["job"] == CACHED_JOB && row["process"] == CACHED {
            let connections = row["connections"].as_u64().unwrap_or(0);
            if connections > 0 {
                return Err(format!(
                    "a cached flyte-auth token made {connections} connection(s) (median); it \
                     should make none"
                ));
            }
        }
    }
    Ok(())
}

/// The medians of one participant's runs.
struct LatencyRow {
    wall_ms: f64,
    connections: usize,
    requests: usize,
    /// The median time to the first connection, of the runs that made one.
    first_ms: Option<f64>,
}

impl LatencyRow {
    fn of(samples: &[Sample]) -> Self {
        let middle = |mut v: Vec<usize>| {
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        let firsts: Vec<Duration> = samples.iter().filter_map(|s| s.3).collect();
        Self {
            wall_ms: median(samples.iter().map(|s| s.0).collect()),
            connections: middle(samples.iter().map(|s| s.1).collect()),
            requests: middle(samples.iter().map(|s| s.2).collect()),
            first_ms: (!firsts.is_empty()).then(|| median(firsts)),
        }
    }
}

/// A `0700` directory, as flyte-auth wants its cache directory.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// A TCP proxy on 127.0.0.1 that delays everything by a one-way time; see the module docs.
struct DelayProxy {
    port: u16,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

/// What went through the proxy (and, with TLS, the terminator behind it) since the last
/// [`DelayProxy::reset`].
#[derive(Default)]
pub(super) struct Counts {
    connections: AtomicUsize,
    /// HTTP requests: counted by the proxy over plain HTTP, by the terminator with TLS.
    pub(super) requests: AtomicUsize,
    open: AtomicUsize,
    /// When the first connection was accepted.
    first: Mutex<Option<Instant>>,
}

impl DelayProxy {
    /// A proxy in front of `upstream`; `plain`: the traffic is plain HTTP, whose requests
    /// the proxy counts and whose answers name the upstream's origin, replaced by its own.
    /// Otherwise (TLS) it passes the bytes on unread.
    fn start(upstream: SocketAddr, one_way: Duration, plain: bool) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot start the delaying proxy: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("the delaying proxy has no address: {e}"))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot set up the delaying proxy: {e}"))?;
        // The provider names itself in what it announces: its origin becomes the proxy's, so
        // that the announced endpoints are reached through the delay too. The two have ports
        // of the same length (an ephemeral port each), so no Content-Length changes.
        let (theirs, ours) = (upstream.to_string(), format!("127.0.0.1:{port}"));
        if plain && theirs.len() != ours.len() {
            return Err(format!(
                "the delaying proxy at {ours} cannot stand in for {theirs} (ports of different lengths)"
            ));
        }
        let rewrite = Arc::new(plain.then(|| (theirs.into_bytes(), ours.into_bytes())));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&counts), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if c.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                match listener.accept() {
                    Ok((client, _)) => {
                        let accepted = Instant::now();
                        if let Ok(mut first) = c.first.lock() {
                            first.get_or_insert(accepted);
                        }
                        c.connections.fetch_add(1, Ordering::Relaxed);
                        c.open.fetch_add(1, Ordering::Relaxed);
                        let (c, rewrite) = (Arc::clone(&c), Arc::clone(&rewrite));
                        std::thread::spawn(move || {
                            proxy_one(client, upstream, one_way, plain.then_some(&c), &rewrite);
                            c.open.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        });
        Ok(Self { port, counts, stop })
    }

    /// Starts the counts of a new run.
    fn reset(&self) {
        self.counts.connections.store(0, Ordering::Relaxed);
        self.counts.requests.store(0, Ordering::Relaxed);
        if let Ok(mut first) = self.counts.first.lock() {
            *first = None;
        }
    }

    /// When the first connection of the run was accepted.
    fn first_connection(&self) -> Option<Instant> {
        self.counts.first.lock().ok().and_then(|first| *first)
    }

    fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::Relaxed)
    }

    fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::Relaxed)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Passes one connection on, both directions delayed; ends when both are closed or after
/// [`CONNECTION_LIFETIME`].
fn proxy_one(
    client: TcpStream,
    upstream: SocketAddr,
    one_way: Duration,
    counts: Option<&Arc<Counts>>,
    rewrite: &Arc<Option<(Vec<u8>, Vec<u8>)>>,
) {
    let accepted = Instant::now();
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    for stream in [&client, &server] {
        let _ = stream.set_read_timeout(Some(CONNECTION_LIFETIME));
    }
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // The TCP handshake a loopback connect skips: SYN, SYN-ACK, then the data's own way.
    let first = accepted + 3 * one_way;
    let up = std::thread::spawn({
        let counts = counts.map(Arc::clone);
        move || {
            pump(
                client,
                server2,
                one_way,
                first,
                Direction::Up(counts.as_deref()),
            )
        }
    });
    pump(
        server,
        client2,
        one_way,
        accepted,
        Direction::Down(rewrite.as_ref().as_ref()),
    );
    let _ = up.join();
}

/// What a direction of a connection does besides passing the bytes on.
enum Direction<'a> {
    /// Client to server: counts the requests (over plain HTTP).
    Up(Option<&'a Counts>),
    /// Server to client: replaces the provider's origin by the proxy's (same length; over
    /// plain HTTP).
    Down(Option<&'a (Vec<u8>, Vec<u8>)>),
}

/// Copies `from` to `to`, each chunk `one_way` after it arrived and not before `not_before`.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    one_way: Duration,
    not_before: Instant,
    direction: Direction<'_>,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        while let Ok((arrived, chunk)) = rx.recv() {
            let due = (arrived + one_way).max(not_before);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let arrived = Instant::now();
                let chunk = match direction {
                    Direction::Up(Some(counts)) => {
                        counts
                            .requests
                            .fetch_add(request_lines(&buf[..n]), Ordering::Relaxed);
                        buf[..n].to_vec()
                    }
                    Direction::Down(Some((from, to))) => replace(&buf[..n], from, to),
                    Direction::Up(None) | Direction::Down(None) => buf[..n].to_vec(),
                };
                if tx.send((arrived, chunk)).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// `chunk` with every `from` replaced by `to`.
pub(super) fn replace(chunk: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    let mut i = 0;
    while i < chunk.len() {
        if !from.is_empty() && chunk[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(chunk[i]);
            i += 1;
        }
    }
    out
}

/// How many HTTP/1.1 request lines (`METHOD /path HTTP/1.x`) start a line of `chunk`.
fn request_lines(chunk: &[u8]) -> usize {
    let text = String::from_utf8_lossy(chunk);
    text.split("\r\n")
        .filter(|line| {
            let mut parts = line.split(' ');
            matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH"), Some(path), Some(version))
                    if path.starts_with('/') && version.starts_with("HTTP/1.")
            )
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_replaced_wherever_it_is() {
        assert_eq!(
            replace(
                b"a 127.0.0.1:4000/x 127.0.0.1:4000",
                b"127.0.0.1:4000",
                b"127.0.0.1:5111"
            ),
            b"a 127.0.0.1:5111/x 127.0.0.1:5111"
        );
    }

    #[test]
    fn a_cached_token_that_connects_fails_the_bench() {
        let row = |connections: usize| json!({ "job": CACHED_JOB, "process": CACHED, "connections": connections });
        assert_eq!(cached_made_no_connection(&[row(0)]), Ok(()));
        let err = cached_made_no_connection(&[row(1)]).expect_err("one connection");
        assert!(err.contains("should make none"), "{err}");
        let other = json!({ "job": CACHED_JOB, "process": "/bin/true", "connections": 1 });
        assert_eq!(cached_made_no_connection(&[other]), Ok(()));
    }

    #[test]
    fn request_lines_are_counted() {
        let two = b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\na=bGET /x HTTP/1.1\r\n\r\n";
        // The second request line follows a body without a line break: not at a line start.
        assert_eq!(request_lines(two), 1);
        assert_eq!(
            request_lines(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
            2
        );
        assert_eq!(request_lines(b"HTTP/1.1 200 OK\r\n\r\n"), 0);
    }

    #[test]
    fn the_proxy_passes_both_ways_and_counts() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = upstream.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            s.write_all(&buf[..n]).unwrap();
        });
        let proxy = DelayProxy::start(addr, Duration::from_millis(1), true).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(proxy.connections(), 1);
        drop(c);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(proxy.requests(), 1);
    }
}
