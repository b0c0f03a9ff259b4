//! The local OpenID provider of `tests/idp` as a child process, for `cargo xtask demo` and
//! `cargo xtask bench`: started on a free loopback port, read for its request counters, and
//! killed on drop (it also exits when its stdin closes, should xtask die first).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use crate::cmd::show;

const MINUTE: Duration = Duration::from_secs(60);
/// flyteadmin's discovery documents: the client configuration and the OAuth metadata.
const DISCOVERY_PATHS: [&str; 2] = [
    "/config/v1/flyte_client",
    "/.well-known/oauth-authorization-server",
];

/// A running `tests/idp/server.mjs`; killed on drop.
pub(crate) struct Provider {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The loopback port it listens on.
    pub(crate) port: u16,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Provider {
    /// Starts the server on a free loopback port and waits for its ready line.
    pub(crate) fn start(idp_dir: &Path, settings: &[(&str, String)]) -> Result<Self, String> {
        let node = std::env::var("FLYTE_AUTH_TEST_NODE").unwrap_or_else(|_| "node".into());
        let mut cmd = Command::new(node);
        cmd.arg("server.mjs")
            .args([
                "--host=127.0.0.1",
                "--port=0",
                "--exit-on-stdin-close=1",
                "--log-requests=0",
            ])
            .args(
                settings
                    .iter()
                    .map(|(name, value)| format!("--{name}={value}")),
            )
            .current_dir(idp_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        println!("$ {}", show(&cmd));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start node (Node.js 20.19 or later): {e}"))?;
        let stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = stderr_log.lock().unwrap_or_else(|p| p.into_inner());
                if log.len() == 20 {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = ready_tx.send(line);
            }
            for _ in lines {}
        });
        let mut provider = Self {
            child,
            stdin,
            port: 0,
            log,
        };
        let line = ready_rx.recv_timeout(MINUTE).map_err(|_| {
            format!(
                "the identity provider did not start within a minute; its log:\n{}",
                provider.log_text()
            )
        })?;
        let ready: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        provider.port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("unexpected first line from the provider: {line}"))?;
        Ok(provider)
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("dns:///127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The request counters (`GET /test/stats`).
    pub(crate) fn stats(&self) -> Result<Stats, String> {
        let url = format!("http://127.0.0.1:{}/test/stats", self.port);
        let doc: Value = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .and_then(|client| client.get(&url).send())
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::json)
            .map_err(|e| format!("GET {url}: {e}"))?;
        let grant = |name: &str| doc["token_requests"][name].as_u64().unwrap_or(0);
        let recorded = doc["requests"].as_array().map_or(&[][..], Vec::as_slice);
        let count =
            |keep: &dyn Fn(&Value) -> bool| recorded.iter().filter(|r| keep(r)).count() as u64;
        let discovery = count(&|r| DISCOVERY_PATHS.iter().any(|path| r["path"] == *path));
        Ok(Stats {
            client_credentials: grant("client_credentials"),
            authorization_code: grant("authorization_code"),
            refresh_token: grant("refresh_token"),
            device_code: grant("urn:ietf:params:oauth:grant-type:device_code"),
            device_authorizations: doc["device_authorization_requests"].as_u64().unwrap_or(0),
            authorizations: doc["authorization_requests"].as_u64().unwrap_or(0),
            discovery,
            requests: count(&|_| true),
            proxy_bearer: count(&|r| {
                r["proxy_authorization"]
                    .as_str()
                    .is_some_and(|value| value.starts_with("Bearer "))
            }),
        })
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider's counters that the steps look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) client_credentials: u64,
    pub(crate) authorization_code: u64,
    pub(crate) refresh_token: u64,
    pub(crate) device_code: u64,
    pub(crate) device_authorizations: u64,
    pub(crate) authorizations: u64,
    /// Requests for flyteadmin's discovery documents.
    pub(crate) discovery: u64,
    /// Requests of any kind but the counters' own.
    pub(crate) requests: u64,
    /// Requests that carried a bearer token in `proxy-authorization`.
    pub(crate) proxy_bearer: u64,
}

impl Stats {
    /// Token requests of any grant.
    pub(crate) fn token_requests(&self) -> u64 {
        self.client_credentials + self.authorization_code + self.refresh_token + self.device_code
    }
}
