//! Every setting, declared once.
//!
//! Each row of the table names a setting's field, its [kind](super::kind) (how it is written
//! and shown), and its name in each source: the YAML file's dotted key, the environment
//! variables (the first set one wins) and flytekit's INI option. From the table come: the
//! [`Layer`] holding one source's values, the [`key`] constants naming a setting in errors,
//! the variables' constants in [`env`](super::env), the reading of the YAML file, the
//! environment and the INI file, the merge and `Debug`. The getters of [`PlatformConfig`] and
//! the methods of [`PlatformConfigBuilder`] are written out below the table.
//!
//! Adding a setting is adding a row, a getter and a builder method. Unset values stay unset
//! (`None`): the flow that uses a setting applies its own default.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use flyte_auth_core::{Error, SecretString};
use serde::de::MapAccess;

use super::{
    AuthMode, PlatformConfig, PlatformConfigBuilder,
    kind::{
        Address, Command, Count, FilePath, Flag, Kind, List, Mode, Period, Secret, Shown, Text,
        Url, Yaml,
    },
    layer::Key,
};

macro_rules! settings {
    // `Some(value)`, or `None` when the row leaves the part out.
    (@opt) => { None };
    (@opt $value:expr) => { Some($value) };

    ($(
        $field:ident: $kind:ident {
            $(yaml: $yaml:literal,)?
            $(env: [$($var:ident = $name:literal),+],)?
            $(ini: $section:ident.$option:ident,)?
        }
    )*) => {
        /// Each setting's names in each source, by its field name.
        #[allow(non_upper_case_globals)]
        pub(crate) mod key {
            use super::Key;
            $(pub(crate) const $field: Key = Key {
                field: stringify!($field),
                kind: stringify!($kind),
                yaml: settings!(@opt $($yaml)?),
                env: &[$($($name),+)?],
                ini: settings!(@opt $((stringify!($section), stringify!($option)))?),
            };)*
            /// Every setting.
            pub(crate) const ALL: &[Key] = &[$($field),*];
        }

        /// The variables of the settings, re-exported by [`env`](super::super::env).
        pub(crate) mod vars {
            $($($(
                #[doc = concat!(
                    "`", $name, "`: sets [`", stringify!($field),
                    "`](crate::config::PlatformConfigBuilder::", stringify!($field), ")."
                )]
                pub const $var: &str = $name;
            )+)?)*
        }

        /// Every setting, each unset until a source sets it.
        #[derive(Clone, Default)]
        pub(crate) struct Layer {
            $(pub(crate) $field: Option<<$kind as Kind>::Value>,)*
        }

        impl Layer {
            /// Reads every setting from text (the environment, an INI file): `value(key)` is
            /// the setting's name there and its text, if set; `error(name, message)` the error
            /// for a text that is no value of the setting's kind.
            pub(crate) fn from_text(
                mut value: impl FnMut(&Key) -> Option<(String, String)>,
                error: impl Fn(&str, &str) -> Error,
            ) -> Result<Self, Error> {
                Ok(Self {
                    $($field: match value(&key::$field) {
                        Some((name, text)) => super::kind::from_text::<$kind>(&text)
                            .map_err(|message| error(&name, &message))?,
                        None => None,
                    },)*
                })
            }

            /// Reads the value at the YAML file's dotted `path` from `map`, if a setting has
            /// that key; `false` if none has.
            pub(crate) fn read_yaml<'de, A: MapAccess<'de>>(
                &mut self,
                path: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(if key::$field.yaml == Some(path) {
                    self.$field = map.next_value::<Yaml<$kind>>()?.0;
                    return Ok(true);
                })*
                Ok(false)
            }

            /// Each setting from `self`, else from `lower`.
            pub(crate) fn or(self, lower: Self) -> Self {
                Self { $($field: self.$field.or(lower.$field),)* }
            }

            /// Adds every setting to `out`, shown by its kind: no secret, no argument of a
            /// command, no user info of a URL.
            pub(crate) fn debug_fields(&self, out: &mut fmt::DebugStruct<'_, '_>) {
                $(out.field(stringify!($field), &Shown::<$kind>(&self.$field));)*
            }

            /// The fields that are set.
            #[cfg(test)]
            pub(crate) fn set_fields(&self) -> Vec<&'static str> {
                let mut set = Vec::new();
                $(if self.$field.is_some() {
                    set.push(stringify!($field));
                })*
                set
            }
        }
    };
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Layer");
        self.debug_fields(&mut out);
        out.finish()
    }
}

