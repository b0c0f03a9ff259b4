//! [`OAuthClient`]: one pooled HTTP client per [`HttpSettings`], and the mapping of everything
//! that can go wrong on the wire to core's [`Error`].

use std::{
    error::Error as StdError,
    fmt, io,
    sync::{Arc, OnceLock},
    time::Duration,
};

use flyte_auth_core::Error;
use reqwest::{Proxy, redirect::Policy};
use rustls::pki_types::{CertificateDer, pem::PemObject as _};

use crate::HttpSettings;

/// How many characters of an error body are shown in an error message at most.
const SNIPPET_CHARS: usize = 200;

/// The HTTP client every OAuth request goes through; clones share one connection pool.
///
/// Redirects are never followed: following one could carry a form with secrets to another
/// host. The `reqwest` client and its certificate store are built on the first request.
///
/// ```
/// use flyte_auth_oauth::{HttpSettings, OAuthClient};
/// let client = OAuthClient::new(HttpSettings::new())?;
/// let shared = client.clone(); // same pool
/// # let _ = shared;
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct OAuthClient {
    inner: Arc<Inner>,
    request_header: Option<RequestHeader>,
}

/// An authenticator whose header goes on every request to one origin.
#[derive(Clone)]
struct RequestHeader {
    origin: url::Origin,
    authenticator: Arc<dyn flyte_auth_core::Authenticator>,
}

