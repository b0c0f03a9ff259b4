//! The getters of [`PlatformConfig`] and the methods of [`PlatformConfigBuilder`], one per
//! setting.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use flyte_auth_core::SecretString;

use super::{
    AuthMode, PlatformConfig, PlatformConfigBuilder,
    value::{Command, Url},
};

impl PlatformConfig {
    /// TLS without certificate verification.
    ///
    /// From: the builder, `admin.insecureSkipVerify`, `FLYTE_ADMIN_INSECURESKIPVERIFY`,
    /// `FLYTE_PLATFORM_INSECURE_SKIP_VERIFY`, `[platform] insecure_skip_verify` (INI).
    pub fn insecure_skip_verify(&self) -> bool {
        self.settings.insecure_skip_verify.unwrap_or(false)
    }

    /// A PEM bundle to trust in addition to the system roots.
    ///
    /// From: the builder, `admin.caCertFilePath`, `FLYTE_ADMIN_CACERTFILEPATH`,
    /// `FLYTE_PLATFORM_CA_CERT_FILE_PATH`, `[platform] ca_cert_file_path` (INI).
    pub fn ca_cert_file_path(&self) -> Option<&Path> {
        self.settings.ca_cert_file_path.as_deref()
    }

    /// The proxy of the OAuth requests (`http://`, `https://`, `socks5://`, `socks5h://`).
    ///
    /// From: the builder, `admin.httpProxyURL`, `FLYTE_ADMIN_HTTPPROXYURL`,
    /// `FLYTE_PLATFORM_HTTP_PROXY_URL`, `[platform] http_proxy_url` (INI).
    pub fn http_proxy_url(&self) -> Option<&str> {
        self.settings.http_proxy_url.as_deref()
    }

    /// Keep tokens out of the system keyring (the automatic store is then the file store).
    ///
    /// From: the builder, `admin.disableKeyring`, `FLYTE_ADMIN_DISABLEKEYRING`.
    pub fn disable_keyring(&self) -> bool {
        self.settings.disable_keyring.unwrap_or(false)
    }

    /// Write the keyring entries of every Flyte tool (flytekit, the Flyte 2 SDK, flytectl) on
    /// each login, even where none held one, so one login serves them all (off by default:
    /// only the layouts that held a login are updated).
    ///
    /// From: the builder, `admin.writeAllLayouts`, `FLYTE_ADMIN_WRITEALLLAYOUTS`.
    pub fn write_all_layouts(&self) -> bool {
        self.settings.write_all_layouts.unwrap_or(false)
    }

    /// The OAuth client id (an API key's wins over the file's and the environment's).
    ///
    /// From: the builder, `admin.clientId`, `FLYTE_ADMIN_CLIENTID`, `FLYTE_CREDENTIALS_CLIENT_ID`,
    /// `[credentials] client_id` (INI).
    pub fn client_id(&self) -> Option<&str> {
        self.settings.client_id.as_deref()
    }

