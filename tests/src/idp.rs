//! Starting, asking and stopping the local OpenID provider of `tests/idp`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use url::Url;

use crate::browser::{Browser, BrowserError, CallbackResponse};
use crate::clients::FLYTECTL_REDIRECT_URI;

/// `grant_type` of the authorization code grant.
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
/// `grant_type` of the refresh token grant.
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// `grant_type` of the client credentials grant.
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// `grant_type` of the device authorization grant (RFC 8628).
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Environment variable naming the Node.js program (default `node` from `PATH`).
const NODE_ENV: &str = "FLYTE_AUTH_TEST_NODE";
/// Environment variable that, set to `1`, copies the server's log lines to stderr live.
const LOG_ENV: &str = "FLYTE_AUTH_TEST_IDP_LOG";
/// Lines of server log kept for error messages and [`Idp::server_log`].
const LOG_LINES: usize = 1000;
/// Timeout of each request the harness itself sends to the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the provider could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdpError {
    /// Node.js is not installed (or not on `PATH`).
    #[error(
        "cannot run `{program}`: Node.js (20.19 or later) is needed for the end-to-end tests; \
         install it (e.g. `apt-get install nodejs npm`) or point {NODE_ENV} at the node binary"
    )]
    NodeMissing {
        /// The program that was tried.
        program: String,
    },
    /// `npm ci` has not been run in `tests/idp`.
    #[error(
        "the npm packages of the test identity provider are missing in {}: \
         run `npm ci --prefix tests/idp` from the workspace root",
        dir.display()
    )]
    NodeModulesMissing {
        /// The `tests/idp` folder.
        dir: PathBuf,
    },
    /// The server script is not where the harness expects it.
    #[error("the test identity provider script is missing: {}", path.display())]
    ScriptMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Node.js could not be started.
    #[error("could not start the test identity provider")]
    Spawn(#[source] std::io::Error),
    /// The server exited before it was ready.
    #[error("the test identity provider exited before it was ready ({status}); its log:\n{log}")]
    Exited {
        /// Exit status, as text.
        status: String,
        /// The last lines it wrote.
        log: String,
    },
    /// The server did not say it was ready in time.
    #[error("the test identity provider was not ready after {after:?}; its log:\n{log}")]
    StartTimeout {
        /// How long the harness waited.
        after: Duration,
        /// The last lines it wrote.
        log: String,
    },
    /// The server printed something other than its readiness line.
    #[error(
        "the test identity provider printed {line:?} instead of its readiness line; its log:\n{log}"
    )]
    BadReadyLine {
        /// What it printed.
        line: String,
        /// The last lines it wrote.
        log: String,
    },
    /// The server said it was ready but did not answer HTTP.
    #[error("the test identity provider at {addr} does not answer HTTP; its log:\n{log}")]
    NotAnswering {
        /// Where it should listen.
        addr: SocketAddr,
        /// The last lines it wrote.
        log: String,
    },
}

/// Field names of the `/config/v1/flyte_client` document.
///
/// grpc-gateway emits either, depending on the marshaller flyteadmin is built with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlyteClientStyle {
    /// `client_id`, `redirect_uri`, `authorization_metadata_key`, ... (the default).
    #[default]
    SnakeCase,
    /// `clientId`, `redirectUri`, `authorizationMetadataKey`, ...
    LowerCamelCase,
}

impl FlyteClientStyle {
    fn as_arg(self) -> &'static str {
        match self {
            Self::SnakeCase => "snake",
            Self::LowerCamelCase => "camel",
        }
    }
}

/// Changes to the `/config/v1/flyte_client` document of a running provider; fields left
/// unset keep their value. See [`Idp::update_flyte_client`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct FlyteClientUpdate {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    authorization_metadata_key: Option<String>,
    style: Option<FlyteClientStyle>,
}

impl FlyteClientUpdate {
    /// No change yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The advertised `client_id`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The advertised `redirect_uri` (e.g. with the port a test bound).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// The advertised `scopes`.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The advertised `audience` (only advertised: the token endpoint ignores `audience`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The advertised `authorization_metadata_key` (`""` means `authorization`).
    pub fn authorization_metadata_key(mut self, key: impl Into<String>) -> Self {
        self.authorization_metadata_key = Some(key.into());
        self
    }

