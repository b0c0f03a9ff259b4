//! `cargo xtask bench --latency MS`: the cold token through a delaying TCP proxy, so that
//! round trips count as they do on a network (MS milliseconds each way).
//!
//! The proxy ([`DelayProxy`]) listens on loopback only, in front of the local provider. Each
//! chunk is passed on `MS` after it arrived, in order, in both directions, and the first bytes
//! of a connection not before three one-way delays after its accept (the client's SYN, the
//! server's SYN-ACK and the data itself, which a loopback `connect` does not pay). It counts
//! the connections and the HTTP requests (request lines) that go through it, and replaces the
//! provider's origin by its own in the answers, so that the endpoints the provider announces
//! are reached through it too. It is bounded:
//! at most [`MAX_CONNECTIONS`] at a time, each at most [`CONNECTION_LIFETIME`], and it stops
//! when dropped.
//!
//! Each participant runs [`LATENCY_RUNS`] times (interleaved, after a warm-up round); the table
//! shows per participant the median wall time, that time in round trips (process start
//! included), and the connections and requests of a run. Plain HTTP only: the provider speaks
//! no TLS, and no TLS terminator sits behind the delay yet.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    CLIENT_ID, CLIENT_SECRET, RUN_LIMIT, SECRET_ENV, WorkDir, form_encode, install, median,
    target_dir, timed,
};
use crate::provider::Provider;
use crate::tasks::Outcome;

