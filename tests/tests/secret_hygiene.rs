//! No secret ever reaches a log line or a `{:?}` / `{}` output.
//!
//! Every flow runs against the real OpenID provider (client credentials with Basic and body
//! authentication, the browser login and its refresh, the device login and its refresh, the
//! token command), including failures: a wrong secret, a refused login, a rejected refresh
//! token, server error pages that echo the secret they were sent, a command that fails after
//! printing its token. Logs are captured at TRACE level, from every thread, with span events.
//! Every HTTP request goes through a recording proxy on loopback (whose URL carries a
//! password), so that every secret actually sent or issued is known: client secrets (also
//! form-encoded and as Basic credentials), authorization codes, PKCE verifiers, device codes,
//! access, refresh and id tokens. Each test then searches the captured logs, and the `{:?}`
//! and `{}` output of every public value it touched, for each of these secrets.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    collections::BTreeSet,
    fmt::{Debug, Display, Write as _},
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use flyte_auth_clientcreds::{ClientCredentialsAuthenticator, ClientCredentialsFlow};
use flyte_auth_command::{CommandAuthenticator, CommandFlow};
use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, Credentials, Error, MemoryStore,
    OAuthErrorCode, SecretString, StaticClientConfigStore, TokenStore,
};
use flyte_auth_device::{DeviceCodeAuthenticator, DeviceCodeFlow, DevicePrompt};
use flyte_auth_oauth::{
    ClientAuth, ClientAuthMethod, DeviceAuthorizationRequest, Grant, HttpSettings, OAuthClient,
    Overrides, RetryPolicy, TokenRequest, TokenResponse, pkce::Pkce,
};
use flyte_auth_pkce::{BrowserOpener, PkceAuthenticator, PkceFlow};
use flyte_auth_store::{DefaultStore, FileStore, KeyringStore};
use flyte_auth_tests::{
    BASIC_CLIENT, ConfidentialClient, FLYTECTL, Fault, GRANT_REFRESH_TOKEN, Idp, POST_CLIENT,
    client_credentials_flow, complete_browser_login, context, deny_browser_login, device_flow,
    form_urlencode, pkce_flow,
};

/// Client credentials at `token_url` (no discovery) with `method`, through `http`.
fn client_credentials_at(
    token_url: &str,
    http: OAuthClient,
    id: &str,
    secret: &str,
    method: ClientAuthMethod,
) -> ClientCredentialsAuthenticator {
    let overrides = Overrides::new().token_endpoint(token_url).scopes(["all"]);
    let ctx = context("flyte.example.org", http, None, overrides);
    let flow = ClientCredentialsFlow::builder(ctx, id, secret)
        .auth_method(method)
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).build()
}
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tracing_subscriber::{filter::LevelFilter, fmt::format::FmtSpan, util::SubscriberInitExt as _};
use url::Url;

/// Bounds every wait on the code under test.
const NO_HANG: Duration = Duration::from_secs(90);

/// The password in the proxy URL every HTTP client of these tests is given.
const PROXY_PASSWORD: &str = "pw-proxy-Xq7Lm2Rt";

// ---------------------------------------------------------------------------------------------
// Captured logs: one global subscriber for the whole test binary, so that events from every
// thread (tokio workers, the command's thread, the keyring's) are captured.

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(LevelFilter::TRACE)
            .with_span_events(FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .try_init()
            .expect("the only global subscriber of this test binary");
        logs
    })
}

// ---------------------------------------------------------------------------------------------
// Secrets, and what was shown.

/// Every secret value a test sent or received, with what it is.
#[derive(Default)]
struct Secrets(Mutex<Vec<(String, String)>>);

impl Secrets {
    fn add(&self, what: &str, value: &str) {
        // Shorter values could match by chance; every real secret here is longer.
        if value.len() >= 8 {
            self.0
                .lock()
                .unwrap()
                .push((what.to_owned(), value.to_owned()));
        }
    }

    fn add_credentials(&self, what: &str, credentials: &Credentials) {
        self.add(
            &format!("{what}: access token"),
            credentials.access_token.expose_secret(),
        );
        if let Some(t) = &credentials.refresh_token {
            self.add(&format!("{what}: refresh token"), t.expose_secret());
        }
        if let Some(t) = &credentials.id_token {
            self.add(&format!("{what}: id token"), t.expose_secret());
        }
    }

    fn add_client(&self, client: &ConfidentialClient) {
        self.add("client secret", client.secret());
        self.add(
            "client secret, form-encoded",
            &form_urlencode(client.secret()),
        );
    }

