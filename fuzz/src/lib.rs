//! What the fuzz targets share: the readable input format of a server answer, the secrets
//! that must never appear in an error, a loopback HTTP server that answers with the fuzzer's
//! bytes, one async runtime per process, and ([`checks`]) what each target checks.
//!
//! This file and `checks.rs` use nothing of libFuzzer: the workspace's test suite includes
//! them as a module (`tests/tests/fuzz_regressions.rs`) to replay `regressions/`.
//!
//! # Input format of an HTTP answer
//!
//! ```text
//! 400 application/json
//! {"error":"invalid_client"}
//! ```
//!
//! The first line is the status and the content type (the content type may be missing or
//! empty); the rest is the body, byte for byte. When the first line is not of that shape the
//! whole input is the body of a `200 application/json` answer. Seed files are written in
//! this format, so they can be read and edited by hand.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use flyte_auth_oauth::{HttpSettings, OAuthClient};

pub mod checks;

/// Secrets the fuzzed requests send: no error may contain them. One has a space and
/// characters that need form encoding, like the test provider's `client_secret_post` secret.
pub const SECRETS: [&str; 2] = ["s3cr3t-client-secret", "p0st s3cr:t/+%2B&=é"];

/// The client id the fuzzed requests authenticate with (HTTP Basic, with `SECRETS[0]`).
pub const CLIENT_ID: &str = "flyte-service";

/// Every form in which the `sent` secrets travel in a request, and so may come back in an
/// answer that echoes the request: as they are, form-encoded (`+` for a space: the body of a
/// `client_secret_post` request), percent-encoded (`%20`), and, when `basic_client` is given,
/// as the HTTP Basic credentials of that client id.
pub fn secret_forms(sent: &[&str], basic_client: Option<&str>) -> Vec<String> {
    let mut forms = Vec::new();
    for secret in sent {
        forms.push((*secret).to_owned());
        forms.push(encode(secret, "+"));
        forms.push(encode(secret, "%20"));
        if let Some(client_id) = basic_client {
            forms.push(basic_credentials(client_id, secret));
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `application/x-www-form-urlencoded` byte encoding, with `space` for a space.
fn encode(text: &str, space: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push_str(space),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `base64(urlenc(id) ":" urlenc(secret))`, the value after `Basic ` (RFC 6749 §2.3.1).
pub fn basic_credentials(client_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(client_id, "+"),
        encode(secret, "+")
    ))
}

/// Panics when `text` (an error's `Display` or `Debug`) contains one of `forms` (see
/// [`secret_forms`]).
pub fn assert_no_secret(what: &str, text: &str, forms: &[String]) {
    for form in forms {
        assert!(
            !text.contains(form.as_str()),
            "{what} contains a secret (as {form:?}): {text}"
        );
    }
}

/// An HTTP answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// 200..=599.
    pub status: u16,
    /// The `Content-Type` header, if any (without control characters).
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Reads an answer in the format of the crate documentation. Never fails.
    pub fn parse(input: &[u8]) -> Self {
        let split = input.iter().position(|&b| b == b'\n');
        if let Some(end) = split
            && let Ok(line) = std::str::from_utf8(&input[..end])
        {
            let line = line.trim_end_matches('\r');
            let (status, content_type) = match line.split_once(' ') {
                Some((s, ct)) => (s, ct.trim()),
                None => (line, ""),
            };
            if status.len() == 3
                && let Ok(status) = status.parse::<u16>()
                && (200..=599).contains(&status)
            {
                let content_type: String =
                    content_type.chars().filter(|c| !c.is_control()).collect();
                return Self {
                    status,
                    content_type: (!content_type.is_empty()).then_some(content_type),
                    body: input[end + 1..].to_vec(),
                };
            }
        }
        Self {
            status: 200,
            content_type: Some("application/json".into()),
            body: input.to_vec(),
        }
    }

    /// The answer as HTTP/1.1 bytes, with `Connection: close`.
    fn to_http(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} Fuzz\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.body.len()
        );
        if let Some(ct) = &self.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The async runtime of this process (current-thread, with I/O and timers).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// An OAuth client for loopback servers: no proxy from the environment, short time-outs.
pub fn oauth_client() -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .connect_timeout(Duration::from_secs(5))
            .request_timeout(Duration::from_secs(10)),
    )
    .expect("an HTTP client with default TLS settings")
}

/// A loopback HTTP server that answers each path with the answer set for it (404 otherwise).
/// It runs on its own thread for the life of the process.
#[derive(Debug, Clone)]
pub struct StubServer {
    addr: SocketAddr,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
}

impl StubServer {
    /// The server of this process, started on first use on 127.0.0.1 and a free port.
    pub fn get() -> &'static Self {
        static SERVER: OnceLock<StubServer> = OnceLock::new();
        SERVER.get_or_init(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
            let server = StubServer {
                addr: listener.local_addr().expect("a bound address"),
                answers: Arc::default(),
            };
            let answers = Arc::clone(&server.answers);
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let answers = Arc::clone(&answers);
                    std::thread::spawn(move || serve(stream, &answers));
                }
            });
            server
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` with `answer` from now on.
    pub fn set(&self, path: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_owned(), answer);
    }
}

/// Reads one request (head and `Content-Length` body) and writes the answer for its path.
fn serve(mut stream: TcpStream, answers: &Mutex<HashMap<String, Answer>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length.min(1024 * 1024) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = answers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&path)
        .cloned()
        .unwrap_or(Answer {
            status: 404,
            content_type: None,
            body: Vec::new(),
        });
    let _ = stream.write_all(&answer.to_http());
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_the_forms_they_travel_in() {
        let forms = secret_forms(&SECRETS, Some(CLIENT_ID));
        assert!(forms.contains(&"p0st+s3cr%3At%2F%2B%252B%26%3D%C3%A9".to_owned()));
        assert!(forms.contains(&"p0st%20s3cr%3At%2F%2B%252B%26%3D%C3%A9".to_owned()));
        // base64("flyte-service:s3cr3t-client-secret")
        assert!(forms.contains(&"Zmx5dGUtc2VydmljZTpzM2NyM3QtY2xpZW50LXNlY3JldA==".to_owned()));
    }

    #[test]
    fn the_first_line_is_status_and_content_type() {
        let a = Answer::parse(b"502 text/html\r\n<html>bad gateway</html>");
        assert_eq!(a.status, 502);
        assert_eq!(a.content_type.as_deref(), Some("text/html"));
        assert_eq!(a.body, b"<html>bad gateway</html>");
        let plain = Answer::parse(b"{\"access_token\":\"t\"}");
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, b"{\"access_token\":\"t\"}");
    }
}
