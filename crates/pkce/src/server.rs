//! The loopback callback server: listens on the redirect URI's host and port, answers every
//! request, and hands back the authorization code of the one callback that carries this
//! login's `state`.
//!
//! A minimal HTTP/1.1 server on tokio's `TcpListener`: it reads a request head (bounded in
//! size and time), looks at the request line only, and answers with `Connection: close`.
//! Connections are handled concurrently, so a browser's speculative pre-connection that sends
//! nothing does not delay the real callback; at most `MAX_CONNECTIONS` at once, and one
//! that sends nothing for `FIRST_BYTE_TIMEOUT` is closed, so idle connections cannot keep
//! the callback out. Dropping the server closes its listeners.

use std::{
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    task::Poll,
    time::Duration,
};

use flyte_auth_core::{Error, OAuthError, SecretString};
use futures_util::{StreamExt as _, stream::FuturesUnordered};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use url::Url;

use crate::{
    IssuerMismatch,
    challenge::constant_time_eq,
    pages::{EndpointMetadata, Page, reason_phrase},
    redirect::{LoopbackHost, RedirectTarget},
};

/// The largest request head read (request line and headers; browsers send cookies for
/// `localhost` too).
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// How long a connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay silent before its first byte: a browser sends its request
/// at once, so a connection that sends nothing for this long (a speculative pre-connection,
/// or any program on the machine) is closed and frees its slot for the real callback.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long writing an answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections are served at once; more wait in the listen queue until a slot is
/// free (within [`FIRST_BYTE_TIMEOUT`] when the slots are held by idle connections).
const MAX_CONNECTIONS: usize = 64;

/// How many times a free port is looked for on both 127.0.0.1 and ::1 (port 0 only).
const FREE_PORT_ATTEMPTS: usize = 8;

/// The longest `error_description` kept from a callback.
const MAX_DESCRIPTION_CHARS: usize = 1000;

/// The listening callback server of one login.
#[derive(Debug)]
pub(crate) struct CallbackServer {
    listeners: Vec<TcpListener>,
    redirect_uri: String,
    path: String,
}

/// The connection of the callback that carried the code; it is answered once the code has
/// been exchanged, so that the browser says whether the login really succeeded.
#[derive(Debug)]
pub(crate) struct CodeCallback {
    pub(crate) code: SecretString,
    stream: TcpStream,
}

impl CodeCallback {
    /// Shows `page` in the browser and closes the connection.
    pub(crate) async fn respond(self, page: &Page) {
        respond(self.stream, page).await;
    }
}

impl CallbackServer {
    /// Listens on the redirect URI's host and port. For `localhost`, on 127.0.0.1 and, where
    /// IPv6 exists, on ::1 as well.
    pub(crate) async fn bind(target: &RedirectTarget) -> Result<Self, Error> {
        let port = target.port;
        let listeners = match target.host {
            LoopbackHost::V4(ip) => vec![bind_one(SocketAddr::new(ip.into(), port), target).await?],
            LoopbackHost::V6(ip) => vec![bind_one(SocketAddr::new(ip.into(), port), target).await?],
            LoopbackHost::Localhost => bind_localhost(target).await?,
        };
        let bound = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
            .ok_or_else(|| {
                Error::authentication(format!(
                    "the login callback server for {} could not tell which port it listens on",
                    target.uri()
                ))
            })?;
        let redirect_uri = target.with_port(bound);
        tracing::debug!(
            redirect_uri = %redirect_uri,
            addresses = ?listeners.iter().filter_map(|l| l.local_addr().ok()).collect::<Vec<_>>(),
            "login callback server listening"
        );
        Ok(Self {
            listeners,
            redirect_uri,
            path: target.path().to_owned(),
        })
    }

