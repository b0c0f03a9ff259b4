//! TLS behind the delay, for `cargo xtask bench --latency MS --tls`: a throwaway CA made at
//! bench time, and a loopback TLS terminator in front of the plain-HTTP provider.
//!
//! The delaying proxy passes the TLS bytes on (so the handshake pays its round trips), and the
//! terminator behind it decrypts, counts the requests and hands each one to the provider on a
//! connection of its own. The provider announces `http://` URLs of its own origin; the
//! terminator reads each answer as HTTP/1.1 (`Content-Length`, chunked, or up to the close),
//! replaces that origin in a JSON body by the proxy's `https://` one, and sends the answer on
//! with the body's new `Content-Length`. One request at a time per connection (HTTP/1.1, as
//! `flyte-auth`, `curl` and the peers send them; ALPN offers only `http/1.1`). Bounded: heads
//! and bodies have a size limit, every read and write a timeout, a connection a lifetime, and
//! the terminator stops when dropped.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::latency::{CONNECTION_LIFETIME, Counts, MAX_CONNECTIONS, replace};

/// The longest a read or write on either side of the terminator waits.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request or response head.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request or response body.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A CA made for one bench run and the terminator's configuration with a certificate it
/// signed for `127.0.0.1` and `localhost`.
pub(super) struct Pki {
    /// The CA certificate, PEM: what `flyte-auth` (`caCertFilePath`), `curl` (`--cacert`) and
    /// the peers are told to trust.
    pub(super) ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl Pki {
    /// A new CA and server certificate.
    pub(super) fn generate() -> Result<Self, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let err = |e: rcgen::Error| format!("cannot make the bench's throwaway CA: {e}");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "flyte-auth bench throwaway CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?)
            .map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "flyte-auth bench provider");
        let cert = params.signed_by(&key, &ca).map_err(err)?;

        // ring, the crypto provider flyte-auth's client uses; rustls 0.23.48 deprecates the
        // constructor.
        #[allow(deprecated, reason = "ring, as the client under test uses")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot configure the bench's TLS terminator: {e}"))?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| format!("cannot configure the bench's TLS terminator: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca.pem(),
            config: Arc::new(config),
        })
    }
}

/// The origin the provider announces and the one that replaces it in JSON answers.
pub(super) struct Rewrite {
    /// `http://127.0.0.1:PROVIDER`.
    pub(super) from: String,
    /// `https://127.0.0.1:PROXY`.
    pub(super) to: String,
}

/// A TLS terminator on a loopback listener; see the module docs. Stops when dropped.
pub(super) struct Terminator {
    stop: Arc<AtomicBool>,
}

