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
    /// TLS without certificate verification. Set by the builder, `admin.insecureSkipVerify`,
    /// `FLYTE_ADMIN_INSECURESKIPVERIFY`, `FLYTE_PLATFORM_INSECURE_SKIP_VERIFY`,
    /// `[platform] insecure_skip_verify` (INI).
    pub fn insecure_skip_verify(&self) -> bool {
        self.settings.insecure_skip_verify.unwrap_or(false)
    }

    /// A PEM bundle to trust in addition to the system roots. Set by the builder,
    /// `admin.caCertFilePath`, `FLYTE_ADMIN_CACERTFILEPATH`, `FLYTE_PLATFORM_CA_CERT_FILE_PATH`,
    /// `[platform] ca_cert_file_path` (INI).
    pub fn ca_cert_file_path(&self) -> Option<&Path> {
        self.settings.ca_cert_file_path.as_deref()
    }

    /// The proxy of the OAuth requests (`http://`, `https://`, `socks5://`, `socks5h://`). Set by
    /// the builder, `admin.httpProxyURL`, `FLYTE_ADMIN_HTTPPROXYURL`,
    /// `FLYTE_PLATFORM_HTTP_PROXY_URL`, `[platform] http_proxy_url` (INI).
    pub fn http_proxy_url(&self) -> Option<&str> {
        self.settings.http_proxy_url.as_deref()
    }

    /// Keep tokens out of the system keyring (the automatic store is then the file store). Set by
    /// the builder, `admin.disableKeyring`, `FLYTE_ADMIN_DISABLEKEYRING`.
    pub fn disable_keyring(&self) -> bool {
        self.settings.disable_keyring.unwrap_or(false)
    }

    /// Write the keyring entries of every Flyte tool (flytekit, the Flyte 2 SDK, flytectl) on each
    /// login, even where none held one, so one login serves them all (off by default: only the
    /// layouts that held a login are updated). Set by the builder, `admin.writeAllLayouts`,
    /// `FLYTE_ADMIN_WRITEALLLAYOUTS`.
    pub fn write_all_layouts(&self) -> bool {
        self.settings.write_all_layouts.unwrap_or(false)
    }

    /// The OAuth client id (an API key's wins over the file's and the environment's). Set by the
    /// builder, `admin.clientId`, `FLYTE_ADMIN_CLIENTID`, `FLYTE_CREDENTIALS_CLIENT_ID`,
    /// `[credentials] client_id` (INI).
    pub fn client_id(&self) -> Option<&str> {
        self.settings.client_id.as_deref()
    }

    /// The client secret itself (no key in the YAML file). Surrounding white space is removed. The
    /// one used comes from the builder, else an API key, else the variable `clientSecretEnvVar`
    /// names, else the file `clientSecretLocation` names, else `FLYTE_CREDENTIALS_CLIENT_SECRET`
    /// (or the INI file's `client_secret`). Set by the builder, `FLYTE_CREDENTIALS_CLIENT_SECRET`,
    /// `[credentials] client_secret` (INI).
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.settings.client_secret.as_ref()
    }

    /// A file holding the client secret (surrounding white space is ignored). Set by the builder,
    /// `admin.clientSecretLocation`, `FLYTE_ADMIN_CLIENTSECRETLOCATION`,
    /// `FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION`, `[credentials] client_secret_location` (INI).
    pub fn client_secret_location(&self) -> Option<&Path> {
        self.settings.client_secret_location.as_deref()
    }

    /// The name of an environment variable holding the client secret. Set by the builder,
    /// `admin.clientSecretEnvVar`, `FLYTE_ADMIN_CLIENTSECRETENVVAR`,
    /// `FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR`, `[credentials] client_secret_env_var` (INI).
    pub fn client_secret_env_var(&self) -> Option<&str> {
        self.settings.client_secret_env_var.as_deref()
    }

    /// Scopes to ask for; empty means the server's. Set by the builder, `admin.scopes`,
    /// `FLYTE_ADMIN_SCOPES`, `FLYTE_CREDENTIALS_SCOPES`, `[credentials] scopes` (INI).
    pub fn scopes(&self) -> &[String] {
        self.settings.scopes.as_deref().unwrap_or_default()
    }

    /// The `audience` parameter of the token requests. Set by the builder, `admin.audience`,
    /// `FLYTE_ADMIN_AUDIENCE`, `FLYTE_CREDENTIALS_AUDIENCE`, `[credentials] audience` (INI).
    pub fn audience(&self) -> Option<&str> {
        self.settings.audience.as_deref()
    }

    /// The program and arguments that print a token; empty if unset. Set by the builder,
    /// `admin.command`, `FLYTE_ADMIN_COMMAND`, `FLYTE_CREDENTIALS_COMMAND`, `[credentials] command`
    /// (INI).
    pub fn command(&self) -> &[String] {
        self.settings.command.as_deref().unwrap_or_default()
    }

    /// The program and arguments that print a token for `proxy-authorization`; empty if unset. Set
    /// by the builder, `admin.proxyCommand`, `FLYTE_ADMIN_PROXYCOMMAND`,
    /// `FLYTE_CREDENTIALS_PROXY_COMMAND`, `[credentials] proxy_command` (INI).
    pub fn proxy_command(&self) -> &[String] {
        self.settings.proxy_command.as_deref().unwrap_or_default()
    }

    /// The audience of a Google ID token sent in `proxy-authorization` on every request to the
    /// Flyte endpoint's origin: the OAuth client id of Google Cloud's identity-aware proxy in front
    /// of Flyte, for a proxy token without a `proxyCommand` shell-out (feature `google` of the
    /// factory). The token is cached until near its `exp` and kept in the token store under its own
    /// entry. Setting it with [`proxy_command`](Self::proxy_command) is an error when the config is
    /// loaded. Set by the builder, `admin.proxyGoogleAudience`, `FLYTE_ADMIN_PROXYGOOGLEAUDIENCE`.
    pub fn proxy_google_audience(&self) -> Option<&str> {
        self.settings.proxy_google_audience.as_deref()
    }

    /// The audience of the Google ID token that is the token itself with
    /// [`AuthMode::GoogleIdToken`]: the OAuth client id of the identity-aware proxy (or the
    /// service's own audience) that admits it. Set by the builder, `admin.googleAudience`,
    /// `FLYTE_ADMIN_GOOGLEAUDIENCE`.
    pub fn google_audience(&self) -> Option<&str> {
        self.settings.google_audience.as_deref()
    }

    /// The token endpoint to use instead of the discovered one. Set by the builder,
    /// `admin.tokenUrl`, `FLYTE_ADMIN_TOKENURL`.
    pub fn token_url(&self) -> Option<&str> {
        self.settings.token_url.as_deref()
    }

    /// The header to send the token in instead of the discovered one. Set by the builder,
    /// `admin.authorizationHeader`, `FLYTE_ADMIN_AUTHORIZATIONHEADER`.
    pub fn authorization_header(&self) -> Option<&str> {
        self.settings.authorization_header.as_deref()
    }

    /// How many times discovery and the token requests safe to repeat are retried after a transient
    /// failure (as in the Go client; unset: the oauth crate's `DEFAULT_MAX_RETRIES`, 4, the Go
    /// client's default). Set by the builder, `admin.maxRetries`.
    pub fn max_retries(&self) -> Option<u32> {
        self.settings.max_retries
    }

    /// The time allowed for each attempt of a retried request (discovery, client credentials,
    /// refresh) before it is abandoned and retried, as in the Go client (unset: the oauth crate's
    /// `DEFAULT_PER_RETRY_TIMEOUT`, 15 seconds, the Go client's default). Set by the builder,
    /// `admin.perRetryTimeout`.
    pub fn per_retry_timeout(&self) -> Option<Duration> {
        self.settings.per_retry_timeout
    }

    /// The time the token command (`admin.command`) may take (unset: the command crate's
    /// `DEFAULT_TIMEOUT`, 30 seconds). Set by the builder, `admin.commandTimeout`.
    pub fn command_timeout(&self) -> Option<Duration> {
        self.settings.command_timeout
    }

    /// How long the browser login waits for the user (unset: the PKCE crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 2 minutes, as flytectl). Set by the builder,
    /// `admin.pkceConfig.timeout`.
    pub fn pkce_timeout(&self) -> Option<Duration> {
        self.settings.pkce_config.timeout
    }

    /// Refresh a browser-login token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes). Set by the builder, `admin.pkceConfig.refreshTime`.
    pub fn pkce_refresh_time(&self) -> Option<Duration> {
        self.settings.pkce_config.refresh_time
    }

    /// How long the device login waits for the user's approval (unset: the device crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 10 minutes). Set by the builder, `admin.deviceFlowConfig.timeout`.
    pub fn device_flow_timeout(&self) -> Option<Duration> {
        self.settings.device_flow_config.timeout
    }

    /// How often the device flow polls when the server names no interval (unset: the device crate's
    /// `DEFAULT_DEVICE_POLL_INTERVAL`, 5 seconds). Set by the builder,
    /// `admin.deviceFlowConfig.pollInterval`.
    pub fn device_flow_poll_interval(&self) -> Option<Duration> {
        self.settings.device_flow_config.poll_interval
    }

    /// Refresh a device-flow token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes). Set by the builder,
    /// `admin.deviceFlowConfig.refreshTime`.
    pub fn device_flow_refresh_time(&self) -> Option<Duration> {
        self.settings.device_flow_config.refresh_time
    }

    /// Whether the device login sends a PKCE challenge (`S256`) and its verifier: `true` even when
    /// the server does not announce `S256`, `false` never (unset: when the server announces it).
    /// Set by the builder, `admin.deviceFlowConfig.pkce`, `FLYTE_ADMIN_DEVICEFLOWCONFIG_PKCE`.
    pub fn device_flow_pkce(&self) -> Option<bool> {
        self.settings.device_flow_config.pkce
    }

    /// How long before expiry a token is refreshed at the earliest, for every flow (the Go client's
    /// setting; a flow's own `refreshTime` wins): each token's refresh point is drawn between this
    /// and half of it before expiry, so processes do not refresh in step. Unset or `0s` (the Go
    /// client's default): core's `DEFAULT_REFRESH_MARGIN`, 5 minutes. Set by the builder,
    /// `admin.tokenRefreshWindow`.
    pub fn token_refresh_window(&self) -> Option<Duration> {
        self.settings.token_refresh_window
    }
}