    /// The redirect URI to send, with the port actually bound.
    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Serves until the callback carrying `state` arrives or `timeout` passes, while `side`
    /// (opening the browser) runs alongside; each request is answered as
    /// [`classify`](Self::classify) says. The listeners are closed when this returns.
    pub(crate) async fn wait_for_code(
        self,
        state: &str,
        expected_issuer: Option<&str>,
        metadata: &EndpointMetadata,
        timeout: Duration,
        side: impl Future<Output = ()>,
    ) -> Result<CodeCallback, Error> {
        let sleep = tokio::time::sleep_until(Instant::now() + timeout);
        tokio::pin!(sleep);
        tokio::pin!(side);
        let mut side_done = false;
        let mut connections: FuturesUnordered<ConnFuture> = FuturesUnordered::new();
        loop {
            tokio::select! {
                biased;
                () = &mut sleep => {
                    return Err(Error::LoginTimeout {
                        operation: format!(
                            "the browser login (waiting for the browser to come back to {})",
                            self.redirect_uri
                        ),
                        after: timeout,
                    });
                }
                Some(event) = connections.next(), if !connections.is_empty() => {
                    let ConnEvent::Request(stream, head) = event else { continue };
                    match self.classify(head, state, expected_issuer, metadata) {
                        Step::Answer(page) => {
                            connections.push(Box::pin(async move {
                                respond(stream, &page).await;
                                ConnEvent::Done
                            }));
                        }
                        Step::Fail(page, error) => {
                            respond(stream, &page).await;
                            return Err(error);
                        }
                        Step::Code(code) => return Ok(CodeCallback { code, stream }),
                    }
                }
                accepted = accept_any(&self.listeners), if connections.len() < MAX_CONNECTIONS => match accepted {
                    Ok(stream) => connections.push(Box::pin(read_head(stream))),
                    Err(e) => {
                        tracing::warn!(error = %e, "the login callback server could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = &mut side, if !side_done => side_done = true,
            }
        }
    }

    /// What to do with a request: a 404 for any path but the callback's; an error page for a
    /// callback whose `state` is missing or wrong (a stale tab or a forged request: the real
    /// one can still come); the end of the login for a callback from another issuer (RFC
    /// 9207: [`IssuerMismatch`]), with `error=` ([`Error::OAuth`]) or without a code; the
    /// code otherwise.
    fn classify(
        &self,
        head: Result<Head, HeadError>,
        expected_state: &str,
        expected_issuer: Option<&str>,
        metadata: &EndpointMetadata,
    ) -> Step {
        let head = match head {
            Ok(head) => head,
            Err(HeadError::TooLarge) => {
                return Step::Answer(Page::bad_request(431, "The request is too large."));
            }
            Err(HeadError::Malformed) => {
                return Step::Answer(Page::bad_request(400, "This is not an HTTP request."));
            }
        };
        if head.method != "GET" {
            return Step::Answer(Page::method_not_allowed());
        }
        let Some(url) = request_url(&head.target) else {
            return Step::Answer(Page::bad_request(400, "The request target is not valid."));
        };
        if url.path() != self.path {
            tracing::debug!(
                path = url.path(),
                "login callback server: not the callback path (404)"
            );
            return Step::Answer(Page::not_found());
        }

        let mut params = CallbackParams::default();
        for (name, value) in url.query_pairs() {
            let slot = match name.as_ref() {
                "state" => &mut params.state,
                "code" => &mut params.code,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                "error_uri" => &mut params.error_uri,
                "iss" => &mut params.iss,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }

        let state_ok = params
            .state
            .as_deref()
            .is_some_and(|s| constant_time_eq(s.as_bytes(), expected_state.as_bytes()));
        if !state_ok {
            tracing::warn!(
                redirect_uri = %self.redirect_uri,
                state_present = params.state.is_some(),
                "a login callback with a missing or wrong `state` was refused (a stale browser tab, or a forged request); still waiting for the real one"
            );
            return Step::Answer(Page::state_mismatch());
        }

        if let Some(expected) = expected_issuer
            && params.iss.as_deref() != Some(expected)
        {
            let mismatch = IssuerMismatch::new(expected, params.iss.as_deref());
            tracing::warn!(
                redirect_uri = %self.redirect_uri,
                error = %mismatch,
                "a login callback from another authorization server was refused"
            );
            return Step::Fail(
                Page::failure(
                    metadata,
                    "the answer came from another identity provider than the one the login was \
                     sent to, and was refused.",
                ),
                Error::other(mismatch),
            );
        }

        if let Some(code) = params.error.filter(|e| !e.trim().is_empty()) {
            let mut error = OAuthError::new(code.trim());
            if let Some(d) = params.error_description.filter(|d| !d.trim().is_empty()) {
                error = error.with_description(truncate(d.trim(), MAX_DESCRIPTION_CHARS));
            }
            if let Some(u) = params.error_uri.filter(|u| !u.trim().is_empty()) {
                error = error.with_uri(truncate(u.trim(), MAX_DESCRIPTION_CHARS));
            }
            let reason = match &error.description {
                Some(d) => format!("the identity provider answered `{}`: {d}", error.code),
                None => format!("the identity provider answered `{}`", error.code),
            };
            return Step::Fail(Page::failure(metadata, &reason), Error::OAuth(error));
        }

        match params.code.filter(|c| !c.is_empty()) {
            Some(code) => Step::Code(SecretString::new(code)),
            None => {
                let message = format!(
                    "the browser came back to {} without an authorization code and without an error; \
                     the identity provider may not support this client's redirect URI or response type",
                    self.redirect_uri
                );
                Step::Fail(
                    Page::failure(
                        metadata,
                        "the identity provider sent the browser back without an authorization code.",
                    ),
                    Error::authentication(message),
                )
            }
        }
    }
}

/// What to do with a request.
enum Step {
    /// Answer with this page and keep waiting.
    Answer(Page),
    /// Answer with this page and end the login with this error.
    Fail(Page, Error),
    /// The code: end the wait.
    Code(SecretString),
}

#[derive(Default)]
struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
    iss: Option<String>,
}

type ConnFuture = Pin<Box<dyn Future<Output = ConnEvent> + Send>>;

enum ConnEvent {
    /// A connection sent a request head (or something that is not one).
    Request(TcpStream, Result<Head, HeadError>),
    /// A connection was answered, or closed or timed out without a request.
    Done,
}

struct Head {
    method: String,
    target: String,
}

enum HeadError {
    TooLarge,
    Malformed,
}

async fn bind_one(addr: SocketAddr, target: &RedirectTarget) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, target, &e))
}