struct Inner {
    /// Built on the first request; a failure is kept and returned each time.
    http: OnceLock<Result<reqwest::Client, Error>>,
    /// The same without certificate roots, for `http://` URLs reached without a TLS proxy: a
    /// server on plain HTTP (a sandbox) costs no certificate store.
    plain: OnceLock<Result<reqwest::Client, Error>>,
    /// The configured CA certificates, each a valid trust anchor.
    roots: Vec<CertificateDer<'static>>,
    proxy: Option<Proxy>,
    settings: HttpSettings,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("settings", &self.inner.settings)
            .field("request_header", &self.request_header.is_some())
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// Checks the settings: reads and parses the CA file, parses the proxy URL.
    ///
    /// Fails with [`Error::Config`] when the CA file cannot be read or holds no certificate,
    /// or the proxy URL is not a URL.
    pub fn new(settings: HttpSettings) -> Result<Self, Error> {
        let mut roots = Vec::new();
        if settings.accept_invalid_certs {
            if settings.ca_cert_file.is_some() || settings.ca_cert_pem.is_some() {
                tracing::debug!(
                    "a CA file is configured, but certificate verification is disabled; the CA file is not used"
                );
            }
        } else {
            if let Some(path) = &settings.ca_cert_file {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::config(format!(
                        "cannot read the CA certificate file {} (caCertFilePath): {e}",
                        path.display()
                    ))
                })?;
                roots.extend(parse_pem_bundle(&pem, &path.display().to_string())?);
            }
            if let Some(pem) = &settings.ca_cert_pem {
                roots.extend(parse_pem_bundle(pem, "the given PEM certificates")?);
            }
        }

        let proxy = match &settings.proxy {
            Some(proxy) => Some(Proxy::all(proxy.as_str()).map_err(|e| {
                Error::config(format!(
                    "the proxy URL {} (httpProxyURL) is not valid: {}",
                    display_url(proxy),
                    e.without_url()
                ))
            })?),
            None => None,
        };

        Ok(Self {
            inner: Arc::new(Inner {
                http: OnceLock::new(),
                plain: OnceLock::new(),
                roots,
                proxy,
                settings,
            }),
            request_header: None,
        })
    }

    /// This client (same pool), sending `authenticator`'s header on every request to
    /// `endpoint`'s origin (scheme, host and port), for `proxyCommand`'s `proxy-authorization`
    /// (GCP IAP). An identity provider on another origin never receives it.
    pub fn with_request_header(
        mut self,
        endpoint: &flyte_auth_core::Endpoint,
        authenticator: Arc<dyn flyte_auth_core::Authenticator>,
    ) -> Self {
        let origin = reqwest::Url::parse(&endpoint.base_url())
            .map_or_else(|_| url::Origin::new_opaque(), |url| url.origin());
        self.request_header = Some(RequestHeader {
            origin,
            authenticator,
        });
        self
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    /// The `Date` header of the answer to a GET of `url`, whatever its status: the server's
    /// clock, for a check of the local one. `None` when nothing answers (or the TLS
    /// configuration cannot be set up) or the answer has no readable `Date`.
    pub async fn server_date(&self, url: &str) -> Option<String> {
        let target = reqwest::Url::parse(url).ok()?;
        let request = self.client_for(&target).ok()?.get(target).send();
        let limit = self.inner.settings.request_limit();
        let answer = tokio::time::timeout(limit, request).await.ok()?.ok()?;
        let date = answer.headers().get(reqwest::header::DATE)?.to_str().ok()?;
        Some(date.to_owned())
    }

    /// GETs `url` with the extra `headers` and returns the trimmed body of a 2xx answer as a
    /// secret: for a token document outside OAuth (a cloud metadata server's identity token).
    /// Tried once; a plain `http://` URL is not warned about (a metadata server is link-local).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidResponse`] for a non-2xx answer, an empty body or one over the size
    /// cap; [`Error::Transport`] / [`Error::Timeout`] when no answer arrived;
    /// [`Error::Config`] for a URL or header that cannot be sent.
    pub async fn get_secret_text(
        &self,
        operation: &'static str,
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<flyte_auth_core::SecretString, Error> {
        let target = reqwest::Url::parse(url)
            .ok()
            .filter(|target| matches!(target.scheme(), "http" | "https"))
            .ok_or_else(|| {
                Error::config(format!(
                    "the URL for the {operation}, `{}`, is not an http(s) URL",
                    display_url(url)
                ))
            })?;
        let mut request = self.client_for(&target)?.get(target);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let raw = self.execute(operation, url, request).await?;
        if !raw.is_success() {
            return Err(crate::token::unexpected_status(&raw, operation, &[]));
        }
        match std::str::from_utf8(&raw.body).map(str::trim) {
            Ok(text) if !text.is_empty() => Ok(text.to_owned().into()),
            _ => Err(Error::InvalidResponse {
                status: Some(raw.status),
                message: format!(
                    "the answer to the {operation} is empty or not text ({} bytes)",
                    raw.body.len()
                ),
            }),
        }
    }

    /// POSTs `form` to `url` and returns the string member `member` of the JSON answer, for a
    /// token endpoint whose answer is not RFC 6749's (Google's ID token for a JWT assertion).
    /// Retried as [`token`](Self::token)'s repeatable grants; every form value is redacted.
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token); a 2xx answer without `member` is
    /// [`Error::InvalidResponse`] naming it.
    pub async fn post_form_for(
        &self,
        operation: &'static str,
        url: &str,
        form: &[(&str, &str)],
        member: &str,
    ) -> Result<flyte_auth_core::SecretString, Error> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let raw = self.post_form_retrying(operation, url, body, None).await?;
        let secrets: Vec<&str> = form.iter().map(|(_, value)| *value).collect();
        let object = crate::token::json_object_or_error(&raw, operation, &secrets)?;
        crate::token::string_field(&object, member)
            .map(Into::into)
            .ok_or_else(|| Error::InvalidResponse {
                status: Some(raw.status),
                message: format!("the answer to the {operation} has no {member}"),
            })
    }

    /// The client for `url`, built on first use: the one without certificate roots when
    /// nothing on the way to `url` speaks TLS (plain `http://`, no proxy or a plain-HTTP one).
    fn client_for(&self, url: &reqwest::Url) -> Result<&reqwest::Client, Error> {
        let (cell, roots) = if url.scheme() != "http" || self.inner.proxy_may_use_tls() {
            (&self.inner.http, Roots::Verify)
        } else {
            (&self.inner.plain, Roots::None)
        };
        cell.get_or_init(|| self.inner.build(roots))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// [`post_form`](Self::post_form), retried as the settings' [`RetryPolicy`](crate::RetryPolicy) says.
    pub(crate) async fn post_form_retrying(
        &self,
        operation: &'static str,
        url: &str,
        form: String,
        basic_auth: Option<&str>,
    ) -> Result<RawResponse, Error> {
        let settings = &self.inner.settings;
        settings
            .retry
            .run(operation, settings.deadline, || {
                self.post_form(operation, url, form.clone(), basic_auth)
            })
            .await
    }

    /// A request to `url` that asks for JSON, through the client for it.
    fn json_request(
        &self,
        method: reqwest::Method,
        operation: &str,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let target = parse_url(url, operation)?;
        let request = self.client_for(&target)?.request(method, target);
        Ok(request.header(reqwest::header::ACCEPT, "application/json"))
    }

    /// POSTs a form and reads the answer (any status) within the limits.
    pub(crate) async fn post_form(
        &self,
        operation: &'static str,
        url: &str,
        form: String,
        basic_auth: Option<&str>,
    ) -> Result<RawResponse, Error> {
        let mut request = self
            .json_request(reqwest::Method::POST, operation, url)?
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        if let Some(basic) = basic_auth {
            let mut value = reqwest::header::HeaderValue::try_from(format!("Basic {basic}"))
                .map_err(|_| Error::config("the client credentials cannot be sent in a header"))?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        self.execute(operation, url, request).await
    }

    /// GETs a JSON document (any status), retried as [`post_form_retrying`](Self::post_form_retrying).
    pub(crate) async fn get(
        &self,
        operation: &'static str,
        url: &str,
    ) -> Result<RawResponse, Error> {
        let settings = &self.inner.settings;
        settings
            .retry
            .run(operation, settings.deadline, || async {
                let request = self.json_request(reqwest::Method::GET, operation, url)?;
                self.execute(operation, url, request).await
            })
            .await
    }

    /// POSTs an empty message to a ConnectRPC unary method with the JSON codec.
    pub(crate) async fn post_connect(
        &self,
        operation: &'static str,
        url: &str,
    ) -> Result<RawResponse, Error> {
        let request = self
            .json_request(reqwest::Method::POST, operation, url)?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("connect-protocol-version", "1")
            .body("{}");
        self.execute(operation, url, request).await
    }

    async fn execute(
        &self,
        operation: &'static str,
        url: &str,
        mut request: reqwest::RequestBuilder,
    ) -> Result<RawResponse, Error> {
        if let Some(header) = &self.request_header {
            if reqwest::Url::parse(url).is_ok_and(|target| target.origin() == header.origin) {
                let (name, mut value) = header.authenticator.auth_header().await?.into_parts();
                value.set_sensitive(true);
                request = request.header(name, value);
            } else {
                tracing::debug!(
                    url = %display_url(url),
                    "not the Flyte endpoint's origin: the request header is not sent"
                );
            }
        }
        let settings = &self.inner.settings;
        let limit = settings.request_limit();
        let exchange = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| self.map_reqwest_error(operation, url, e))?;
            let status = response.status().as_u16();
            let header = |name: reqwest::header::HeaderName| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = header(reqwest::header::CONTENT_TYPE);
            let location = header(reqwest::header::LOCATION);
            let retry_after = header(reqwest::header::RETRY_AFTER)
                .and_then(|v| crate::retry::parse_retry_after(&v));
            let max = settings.max_body_size;
            let too_large = || Error::InvalidResponse {
                status: Some(status),
                message: format!(
                    "the answer of {} to the {operation} is larger than {max} bytes; is this the right URL?",
                    display_url(url)
                ),
            };
            if response
                .content_length()
                .is_some_and(|len| len > max as u64)
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.map_reqwest_error(operation, url, e))?
            {
                if body.len() + chunk.len() > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(RawResponse {
                status,
                content_type,
                location,
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(timeout_error(operation, url, limit)),
        }
    }

    fn map_reqwest_error(&self, operation: &'static str, url: &str, e: reqwest::Error) -> Error {
        let settings = &self.inner.settings;
        if e.is_timeout() {
            let after = if e.is_connect() {
                settings.connect_timeout
            } else {
                settings.request_timeout
            };
            return timeout_error(operation, url, after);
        }
        let e = e.without_url();
        let message = describe_transport_error(&e, settings);
        Error::Transport {
            url: display_url(url),
            message: format!("{operation}: {message}"),
            source: Some(Arc::new(e)),
        }
    }
}

/// Which certificates a built client trusts.
#[derive(Clone, Copy)]
enum Roots {
    /// The settings' choice (possibly no verification: `insecureSkipVerify`).
    Verify,
    /// None: for plain-HTTP requests only.
    None,
}

impl Inner {
    /// Whether requests may go through a proxy reached over TLS: the configured one, or a
    /// honoured proxy variable for plain-HTTP requests, is not `http://...`.
    fn proxy_may_use_tls(&self) -> bool {
        if let Some(proxy) = &self.settings.proxy {
            return !proxy.as_str().starts_with("http://");
        }
        self.settings.system_proxy
            && ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
                .iter()
                .filter_map(std::env::var_os)
                .any(|value| {
                    let value = value.to_string_lossy();
                    let value = value.trim();
                    // reqwest reads a value without a scheme as `http://`.
                    !value.is_empty() && value.contains("://") && !value.starts_with("http://")
                })
    }

    fn build(&self, roots: Roots) -> Result<reqwest::Client, Error> {
        let settings = &self.settings;
        let mut builder = reqwest::Client::builder()
            .redirect(Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(settings.user_agent.clone());
        if let Roots::None = roots {
            builder = builder.tls_built_in_root_certs(false);
        } else if settings.accept_invalid_certs {
            let tls = crate::tls::danger_accept_any_certificate_config().map_err(|e| {
                Error::config(format!("could not set up TLS without verification: {e}"))
            })?;
            builder = builder.use_preconfigured_tls(tls);
        } else {
            // The system's roots load on a thread while the first connection is made.
            let tls = crate::tls::verifying_config(self.roots.clone())
                .map_err(|e| Error::config(format!("could not set up TLS: {e}")))?;
            builder = builder.use_preconfigured_tls(tls);
        }
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(proxy.clone());
        } else if !settings.system_proxy {
            builder = builder.no_proxy();
        }
        builder.build().map_err(|e| {
            Error::config(format!(
                "could not build the HTTP client: {}",
                error_chain(&e)
            ))
        })
    }
}

fn timeout_error(operation: &str, url: &str, after: Duration) -> Error {
    Error::Timeout {
        operation: format!("{operation} to {}", display_url(url)),
        after,
    }
}

fn parse_url(url: &str, operation: &str) -> Result<reqwest::Url, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::config(format!(
            "the URL for the {operation}, `{}`, is not valid: {e}",
            display_url(url)
        ))
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            if !parsed
                .host_str()
                .is_some_and(flyte_auth_core::is_loopback_host)
            {
                static WARN_PLAIN_HTTP: std::sync::Once = std::sync::Once::new();
                WARN_PLAIN_HTTP.call_once(|| {
                    tracing::warn!(
                        url = %display_url(url),
                        "OAuth requests go over plain HTTP (insecure: true): secrets and tokens \
                         travel unencrypted"
                    );
                });
            }
        }
        other => {
            return Err(Error::config(format!(
                "the URL for the {operation}, `{}`, has scheme `{other}`; use https:// (or http:// with insecure: true)",
                display_url(url)
            )));
        }
    }
    Ok(parsed)
}