    /// The client secret itself (no key in the YAML file). Surrounding white space is removed.
    /// The one used comes from the builder, else an API key, else the variable
    /// `clientSecretEnvVar` names, else the file `clientSecretLocation` names, else
    /// `FLYTE_CREDENTIALS_CLIENT_SECRET` (or the INI file's `client_secret`).
    ///
    /// From: the builder, `FLYTE_CREDENTIALS_CLIENT_SECRET`, `[credentials] client_secret` (INI).
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.settings.client_secret.as_ref()
    }

    /// A file holding the client secret (surrounding white space is ignored).
    ///
    /// From: the builder, `admin.clientSecretLocation`, `FLYTE_ADMIN_CLIENTSECRETLOCATION`,
    /// `FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION`, `[credentials] client_secret_location` (INI).
    pub fn client_secret_location(&self) -> Option<&Path> {
        self.settings.client_secret_location.as_deref()
    }

    /// The name of an environment variable holding the client secret.
    ///
    /// From: the builder, `admin.clientSecretEnvVar`, `FLYTE_ADMIN_CLIENTSECRETENVVAR`,
    /// `FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR`, `[credentials] client_secret_env_var` (INI).
    pub fn client_secret_env_var(&self) -> Option<&str> {
        self.settings.client_secret_env_var.as_deref()
    }

    /// Scopes to ask for; empty means the server's.
    ///
    /// From: the builder, `admin.scopes`, `FLYTE_ADMIN_SCOPES`, `FLYTE_CREDENTIALS_SCOPES`,
    /// `[credentials] scopes` (INI).
    pub fn scopes(&self) -> &[String] {
        self.settings.scopes.as_deref().unwrap_or_default()
    }

    /// The `audience` parameter of the token requests.
    ///
    /// From: the builder, `admin.audience`, `FLYTE_ADMIN_AUDIENCE`, `FLYTE_CREDENTIALS_AUDIENCE`,
    /// `[credentials] audience` (INI).
    pub fn audience(&self) -> Option<&str> {
        self.settings.audience.as_deref()
    }

    /// The program and arguments that print a token; empty if unset.
    ///
    /// From: the builder, `admin.command`, `FLYTE_ADMIN_COMMAND`, `FLYTE_CREDENTIALS_COMMAND`,
    /// `[credentials] command` (INI).
    pub fn command(&self) -> &[String] {
        self.settings.command.as_deref().unwrap_or_default()
    }

    /// The program and arguments that print a token for `proxy-authorization`; empty if unset.
    ///
    /// From: the builder, `admin.proxyCommand`, `FLYTE_ADMIN_PROXYCOMMAND`,
    /// `FLYTE_CREDENTIALS_PROXY_COMMAND`, `[credentials] proxy_command` (INI).
    pub fn proxy_command(&self) -> &[String] {
        self.settings.proxy_command.as_deref().unwrap_or_default()
    }

    /// The audience of a Google ID token sent in `proxy-authorization` on every request to
    /// the Flyte endpoint's origin: the OAuth client id of Google Cloud's identity-aware proxy
    /// in front of Flyte, for a proxy token without a `proxyCommand` shell-out (feature
    /// `google` of the factory). The token is cached until near its `exp` and kept in the
    /// token store under its own entry. Setting it with [`proxy_command`](Self::proxy_command)
    /// is an error when the config is loaded.
    ///
    /// From: the builder, `admin.proxyGoogleAudience`, `FLYTE_ADMIN_PROXYGOOGLEAUDIENCE`.
    pub fn proxy_google_audience(&self) -> Option<&str> {
        self.settings.proxy_google_audience.as_deref()
    }

    /// The audience of the Google ID token that is the token itself with
    /// [`AuthMode::GoogleIdToken`]: the OAuth client id of the identity-aware proxy (or the
    /// service's own audience) that admits it.
    ///
    /// From: the builder, `admin.googleAudience`, `FLYTE_ADMIN_GOOGLEAUDIENCE`.
    pub fn google_audience(&self) -> Option<&str> {
        self.settings.google_audience.as_deref()
    }

    /// The token endpoint to use instead of the discovered one.
    ///
    /// From: the builder, `admin.tokenUrl`, `FLYTE_ADMIN_TOKENURL`.
    pub fn token_url(&self) -> Option<&str> {
        self.settings.token_url.as_deref()
    }

    /// The header to send the token in instead of the discovered one.
    ///
    /// From: the builder, `admin.authorizationHeader`, `FLYTE_ADMIN_AUTHORIZATIONHEADER`.
    pub fn authorization_header(&self) -> Option<&str> {
        self.settings.authorization_header.as_deref()
    }

    /// How many times discovery and the token requests safe to repeat are retried after a
    /// transient failure (as in the Go client; unset: the oauth crate's `DEFAULT_MAX_RETRIES`,
    /// 4, the Go client's default).
    ///
    /// From: the builder, `admin.maxRetries`.
    pub fn max_retries(&self) -> Option<u32> {
        self.settings.max_retries
    }

    /// The time allowed for each attempt of a retried request (discovery, client
    /// credentials, refresh) before it is abandoned and retried, as in the Go client (unset:
    /// the oauth crate's `DEFAULT_PER_RETRY_TIMEOUT`, 15 seconds, the Go client's default).
    ///
    /// From: the builder, `admin.perRetryTimeout`.
    pub fn per_retry_timeout(&self) -> Option<Duration> {
        self.settings.per_retry_timeout
    }

    /// The time the token command (`admin.command`) may take (unset: the command crate's
    /// `DEFAULT_TIMEOUT`, 30 seconds).
    ///
    /// From: the builder, `admin.commandTimeout`.
    pub fn command_timeout(&self) -> Option<Duration> {
        self.settings.command_timeout
    }

    /// How long the browser login waits for the user (unset: the PKCE crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 2 minutes, as flytectl).
    ///
    /// From: the builder, `admin.pkceConfig.timeout`.
    pub fn pkce_timeout(&self) -> Option<Duration> {
        self.settings.pkce_config.timeout
    }

    /// Refresh a browser-login token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes).
    ///
    /// From: the builder, `admin.pkceConfig.refreshTime`.
    pub fn pkce_refresh_time(&self) -> Option<Duration> {
        self.settings.pkce_config.refresh_time
    }

    /// How long the device login waits for the user's approval (unset: the device crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 10 minutes).
    ///
    /// From: the builder, `admin.deviceFlowConfig.timeout`.
    pub fn device_flow_timeout(&self) -> Option<Duration> {
        self.settings.device_flow_config.timeout
    }

    /// How often the device flow polls when the server names no interval (unset: the device
    /// crate's `DEFAULT_DEVICE_POLL_INTERVAL`, 5 seconds).
    ///
    /// From: the builder, `admin.deviceFlowConfig.pollInterval`.
    pub fn device_flow_poll_interval(&self) -> Option<Duration> {
        self.settings.device_flow_config.poll_interval
    }

    /// Refresh a device-flow token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes).
    ///
    /// From: the builder, `admin.deviceFlowConfig.refreshTime`.
    pub fn device_flow_refresh_time(&self) -> Option<Duration> {
        self.settings.device_flow_config.refresh_time
    }

    /// Whether the device login sends a PKCE challenge (`S256`) and its verifier: `true` even
    /// when the server does not announce `S256`, `false` never (unset: when the server
    /// announces it).
    ///
    /// From: the builder, `admin.deviceFlowConfig.pkce`, `FLYTE_ADMIN_DEVICEFLOWCONFIG_PKCE`.
    pub fn device_flow_pkce(&self) -> Option<bool> {
        self.settings.device_flow_config.pkce
    }

    /// How long before expiry a token is refreshed at the earliest, for every flow (the Go
    /// client's setting; a flow's own `refreshTime` wins): each token's refresh point is drawn
    /// between this and half of it before expiry, so processes do not refresh in step. Unset
    /// or `0s` (the Go client's default): core's `DEFAULT_REFRESH_MARGIN`, 5 minutes.
    ///
    /// From: the builder, `admin.tokenRefreshWindow`.
    pub fn token_refresh_window(&self) -> Option<Duration> {
        self.settings.token_refresh_window
    }
}