/// Binds 127.0.0.1 (required) and ::1 (where IPv6 exists) on the same port.
async fn bind_localhost(target: &RedirectTarget) -> Result<Vec<TcpListener>, Error> {
    let port = target.port;
    let v4_addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    for _ in 0..FREE_PORT_ATTEMPTS {
        let v4 = bind_one(v4_addr, target).await?;
        let bound = v4
            .local_addr()
            .map_err(|e| bind_error(v4_addr, target, &e))?
            .port();
        let v6_addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bound);
        match TcpListener::bind(v6_addr).await {
            Ok(v6) => return Ok(vec![v4, v6]),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && port == 0 => {
                // Another program holds this port on ::1 only; look for another free port.
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(bind_error(v6_addr, target, &e));
            }
            Err(e) => {
                tracing::debug!(error = %e, "IPv6 loopback unavailable; the login callback listens on 127.0.0.1 only");
                return Ok(vec![v4]);
            }
        }
    }
    tracing::debug!(
        "no port free on both 127.0.0.1 and ::1; the login callback listens on 127.0.0.1 only"
    );
    Ok(vec![
        bind_one(SocketAddr::new(v4_addr.ip(), 0), target).await?,
    ])
}

fn bind_error(addr: SocketAddr, target: &RedirectTarget, e: &io::Error) -> Error {
    let uri = target.uri();
    let port = addr.port();
    let what = match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "port {port} is already in use. Another login may be running (flyte-auth, pyflyte, \
             flytectl), or another program uses the port: stop it, or use a redirect URI with \
             another port (registered with the identity provider)"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "permission denied (ports below 1024 need privileges; use a redirect URI with a \
             higher port): {e}"
        ),
        _ => e.to_string(),
    };
    Error::authentication(format!(
        "cannot listen on {addr} for the browser login callback (redirect URI {uri}): {what}"
    ))
}