    /// The field naming of the document.
    pub fn style(mut self, style: FlyteClientStyle) -> Self {
        self.style = Some(style);
        self
    }

    fn to_json(&self) -> Value {
        let mut doc = serde_json::Map::new();
        let strings = [
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("audience", &self.audience),
            (
                "authorization_metadata_key",
                &self.authorization_metadata_key,
            ),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                doc.insert(key.to_owned(), json!(value));
            }
        }
        if let Some(scopes) = &self.scopes {
            doc.insert("scopes".to_owned(), json!(scopes));
        }
        if let Some(style) = self.style {
            doc.insert("style".to_owned(), json!(style.as_arg()));
        }
        Value::Object(doc)
    }
}

/// Which endpoint a [`Fault`] hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultEndpoint {
    /// The token endpoint (`/token`), any grant type.
    Token,
    /// The device authorization endpoint (`/device/auth`).
    DeviceAuthorization,
}

/// A canned answer the provider gives instead of the real one, for the next
/// [`Fault::times`] requests to an endpoint (see [`Idp::inject_fault`]).
///
/// Faulted requests are still counted in [`Stats`]. Without [`Fault::body`] the answer is
/// `{"error":"temporarily_unavailable",...}` as JSON.
#[derive(Clone, Debug)]
#[must_use]
pub struct Fault {
    endpoint: FaultEndpoint,
    status: u16,
    count: u32,
    body: Option<String>,
    content_type: Option<String>,
    delay: Duration,
}

impl Fault {
    /// The token endpoint answers `status` once.
    pub fn token(status: u16) -> Self {
        Self::new(FaultEndpoint::Token, status)
    }

    /// The device authorization endpoint answers `status` once.
    pub fn device_authorization(status: u16) -> Self {
        Self::new(FaultEndpoint::DeviceAuthorization, status)
    }

    fn new(endpoint: FaultEndpoint, status: u16) -> Self {
        Self {
            endpoint,
            status,
            count: 1,
            body: None,
            content_type: None,
            delay: Duration::ZERO,
        }
    }

    /// For the next `count` requests (at least 1).
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// With this body instead of the default JSON error.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// With this `Content-Type` (default `application/json`).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Answer only after `delay` (at most two minutes), e.g. to test client timeouts.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn to_json(&self) -> Value {
        let endpoint = match self.endpoint {
            FaultEndpoint::Token => "token",
            FaultEndpoint::DeviceAuthorization => "device_authorization",
        };
        let mut doc = json!({
            "endpoint": endpoint,
            "status": self.status,
            "count": self.count,
            "delay_ms": u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
        });
        if let Some(body) = &self.body {
            doc["body"] = json!(body);
        }
        if let Some(content_type) = &self.content_type {
            doc["content_type"] = json!(content_type);
        }
        doc
    }
}

/// Requests the provider has received since start or the last [`Idp::reset_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Token endpoint requests by `grant_type` (`"(none)"` when missing), faulted ones included.
    pub token_requests: BTreeMap<String, u64>,
    /// Device authorization requests (`POST /device/auth`).
    pub device_authorization_requests: u64,
    /// Authorization endpoint requests (`/auth`, as opened by the browser).
    pub authorization_requests: u64,
    /// Requests answered by an injected [`Fault`].
    pub injected_faults: u64,
    /// ConnectRPC calls of a Flyte 2 provider by method (`GetPublicClientConfig`,
    /// `GetOAuth2Metadata`), in either codec.
    pub connect_requests: BTreeMap<String, u64>,
    /// Every request (but the `/test/` ones), in order: what a proxy in front of Flyte sees.
    pub requests: Vec<RecordedRequest>,
}

/// One request the provider received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `POST`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The `content-type` header, when there was one.
    pub content_type: Option<String>,
    /// The `proxy-authorization` header, when there was one.
    pub proxy_authorization: Option<String>,
}

