//! Tiny loopback servers for what wiremock cannot do: never answer, trickle a body, stream a
//! chunked body, act as an HTTP proxy, speak TLS with a test CA.

#![allow(dead_code, unreachable_pub, reason = "each test file uses a subset")]

use std::{
    io::{Read, Write},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// How long any helper server lives at most.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);

/// Reads one request head (and discards a body announced by Content-Length) from `stream`.
pub async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        let n = stream.read(&mut byte).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = content_length(&head);
            let mut have = buf.len() - end - 4;
            while have < len {
                let n = stream.read(&mut byte).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                have += n;
            }
            return head;
        }
        if buf.len() > 64 * 1024 {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// A server that accepts connections and reads requests but never answers.
pub async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(SERVER_LIFETIME, listener.accept()).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), read_request(&mut stream)).await;
            held.push(stream);
        }
    });
    addr
}

/// A server that sends its headers at once, then the body one byte every `every`.
pub async fn trickle_server(body_len: usize, every: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(SERVER_LIFETIME, listener.accept()).await
        {
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body_len}\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..body_len {
                    tokio::time::sleep(every).await;
                    if stream.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A server that answers with a chunked body (no Content-Length) of `total` bytes.
pub async fn chunked_server(status: u16, total: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(SERVER_LIFETIME, listener.accept()).await
        {
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'a'; 4096];
                let mut sent = 0;
                while sent < total {
                    let n = chunk.len().min(total - sent);
                    let frame = format!("{n:x}\r\n");
                    if stream.write_all(frame.as_bytes()).await.is_err()
                        || stream.write_all(&chunk[..n]).await.is_err()
                        || stream.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                    sent += n;
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    addr
}

/// A plain HTTP forward proxy that records the request line of each request it forwards.
pub struct RecordingProxy {
    pub addr: SocketAddr,
    pub request_lines: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let request_lines = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&request_lines);
        tokio::spawn(async move {
            while let Ok(Ok((client, _))) =
                tokio::time::timeout(SERVER_LIFETIME, listener.accept()).await
            {
                let lines = Arc::clone(&lines);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(SERVER_LIFETIME, proxy_one(client, lines)).await;
                });
            }
        });
        Self {
            addr,
            request_lines,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn lines(&self) -> Vec<String> {
        self.request_lines.lock().unwrap().clone()
    }
}

/// Forwards one absolute-form request (`POST http://host:port/path HTTP/1.1`) to its origin,
/// rewritten to origin-form, then pipes both ways.
async fn proxy_one(mut client: TcpStream, lines: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let end = loop {
        let n = client.read(&mut tmp).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = find(&buf, b"\r\n") {
            break end;
        }
    };
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    lines.lock().unwrap().push(line.clone());
    let mut parts = line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let Ok(url) = url::Url::parse(target) else {
        let _ = client
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let origin = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(80)
    );
    let Ok(mut upstream) = TcpStream::connect(origin).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let rewritten = format!("{method} {path} {version}");
    if upstream.write_all(rewritten.as_bytes()).await.is_err()
        || upstream.write_all(&buf[end..]).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// A test certificate authority and a server certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
}

impl TestPki {
    pub fn generate() -> Self {
        Self::generate_for(&["127.0.0.1", "localhost"])
    }

    /// A CA and a server certificate for `names` only.
    pub fn generate_for(names: &[&str]) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "flyte-auth test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "flyte-auth test server");
        let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
        Self {
            ca_pem: ca.pem(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        }
    }
}

/// An HTTPS server on 127.0.0.1 (a std thread, blocking rustls) that answers every request
/// with `body` as JSON. It stops when dropped, or after a minute.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub handshakes_ok: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl TlsServer {
    pub fn start(pki: &TestPki, body: &'static str) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        // The provider the client uses (src/tls.rs); rustls 0.23.48 deprecates its constructor.
        #[allow(deprecated, reason = "ring on purpose: README, TLS")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(pki.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handshakes_ok = Arc::new(Mutex::new(0));
        let (stop2, ok2) = (Arc::clone(&stop), Arc::clone(&handshakes_ok));
        std::thread::spawn(move || {
            let deadline = Instant::now() + SERVER_LIFETIME;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (config, ok) = (Arc::clone(&config), Arc::clone(&ok2));
                        std::thread::spawn(move || serve_tls(tcp, config, ok, body));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            addr,
            handshakes_ok,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn handshakes(&self) -> usize {
        *self.handshakes_ok.lock().unwrap()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_tls(
    tcp: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    ok: Arc<Mutex<usize>>,
    body: &str,
) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match tls.read(&mut tmp) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut have = buf.len() - end - 4;
            let len = content_length(&head);
            while have < len {
                match tls.read(&mut tmp) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => have += n,
                }
            }
            break;
        }
    }
    *ok.lock().unwrap() += 1;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(response.as_bytes());
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