/// Accepts a connection on whichever listener has one.
async fn accept_any(listeners: &[TcpListener]) -> io::Result<TcpStream> {
    std::future::poll_fn(|cx| {
        for listener in listeners {
            if let Poll::Ready(result) = listener.poll_accept(cx) {
                return Poll::Ready(result.map(|(stream, _)| stream));
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads a request head within [`MAX_HEAD_BYTES`] and [`READ_TIMEOUT`]; a connection that
/// sends nothing within [`FIRST_BYTE_TIMEOUT`] is closed.
async fn read_head(mut stream: TcpStream) -> ConnEvent {
    let mut buf = Vec::with_capacity(2048);
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = head_end(&buf) {
                return Ok(Some(end));
            }
            if buf.len() > MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            let wait = if buf.is_empty() {
                FIRST_BYTE_TIMEOUT
            } else {
                READ_TIMEOUT
            };
            match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
                Err(_) | Ok(Ok(0) | Err(_)) => return Ok(None),
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let head = match read {
        // Silent, timed out or closed before a full head: a pre-connection, or a client that
        // left.
        Err(_) | Ok(Ok(None)) => return ConnEvent::Done,
        Ok(Err(e)) => Err(e),
        Ok(Ok(Some(end))) => parse_request_line(&buf[..end]),
    };
    ConnEvent::Request(stream, head)
}

/// Where the head ends (the blank line), if it has arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_request_line(head: &[u8]) -> Result<Head, HeadError> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| HeadError::Malformed)?;
    let mut parts = line.trim_end_matches('\r').split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if !method.is_empty() && version.starts_with("HTTP/1.") =>
        {
            Ok(Head {
                method: method.to_owned(),
                target: target.to_owned(),
            })
        }
        _ => Err(HeadError::Malformed),
    }
}

/// The request target as a URL (origin form `/path?query`, or absolute form).
fn request_url(target: &str) -> Option<Url> {
    if target.starts_with('/') {
        Url::parse(&format!("http://callback{target}")).ok()
    } else if target.starts_with("http://") {
        Url::parse(target).ok()
    } else {
        None
    }
}

/// `text` cut after `max_chars` characters, with `...` when cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Writes `page` with `Connection: close` and closes the connection.
async fn respond(mut stream: TcpStream, page: &Page) {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n",
        page.status,
        reason_phrase(page.status),
        page.body.len()
    );
    if page.built_in {
        head.push_str(
            "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\n",
        );
    }
    if page.status == 405 {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str("\r\n");
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&page.body).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "could not answer the browser"),
        Err(_) => tracing::debug!("answering the browser timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_strictly() {
        let head = parse_request_line(b"GET /callback?code=a&state=b HTTP/1.1\r\nHost: x\r\n")
            .ok()
            .unwrap();
        assert_eq!(
            (head.method.as_str(), head.target.as_str()),
            ("GET", "/callback?code=a&state=b")
        );
        for bad in [
            &b"GET /callback\r\n"[..],
            b"GET /a b HTTP/1.1\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"GET /callback HTTP/2\r\n",
            b" / HTTP/1.1\r\n",
        ] {
            assert!(parse_request_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\n"), Some(19));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn request_targets_in_origin_and_absolute_form() {
        assert_eq!(request_url("/callback?x=1").unwrap().path(), "/callback");
        assert_eq!(
            request_url("http://localhost:1/callback?x=1")
                .unwrap()
                .path(),
            "/callback"
        );
        assert!(request_url("*").is_none());
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("ééé", 2), "éé...");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