    /// Every secret the proxy saw go by.
    fn add_wire(&self, proxy: &RecordingProxy) {
        for (what, value) in proxy.secrets() {
            self.add(&format!("{what} (on the wire)"), &value);
        }
    }

    fn kinds(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(w, _)| w.clone())
            .collect()
    }

    /// Fails, naming the secret and the line, when any secret occurs in `text`.
    fn assert_absent(&self, where_: &str, text: &str) {
        for (what, value) in self.0.lock().unwrap().iter() {
            if let Some(at) = text.find(value.as_str()) {
                let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("the {what} appears in the {where_}:\n{}", &text[start..end]);
            }
        }
    }
}

/// The `{:?}`, `{:#?}` and `{}` output of everything a test touched.
#[derive(Default)]
struct Shown(String);

impl Shown {
    fn debug(&mut self, value: &dyn Debug) {
        writeln!(self.0, "{value:?}").unwrap();
        writeln!(self.0, "{value:#?}").unwrap();
    }

    fn display(&mut self, value: &dyn Display) {
        writeln!(self.0, "{value}").unwrap();
    }

    /// An error: `{}`, `{:?}` and the `{}` of every source.
    fn error(&mut self, error: &Error) {
        self.display(error);
        self.debug(error);
        let mut source = std::error::Error::source(error);
        while let Some(e) = source {
            writeln!(self.0, "{e} / {e:?}").unwrap();
            source = e.source();
        }
    }

    fn credentials(&mut self, auth: &dyn Authenticator, credentials: &Credentials) {
        self.debug(credentials);
        self.debug(&auth);
        self.debug(&auth.fetch_grpc_call_auth_metadata());
    }
}

/// Searches the logs so far and the shown output for every secret of the test, after
/// checking that the secrets of `kinds` were indeed collected and that the flow's `logged`
/// debug line was captured (so that the search means something).
fn assert_no_secret_leaked(secrets: &Secrets, shown: &Shown, kinds: &[&str], logged: &[&str]) {
    let collected = secrets.kinds();
    for kind in kinds {
        assert!(
            collected.iter().any(|k| k.contains(kind)),
            "no {kind} was collected; collected: {collected:?}"
        );
    }
    let logs = logs().text();
    for line in logged {
        assert!(
            logs.lines()
                .any(|l| l.contains(line) && (l.contains("DEBUG") || l.contains("TRACE"))),
            "the debug line `{line}` was not captured: {logs}"
        );
    }
    secrets.assert_absent("logs", &logs);
    secrets.assert_absent("Debug/Display output", &shown.0);
}

// ---------------------------------------------------------------------------------------------
// A recording HTTP proxy.

