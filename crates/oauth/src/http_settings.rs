//! [`HttpSettings`]: the transport configuration every OAuth request of every flow uses.

use std::{fmt, path::PathBuf, time::Duration};

/// The default time allowed to open a connection (TCP and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default time allowed for a whole request, from connecting to the last byte of the body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default cap on the size of a response body (1 MiB).
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// The `User-Agent` sent with every request unless another is set.
pub const DEFAULT_USER_AGENT: &str = concat!("flyte-auth/", env!("CARGO_PKG_VERSION"));

/// How to reach the servers, for every request alike: TLS trust, proxy, timeouts, size limit,
/// retries. Build an [`OAuthClient`](crate::OAuthClient) from them once and share it.
///
/// ```
/// use std::time::Duration;
/// use flyte_auth_oauth::HttpSettings;
///
/// let settings = HttpSettings::new()
///     .ca_cert_file("/etc/flyte/ca.pem")
///     .proxy("http://proxy.internal:3128")
///     .request_timeout(Duration::from_secs(20));
/// assert!(settings.verifies_certificates());
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct HttpSettings {
    /// A PEM file whose certificates are trusted on top of the system's and bundled roots.
    pub ca_cert_file: Option<PathBuf>,
    /// PEM certificates trusted on top of the system's and bundled roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Accept any server certificate (dangerous; see
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs)).
    pub accept_invalid_certs: bool,
    /// An explicit HTTP(S) proxy URL for every request.
    pub proxy: Option<String>,
    /// Honour the proxy environment variables when no explicit proxy is set.
    pub system_proxy: bool,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body_size: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// How discovery and the grants safe to repeat are retried after transient failures.
    pub retry: crate::RetryPolicy,
    /// The longest one operation may take, everything included ([`deadline`](Self::deadline)).
    pub deadline: Option<Duration>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            ca_cert_file: None,
            ca_cert_pem: None,
            accept_invalid_certs: false,
            proxy: None,
            system_proxy: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            retry: crate::RetryPolicy::default(),
            deadline: None,
        }
    }
}

impl HttpSettings {
    /// The defaults: certificates verified, the system's proxy settings, the `DEFAULT_*` limits,
    /// [`RetryPolicy::new`](crate::RetryPolicy::new), no [`deadline`](Self::deadline).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the certificates of this PEM file too (Flyte's `caCertFilePath`).
    pub fn ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert_file = Some(path.into());
        self
    }

    /// Trusts the certificates of this PEM bundle too (the content of a CA file).
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert_pem = Some(pem.into());
        self
    }

    /// **Dangerous**: accepts any server certificate, for any host name (Flyte's
    /// `insecureSkipVerify`): anyone on the network path can then read the secrets and tokens.
    /// Prefer [`ca_cert_file`](Self::ca_cert_file).
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Sends every request through this HTTP(S) proxy (Flyte's `httpProxyURL`); empty: none.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.proxy = (!url.trim().is_empty()).then(|| url.trim().to_owned());
        self
    }

    /// Whether to honour the `*_PROXY` environment variables when no [`proxy`](Self::proxy) is
    /// set (on by default).
    pub fn system_proxy(mut self, enabled: bool) -> Self {
        self.system_proxy = enabled;
        self
    }

    /// The time allowed to open a connection ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The time allowed for a whole request, body included ([`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes ([`DEFAULT_MAX_BODY_SIZE`]).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// How the requests safe to repeat are retried after transient failures.
    pub fn retry(mut self, policy: crate::RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The longest one operation may take, as `curl --max-time`: a whole discovery (through a
    /// [`ClientContext`](crate::ClientContext)) or one request with all its retries and waits.
    /// A request cut there fails with [`Error::Timeout`](flyte_auth_core::Error::Timeout);
    /// waiting for the user in a login is not bounded by it. None by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flyte_auth_oauth::HttpSettings;
    /// let settings = HttpSettings::new().deadline(Duration::from_secs(5));
    /// assert_eq!(settings.deadline, Some(Duration::from_secs(5)));
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The time one request may take: the request time-out, or the deadline when shorter.
    pub(crate) fn request_limit(&self) -> Duration {
        self.deadline
            .map_or(self.request_timeout, |d| d.min(self.request_timeout))
    }

    /// The `User-Agent` header ([`DEFAULT_USER_AGENT`] by default).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Whether server certificates are verified.
    pub fn verifies_certificates(&self) -> bool {
        !self.accept_invalid_certs
    }
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("ca_cert_file", &self.ca_cert_file)
            .field(
                "ca_cert_pem",
                &self
                    .ca_cert_pem
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len())),
            )
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field(
                "proxy",
                &self.proxy.as_deref().map(crate::transport::display_url),
            )
            .field("system_proxy", &self.system_proxy)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_size", &self.max_body_size)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .finish()
    }
}
