//! The config's transport settings as the oauth crate's [`HttpSettings`]: the one door
//! through which HTTP settings reach every OAuth request.

use flyte_auth_oauth::HttpSettings;

use super::PlatformConfig;

impl PlatformConfig {
    /// The transport settings of the OAuth requests: the CA file (`caCertFilePath`),
    /// skipping certificate verification (`insecureSkipVerify`), the proxy (`httpProxyURL`)
    /// and the retries (`maxRetries`, `perRetryTimeout`), with the HTTP client's defaults for
    /// the rest. A program changes the
    /// rest on this value (time-outs, user agent) and hands it to
    /// [`FactoryOptions::http_settings`](crate::FactoryOptions::http_settings).
    ///
    /// Only with one of the features `pkce`, `device`, `clientcreds`, `google`.
    ///
    /// ```
    /// let cfg = flyte_auth::PlatformConfig::builder()
    ///     .no_config_file()
    ///     .no_env()
    ///     .endpoint("flyte.example.org")
    ///     .http_proxy_url("http://proxy.internal:3128")
    ///     .build()?;
    /// assert_eq!(cfg.http_settings().proxy.as_deref(), Some("http://proxy.internal:3128"));
    /// assert!(cfg.http_settings().verifies_certificates());
    /// # Ok::<(), flyte_auth::Error>(())
    /// ```
    pub fn http_settings(&self) -> HttpSettings {
        let mut settings = HttpSettings::new();
        if let Some(path) = self.ca_cert_file_path() {
            settings = settings.ca_cert_file(path);
        }
        if self.insecure_skip_verify() {
            settings = settings.danger_accept_invalid_certs(true);
        }
        if let Some(proxy) = self.http_proxy_url() {
            settings = settings.proxy(proxy);
        }
        settings.retry(self.retry_policy())
    }
}