impl PlatformConfigBuilder {
    /// The server (`host:port`, `dns:///host:port`, `https://host` or `http://host:port`),
    /// over the file, the environment and an API key's.
    pub fn endpoint(mut self, value: impl Into<String>) -> Self {
        self.endpoint = Some(value.into());
        self
    }

    /// The flow. Set on the builder, it also wins over the switch to client credentials that
    /// a secret found through `clientSecretLocation` or `clientSecretEnvVar` makes.
    pub fn auth_mode(mut self, value: AuthMode) -> Self {
        self.explicit.auth_mode = Some(value);
        self
    }
}

/// The builder methods that set one setting, named after its getter, over the file and the
/// environment.
macro_rules! setters {
    ($($name:ident($value:ident: $ty:ty) => $($field:ident).+ = $set:expr;)*) => {
        impl PlatformConfigBuilder {
            $(
                #[doc = concat!(
                    "Sets [`PlatformConfig::", stringify!($name),
                    "`], over the file and the environment."
                )]
                pub fn $name(mut self, $value: $ty) -> Self {
                    self.explicit.$($field).+ = Some($set);
                    self
                }
            )*
        }
    };
}

setters! {
    insecure(value: bool) => insecure = value;
    insecure_skip_verify(value: bool) => insecure_skip_verify = value;
    ca_cert_file_path(value: impl Into<PathBuf>) => ca_cert_file_path = value.into();
    http_proxy_url(value: impl Into<String>) => http_proxy_url = Url(value.into());
    disable_keyring(value: bool) => disable_keyring = value;
    write_all_layouts(value: bool) => write_all_layouts = value;
    client_id(value: impl Into<String>) => client_id = value.into();
    client_secret(value: impl Into<SecretString>) => client_secret = value.into();
    client_secret_location(value: impl Into<PathBuf>) => client_secret_location = value.into();
    client_secret_env_var(value: impl Into<String>) => client_secret_env_var = value.into();
    scopes(value: impl IntoIterator<Item = impl Into<String>>) =>
        scopes = value.into_iter().map(Into::into).collect();
    audience(value: impl Into<String>) => audience = value.into();
    command(value: impl IntoIterator<Item = impl Into<String>>) =>
        command = Command(value.into_iter().map(Into::into).collect());
    proxy_command(value: impl IntoIterator<Item = impl Into<String>>) =>
        proxy_command = Command(value.into_iter().map(Into::into).collect());
    proxy_google_audience(value: impl Into<String>) => proxy_google_audience = value.into();
    google_audience(value: impl Into<String>) => google_audience = value.into();
    token_url(value: impl Into<String>) => token_url = Url(value.into());
    authorization_header(value: impl Into<String>) => authorization_header = value.into();
    max_retries(value: u32) => max_retries = value;
    per_retry_timeout(value: Duration) => per_retry_timeout = value;
    command_timeout(value: Duration) => command_timeout = value;
    pkce_timeout(value: Duration) => pkce_config.timeout = value;
    pkce_refresh_time(value: Duration) => pkce_config.refresh_time = value;
    device_flow_timeout(value: Duration) => device_flow_config.timeout = value;
    device_flow_poll_interval(value: Duration) => device_flow_config.poll_interval = value;
    device_flow_refresh_time(value: Duration) => device_flow_config.refresh_time = value;
    device_flow_pkce(value: bool) => device_flow_config.pkce = value;
    token_refresh_window(value: Duration) => token_refresh_window = value;
}