impl PlatformConfigBuilder {
    /// The server: `host:port`, `dns:///host:port`, `https://host` or `http://host:port`.
    ///
    /// Set here, it wins over the config file and the environment.
    pub fn endpoint(mut self, value: impl Into<String>) -> Self {
        self.endpoint = Some(value.into());
        self
    }

    /// Plain text to the server, no TLS.
    ///
    /// Set here, it wins over the config file and the environment.
    pub fn insecure(mut self, value: bool) -> Self {
        self.explicit.insecure = Some(value);
        self
    }

    /// Sets [`PlatformConfig::insecure_skip_verify`], over the file and the environment.
    pub fn insecure_skip_verify(mut self, value: bool) -> Self {
        self.explicit.insecure_skip_verify = Some(value);
        self
    }

    /// Sets [`PlatformConfig::ca_cert_file_path`], over the file and the environment.
    pub fn ca_cert_file_path(mut self, value: impl Into<PathBuf>) -> Self {
        self.explicit.ca_cert_file_path = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::http_proxy_url`], over the file and the environment.
    pub fn http_proxy_url(mut self, value: impl Into<String>) -> Self {
        self.explicit.http_proxy_url = Some(Url(value.into()));
        self
    }

    /// Sets [`PlatformConfig::disable_keyring`], over the file and the environment.
    pub fn disable_keyring(mut self, value: bool) -> Self {
        self.explicit.disable_keyring = Some(value);
        self
    }

    /// Sets [`PlatformConfig::write_all_layouts`], over the file and the environment.
    pub fn write_all_layouts(mut self, value: bool) -> Self {
        self.explicit.write_all_layouts = Some(value);
        self
    }

    /// The flow. Set on the builder, it also wins over the switch to client credentials that
    /// a secret found through `clientSecretLocation` or `clientSecretEnvVar` makes.
    ///
    /// Set here, it wins over the config file and the environment.
    pub fn auth_mode(mut self, value: AuthMode) -> Self {
        self.explicit.auth_mode = Some(value);
        self
    }

    /// Sets [`PlatformConfig::client_id`], over the file and the environment.
    pub fn client_id(mut self, value: impl Into<String>) -> Self {
        self.explicit.client_id = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::client_secret`], over the file and the environment.
    pub fn client_secret(mut self, value: impl Into<SecretString>) -> Self {
        self.explicit.client_secret = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::client_secret_location`], over the file and the environment.
    pub fn client_secret_location(mut self, value: impl Into<PathBuf>) -> Self {
        self.explicit.client_secret_location = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::client_secret_env_var`], over the file and the environment.
    pub fn client_secret_env_var(mut self, value: impl Into<String>) -> Self {
        self.explicit.client_secret_env_var = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::scopes`], over the file and the environment.
    pub fn scopes(mut self, value: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.explicit.scopes = Some(value.into_iter().map(Into::into).collect());
        self
    }

    /// Sets [`PlatformConfig::audience`], over the file and the environment.
    pub fn audience(mut self, value: impl Into<String>) -> Self {
        self.explicit.audience = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::command`], over the file and the environment.
    pub fn command(mut self, value: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.explicit.command = Some(Command(value.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets [`PlatformConfig::proxy_command`], over the file and the environment.
    pub fn proxy_command(mut self, value: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.explicit.proxy_command = Some(Command(value.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets [`PlatformConfig::proxy_google_audience`], over the file and the environment.
    pub fn proxy_google_audience(mut self, value: impl Into<String>) -> Self {
        self.explicit.proxy_google_audience = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::google_audience`], over the file and the environment.
    pub fn google_audience(mut self, value: impl Into<String>) -> Self {
        self.explicit.google_audience = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::token_url`], over the file and the environment.
    pub fn token_url(mut self, value: impl Into<String>) -> Self {
        self.explicit.token_url = Some(Url(value.into()));
        self
    }

    /// Sets [`PlatformConfig::authorization_header`], over the file and the environment.
    pub fn authorization_header(mut self, value: impl Into<String>) -> Self {
        self.explicit.authorization_header = Some(value.into());
        self
    }

    /// Sets [`PlatformConfig::max_retries`], over the file and the environment.
    pub fn max_retries(mut self, value: u32) -> Self {
        self.explicit.max_retries = Some(value);
        self
    }

    /// Sets [`PlatformConfig::per_retry_timeout`], over the file and the environment.
    pub fn per_retry_timeout(mut self, value: Duration) -> Self {
        self.explicit.per_retry_timeout = Some(value);
        self
    }

    /// Sets [`PlatformConfig::command_timeout`], over the file and the environment.
    pub fn command_timeout(mut self, value: Duration) -> Self {
        self.explicit.command_timeout = Some(value);
        self
    }

    /// Sets [`PlatformConfig::pkce_timeout`], over the file and the environment.
    pub fn pkce_timeout(mut self, value: Duration) -> Self {
        self.explicit.pkce_config.timeout = Some(value);
        self
    }

    /// Sets [`PlatformConfig::pkce_refresh_time`], over the file and the environment.
    pub fn pkce_refresh_time(mut self, value: Duration) -> Self {
        self.explicit.pkce_config.refresh_time = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_timeout`], over the file and the environment.
    pub fn device_flow_timeout(mut self, value: Duration) -> Self {
        self.explicit.device_flow_config.timeout = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_poll_interval`], over the file and the environment.
    pub fn device_flow_poll_interval(mut self, value: Duration) -> Self {
        self.explicit.device_flow_config.poll_interval = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_refresh_time`], over the file and the environment.
    pub fn device_flow_refresh_time(mut self, value: Duration) -> Self {
        self.explicit.device_flow_config.refresh_time = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_pkce`], over the file and the environment.
    pub fn device_flow_pkce(mut self, value: bool) -> Self {
        self.explicit.device_flow_config.pkce = Some(value);
        self
    }

    /// Sets [`PlatformConfig::token_refresh_window`], over the file and the environment.
    pub fn token_refresh_window(mut self, value: Duration) -> Self {
        self.explicit.token_refresh_window = Some(value);
        self
    }
}
