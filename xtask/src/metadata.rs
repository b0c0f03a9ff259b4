//! A Google Cloud metadata server on loopback for `cargo xtask demo`: it answers the identity
//! document of the default service account with an ID token for the audience asked, when
//! the request carries `Metadata-Flavor: Google`, and counts what it answered.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// The server; stopped on drop.
pub(crate) struct MetadataServer {
    /// `127.0.0.1:port`, what `GCE_METADATA_HOST` says.
    pub(crate) host: String,
    tokens: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl MetadataServer {
    pub(crate) fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot start the metadata server: {e}"))?;
        let host = listener
            .local_addr()
            .map_err(|e| format!("metadata server: {e}"))?
            .to_string();
        let tokens = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (tokens.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream, &counter);
                }
            }
        });
        Ok(Self { host, tokens, stop })
    }

    /// How many ID tokens it has handed out.
    pub(crate) fn tokens(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

/// Answers one request: an ID token for `?audience=` with the metadata header, else 403 or 404.
fn answer(stream: TcpStream, tokens: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut flavour = false;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            flavour |=
                name.trim().eq_ignore_ascii_case("metadata-flavor") && value.trim() == "Google";
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let url = url::Url::parse(&format!("http://metadata{target}")).ok();
    let audience = url
        .as_ref()
        .filter(|u| u.path() == IDENTITY_PATH)
        .and_then(|u| {
            u.query_pairs()
                .find(|(name, _)| name == "audience")
                .map(|(_, value)| value.into_owned())
        });
    let (status, body) = match (audience, flavour) {
        (Some(audience), true) => {
            tokens.fetch_add(1, Ordering::SeqCst);
            ("200 OK", id_token(&audience))
        }
        (Some(_), false) => (
            "403 Forbidden",
            "Missing Metadata-Flavor:Google header.".into(),
        ),
        (None, _) => ("404 Not Found", "not found".into()),
    };
    let _ = write!(
        &stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/text\r\nmetadata-flavor: Google\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An ID token as the metadata server gives it (signed by Google there; unsigned here), valid
/// for an hour.
fn id_token(audience: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let part = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(serde_json::json!({ "alg": "RS256", "typ": "JWT" })),
        part(serde_json::json!({
            "aud": audience,
            "azp": "demo-runner@demo-project.iam.gserviceaccount.com",
            "iss": "https://accounts.google.com",
            "iat": now,
            "exp": now + 3600,
        })),
        URL_SAFE_NO_PAD.encode(b"demo")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(server: &MetadataServer, path: &str, flavour: bool) -> (u16, String) {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut request = client.get(format!("http://{}{path}", server.host));
        if flavour {
            request = request.header("Metadata-Flavor", "Google");
        }
        let answer = request.send().expect("the server answers");
        let status = answer.status().as_u16();
        (status, answer.text().expect("text"))
    }

    #[test]
    fn an_id_token_for_the_audience_only_with_the_metadata_header() {
        let server = MetadataServer::start().expect("started");
        let path = format!("{IDENTITY_PATH}?audience=my%20aud&format=full");
        let (status, token) = get(&server, &path, true);
        assert_eq!(status, 200);
        let claims = token.split('.').nth(1).expect("a JWT");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64")).expect("json");
        assert_eq!(claims["aud"], "my aud");
        assert!(claims["exp"].as_u64().is_some());
        assert_eq!(server.tokens(), 1);

        assert_eq!(get(&server, &path, false).0, 403);
        assert_eq!(get(&server, "/computeMetadata/v1/", true).0, 404);
        assert_eq!(server.tokens(), 1);
    }
}