impl Stats {
    fn from_json(doc: &Value) -> Self {
        let count = |key: &str| doc.get(key).and_then(Value::as_u64).unwrap_or(0);
        Self {
            token_requests: doc
                .get("token_requests")
                .and_then(Value::as_object)
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
            device_authorization_requests: count("device_authorization_requests"),
            authorization_requests: count("authorization_requests"),
            injected_faults: count("injected_faults"),
            connect_requests: doc
                .get("connect_requests")
                .and_then(Value::as_object)
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
            requests: doc
                .get("requests")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            let text = |key: &str| {
                                item.get(key).and_then(Value::as_str).map(str::to_owned)
                            };
                            RecordedRequest {
                                method: text("method").unwrap_or_default(),
                                path: text("path").unwrap_or_default(),
                                content_type: text("content_type"),
                                proxy_authorization: text("proxy_authorization"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// ConnectRPC calls of this method (0 when none).
    pub fn connect_requests(&self, method: &str) -> u64 {
        self.connect_requests.get(method).copied().unwrap_or(0)
    }

    /// Token endpoint requests with this `grant_type` (0 when none).
    pub fn token_requests(&self, grant_type: &str) -> u64 {
        self.token_requests.get(grant_type).copied().unwrap_or(0)
    }
}

/// How to start an [`Idp`]; from [`Idp::builder`].
///
/// Durations are sent to the server in whole seconds (rounded down).
#[derive(Clone, Debug)]
#[must_use]
pub struct IdpBuilder {
    access_token_ttl: Duration,
    refresh_token_ttl: Duration,
    device_code_ttl: Duration,
    device_poll_interval: Option<Duration>,
    style: FlyteClientStyle,
    redirect_uri: String,
    scopes: Vec<String>,
    audience: Option<String>,
    authorization_metadata_key: String,
    flyte2: bool,
    well_known: bool,
    forward_logs: bool,
    startup_timeout: Duration,
}

impl Default for IdpBuilder {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            device_code_ttl: Duration::from_secs(600),
            device_poll_interval: None,
            style: FlyteClientStyle::SnakeCase,
            redirect_uri: FLYTECTL_REDIRECT_URI.to_owned(),
            scopes: vec!["all".to_owned()],
            audience: None,
            authorization_metadata_key: String::new(),
            flyte2: false,
            well_known: true,
            forward_logs: std::env::var(LOG_ENV).is_ok_and(|v| v == "1"),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl IdpBuilder {
    /// A Flyte 2 backend: no `/config/v1/flyte_client`; the ConnectRPC methods
    /// `flyteidl2.auth.AuthMetadataService/GetPublicClientConfig` and `/GetOAuth2Metadata`
    /// instead (JSON and binary protobuf codecs, POST or GET), as the Flyte 2 SDK calls them.
    pub fn flyte2(mut self) -> Self {
        self.flyte2 = true;
        self
    }

    /// In Flyte 2 mode, `false` also leaves `/.well-known/oauth-authorization-server` out, so
    /// the OAuth metadata comes only from `GetOAuth2Metadata`; default `true`.
    pub fn well_known(mut self, served: bool) -> Self {
        self.well_known = served;
        self
    }

    /// Lifetime of access tokens, including client-credentials tokens (`expires_in`);
    /// default one hour.
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Lifetime of refresh tokens; default 14 days.
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Lifetime of device codes (`expires_in` of the device authorization); default 10
    /// minutes.
    pub fn device_code_ttl(mut self, ttl: Duration) -> Self {
        self.device_code_ttl = ttl;
        self
    }

    /// Adds `interval` to device authorization responses. By default it is absent (as
    /// oidc-provider answers), which tells clients to poll every 5 seconds.
    pub fn device_poll_interval(mut self, interval: Duration) -> Self {
        self.device_poll_interval = Some(interval);
        self
    }

    /// Field naming of `/config/v1/flyte_client`; default snake_case.
    pub fn flyte_client_style(mut self, style: FlyteClientStyle) -> Self {
        self.style = style;
        self
    }

    /// `redirect_uri` advertised by `/config/v1/flyte_client`; default
    /// `http://localhost:53593/callback`.
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = redirect_uri.into();
        self
    }

    /// `scopes` advertised by `/config/v1/flyte_client`; default `["all"]`.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `audience` advertised by `/config/v1/flyte_client` and used as the resource the
    /// access tokens are issued for; default the provider's base URL with a trailing `/`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// `authorization_metadata_key` advertised by `/config/v1/flyte_client`; default `""`.
    pub fn authorization_metadata_key(mut self, key: impl Into<String>) -> Self {
        self.authorization_metadata_key = key.into();
        self
    }

    /// Copies the server's log lines to stderr as they come (also with
    /// `FLYTE_AUTH_TEST_IDP_LOG=1`). Either way the last lines are in
    /// [`Idp::server_log`] and in start errors.
    pub fn forward_logs(mut self, forward: bool) -> Self {
        self.forward_logs = forward;
        self
    }

    /// How long to wait for the server to be ready; default one minute.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts the provider and waits until it answers.
    ///
    /// # Panics
    ///
    /// When it cannot be started, with a message saying what to install or run (see
    /// [`IdpError`]). Needs a Tokio runtime.
    pub async fn start(self) -> Idp {
        match self.try_start().await {
            Ok(idp) => idp,
            Err(err) => panic!("{err}"),
        }
    }

    /// Starts the provider and waits until it answers.
    ///
    /// # Errors
    ///
    /// [`IdpError`] says what is missing or what the server printed.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn try_start(self) -> Result<Idp, IdpError> {
        tokio::task::spawn_blocking(move || self.try_start_blocking())
            .await
            .expect("the start task does not panic")
    }

    /// [`IdpBuilder::start`] without async, for synchronous tests.
    ///
    /// # Panics
    ///
    /// As [`IdpBuilder::start`].
    pub fn start_blocking(self) -> Idp {
        match self.try_start_blocking() {
            Ok(idp) => idp,
            Err(err) => panic!("{err}"),
        }
    }

    /// [`IdpBuilder::try_start`] without async.
    ///
    /// # Errors
    ///
    /// As [`IdpBuilder::try_start`].
    pub fn try_start_blocking(self) -> Result<Idp, IdpError> {
        let dir = idp_dir();
        let script = dir.join("server.mjs");
        if !script.is_file() {
            return Err(IdpError::ScriptMissing { path: script });
        }
        if !dir
            .join("node_modules")
            .join("oidc-provider")
            .join("package.json")
            .is_file()
        {
            return Err(IdpError::NodeModulesMissing { dir });
        }
        let node = std::env::var(NODE_ENV).unwrap_or_else(|_| "node".to_owned());
        let mut command = Command::new(&node);
        command
            .arg(&script)
            .args(self.server_args())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                IdpError::NodeMissing { program: node }
            } else {
                IdpError::Spawn(err)
            }
        })?;
        let stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(VecDeque::new()));

        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdout_log = Arc::clone(&log);
        let forward = self.forward_logs;
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = ready_tx.send(first);
            }
            drop(ready_tx);
            for line in lines.map_while(Result::ok) {
                push_log(&stdout_log, line, forward);
            }
        });
        let (stderr_done_tx, stderr_done_rx) = mpsc::channel::<()>();
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                push_log(&stderr_log, line, forward);
            }
            let _ = stderr_done_tx.send(());
        });

        // From here on the Idp owns the child: on any error it is dropped, which kills it.
        let mut idp = Idp {
            child: Mutex::new(Some(RunningServer { child, stdin })),
            log,
            base_url: Url::parse("http://127.0.0.1/").expect("a valid URL"),
            issuer: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            audience: String::new(),
            access_token_ttl: self.access_token_ttl,
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .no_proxy()
                .build()
                .expect("a reqwest client with these settings always builds"),
        };

        let line = match ready_rx.recv_timeout(self.startup_timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(IdpError::StartTimeout {
                    after: self.startup_timeout,
                    log: idp.error_log(),
                });
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = idp.wait_for_exit(Duration::from_secs(5));
                let _ = stderr_done_rx.recv_timeout(Duration::from_secs(2));
                return Err(IdpError::Exited {
                    status,
                    log: idp.error_log(),
                });
            }
        };
        let ready: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let (Some(issuer), Some(port)) = (
            ready.get("issuer").and_then(Value::as_str),
            ready
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok()),
        ) else {
            return Err(IdpError::BadReadyLine {
                line,
                log: idp.error_log(),
            });
        };
        let Ok(base_url) = Url::parse(&format!("{issuer}/")) else {
            return Err(IdpError::BadReadyLine {
                line,
                log: idp.error_log(),
            });
        };
        idp.issuer = issuer.to_owned();
        idp.base_url = base_url;
        idp.addr = SocketAddr::from(([127, 0, 0, 1], port));
        idp.audience = self
            .audience
            .clone()
            .unwrap_or_else(|| format!("{issuer}/"));

        if !answers_http(idp.addr) {
            return Err(IdpError::NotAnswering {
                addr: idp.addr,
                log: idp.error_log(),
            });
        }
        Ok(idp)
    }

    fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            ("--host", "127.0.0.1".to_owned()),
            ("--port", "0".to_owned()),
            ("--exit-on-stdin-close", "1".to_owned()),
            ("--log-requests", "1".to_owned()),
            (
                "--access-token-ttl",
                self.access_token_ttl.as_secs().to_string(),
            ),
            (
                "--refresh-token-ttl",
                self.refresh_token_ttl.as_secs().to_string(),
            ),
            (
                "--device-code-ttl",
                self.device_code_ttl.as_secs().to_string(),
            ),
            (
                "--device-poll-interval",
                self.device_poll_interval
                    .map(|i| i.as_secs().to_string())
                    .unwrap_or_default(),
            ),
            ("--flyte-client-style", self.style.as_arg().to_owned()),
            ("--flyte-client-id", crate::clients::FLYTECTL.to_owned()),
            ("--flyte-redirect-uri", self.redirect_uri.clone()),
            ("--flyte-scopes", self.scopes.join(" ")),
            (
                "--flyte-audience",
                self.audience.clone().unwrap_or_default(),
            ),
            (
                "--flyte-authorization-metadata-key",
                self.authorization_metadata_key.clone(),
            ),
            (
                "--flyte-version",
                if self.flyte2 { "2" } else { "1" }.to_owned(),
            ),
            (
                "--well-known",
                if self.well_known { "1" } else { "0" }.to_owned(),
            ),
        ];
        // Every option is passed explicitly so that the environment (PORT=..., say) of
        // whoever runs the tests cannot change the server.
        args.drain(..)
            .map(|(flag, value)| format!("{flag}={value}"))
            .collect()
    }
}

fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("idp")
}

fn push_log(log: &Mutex<VecDeque<String>>, line: String, forward: bool) {
    if forward {
        eprintln!("{line}");
    }
    let mut log = log
        .lock()
        .expect("the log lock is never held across a panic");
    if log.len() == LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

/// A bounded check that the server answers `GET /test/health` with 200.
fn answers_http(addr: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /test/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer)?;
        Ok(answer.starts_with(b"HTTP/1.1 200"))
    };
    for _ in 0..20 {
        if probe().unwrap_or(false) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct RunningServer {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A running local OpenID provider, configured like a Flyte deployment; killed on drop.
///
/// Listens on `127.0.0.1` on a free port. See the crate documentation for what it serves,
/// and [`crate::FLYTECTL`], [`crate::BASIC_CLIENT`], [`crate::POST_CLIENT`] and
/// [`crate::COLON_ID_CLIENT`] for its clients. Access tokens are opaque, issued for the
/// resource [`Idp::audience`] with scope `all` (and `offline` when asked), and come with
/// `expires_in`. The `audience` parameter Flyte clients send is accepted and ignored.
///
/// Its process also ends when the test binary ends in any way (it watches its stdin), so no
/// server outlives the tests.
pub struct Idp {
    child: Mutex<Option<RunningServer>>,
    log: Arc<Mutex<VecDeque<String>>>,
    base_url: Url,
    issuer: String,
    addr: SocketAddr,
    audience: String,
    access_token_ttl: Duration,
    http: reqwest::Client,
}

impl fmt::Debug for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let server = self
            .child
            .get_mut()
            .map_or_else(|poisoned| poisoned.into_inner().take(), Option::take);
        if let Some(mut server) = server {
            drop(server.stdin.take());
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }
}

impl Idp {
    /// How to start a provider with settings of its own.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use std::time::Duration;
    /// let idp = flyte_auth_tests::Idp::builder()
    ///     .access_token_ttl(Duration::from_secs(2))
    ///     .device_poll_interval(Duration::from_secs(1))
    ///     .start()
    ///     .await;
    /// # }
    /// ```
    pub fn builder() -> IdpBuilder {
        IdpBuilder::default()
    }

    /// Starts a provider with the default settings and waits until it answers.
    ///
    /// # Panics
    ///
    /// As [`IdpBuilder::start`].
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:PORT/`: the Flyte "server" (discovery) and the provider at once.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `127.0.0.1:PORT`, as a Flyte `endpoint` without `dns:///`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// [`host_port`](Self::host_port), parsed: what the flows of
    /// [`idp_context`](crate::idp_context) file their tokens under.
    pub fn endpoint(&self) -> flyte_auth_core::Endpoint {
        flyte_auth_core::Endpoint::parse(&self.host_port()).expect("a valid endpoint")
    }

    /// `dns:///127.0.0.1:PORT`, as written in a flytectl config file (with `insecure: true`).
    pub fn config_endpoint(&self) -> String {
        format!("dns:///{}", self.addr)
    }

    /// The resource access tokens are issued for, also advertised as `audience` by
    /// `/config/v1/flyte_client`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The access-token lifetime it was started with.
    pub fn access_token_ttl(&self) -> Duration {
        self.access_token_ttl
    }

    /// An absolute URL on the provider.
    ///
    /// # Panics
    ///
    /// When `path` does not make a URL.
    pub fn url(&self, path: &str) -> Url {
        self.base_url
            .join(path.trim_start_matches('/'))
            .expect("paths of the provider make valid URLs")
    }

    /// `/auth`.
    pub fn authorization_endpoint(&self) -> Url {
        self.url("/auth")
    }

    /// `/token`.
    pub fn token_endpoint(&self) -> Url {
        self.url("/token")
    }

    /// `/device/auth` (RFC 8628 device authorization endpoint).
    pub fn device_authorization_endpoint(&self) -> Url {
        self.url("/device/auth")
    }

    /// `/device`, where the user types the code.
    pub fn verification_uri(&self) -> Url {
        self.url("/device")
    }

    /// `/.well-known/oauth-authorization-server` (RFC 8414 metadata, as flyteadmin serves).
    pub fn metadata_url(&self) -> Url {
        self.url("/.well-known/oauth-authorization-server")
    }

    /// The URL of a ConnectRPC method of `flyteidl2.auth.AuthMetadataService` (Flyte 2 mode).
    pub fn connect_url(&self, method: &str) -> Url {
        self.url(&format!("/flyteidl2.auth.AuthMetadataService/{method}"))
    }

    /// `/config/v1/flyte_client` (Flyte's public client settings).
    pub fn flyte_client_url(&self) -> Url {
        self.url("/config/v1/flyte_client")
    }

    /// The process id of the server.
    pub fn process_id(&self) -> Option<u32> {
        self.child
            .lock()
            .expect("the child lock is never held across a panic")
            .as_ref()
            .map(|server| server.child.id())
    }

    /// The last lines the server logged (one per request: method, path, status).
    pub fn server_log(&self) -> String {
        let log = self
            .log
            .lock()
            .expect("the log lock is never held across a panic");
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// [`Idp::server_log`], or a note that it is empty, for error messages.
    fn error_log(&self) -> String {
        let log = self.server_log();
        if log.is_empty() {
            "(it wrote nothing)".to_owned()
        } else {
            log
        }
    }

    fn wait_for_exit(&mut self, limit: Duration) -> String {
        let server = self
            .child
            .get_mut()
            .expect("the child lock is never held across a panic");
        let Some(server) = server.as_mut() else {
            return "not running".to_owned();
        };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        "still running".to_owned()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|err| {
            panic!(
                "test identity provider: {method} {path} failed: {err}\nserver log:\n{}",
                self.server_log()
            )
        });
        let status = response.status();
        let doc: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "test identity provider: {method} {path} answered {status}: {doc}"
        );
        doc
    }

    /// The request counters.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub async fn stats(&self) -> Stats {
        Stats::from_json(&self.call(reqwest::Method::GET, "/test/stats", None).await)
    }

    /// How many token requests with this `grant_type` the server has received (see the
    /// `GRANT_*` constants), faulted ones included.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub async fn token_requests(&self, grant_type: &str) -> u64 {
        self.stats().await.token_requests(grant_type)
    }

    /// Sets all counters back to zero.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub async fn reset_stats(&self) {
        self.call(reqwest::Method::POST, "/test/stats/reset", None)
            .await;
    }

    /// Queues a canned answer (see [`Fault`]); faults queue up in order.
    ///
    /// # Panics
    ///
    /// When the server does not answer or refuses the fault.
    pub async fn inject_fault(&self, fault: Fault) {
        self.call(reqwest::Method::POST, "/test/faults", Some(fault.to_json()))
            .await;
    }

    /// The next `count` token requests get HTTP `status` with a
    /// `temporarily_unavailable` JSON error.
    ///
    /// # Panics
    ///
    /// As [`Idp::inject_fault`].
    pub async fn fail_token_requests(&self, status: u16, count: u32) {
        self.inject_fault(Fault::token(status).times(count)).await;
    }

    /// Drops all queued faults.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub async fn clear_faults(&self) {
        self.call(reqwest::Method::DELETE, "/test/faults", None)
            .await;
    }

    /// Changes what `/config/v1/flyte_client` answers from now on.
    ///
    /// # Panics
    ///
    /// When the server does not answer or refuses the change.
    pub async fn update_flyte_client(&self, update: FlyteClientUpdate) {
        self.call(
            reqwest::Method::PUT,
            "/test/flyte-client",
            Some(update.to_json()),
        )
        .await;
    }

    /// A fresh [`Browser`] (no session) whose user signs in as `alice`.
    pub fn browser(&self) -> Browser {
        Browser::new()
    }

    /// Logs in and approves with a fresh [`Browser`]; see [`Browser::complete_login`].
    ///
    /// # Errors
    ///
    /// See [`Browser::complete_login`].
    pub async fn complete_browser_login(
        &self,
        authorization_url: &Url,
    ) -> Result<CallbackResponse, BrowserError> {
        Browser::new().complete_login(authorization_url).await
    }

    /// Logs in and refuses consent with a fresh [`Browser`]; see [`Browser::deny_consent`].
    ///
    /// # Errors
    ///
    /// See [`Browser::deny_consent`].
    pub async fn deny_browser_login(
        &self,
        authorization_url: &Url,
    ) -> Result<CallbackResponse, BrowserError> {
        Browser::new().deny_consent(authorization_url).await
    }

    /// Approves a device code with a fresh [`Browser`] at [`Idp::verification_uri`]; see
    /// [`Browser::approve_device_code`].
    ///
    /// # Errors
    ///
    /// See [`Browser::approve_device_code`].
    pub async fn approve_device_code(&self, user_code: &str) -> Result<(), BrowserError> {
        Browser::new()
            .approve_device_code(&self.verification_uri(), user_code)
            .await
    }

    /// Denies a device code with a fresh [`Browser`]; see [`Browser::deny_device_code`].
    ///
    /// # Errors
    ///
    /// See [`Browser::deny_device_code`].
    pub async fn deny_device_code(&self, user_code: &str) -> Result<(), BrowserError> {
        Browser::new()
            .deny_device_code(&self.verification_uri(), user_code)
            .await
    }
}