/// A plain-HTTP forward proxy on loopback that forwards each request to its `127.0.0.1`
/// origin (one request per connection) and keeps a copy of every request and answer.
struct RecordingProxy {
    addr: SocketAddr,
    exchanges: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl RecordingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&exchanges);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), forward(client, record))
                        .await;
                });
            }
        });
        Self {
            addr,
            exchanges,
            task,
        }
    }

    /// `http://user:PASSWORD@127.0.0.1:PORT`.
    fn url(&self) -> String {
        format!("http://flyte-user:{PROXY_PASSWORD}@{}", self.addr)
    }

    /// An HTTP client that sends everything through this proxy.
    fn http(&self) -> OAuthClient {
        OAuthClient::new(
            HttpSettings::new()
                .proxy(self.url())
                .request_timeout(Duration::from_secs(20))
                // Each injected fault is one failed attempt whose error is inspected.
                .retry(RetryPolicy::new().max_retries(0)),
        )
        .unwrap()
    }

    fn exchanges(&self) -> Vec<String> {
        self.exchanges.lock().unwrap().clone()
    }

    /// Every secret in the requests and answers so far, with what it is.
    fn secrets(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for exchange in self.exchanges() {
            let (request, response) = exchange.split_once("\n=== response\n").unwrap();
            let (head, body) = request.split_once("\r\n\r\n").unwrap_or((request, ""));
            for line in head.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                if name.eq_ignore_ascii_case("authorization")
                    && let Some(basic) = value.trim().strip_prefix("Basic ")
                {
                    found.push(("Basic credentials".to_owned(), basic.to_owned()));
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(basic)
                        .unwrap();
                    let decoded = String::from_utf8(decoded).unwrap();
                    let (_, secret) = decoded.split_once(':').unwrap();
                    found.push(("client secret (Basic)".to_owned(), secret.to_owned()));
                    let plain: String = url::form_urlencoded::parse(
                        format!("s={}", secret.replace('+', "%2B")).as_bytes(),
                    )
                    .map(|(_, v)| v.into_owned())
                    .collect();
                    found.push(("client secret (Basic, decoded)".to_owned(), plain));
                }
            }
            for (name, value) in url::form_urlencoded::parse(body.as_bytes()) {
                if [
                    "client_secret",
                    "code",
                    "code_verifier",
                    "refresh_token",
                    "device_code",
                ]
                .contains(&name.as_ref())
                {
                    found.push((format!("{name} sent"), value.into_owned()));
                }
            }
            for name in ["access_token", "refresh_token", "id_token", "device_code"] {
                for value in json_strings(response, name) {
                    found.push((format!("{name} received"), value));
                }
            }
        }
        found
    }

    /// The device codes the provider handed out so far.
    fn device_codes(&self) -> Vec<String> {
        self.exchanges()
            .iter()
            .flat_map(|e| json_strings(e, "device_code"))
            .collect()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The string values of `"name": "..."` members in a JSON text.
fn json_strings(text: &str, name: &str) -> Vec<String> {
    let key = format!("\"{name}\"");
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&key) {
        rest = &rest[at + key.len()..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let Some(value) = after.trim_start().strip_prefix('"') else {
            continue;
        };
        if let Some(end) = value.find('"') {
            values.push(value[..end].to_owned());
        }
    }
    values
}

/// Forwards one request from `client` to its loopback origin and the answer back.
async fn forward(mut client: TcpStream, record: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let request = read_head_and_body(&mut client).await?;
    let text = String::from_utf8_lossy(&request).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| invalid("head"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or_else(|| invalid("request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("request line"));
    };
    let target = Url::parse(target).map_err(|_| invalid("absolute URL"))?;
    if target.host_str() != Some("127.0.0.1") {
        return Err(invalid("only 127.0.0.1 is forwarded"));
    }
    let port = target
        .port_or_known_default()
        .ok_or_else(|| invalid("port"))?;
    let path = match target.query() {
        Some(q) => format!("{}?{q}", target.path()),
        None => target.path().to_owned(),
    };
    let mut upstream_request = format!("{method} {path} HTTP/1.1\r\n");
    for line in lines {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if ![
            "connection",
            "proxy-connection",
            "proxy-authorization",
            "keep-alive",
        ]
        .contains(&name.as_str())
        {
            upstream_request.push_str(line);
            upstream_request.push_str("\r\n");
        }
    }
    upstream_request.push_str("Connection: close\r\n\r\n");
    upstream_request.push_str(body);

    let mut upstream = TcpStream::connect(("127.0.0.1", port)).await?;
    upstream.write_all(upstream_request.as_bytes()).await?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).await?;
    record.lock().unwrap().push(format!(
        "{text}\n=== response\n{}",
        String::from_utf8_lossy(&response)
    ));
    client.write_all(&response).await?;
    client.shutdown().await
}

/// Reads a request head and its `Content-Length` body (at most 1 MiB).
async fn read_head_and_body(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            if buf.len() >= end + 4 + length {
                return Ok(buf);
            }
        }
        if buf.len() > 1024 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(NO_HANG, future)
        .await
        .expect("the flow must not hang")
}

// ---------------------------------------------------------------------------------------------
// Client credentials.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_put_no_secret_in_logs_errors_or_debug_output() {
    logs();
    let idp = Idp::start().await;
    let proxy = RecordingProxy::start().await;
    let secrets = Secrets::default();
    let mut shown = Shown::default();
    secrets.add("proxy password", PROXY_PASSWORD);

    for (client, method) in [
        (BASIC_CLIENT, ClientAuthMethod::ClientSecretBasic),
        (POST_CLIENT, ClientAuthMethod::ClientSecretPost),
    ] {
        secrets.add_client(&client);
        let store = Arc::new(MemoryStore::new());
        let builder = client_credentials_flow(
            &idp,
            proxy.http(),
            Overrides::new().scopes(["all"]),
            &client,
        )
        .auth_method(method);
        shown.debug(&builder);
        let auth = CachingAuthenticator::builder(builder.build().unwrap())
            .store(store.clone())
            .build();
        shown.debug(&auth);

        let first = bounded(auth.get_credentials()).await.unwrap();
        let second = bounded(auth.refresh_credentials()).await.unwrap();

        for creds in [&first, &second] {
            secrets.add_credentials("client credentials", creds);
            shown.credentials(&auth, creds);
        }
        shown.debug(&auth.flow());
        shown.debug(&auth.cached_credentials());
        shown.debug(&*store);
        shown.debug(&store.retrieve(&idp.endpoint()));
    }

    // A wrong secret, refused by the provider.
    let wrong = "wrong-secret-Fh39Lz0qWp";
    secrets.add("wrong client secret", wrong);
    let wrong_auth = client_credentials_at(
        idp.token_endpoint().as_str(),
        proxy.http(),
        BASIC_CLIENT.id(),
        wrong,
        ClientAuthMethod::ClientSecretBasic,
    );
    let err = bounded(wrong_auth.get_credentials()).await.unwrap_err();
    assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidClient);
    shown.error(&err);
    shown.debug(&wrong_auth);

    // A token URL with credentials in it, where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (url_password, url_secret) = ("url-password-Mx4Bn7Cj", "url-query-secret-Rk2Dw5Hv");
    secrets.add("password in the token URL", url_password);
    secrets.add("secret in the token URL's query", url_secret);
    let auth = client_credentials_at(
        &format!("http://svc:{url_password}@127.0.0.1:{port}/token?client_secret={url_secret}"),
        OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap(),
        BASIC_CLIENT.id(),
        BASIC_CLIENT.secret(),
        ClientAuthMethod::ClientSecretBasic,
    );
    let err = bounded(auth.get_credentials()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    shown.error(&err);

    // Error answers that echo what they were sent, as some proxies and servers do.
    for client in [BASIC_CLIENT, POST_CLIENT] {
        let secret = client.secret();
        let auth = client_credentials_at(
            idp.token_endpoint().as_str(),
            proxy.http(),
            client.id(),
            secret,
            if client == POST_CLIENT {
                ClientAuthMethod::ClientSecretPost
            } else {
                ClientAuthMethod::ClientSecretBasic
            },
        );
        idp.inject_fault(
            Fault::token(401)
                .body(format!(
                    "<html><body><h1>401</h1><p>client_secret {secret} is not valid</p></body></html>"
                ))
                .content_type("text/html"),
        )
        .await;
        let err = bounded(auth.get_credentials()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
        shown.error(&err);
        idp.inject_fault(
            Fault::token(400).body(
                serde_json::json!({
                    "error": "invalid_client",
                    "error_description": format!("client_secret {secret} is not valid"),
                })
                .to_string(),
            ),
        )
        .await;
        let err = bounded(auth.get_credentials()).await.unwrap_err();
        assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidClient);
        shown.error(&err);
    }

    secrets.add_wire(&proxy);
    assert_no_secret_leaked(
        &secrets,
        &shown,
        &[
            "access_token received",
            "client_secret sent",
            "Basic credentials",
            "proxy password",
        ],
        &[
            "requesting a token with client credentials",
            "sending token request",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The browser login.

/// The person at the browser: approves (or refuses) every login, and remembers the
/// authorization codes the browser carried to the callback.
#[derive(Clone)]
struct User {
    approve: bool,
    codes: Arc<Mutex<Vec<String>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl User {
    fn new(approve: bool) -> Self {
        Self {
            approve,
            codes: Arc::default(),
            tasks: Arc::default(),
        }
    }

    fn browser(&self) -> BrowserOpener {
        let user = self.clone();
        BrowserOpener::new(move |url| {
            let url = Url::parse(url).unwrap();
            let this = user.clone();
            let task = tokio::spawn(async move {
                let outcome = if this.approve {
                    complete_browser_login(&url).await
                } else {
                    deny_browser_login(&url).await
                };
                if let Some(code) = outcome.ok().and_then(|r| r.code()) {
                    this.codes.lock().unwrap().push(code);
                }
            });
            user.tasks.lock().unwrap().push(task);
            Ok(())
        })
    }

    async fn finished(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in tasks {
            bounded(task).await.unwrap();
        }
    }
}

fn browser_authenticator(
    idp: &Idp,
    proxy: &RecordingProxy,
    store: Arc<MemoryStore>,
    user: &User,
) -> PkceAuthenticator {
    let flow = pkce_flow(idp, proxy.http(), user.browser())
        .timeout(NO_HANG)
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).store(store).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_login_puts_no_secret_in_logs_errors_or_debug_output() {
    logs();
    let idp = Idp::builder()
        .redirect_uri("http://localhost:0/callback")
        .scopes(["all", "offline"])
        .start()
        .await;
    let proxy = RecordingProxy::start().await;
    let secrets = Secrets::default();
    let mut shown = Shown::default();
    secrets.add("proxy password", PROXY_PASSWORD);
    let store = Arc::new(MemoryStore::new());
    let user = User::new(true);
    let auth = browser_authenticator(&idp, &proxy, store.clone(), &user);
    shown.debug(&auth);

    // Login, then refresh.
    let login = bounded(auth.get_credentials()).await.unwrap();
    user.finished().await;
    let refreshed = bounded(auth.refresh_credentials()).await.unwrap();
    for creds in [&login, &refreshed] {
        secrets.add_credentials("browser login", creds);
        shown.credentials(&auth, creds);
    }
    shown.debug(&auth.flow());
    shown.debug(&auth.flow().authorization_client());
    shown.debug(&*store);

    // A proxy error page that echoes the refresh token: a transient error.
    let refresh_token = refreshed.refresh_token.clone().unwrap();
    let rt = refresh_token.expose_secret();
    idp.inject_fault(
        Fault::token(502)
            .body(format!(
                "<html><body>502 Bad Gateway: upstream refused refresh_token={rt}</body></html>"
            ))
            .content_type("text/html"),
    )
    .await;
    let err = bounded(auth.refresh_credentials()).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    shown.error(&err);

    // A rejection that quotes the refresh token: logged, then a new login.
    idp.inject_fault(
        Fault::token(400).body(
            serde_json::json!({
                "error": "invalid_grant",
                "error_description": format!("refresh token {rt} was revoked"),
            })
            .to_string(),
        ),
    )
    .await;
    let relogin = bounded(auth.refresh_credentials()).await.unwrap();
    user.finished().await;
    secrets.add_credentials("browser login after rejection", &relogin);
    shown.credentials(&auth, &relogin);
    assert!(idp.token_requests(GRANT_REFRESH_TOKEN).await >= 3);

    // A refused login.
    let refusing = User::new(false);
    let denied = browser_authenticator(&idp, &proxy, Arc::new(MemoryStore::new()), &refusing);
    let err = bounded(denied.get_credentials()).await.unwrap_err();
    refusing.finished().await;
    assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::AccessDenied);
    shown.error(&err);
    shown.debug(&denied);

    for code in user.codes.lock().unwrap().iter() {
        secrets.add("authorization code (callback)", code);
    }
    secrets.add_wire(&proxy);
    assert_no_secret_leaked(
        &secrets,
        &shown,
        &[
            "authorization code (callback)",
            "code sent",
            "code_verifier sent",
            "refresh_token sent",
            "refresh_token received",
        ],
        &[
            "exchanging the authorization code",
            "refreshing credentials",
            "login callback server listening",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The device login.

fn device_authenticator(
    idp: &Idp,
    proxy: &RecordingProxy,
    store: Arc<MemoryStore>,
    prompts: mpsc::UnboundedSender<DevicePrompt>,
) -> DeviceCodeAuthenticator {
    let flow = device_flow(idp, proxy.http())
        .prompt(move |p| {
            let _ = prompts.send(p.clone());
        })
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).store(store).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_login_puts_no_secret_in_logs_errors_or_debug_output() {
    logs();
    let idp = Idp::start().await;
    let proxy = RecordingProxy::start().await;
    let secrets = Secrets::default();
    let mut shown = Shown::default();
    secrets.add("proxy password", PROXY_PASSWORD);
    let store = Arc::new(MemoryStore::new());
    let (tx, mut prompts) = mpsc::unbounded_channel();
    let auth = device_authenticator(&idp, &proxy, store.clone(), tx);
    shown.debug(&auth);

    // The user approves, while the token endpoint answers two polls with pages that echo
    // the device code.
    let user =
        async {
            let prompt = prompts.recv().await.unwrap();
            shown.debug(&prompt);
            shown.display(&prompt);
            let device_code = proxy.device_codes().pop().unwrap();
            idp.inject_fault(
                Fault::token(502)
                    .body(format!(
                        "<html>bad gateway for device_code={device_code}</html>"
                    ))
                    .content_type("text/html"),
            )
            .await;
            idp.inject_fault(Fault::token(400).body(
            serde_json::json!({
                "error": "authorization_pending",
                "error_description": format!("device_code {device_code} is not approved yet"),
            })
            .to_string(),
        ))
        .await;
            let polls = idp.stats().await.injected_faults;
            for _ in 0..600 {
                if idp.stats().await.injected_faults >= polls + 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            idp.approve_device_code(&prompt.user_code).await.unwrap();
        };
    let (login, ()) = bounded(async { tokio::join!(auth.get_credentials(), user) }).await;
    let login = login.unwrap();
    assert_eq!(idp.stats().await.injected_faults, 2);
    let refreshed = bounded(auth.refresh_credentials()).await.unwrap();
    for creds in [&login, &refreshed] {
        secrets.add_credentials("device login", creds);
        shown.credentials(&auth, creds);
    }
    shown.debug(&auth.flow());
    shown.debug(&*store);

    // A refused login.
    let (tx, mut denied_prompts) = mpsc::unbounded_channel();
    let denied = device_authenticator(&idp, &proxy, Arc::new(MemoryStore::new()), tx);
    let user = async {
        let prompt = denied_prompts.recv().await.unwrap();
        idp.deny_device_code(&prompt.user_code).await.unwrap();
    };
    let (result, ()) = bounded(async { tokio::join!(denied.get_credentials(), user) }).await;
    let err = result.unwrap_err();
    assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::AccessDenied);
    shown.error(&err);

    // The protocol types of the device flow, used directly.
    let http = proxy.http();
    let request = DeviceAuthorizationRequest::new(
        idp.device_authorization_endpoint().as_str(),
        ClientAuth::public(FLYTECTL),
    )
    .with_scopes(["all"]);
    shown.debug(&request);
    let authorization = bounded(http.device_authorization(&request)).await.unwrap();
    shown.debug(&authorization);
    let poll = TokenRequest::device_code(
        idp.token_endpoint().as_str(),
        ClientAuth::public(FLYTECTL),
        authorization.device_code.clone(),
    );
    shown.debug(&poll);
    shown.debug(poll.grant());
    let err = bounded(http.token(&poll)).await.unwrap_err();
    assert_eq!(
        err.oauth().unwrap().code,
        OAuthErrorCode::AuthorizationPending
    );
    shown.error(&err);

    secrets.add_wire(&proxy);
    assert_no_secret_leaked(
        &secrets,
        &shown,
        &[
            "device_code received",
            "device_code sent",
            "refresh_token sent",
            "access_token received",
        ],
        &[
            "requesting a device code",
            "device login: authorization pending",
            "refreshing credentials",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The token command.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_command_puts_no_secret_in_logs_errors_or_debug_output() {
    logs();
    let secrets = Secrets::default();
    let mut shown = Shown::default();

    // A token printed by the command, which also has it as an argument.
    let token = "cmd-token-7Hq2Lx9VbN";
    secrets.add("command token", token);
    let store = Arc::new(MemoryStore::new());
    let builder = CommandFlow::builder().command(["sh", "-c", "printf '%s\\n' \"$0\"", token]);
    shown.debug(&builder);
    let auth: CommandAuthenticator = CachingAuthenticator::builder(builder.build().unwrap())
        .store(store.clone())
        .build();
    let creds = bounded(auth.get_credentials()).await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), token);
    let again = bounded(auth.refresh_credentials()).await.unwrap();
    shown.credentials(&auth, &creds);
    shown.credentials(&auth, &again);
    shown.debug(&auth.flow());
    shown.debug(&*store);

    let proxy_token = "cmd-proxy-token-Wd81Kq0z";
    secrets.add("proxy command token", proxy_token);
    let proxy_auth = CachingAuthenticator::builder(
        CommandFlow::proxy(["sh", "-c", "echo \"$0\"", proxy_token]).unwrap(),
    )
    .build();
    let creds = bounded(proxy_auth.get_credentials()).await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), proxy_token);
    shown.credentials(&proxy_auth, &creds);

    // Failing after printing the token, which standard error repeats.
    let leaked = "cmd-leaked-token-Zp41Wq8M";
    secrets.add("token of a failing command", leaked);
    let failing = CachingAuthenticator::builder(
        CommandFlow::new([
            "sh",
            "-c",
            "echo \"$0\"; echo \"could not refresh $0, giving up\" >&2; exit 3",
            leaked,
        ])
        .unwrap(),
    )
    .build();
    let err = bounded(failing.get_credentials()).await.unwrap_err();
    assert!(matches!(err, Error::Command { .. }), "{err:?}");
    assert!(err.to_string().contains("giving up"), "{err}");
    shown.error(&err);
    shown.debug(&failing);

    // Two tokens on standard output: not one token.
    let (first, second) = ("cmd-first-token-Jr5Tn2Qa", "cmd-second-token-Lm8Vc3Xe");
    secrets.add("first printed token", first);
    secrets.add("second printed token", second);
    let two = CachingAuthenticator::builder(
        CommandFlow::new(["sh", "-c", "echo \"$0 $1\"", first, second]).unwrap(),
    )
    .build();
    let err = bounded(two.get_credentials()).await.unwrap_err();
    shown.error(&err);

    // A secret argument of a command that times out.
    let argument = "--password=cmd-arg-secret-Hy6Pd0Ks";
    secrets.add("command argument", argument);
    let slow = CachingAuthenticator::builder(
        CommandFlow::builder()
            .command(["sh", "-c", "sleep 30", argument])
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
    .build();
    let err = bounded(slow.get_credentials()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    shown.error(&err);
    shown.debug(&slow);

    assert_no_secret_leaked(
        &secrets,
        &shown,
        &[
            "command token",
            "token of a failing command",
            "command argument",
        ],
        &["running the token command", "the token command finished"],
    );
}

// ---------------------------------------------------------------------------------------------
// Values built directly: configurations, requests, stores, helpers.

#[tokio::test]
async fn configurations_requests_and_stores_show_no_secret() {
    logs();
    let secrets = Secrets::default();
    let mut shown = Shown::default();
    let (access, refresh, id) = (
        "direct-access-token-Gq4Ns7Vb",
        "direct-refresh-token-Pk2Wz9Lc",
        "direct-id-token-Ty3Hm6Rd",
    );
    let client_secret = "direct-client-secret-Ub8Fj1Xo";
    let proxy_url = format!("http://user:{PROXY_PASSWORD}@127.0.0.1:1");
    for (what, value) in [
        ("access token", access),
        ("refresh token", refresh),
        ("id token", id),
        ("client secret", client_secret),
        ("proxy password", PROXY_PASSWORD),
    ] {
        secrets.add(what, value);
    }

    let settings = HttpSettings::new().proxy(proxy_url.clone());
    shown.debug(&settings);
    let http = OAuthClient::new(settings).unwrap();
    shown.debug(&http);

    let credentials = Credentials::new(access, "flyte.example.org:443")
        .with_refresh_token(refresh)
        .with_id_token(id)
        .with_client_id("flytectl")
        .with_expires_at(SystemTime::now() + Duration::from_secs(3600));
    shown.debug(&credentials);
    shown.debug(&SecretString::new(access));
    shown.display(&SecretString::new(access));

    let confidential = ClientAuth::confidential("my-service", client_secret);
    shown.debug(&confidential);
    shown.debug(
        &confidential
            .clone()
            .with_method(ClientAuthMethod::ClientSecretPost),
    );
    let refresh_request = TokenRequest::refresh_token(
        "https://idp.example.org/token",
        confidential.clone(),
        refresh,
    );
    shown.debug(&refresh_request);
    shown.debug(refresh_request.grant());
    shown.debug(&Grant::RefreshToken {
        refresh_token: SecretString::new(refresh),
    });
    let pkce = Pkce::new_s256().unwrap();
    secrets.add("PKCE verifier", pkce.verifier().expose_secret());
    shown.debug(&pkce);
    let code = "direct-authorization-code-Zs5Qe";
    secrets.add("authorization code", code);
    let exchange = TokenRequest::authorization_code(
        "https://idp.example.org/token",
        ClientAuth::public("flytectl"),
        code,
        Some(pkce.verifier().clone()),
        Some("http://localhost:53593/callback".to_owned()),
    );
    shown.debug(&exchange);

    // A token answer, and error answers that echo what was sent.
    let answer = serde_json::json!({
        "access_token": access,
        "refresh_token": refresh,
        "id_token": id,
        "token_type": "Bearer",
        "expires_in": 3600,
    })
    .to_string();
    let response =
        TokenResponse::from_http(200, Some("application/json"), answer.as_bytes(), &[]).unwrap();
    shown.debug(&response);
    shown.debug(&response.clone().into_credentials("flyte.example.org:443"));
    let sent = [refresh, client_secret];
    for (status, content_type, body) in [
        (
            400,
            "application/json",
            serde_json::json!({"error": "invalid_grant", "error_description": format!("{refresh} is revoked"), "error_uri": format!("https://idp.example.org/e?token={refresh}")}).to_string(),
        ),
        (
            502,
            "text/html",
            format!("<html>refresh_token={refresh}&client_secret={client_secret}</html>"),
        ),
        (200, "text/plain", format!("{access} {refresh}")),
        (200, "application/json", format!("[\"{access}\"]")),
    ] {
        let err = TokenResponse::from_http(status, Some(content_type), body.as_bytes(), &sent)
            .unwrap_err();
        shown.error(&err);
    }

    let cfg = ClientConfig::new("https://idp.example.org/token", "flytectl")
        .with_device_authorization_endpoint("https://idp.example.org/device")
        .with_scopes(["all"]);
    shown.debug(&cfg);
    shown.debug(&StaticClientConfigStore::new(cfg.clone()));

    // Stores, with credentials in them.
    let endpoint = flyte_auth_core::Endpoint::parse("flyte.example.org:443").unwrap();
    let memory = MemoryStore::new();
    memory.store(&endpoint, &credentials).unwrap();
    shown.debug(&memory);
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::in_dir(dir.path());
    file.store(&endpoint, &credentials).unwrap();
    shown.debug(&file);
    shown.debug(&file.retrieve(&endpoint));
    shown.debug(&file.lock(&endpoint));
    shown.debug(&KeyringStore::new());
    shown.debug(&DefaultStore::new(Some(dir.path().to_owned())));

    // Builders and authenticators holding secrets, before any call.
    let ctx_builder = || {
        flyte_auth_oauth::ClientContext::builder(
            flyte_auth_core::Endpoint::parse("flyte.example.org").unwrap(),
        )
        .http_settings(HttpSettings::new().proxy(proxy_url.clone()))
    };
    shown.debug(&ctx_builder());
    let cc_ctx = ctx_builder()
        .overrides(Overrides::new().token_endpoint("https://idp.example.org/token"))
        .build()
        .unwrap();
    shown.debug(&cc_ctx);
    shown.debug(&ClientCredentialsFlow::builder(
        cc_ctx.clone(),
        "my-service",
        client_secret,
    ));
    let cc = CachingAuthenticator::builder(
        ClientCredentialsFlow::builder(cc_ctx, "my-service", client_secret)
            .build()
            .unwrap(),
    )
    .build();
    shown.debug(&cc);
    shown.debug(&cc.flow());
    let device_ctx = ctx_builder()
        .discovery(Arc::new(StaticClientConfigStore::new(cfg)))
        .build()
        .unwrap();
    let device = DeviceCodeFlow::builder(device_ctx).client_secret(client_secret);
    shown.debug(&device);
    let device = CachingAuthenticator::builder(device.build().unwrap()).build();
    shown.debug(&device);
    let pkce_ctx = ctx_builder()
        .discovery(Arc::new(StaticClientConfigStore::new(ClientConfig::new(
            "https://idp.example.org/token",
            "flytectl",
        ))))
        .build()
        .unwrap();
    let pkce_flow = PkceFlow::builder(pkce_ctx);
    shown.debug(&pkce_flow);
    shown.debug(&CachingAuthenticator::builder(pkce_flow.build().unwrap()).build());

    assert_no_secret_leaked(&secrets, &shown, &["PKCE verifier", "proxy password"], &[]);
}

/// Guards the proxy's own bookkeeping: every HTTP flow above really went through it.
#[tokio::test]
async fn the_recording_proxy_sees_the_token_requests() {
    let idp = Idp::start().await;
    let proxy = RecordingProxy::start().await;
    let auth = client_credentials_at(
        idp.token_endpoint().as_str(),
        proxy.http(),
        POST_CLIENT.id(),
        POST_CLIENT.secret(),
        ClientAuthMethod::ClientSecretPost,
    );
    let creds = bounded(auth.get_credentials()).await.unwrap();

    let seen = proxy.secrets();
    assert!(
        seen.iter()
            .any(|(w, v)| w == "access_token received" && v == creds.access_token.expose_secret()),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(w, v)| w == "client_secret sent" && v == POST_CLIENT.secret()),
        "{seen:?}"
    );
    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert!(
        exchanges[0].contains("Proxy-Authorization")
            || exchanges[0].contains("proxy-authorization"),
        "the proxy URL's credentials are sent to the proxy"
    );
}

#[test]
fn the_platform_configuration_shows_no_client_secret_or_command_argument() {
    let secrets = Secrets::default();
    let mut shown = Shown::default();
    let client_secret = "platform-client-secret-Vn3Kq8Ws";
    let argument = "--token=platform-cmd-arg-Qe5Rt1Zm";
    secrets.add("client secret", client_secret);
    secrets.add("command argument", argument);
    let builder = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint("dns:///flyte.example.org:443")
        .auth_mode(flyte_auth::AuthMode::ClientSecret)
        .client_id("my-service")
        .client_secret(client_secret)
        .command(["gcloud", argument])
        .proxy_command(["iap-token", "--verbose", argument]);
    shown.debug(&builder);
    let cfg = builder.build().unwrap();
    shown.debug(&cfg);
    shown.debug(&cfg.client_secret());

    // A secret put where a variable name belongs is not echoed either.
    let err = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint("dns:///flyte.example.org:443")
        .client_secret_env_var(client_secret)
        .build()
        .unwrap_err();
    shown.error(&err);

    secrets.assert_absent("Debug/Display output", &shown.0);
}