/// Measured runs of each participant (each takes a few round trips of `MS`).
const LATENCY_RUNS: usize = 7;
/// Unmeasured rounds before them.
const LATENCY_WARM_UP: usize = 1;
/// Connections the proxy serves at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 32;
/// The longest a proxied connection lives.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// `cargo xtask bench --latency MS [--cli PATH]`.
pub(crate) fn latency(one_way_ms: u64, cli: Option<&Path>) -> Outcome {
    if !(1..=1_000).contains(&one_way_ms) {
        return Err(format!(
            "--latency {one_way_ms}: give the one-way delay in milliseconds, 1 to 1000"
        ));
    }
    let one_way = Duration::from_millis(one_way_ms);
    let root = crate::workspace_root();
    let target_dir = target_dir()?;
    let idp_dir = root.join("tests").join("idp");
    let (cli, _) = install(&target_dir.join("bench").join("install"), cli)?;
    let work = WorkDir::create()?;
    let provider = Provider::start(&idp_dir, &[("access-token-ttl", "3600".into())])?;
    let upstream: SocketAddr = ([127, 0, 0, 1], provider.port).into();
    let proxy = DelayProxy::start(upstream, one_way)?;
    println!(
        "provider: http://{upstream}, behind a proxy delaying {one_way_ms} ms each way at \
         http://127.0.0.1:{}",
        proxy.port
    );
    let endpoint = format!("dns:///127.0.0.1:{}", proxy.port);
    let token_url = format!("http://127.0.0.1:{}/token", proxy.port);

    // `tokenUrl` and `scopes` only come from a config file.
    let configured = work.0.join("configured.yaml");
    std::fs::write(
        &configured,
        format!(
            "admin:\n  endpoint: {endpoint}\n  insecure: true\n  authType: ClientSecret\n  \
             clientId: {CLIENT_ID}\n  clientSecretEnvVar: {SECRET_ENV}\n  tokenUrl: {token_url}\n  \
             scopes:\n    - all\n"
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", configured.display()))?;
    let flyte_auth = |cache: &Path, config: Option<&Path>| {
        let mut cmd = Command::new(&cli);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.0.join("home"))
            .env(SECRET_ENV, CLIENT_SECRET)
            .arg("token");
        match config {
            Some(config) => cmd.arg("--config").arg(config),
            None => cmd.args([
                "--endpoint",
                &endpoint,
                "--insecure",
                "--auth-mode",
                "ClientSecret",
                "--client-id",
                CLIENT_ID,
                "--client-secret-env",
                SECRET_ENV,
            ]),
        };
        cmd.args(["--store", "file", "--cache-dir"]).arg(cache);
        cmd
    };
    // A directory holding only the discovery answer a first run kept.
    let answered = work.0.join("answered");
    timed(&mut flyte_auth(&answered, None), RUN_LIMIT)?;
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

    type MakeRun<'a> = Box<dyn Fn(usize) -> Result<Command, String> + 'a>;
    let participants: Vec<(&str, MakeRun<'_>)> = vec![
        (
            "flyte-auth token, client credentials, discovery needed",
            Box::new(|i| Ok(flyte_auth(&work.0.join(format!("cold-{i}")), None))),
        ),
        (
            "flyte-auth token, the discovery answer kept by an earlier run",
            Box::new(|i| Ok(flyte_auth(&with_answer(i)?, None))),
        ),
        (
            "flyte-auth token, tokenUrl and scopes configured",
            Box::new(|i| {
                Ok(flyte_auth(
                    &work.0.join(format!("configured-{i}")),
                    Some(&configured),
                ))
            }),
        ),
        ("curl, one token POST", Box::new(|_| Ok(curl()))),
    ];

    let mut samples: Vec<Vec<(Duration, usize, usize)>> = vec![Vec::new(); participants.len()];
    for round in 0..LATENCY_WARM_UP + LATENCY_RUNS {
        for ((name, make), samples) in participants.iter().zip(&mut samples) {
            proxy.reset();
            let (took, stdout) =
                timed(&mut make(round)?, RUN_LIMIT).map_err(|e| format!("{name}: {e}"))?;
            if stdout.trim().is_empty() {
                return Err(format!("{name} printed no token"));
            }
            if round >= LATENCY_WARM_UP {
                samples.push((took, proxy.connections(), proxy.requests()));
            }
        }
    }

    let rtt = 2.0 * one_way.as_secs_f64() * 1_000.0;
    let mut text = format!(
        "cold token at {rtt:.0} ms RTT ({one_way_ms} ms each way), plain HTTP, median of \
         {LATENCY_RUNS} runs (RTT = wall time / {rtt:.0} ms, process start included)\n\n\
         | job | wall | RTT | connections | requests |\n| --- | --- | --- | --- | --- |\n"
    );
    let mut rows = Vec::new();
    for ((name, _), samples) in participants.iter().zip(samples) {
        let wall = median(samples.iter().map(|s| s.0).collect());
        let mut connections: Vec<usize> = samples.iter().map(|s| s.1).collect();
        let mut requests: Vec<usize> = samples.iter().map(|s| s.2).collect();
        connections.sort_unstable();
        requests.sort_unstable();
        let (connections, requests) = (
            connections[connections.len() / 2],
            requests[requests.len() / 2],
        );
        let _ = writeln!(
            text,
            "| {name} | {wall:.1} ms | {:.1} | {connections} | {requests} |",
            wall / rtt
        );
        rows.push(json!({
            "job": name,
            "median_ms": wall,
            "rtt": wall / rtt,
            "connections": connections,
            "requests": requests,
        }));
    }
    println!("\n{text}");
    let out = target_dir.join("bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let summary = json!({
        "one_way_ms": one_way_ms,
        "runs": LATENCY_RUNS,
        "tls": false,
        "results": rows,
    });
    for (name, contents) in [("latency.json", summary.to_string()), ("latency.txt", text)] {
        let path = out.join(name);
        std::fs::write(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    drop(proxy);
    Ok(Some(format!(
        "written to {}",
        out.join("latency.{json,txt}").display()
    )))
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

#[derive(Default)]
struct Counts {
    connections: AtomicUsize,
    requests: AtomicUsize,
    open: AtomicUsize,
}

impl DelayProxy {
    fn start(upstream: SocketAddr, one_way: Duration) -> Result<Self, String> {
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
        if theirs.len() != ours.len() {
            return Err(format!(
                "the delaying proxy at {ours} cannot stand in for {theirs} (ports of different lengths)"
            ));
        }
        let rewrite = Arc::new((theirs.into_bytes(), ours.into_bytes()));
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
                        c.connections.fetch_add(1, Ordering::Relaxed);
                        c.open.fetch_add(1, Ordering::Relaxed);
                        let (c, rewrite) = (Arc::clone(&c), Arc::clone(&rewrite));
                        std::thread::spawn(move || {
                            proxy_one(client, upstream, one_way, &c, &rewrite);
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
    counts: &Arc<Counts>,
    rewrite: &Arc<(Vec<u8>, Vec<u8>)>,
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
        let counts = Arc::clone(counts);
        move || pump(client, server2, one_way, first, Direction::Up(&counts))
    });
    pump(server, client2, one_way, accepted, Direction::Down(rewrite));
    let _ = up.join();
}

/// What a direction of a connection does besides passing the bytes on.
enum Direction<'a> {
    /// Client to server: counts the requests.
    Up(&'a Counts),
    /// Server to client: replaces the provider's origin by the proxy's (same length).
    Down(&'a (Vec<u8>, Vec<u8>)),
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
                    Direction::Up(counts) => {
                        counts
                            .requests
                            .fetch_add(request_lines(&buf[..n]), Ordering::Relaxed);
                        buf[..n].to_vec()
                    }
                    Direction::Down((from, to)) => replace(&buf[..n], from, to),
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
fn replace(chunk: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
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
        let proxy = DelayProxy::start(addr, Duration::from_millis(1)).unwrap();
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