/// The certificates of a PEM bundle, each checked to be a usable trust anchor (so that the
/// roots loaded later cannot fail on them).
fn parse_pem_bundle(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let invalid = |e: &dyn fmt::Display| {
        Error::config(format!(
            "{origin} does not hold valid PEM certificates: {e}"
        ))
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&e))?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "{origin} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    let mut check = rustls::RootCertStore::empty();
    for cert in &certs {
        check.add(cert.clone()).map_err(|e| invalid(&e))?;
    }
    Ok(certs)
}

/// The body of an answer, read within the size cap, with what is needed to explain it.
#[derive(Clone)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    /// `Retry-After`, in seconds.
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or("none")
    }
}

/// A URL fit for messages and logs: no user info, query or fragment (core's one redaction).
pub(crate) use flyte_auth_core::redact_url as display_url;

/// `text` with every secret replaced by `[redacted]`: as sent, form-encoded (`+` or `%20` for
/// spaces), and with its white space collapsed (as an echo wrapped over lines shows it).
/// Secrets shorter than four characters are left alone (they would redact ordinary words).
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let collapsed = secret.split_whitespace().collect::<Vec<_>>().join(" ");
        for form in [
            (*secret).to_owned(),
            encoded.replace('+', "%20"),
            encoded,
            collapsed,
        ] {
            if form.len() >= 4 {
                text = text.replace(&form, "[redacted]");
            }
        }
    }
    text
}