impl Terminator {
    /// Serves `listener` (bound on loopback by the caller, so that the delaying proxy in
    /// front knows its address first), passing each request on to `upstream`.
    pub(super) fn start(
        listener: TcpListener,
        pki: &Pki,
        upstream: SocketAddr,
        rewrite: Rewrite,
        counts: Arc<Counts>,
    ) -> Result<Self, String> {
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot set up the TLS terminator: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (config, rewrite, s) = (Arc::clone(&pki.config), Arc::new(rewrite), stop.clone());
        std::thread::spawn(move || {
            let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            while !s.load(Ordering::Relaxed) {
                if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                match listener.accept() {
                    Ok((tcp, _)) => {
                        open.fetch_add(1, Ordering::Relaxed);
                        let (config, rewrite, counts, open) = (
                            Arc::clone(&config),
                            Arc::clone(&rewrite),
                            Arc::clone(&counts),
                            Arc::clone(&open),
                        );
                        std::thread::spawn(move || {
                            if let Err(e) = serve(tcp, config, upstream, &rewrite, &counts) {
                                eprintln!("bench TLS terminator: {e}");
                            }
                            open.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        });
        Ok(Self { stop })
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One TLS connection: its requests one after the other, each answered by the provider.
fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: SocketAddr,
    rewrite: &Rewrite,
    counts: &Counts,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("I/O: {e}");
    // Accepted from a non-blocking listener: blocking again, with timeouts.
    tcp.set_nonblocking(false).map_err(io)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    let connection =
        rustls::ServerConnection::new(config).map_err(|e| format!("TLS set-up: {e}"))?;
    let mut client = BufReader::new(rustls::StreamOwned::new(connection, tcp));
    let server = TcpStream::connect_timeout(&upstream, IO_TIMEOUT).map_err(io)?;
    server.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    server.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    server.set_nodelay(true).map_err(io)?;
    let mut server_in = BufReader::new(server.try_clone().map_err(io)?);
    let mut server_out = server;
    let deadline = Instant::now() + CONNECTION_LIFETIME;
    while Instant::now() < deadline {
        // The client closing (with or without close_notify) ends the connection.
        let Ok(Some(request)) = Message::read(&mut client, Body::OfRequest) else {
            break;
        };
        counts.requests.fetch_add(1, Ordering::Relaxed);
        server_out.write_all(&request.to_bytes()).map_err(io)?;
        let head_only = request.start.starts_with("HEAD ");
        let response = Message::read(&mut server_in, Body::OfResponse { head_only })?
            .ok_or("the provider closed the connection without an answer")?;
        let response = response.rewritten(rewrite);
        let out = client.get_mut();
        out.write_all(&response.to_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
        if request.closes() || response.closes() {
            break;
        }
    }
    let out = client.get_mut();
    out.conn.send_close_notify();
    let _ = out.flush();
    Ok(())
}

/// How a message's body is delimited when it has neither `Content-Length` nor chunks.
#[derive(Clone, Copy)]
enum Body {
    /// A request without either has no body.
    OfRequest,
    /// A response without either runs to the close, unless it has no body by its status or
    /// answers a `HEAD`.
    OfResponse { head_only: bool },
}

/// One HTTP/1.1 message, its body read whole (de-chunked).
#[derive(Debug, PartialEq)]
struct Message {
    /// The request or status line, without its line break.
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether the body may be written back with a `Content-Length` (not for a 1xx, 204 or
    /// 304 answer, nor for the answer to a `HEAD`).
    has_body: bool,
}

impl Message {
    /// The next message of `from`; `None` at the end of the stream before its first byte.
    fn read(from: &mut impl BufRead, kind: Body) -> Result<Option<Self>, String> {
        let mut head = Vec::new();
        loop {
            let before = head.len();
            let n = from
                .by_ref()
                .take((MAX_HEAD - head.len()) as u64)
                .read_until(b'\n', &mut head)
                .map_err(|e| format!("reading a message head: {e}"))?;
            if n == 0 {
                return if head.is_empty() {
                    Ok(None)
                } else {
                    Err("the stream ended inside a message head".into())
                };
            }
            if !head.ends_with(b"\n") {
                return Err(format!("a message head is over {MAX_HEAD} bytes"));
            }
            if head[before..] == *b"\r\n" || head[before..] == *b"\n" {
                break;
            }
        }
        let head = String::from_utf8(head).map_err(|_| "a message head is not UTF-8")?;
        let mut lines = head.lines();
        let start = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap_or((l, ""));
                (name.trim().to_owned(), value.trim().to_owned())
            })
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let has_body = match kind {
            Body::OfRequest => true,
            Body::OfResponse { head_only } => {
                let status = start.split(' ').nth(1).unwrap_or_default();
                !head_only && !status.starts_with('1') && status != "204" && status != "304"
            }
        };
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut body = Vec::new();
        if !has_body {
        } else if chunked {
            read_chunks(from, &mut body)?;
        } else if let Some(length) = header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| format!("a Content-Length of {length:?}"))?;
            if length > MAX_BODY {
                return Err(format!("a body of {length} bytes is over {MAX_BODY}"));
            }
            body.resize(length, 0);
            from.read_exact(&mut body)
                .map_err(|e| format!("reading a body: {e}"))?;
        } else if matches!(kind, Body::OfResponse { .. }) {
            from.take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| format!("reading a body: {e}"))?;
            if body.len() > MAX_BODY {
                return Err(format!("a body is over {MAX_BODY} bytes"));
            }
        }
        Ok(Some(Self {
            start,
            headers,
            body,
            has_body,
        }))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection ends after this message.
    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The message with the provider's origin replaced in a JSON body.
    fn rewritten(mut self, rewrite: &Rewrite) -> Self {
        if self
            .header("content-type")
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
        {
            self.body = replace(&self.body, rewrite.from.as_bytes(), rewrite.to.as_bytes());
        }
        self
    }

    /// The message as sent on: its head with a `Content-Length` of the body as it is now
    /// (instead of any `Content-Length` or `Transfer-Encoding` it came with), then the body.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(self.start.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.has_body && (!self.body.is_empty() || !self.start.starts_with("GET ")) {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A chunked body (RFC 9112 section 7.1) into `body`, trailers read and dropped.
fn read_chunks(from: &mut impl BufRead, body: &mut Vec<u8>) -> Result<(), String> {
    let line = |from: &mut dyn BufRead| -> Result<String, String> {
        let mut line = Vec::new();
        from.take(1024)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading a chunk: {e}"))?;
        if !line.ends_with(b"\n") {
            return Err("a chunk line is cut or too long".into());
        }
        Ok(String::from_utf8_lossy(&line).trim().to_owned())
    };
    loop {
        let size = line(from)?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| format!("a chunk size {size:?}"))?;
        if size == 0 {
            while !line(from)?.is_empty() {}
            return Ok(());
        }
        if body.len() + size > MAX_BODY {
            return Err(format!("a chunked body is over {MAX_BODY} bytes"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        from.read_exact(&mut body[start..])
            .map_err(|e| format!("reading a chunk: {e}"))?;
        if !line(from)?.is_empty() {
            return Err("a chunk does not end with a line break".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite() -> Rewrite {
        Rewrite {
            from: "http://127.0.0.1:4000".into(),
            to: "https://127.0.0.1:51111".into(),
        }
    }

    fn response(bytes: &[u8]) -> Message {
        Message::read(&mut &bytes[..], Body::OfResponse { head_only: false })
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_json_answer_is_rewritten_with_its_new_length() {
        let body =
            br#"{"issuer":"http://127.0.0.1:4000","token_endpoint":"http://127.0.0.1:4000/token"}"#;
        let raw = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let message = response(&[raw.as_bytes(), body].concat()).rewritten(&rewrite());
        let want = br#"{"issuer":"https://127.0.0.1:51111","token_endpoint":"https://127.0.0.1:51111/token"}"#;
        assert_eq!(message.body, want);
        let bytes = message.to_bytes();
        let again = response(&bytes);
        assert_eq!(again.body, want);
        assert_eq!(
            again.header("content-length"),
            Some(want.len().to_string().as_str())
        );
    }

    #[test]
    fn a_chunked_answer_is_sent_on_with_a_length() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
                    7\r\n{\"a\":\"h\r\n18\r\nttp://127.0.0.1:4000/x\"}\r\n0\r\n\r\n";
        let message = response(raw).rewritten(&rewrite());
        assert_eq!(message.body, br#"{"a":"https://127.0.0.1:51111/x"}"#);
        let text = String::from_utf8(message.to_bytes()).unwrap();
        assert!(!text.contains("chunked"), "{text}");
        assert!(text.contains("content-length: 33\r\n"), "{text}");
    }

    #[test]
    fn other_bodies_are_passed_unchanged() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 21\r\n\r\nhttp://127.0.0.1:4000";
        assert_eq!(
            response(raw).rewritten(&rewrite()).body,
            b"http://127.0.0.1:4000"
        );
    }

    #[test]
    fn requests_keep_their_body_and_a_get_gets_no_length() {
        let raw = b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\na=bGET /x HTTP/1.1\r\nhost: x\r\n\r\n";
        let mut from = &raw[..];
        let post = Message::read(&mut from, Body::OfRequest).unwrap().unwrap();
        assert_eq!(post.body, b"a=b");
        let get = Message::read(&mut from, Body::OfRequest).unwrap().unwrap();
        assert_eq!(get.to_bytes(), b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(Message::read(&mut from, Body::OfRequest).unwrap(), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_hang() {
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
        assert!(Message::read(&mut &cut[..], Body::OfResponse { head_only: false }).is_err());
        let huge = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(
            Message::read(&mut huge.as_bytes(), Body::OfResponse { head_only: false }).is_err()
        );
        let long_head = vec![b'a'; MAX_HEAD + 10];
        assert!(Message::read(&mut &long_head[..], Body::OfRequest).is_err());
    }

    #[test]
    fn the_terminator_serves_https_with_the_throwaway_ca() {
        // A plain-HTTP upstream announcing its origin in JSON.
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = upstream.local_addr().unwrap();
        let origin = format!("http://{addr}");
        let body = format!(r#"{{"token_endpoint":"{origin}/token"}}"#);
        std::thread::spawn(move || {
            let (s, _) = upstream.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = Message::read(&mut r, Body::OfRequest).unwrap().unwrap();
            let mut s = s;
            write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        });
        let pki = Pki::generate().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let _terminator = Terminator::start(
            listener,
            &pki,
            addr,
            Rewrite {
                from: origin,
                to: format!("https://127.0.0.1:{port}"),
            },
            Arc::clone(&counts),
        )
        .unwrap();

        let mut roots = rustls::RootCertStore::empty();
        let ca = <CertificateDer<'_> as rustls::pki_types::pem::PemObject>::from_pem_slice(
            pki.ca_pem.as_bytes(),
        )
        .unwrap();
        roots.add(ca).unwrap();
        #[allow(deprecated, reason = "ring, as the client under test uses")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"GET /.well-known/x HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let answer = Message::read(
            &mut BufReader::new(tls),
            Body::OfResponse { head_only: false },
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            String::from_utf8(answer.body).unwrap(),
            format!(r#"{{"token_endpoint":"https://127.0.0.1:{port}/token"}}"#)
        );
        assert_eq!(counts.requests.load(Ordering::Relaxed), 1);
    }
}