settings! {
    endpoint: Address {
        yaml: "admin.endpoint",
        env: [ADMIN_ENDPOINT = "FLYTE_ADMIN_ENDPOINT", PLATFORM_URL = "FLYTE_PLATFORM_URL"],
        ini: platform.url,
    }
    insecure: Flag {
        yaml: "admin.insecure",
        env: [ADMIN_INSECURE = "FLYTE_ADMIN_INSECURE", PLATFORM_INSECURE = "FLYTE_PLATFORM_INSECURE"],
        ini: platform.insecure,
    }
    insecure_skip_verify: Flag {
        yaml: "admin.insecureSkipVerify",
        env: [
            ADMIN_INSECURE_SKIP_VERIFY = "FLYTE_ADMIN_INSECURESKIPVERIFY",
            PLATFORM_INSECURE_SKIP_VERIFY = "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY"
        ],
        ini: platform.insecure_skip_verify,
    }
    ca_cert_file_path: FilePath {
        yaml: "admin.caCertFilePath",
        env: [
            ADMIN_CA_CERT_FILE_PATH = "FLYTE_ADMIN_CACERTFILEPATH",
            PLATFORM_CA_CERT_FILE_PATH = "FLYTE_PLATFORM_CA_CERT_FILE_PATH"
        ],
        ini: platform.ca_cert_file_path,
    }
    http_proxy_url: Url {
        yaml: "admin.httpProxyURL",
        env: [
            ADMIN_HTTP_PROXY_URL = "FLYTE_ADMIN_HTTPPROXYURL",
            PLATFORM_HTTP_PROXY_URL = "FLYTE_PLATFORM_HTTP_PROXY_URL"
        ],
        ini: platform.http_proxy_url,
    }
    disable_keyring: Flag {
        yaml: "admin.disableKeyring",
        env: [ADMIN_DISABLE_KEYRING = "FLYTE_ADMIN_DISABLEKEYRING"],
    }
    write_all_layouts: Flag {
        yaml: "admin.writeAllLayouts",
        env: [ADMIN_WRITE_ALL_LAYOUTS = "FLYTE_ADMIN_WRITEALLLAYOUTS"],
    }
    auth_mode: Mode {
        yaml: "admin.authType",
        env: [ADMIN_AUTH_TYPE = "FLYTE_ADMIN_AUTHTYPE", CREDENTIALS_AUTH_MODE = "FLYTE_CREDENTIALS_AUTH_MODE"],
        ini: credentials.auth_mode,
    }
    client_id: Text {
        yaml: "admin.clientId",
        env: [ADMIN_CLIENT_ID = "FLYTE_ADMIN_CLIENTID", CREDENTIALS_CLIENT_ID = "FLYTE_CREDENTIALS_CLIENT_ID"],
        ini: credentials.client_id,
    }
    client_secret: Secret {
        env: [CREDENTIALS_CLIENT_SECRET = "FLYTE_CREDENTIALS_CLIENT_SECRET"],
        ini: credentials.client_secret,
    }
    client_secret_location: FilePath {
        yaml: "admin.clientSecretLocation",
        env: [
            ADMIN_CLIENT_SECRET_LOCATION = "FLYTE_ADMIN_CLIENTSECRETLOCATION",
            CREDENTIALS_CLIENT_SECRET_LOCATION = "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION"
        ],
        ini: credentials.client_secret_location,
    }
    client_secret_env_var: Text {
        yaml: "admin.clientSecretEnvVar",
        env: [
            ADMIN_CLIENT_SECRET_ENV_VAR = "FLYTE_ADMIN_CLIENTSECRETENVVAR",
            CREDENTIALS_CLIENT_SECRET_ENV_VAR = "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR"
        ],
        ini: credentials.client_secret_env_var,
    }
    scopes: List {
        yaml: "admin.scopes",
        env: [ADMIN_SCOPES = "FLYTE_ADMIN_SCOPES", CREDENTIALS_SCOPES = "FLYTE_CREDENTIALS_SCOPES"],
        ini: credentials.scopes,
    }
    audience: Text {
        yaml: "admin.audience",
        env: [ADMIN_AUDIENCE = "FLYTE_ADMIN_AUDIENCE", CREDENTIALS_AUDIENCE = "FLYTE_CREDENTIALS_AUDIENCE"],
        ini: credentials.audience,
    }
    command: Command {
        yaml: "admin.command",
        env: [ADMIN_COMMAND = "FLYTE_ADMIN_COMMAND", CREDENTIALS_COMMAND = "FLYTE_CREDENTIALS_COMMAND"],
        ini: credentials.command,
    }
    proxy_command: Command {
        yaml: "admin.proxyCommand",
        env: [
            ADMIN_PROXY_COMMAND = "FLYTE_ADMIN_PROXYCOMMAND",
            CREDENTIALS_PROXY_COMMAND = "FLYTE_CREDENTIALS_PROXY_COMMAND"
        ],
        ini: credentials.proxy_command,
    }
    token_url: Url {
        yaml: "admin.tokenUrl",
        env: [ADMIN_TOKEN_URL = "FLYTE_ADMIN_TOKENURL"],
    }
    authorization_header: Text {
        yaml: "admin.authorizationHeader",
        env: [ADMIN_AUTHORIZATION_HEADER = "FLYTE_ADMIN_AUTHORIZATIONHEADER"],
    }
    max_retries: Count {
        yaml: "admin.maxRetries",
    }
    per_retry_timeout: Period {
        yaml: "admin.perRetryTimeout",
    }
    command_timeout: Period {
        yaml: "admin.commandTimeout",
    }
    pkce_timeout: Period {
        yaml: "admin.pkceConfig.timeout",
    }
    pkce_refresh_time: Period {
        yaml: "admin.pkceConfig.refreshTime",
    }
    device_flow_timeout: Period {
        yaml: "admin.deviceFlowConfig.timeout",
    }
    device_flow_poll_interval: Period {
        yaml: "admin.deviceFlowConfig.pollInterval",
    }
    device_flow_refresh_time: Period {
        yaml: "admin.deviceFlowConfig.refreshTime",
    }
    token_refresh_window: Period {
        yaml: "admin.tokenRefreshWindow",
    }
}

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
        self.settings.pkce_timeout
    }

    /// Refresh a browser-login token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes).
    ///
    /// From: the builder, `admin.pkceConfig.refreshTime`.
    pub fn pkce_refresh_time(&self) -> Option<Duration> {
        self.settings.pkce_refresh_time
    }

    /// How long the device login waits for the user's approval (unset: the device crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 10 minutes).
    ///
    /// From: the builder, `admin.deviceFlowConfig.timeout`.
    pub fn device_flow_timeout(&self) -> Option<Duration> {
        self.settings.device_flow_timeout
    }

    /// How often the device flow polls when the server names no interval (unset: the device
    /// crate's `DEFAULT_DEVICE_POLL_INTERVAL`, 5 seconds).
    ///
    /// From: the builder, `admin.deviceFlowConfig.pollInterval`.
    pub fn device_flow_poll_interval(&self) -> Option<Duration> {
        self.settings.device_flow_poll_interval
    }

    /// Refresh a device-flow token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes).
    ///
    /// From: the builder, `admin.deviceFlowConfig.refreshTime`.
    pub fn device_flow_refresh_time(&self) -> Option<Duration> {
        self.settings.device_flow_refresh_time
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
        self.explicit.http_proxy_url = Some(value.into());
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
        self.explicit.command = Some(value.into_iter().map(Into::into).collect());
        self
    }

    /// Sets [`PlatformConfig::proxy_command`], over the file and the environment.
    pub fn proxy_command(mut self, value: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.explicit.proxy_command = Some(value.into_iter().map(Into::into).collect());
        self
    }

    /// Sets [`PlatformConfig::token_url`], over the file and the environment.
    pub fn token_url(mut self, value: impl Into<String>) -> Self {
        self.explicit.token_url = Some(value.into());
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
        self.explicit.pkce_timeout = Some(value);
        self
    }

    /// Sets [`PlatformConfig::pkce_refresh_time`], over the file and the environment.
    pub fn pkce_refresh_time(mut self, value: Duration) -> Self {
        self.explicit.pkce_refresh_time = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_timeout`], over the file and the environment.
    pub fn device_flow_timeout(mut self, value: Duration) -> Self {
        self.explicit.device_flow_timeout = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_poll_interval`], over the file and the environment.
    pub fn device_flow_poll_interval(mut self, value: Duration) -> Self {
        self.explicit.device_flow_poll_interval = Some(value);
        self
    }

    /// Sets [`PlatformConfig::device_flow_refresh_time`], over the file and the environment.
    pub fn device_flow_refresh_time(mut self, value: Duration) -> Self {
        self.explicit.device_flow_refresh_time = Some(value);
        self
    }

    /// Sets [`PlatformConfig::token_refresh_window`], over the file and the environment.
    pub fn token_refresh_window(mut self, value: Duration) -> Self {
        self.explicit.token_refresh_window = Some(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::config::{FileChoice, Inputs, env, file, ini, resolve};

    const SECRET: &str = "s3cret-sample";

    /// A value of `key`'s kind, written as text.
    fn sample(key: &Key) -> &'static str {
        match key.kind {
            "Flag" => "true",
            "List" => "first, second",
            "Command" => "program, --token=argument-secret",
            "Period" => "90s",
            "Count" => "3",
            "Mode" => "DeviceFlow",
            "Url" => "https://user:pw-in-url@proxy.example.org:3128/p?q=query-secret",
            "FilePath" => "/etc/flyte/sample",
            "Secret" => SECRET,
            _ if key.field == "client_secret_env_var" => "SAMPLE_SECRET_VAR",
            _ => "sample-text.example.org",
        }
    }

    /// The YAML file setting only `yaml` (`admin.pkceConfig.timeout`) to `value`.
    fn yaml_file(yaml: &str, value: &str) -> String {
        let mut text = String::new();
        let parts: Vec<&str> = yaml.split('.').collect();
        for (depth, part) in parts.iter().enumerate() {
            text.push_str(&"  ".repeat(depth));
            text.push_str(part);
            text.push(':');
            if depth + 1 == parts.len() {
                text.push_str(&format!(" '{value}'"));
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn every_setting_is_read_from_its_yaml_key_each_variable_and_its_ini_option() {
        for key in key::ALL {
            let value = sample(key);
            // Each source reads the same value, and sets this setting only.
            let mut read = Vec::new();
            if let Some(yaml) = key.yaml {
                let text = yaml_file(yaml, value);
                let layer = file::parse(Path::new("config.yaml"), &text)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
                read.push((format!("YAML {yaml}"), layer));
            }
            for name in key.env {
                let vars = HashMap::from([(name.to_string(), value.to_owned())]);
                let (layer, used) =
                    env::read(&|n| vars.get(n).cloned()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(used, [*name]);
                read.push((format!("variable {name}"), layer));
            }
            if let Some((section, option)) = key.ini {
                let text = format!("[{section}]\n{option} = {value}\n");
                let layer = ini::parse(Path::new("config"), &text)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
                read.push((format!("INI [{section}] {option}"), layer));
            }
            assert!(!read.is_empty(), "{key:?} has no source");
            let first = format!("{:?}", read[0].1);
            for (source, layer) in &read {
                assert_eq!(layer.set_fields(), [key.field], "{source}");
                assert_eq!(format!("{layer:?}"), first, "{source} reads another value");
            }
        }
    }

    #[test]
    fn each_name_belongs_to_one_setting() {
        let mut seen = HashSet::new();
        for key in key::ALL {
            let names = key.yaml.into_iter().chain(key.env.iter().copied());
            let ini = key.ini.map(|(s, o)| format!("[{s}] {o}"));
            for name in names
                .map(str::to_owned)
                .chain(ini)
                .chain([key.field.to_owned()])
            {
                assert!(seen.insert(name.clone()), "{name} is declared twice");
            }
        }
    }

    #[test]
    fn debug_shows_every_setting_and_no_secret() {
        let explicit = Layer::from_text(
            |key| Some((key.field.to_owned(), sample(key).to_owned())),
            |name, message| Error::config(format!("{name}: {message}")),
        )
        .unwrap();
        let inputs = Inputs {
            env: &|_| None,
            process_env: false,
            cwd: None,
        };
        let cfg = resolve(&inputs, &FileChoice::Skip, explicit, None).unwrap();
        assert_eq!(cfg.client_secret().unwrap().expose_secret(), SECRET);
        let debug = format!("{cfg:?}");
        for key in key::ALL {
            let field = format!(" {}: ", key.field);
            assert!(debug.contains(&field), "{} missing from {debug}", key.field);
            assert!(!debug.contains(&format!("{field}None")), "{debug}");
        }
        for secret in [SECRET, "pw-in-url", "query-secret", "argument-secret"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(
            debug.contains(r#"command: ["program", <1 argument>]"#),
            "{debug}"
        );
        assert!(debug.contains("proxy.example.org:3128"), "{debug}");
        // Unset settings show as unset.
        let unset = format!("{:?}", PlatformConfig::for_endpoint("x:1").unwrap());
        assert!(unset.contains("pkce_timeout: None"), "{unset}");
    }
}