/// A short, single-line excerpt of an error body: tags stripped, whitespace collapsed, at most
/// [`SNIPPET_CHARS`] characters, every `secret` replaced by `[redacted]` (see [`redact`]).
pub(crate) fn snippet(body: &[u8], secrets: &[&str]) -> String {
    let text = redact(&String::from_utf8_lossy(body), secrets);
    let mut plain = String::with_capacity(text.len().min(4096));
    let mut in_tag = false;
    let looks_like_markup = text.trim_start().starts_with('<');
    for c in text.chars() {
        match c {
            '<' if looks_like_markup => in_tag = true,
            '>' if looks_like_markup && in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if in_tag => {}
            c if c.is_whitespace() || c.is_control() => plain.push(' '),
            c => plain.push(c),
        }
    }
    let collapsed = redact(
        &plain.split_whitespace().collect::<Vec<_>>().join(" "),
        secrets,
    );
    if collapsed.chars().count() > SNIPPET_CHARS {
        let cut: String = collapsed.chars().take(SNIPPET_CHARS - 3).collect();
        format!("{cut}...")
    } else {
        collapsed
    }
}

/// The messages of an error and its sources, joined with `: `, without repeats.
pub(crate) fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(e);
    while let Some(err) = current {
        let msg = err.to_string();
        if !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// Whether `error`, from a request to an endpoint a discovery announced, is explained by that
/// announcement being out of date: nothing answers there (HTTP 404 or 405), nothing listens
/// (connection refused), or another server does (a certificate not valid for the name).
pub(crate) fn stale_endpoint_explains(error: &Error) -> bool {
    match error {
        Error::InvalidResponse {
            status: Some(404 | 405),
            ..
        } => true,
        Error::Transport {
            source: Some(source),
            ..
        } => inside(source.as_ref()).iter().any(|err| {
            err.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::ConnectionRefused)
                || err.downcast_ref::<rustls::Error>().is_some_and(wrong_name)
        }),
        _ => false,
    }
}

/// Every error inside `e`: its sources, and what an I/O error wraps (its `source` skips
/// that, and TLS errors come wrapped in two of them).
fn inside<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut found = Vec::new();
    let mut pending = vec![e];
    while let Some(err) = pending.pop() {
        found.push(err);
        pending.extend(err.source());
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            pending.push(inner);
        }
    }
    found
}

/// A certificate that is not valid for the name asked for.
fn wrong_name(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// What a transport error most likely means, with what to check, followed by the error chain.
fn describe_transport_error(e: &reqwest::Error, settings: &HttpSettings) -> String {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let errors = inside(e);
    let io_kind = errors
        .iter()
        .find_map(|err| err.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    let tls_error = errors
        .iter()
        .find_map(|err| err.downcast_ref::<rustls::Error>())
        .map(ToString::to_string);
    let via_proxy = settings
        .proxy
        .as_deref()
        .map(|p| format!(" (through the proxy {})", display_url(p)))
        .unwrap_or_default();

    let hint = if lower.contains("certificate")
        || tls_error
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("certificate"))
    {
        "the server's TLS certificate is not trusted: if your organisation uses its own \
         certificate authority, set caCertFilePath to its PEM file"
            .to_owned()
    } else if tls_error.is_some() || lower.contains("tls") || lower.contains("handshake") {
        "the TLS handshake failed: if the server speaks plain HTTP, set insecure: true".to_owned()
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "could not resolve the host name (DNS): check the endpoint's spelling, your network \
         or VPN, or whether a proxy is needed (httpProxyURL)"
            .to_owned()
    } else if io_kind == Some(io::ErrorKind::ConnectionRefused)
        || lower.contains("connection refused")
    {
        format!(
            "connection refused{via_proxy}: is the server running and is the port right? \
             Behind a corporate network, a proxy may be needed (httpProxyURL)"
        )
    } else if lower.contains("proxy") || (e.is_connect() && settings.proxy.is_some()) {
        format!("could not connect{via_proxy}: check httpProxyURL and that the proxy runs")
    } else if io_kind == Some(io::ErrorKind::ConnectionReset)
        || lower.contains("connection reset")
        || lower.contains("connection closed")
        || lower.contains("incomplete message")
    {
        format!(
            "the connection was closed before an answer arrived{via_proxy}: a proxy or load \
             balancer may have dropped it, or the server speaks another protocol (plain HTTP \
             vs TLS: check insecure)"
        )
    } else if lower.contains("invalid http version") || lower.contains("invalid http") {
        "the answer is not HTTP: if the server expects TLS, use https:// (insecure: false)"
            .to_owned()
    } else if e.is_connect() {
        format!("could not connect{via_proxy}")
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read completely".to_owned()
    } else {
        "the request failed".to_owned()
    };
    format!("{hint} ({chain})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(settings: HttpSettings) -> OAuthClient {
        OAuthClient::new(settings).unwrap()
    }

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn plain_http_without_a_tls_proxy_uses_the_client_without_roots() {
        let direct = client(HttpSettings::new().system_proxy(false));
        let plain = direct
            .client_for(&url("http://127.0.0.1:30080/token"))
            .unwrap();
        let tls = direct
            .client_for(&url("https://idp.example.org/token"))
            .unwrap();
        assert!(!std::ptr::eq(plain, tls));
        assert!(std::ptr::eq(
            tls,
            direct.inner.http.get().unwrap().as_ref().unwrap()
        ));
        // Built once each.
        let again = direct.client_for(&url("http://localhost/x")).unwrap();
        assert!(std::ptr::eq(plain, again));

        let via_http_proxy = client(HttpSettings::new().proxy("http://proxy.example.org:3128"));
        assert!(!via_http_proxy.inner.proxy_may_use_tls());
    }

    #[test]
    fn a_proxy_reached_over_tls_gets_the_client_with_roots() {
        for proxy in [
            "https://proxy.example.org",
            "socks5://proxy.example.org:1080",
        ] {
            let c = client(HttpSettings::new().proxy(proxy));
            assert!(c.inner.proxy_may_use_tls(), "{proxy}");
            let chosen = c.client_for(&url("http://127.0.0.1:30080/token")).unwrap();
            assert!(
                std::ptr::eq(chosen, c.inner.http.get().unwrap().as_ref().unwrap()),
                "{proxy}"
            );
        }
    }

    #[test]
    fn snippet_strips_html_shortens_and_redacts() {
        let body = format!(
            "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>\n\n{}</body></html>",
            "x".repeat(500)
        );
        let s = snippet(body.as_bytes(), &[]);
        assert!(s.starts_with("502 Bad Gateway Bad Gateway"), "{s}");
        assert!(s.chars().count() <= SNIPPET_CHARS, "{}", s.len());
        let s = snippet(b"refresh token r3fr3sh-XYZ is unknown", &["r3fr3sh-XYZ"]);
        assert_eq!(s, "refresh token [redacted] is unknown");
    }
}
