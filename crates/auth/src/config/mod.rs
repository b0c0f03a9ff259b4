//! The Flyte platform config, read the way the Flyte 2 SDK, pyflyte and flytectl read it.
//!
//! [`PlatformConfig::load`] reads, each overriding the one before:
//!
//! 1. the config file: the one given ([`PlatformConfigBuilder::config_file`]), else the first
//!    that exists of the Flyte 2 SDK's search: `./config.yaml`, `./.flyte/config.yaml`,
//!    `<git root>/.flyte/config.yaml`, `$UCTL_CONFIG`, `$FLYTECTL_CONFIG`,
//!    `~/.union/config.yaml`, `~/.flyte/config.yaml`; and when none of those exists,
//!    flytekit's INI files `./flytekit.config`, `~/.flyte/config`. A file named by a variable
//!    must exist; the others may be missing;
//! 2. the `FLYTE_*` environment variables ([`mod@env`] lists them: `FLYTE_ADMIN_*` and
//!    flytekit's `FLYTE_PLATFORM_*` / `FLYTE_CREDENTIALS_*`);
//! 3. an API key (`FLYTE_API_KEY` or [`PlatformConfigBuilder::api_key`]): its endpoint, client
//!    id and secret, and client credentials as the flow (only an endpoint set explicitly wins
//!    over the key's, as in the Flyte 2 CLI);
//! 4. values set explicitly on a [`PlatformConfigBuilder`].
//!
//! [`PlatformConfig::sources`] tells which file and which variables were used.
//!
//! Everything is checked while loading: a wrong type, a bad duration or an unknown auth type
//! fails with a message naming the file, the dotted key (`admin.pkceConfig.timeout`) and what
//! was expected, as [`Error::Config`].
//!
//! ```
//! use flyte_auth::{AuthMode, PlatformConfig};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("config.yaml");
//! std::fs::write(&path, "
//! admin:
//!   endpoint: dns:///flyte.example.org:443
//!   authType: DeviceFlow
//!   deviceFlowConfig:
//!     pollInterval: 10s
//! logger:
//!   level: 0
//! ")?;
//! let cfg = PlatformConfig::builder()
//!     .config_file(&path)
//!     .env(|name| (name == "FLYTE_CREDENTIALS_SCOPES").then(|| "all,offline".to_owned()))
//!     .build()?;
//! assert_eq!(cfg.endpoint().key(), "flyte.example.org");
//! assert_eq!(cfg.endpoint().as_written(), "dns:///flyte.example.org:443");
//! assert_eq!(cfg.base_url(), "https://flyte.example.org");
//! assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
//! assert_eq!(cfg.scopes(), ["all", "offline"]);
//! assert_eq!(cfg.device_flow().poll_interval.as_secs(), 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api_key;
mod duration;
pub mod env;
mod file;
#[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
mod http;
mod ini;
mod layer;
mod mode;

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use flyte_auth_core::{Endpoint, Error, SecretString, redact_url};

pub use duration::{ParseDurationError, parse_duration};
use layer::{CLIENT_SECRET_ENV_VAR, CLIENT_SECRET_LOCATION, Layer, Source};
pub use mode::{AuthMode, ParseAuthModeError};

/// The environment, as a lookup from variable name to value.
type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Settings of the browser login (`admin.pkceConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PkceSettings {
    /// How long to wait for the user to finish the login in the browser (`timeout`;
    /// default 2 minutes, as flytectl).
    pub timeout: Duration,
    /// Refresh this long before the token expires (`refreshTime`; default 5 minutes).
    pub refresh_time: Duration,
}

impl Default for PkceSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2 * 60),
            refresh_time: flyte_auth_core::DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// Settings of the device flow (`admin.deviceFlowConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceFlowSettings {
    /// How long to wait for the user to approve the login (`timeout`; default 10 minutes).
    pub timeout: Duration,
    /// How often to ask the token endpoint when the server names no interval
    /// (`pollInterval`; default 5 seconds).
    pub poll_interval: Duration,
    /// Refresh this long before the token expires (`refreshTime`; default 5 minutes).
    pub refresh_time: Duration,
}

impl Default for DeviceFlowSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10 * 60),
            poll_interval: Duration::from_secs(5),
            refresh_time: flyte_auth_core::DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// How to reach and authenticate to a Flyte server: the `admin` section of the flytectl /
/// pyflyte config file, overridden by `FLYTE_*` variables and explicit values.
///
/// Build it with [`load`](Self::load), [`load_from`](Self::load_from) or
/// [`builder`](Self::builder); see the [module documentation](self) for the order of sources.
/// A loaded config always has a valid endpoint.
///
/// `Debug` shows no secret: the client secret is a [`SecretString`], and of the commands only
/// the program name is shown (their arguments may carry credentials).
#[derive(Clone)]
pub struct PlatformConfig {
    endpoint: Endpoint,
    insecure_skip_verify: bool,
    ca_cert_file_path: Option<PathBuf>,
    auth_mode: AuthMode,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    client_secret_location: Option<PathBuf>,
    client_secret_env_var: Option<String>,
    scopes: Vec<String>,
    audience: Option<String>,
    command: Vec<String>,
    proxy_command: Vec<String>,
    http_proxy_url: Option<String>,
    token_url: Option<String>,
    authorization_header: Option<String>,
    max_retries: Option<u32>,
    per_retry_timeout: Option<Duration>,
    command_timeout: Option<Duration>,
    pkce: PkceSettings,
    device_flow: DeviceFlowSettings,
    disable_keyring: bool,
    write_all_layouts: bool,
    sources: ConfigSources,
    api_key: Option<ApiKeyInUse>,
}

/// Where a [`PlatformConfig`] came from: the file and the variables that were read, for
/// `flyte-auth status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigSources {
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// How that file was found: `given`, `./config.yaml`, `./.flyte/config.yaml`,
    /// `<git root>/.flyte/config.yaml`, `$UCTL_CONFIG`, `$FLYTECTL_CONFIG`,
    /// `~/.union/config.yaml`, `~/.flyte/config.yaml`, `./flytekit.config` or `~/.flyte/config`.
    pub found_by: Option<&'static str>,
    /// `true` when the file was read as flytekit's INI format.
    pub ini: bool,
    /// The names of the environment variables that were set and used (never their values).
    pub variables: Vec<String>,
}

/// An API key in use (the secret is not kept here).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyInUse {
    /// Where the key came from: `FLYTE_API_KEY` or `explicit setting`.
    pub origin: &'static str,
    /// The endpoint the key names (an explicit endpoint may have won over it).
    pub endpoint: String,
    /// The key's client id.
    pub client_id: String,
    /// The key's organization, if any.
    pub org: Option<String>,
}

impl PlatformConfig {
    /// Loads the config from the default file, the process environment and nothing else.
    ///
    /// Same as `PlatformConfig::builder().build()`.
    pub fn load() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Loads the config with `env` as the environment (for tests, or a program that keeps its
    /// own), from `path` if given, else from the file `env` names in `FLYTECTL_CONFIG`, else
    /// from `.flyte/config.yaml` under `env`'s `HOME` (or `USERPROFILE`).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use flyte_auth::PlatformConfig;
    ///
    /// let env = HashMap::from([
    ///     ("FLYTE_PLATFORM_URL", "dns:///localhost:30080"),
    ///     ("FLYTE_PLATFORM_INSECURE", "true"),
    /// ]);
    /// let cfg = PlatformConfig::load_from(|name| env.get(name).map(|v| v.to_string()), None)?;
    /// assert_eq!(cfg.base_url(), "http://localhost:30080");
    /// # Ok::<(), flyte_auth::Error>(())
    /// ```
    pub fn load_from(
        env: impl Fn(&str) -> Option<String>,
        path: Option<&Path>,
    ) -> Result<Self, Error> {
        let choice = match path {
            Some(path) => FileChoice::Path(path.to_owned()),
            None => FileChoice::Default,
        };
        let inputs = Inputs {
            env: &env,
            process_env: false,
            cwd: None,
        };
        resolve(&inputs, &choice, Layer::default(), None)
    }

    /// A builder: choose the file and the environment, and set values that override both.
    pub fn builder() -> PlatformConfigBuilder {
        PlatformConfigBuilder::default()
    }

    /// A config for `endpoint` (any spelling [`Endpoint::parse`] takes) with every other setting at
    /// its default, reading neither a file nor the environment.
    ///
    /// ```
    /// let cfg = flyte_auth::PlatformConfig::for_endpoint("dns:///flyte.example.org")?;
    /// assert_eq!(cfg.base_url(), "https://flyte.example.org");
    /// # Ok::<(), flyte_auth::Error>(())
    /// ```
    pub fn for_endpoint(endpoint: impl Into<String>) -> Result<Self, Error> {
        Self::builder()
            .no_config_file()
            .no_env()
            .endpoint(endpoint)
            .build()
    }

    /// The server, parsed: [`Endpoint::key`] is the key of stored tokens,
    /// [`Endpoint::as_written`] the spelling of the config.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `https://host[:port]`, or `http://` when [`insecure`](Self::insecure): the base of the
    /// discovery URLs.
    pub fn base_url(&self) -> String {
        self.endpoint.base_url()
    }

    /// Plain text to the server, no TLS: `admin.insecure`, or an endpoint written `http://`.
    pub fn insecure(&self) -> bool {
        self.endpoint.is_insecure()
    }

    /// TLS without certificate verification (`admin.insecureSkipVerify`).
    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify
    }

    /// PEM bundle to trust in addition to the system roots (`admin.caCertFilePath`).
    pub fn ca_cert_file_path(&self) -> Option<&Path> {
        self.ca_cert_file_path.as_deref()
    }

    /// The flow to use (`admin.authType`; [`AuthMode::Pkce`] by default, and
    /// [`AuthMode::ClientSecret`] when a secret was found through `clientSecretLocation` or
    /// `clientSecretEnvVar` and no mode was set explicitly on the builder).
    ///
    /// A name that is not a built-in mode is [`AuthMode::Plugin`]; see
    /// [`get_authenticator`](crate::get_authenticator).
    pub fn auth_mode(&self) -> AuthMode {
        self.auth_mode.clone()
    }

    /// The flow to use, by reference (no clone of a plugin's name).
    pub fn auth_mode_ref(&self) -> &AuthMode {
        &self.auth_mode
    }

    /// The OAuth client id (`admin.clientId`).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The client secret, from the builder, `admin.clientSecretEnvVar`,
    /// `admin.clientSecretLocation` or `FLYTE_CREDENTIALS_CLIENT_SECRET`, in that order.
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// The file the client secret is read from (`admin.clientSecretLocation`).
    pub fn client_secret_location(&self) -> Option<&Path> {
        self.client_secret_location.as_deref()
    }

    /// The name of the variable the client secret is read from (`admin.clientSecretEnvVar`).
    pub fn client_secret_env_var(&self) -> Option<&str> {
        self.client_secret_env_var.as_deref()
    }

    /// Scopes to ask for (`admin.scopes`); empty means the server's.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The `audience` parameter (`admin.audience`).
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The program and arguments that print a token (`admin.command`); empty if unset.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// The program and arguments that print a token for `proxy-authorization`
    /// (`admin.proxyCommand`); empty if unset.
    pub fn proxy_command(&self) -> &[String] {
        &self.proxy_command
    }

    /// Proxy for the OAuth requests (`admin.httpProxyURL`).
    pub fn http_proxy_url(&self) -> Option<&str> {
        self.http_proxy_url.as_deref()
    }

    /// Token endpoint to use instead of the discovered one (`admin.tokenUrl`).
    pub fn token_url(&self) -> Option<&str> {
        self.token_url.as_deref()
    }

    /// Header to send the token in instead of the discovered one (`admin.authorizationHeader`).
    pub fn authorization_header(&self) -> Option<&str> {
        self.authorization_header.as_deref()
    }

    /// How many times discovery and the token requests safe to repeat are retried after a
    /// transient failure (`admin.maxRetries`, as in the Go client).
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// The time allowed for each attempt of a retried request (`admin.perRetryTimeout`, as in
    /// the Go client).
    pub fn per_retry_timeout(&self) -> Option<Duration> {
        self.per_retry_timeout
    }

    /// The retry policy of `admin.maxRetries` and `admin.perRetryTimeout`, for
    /// [`HttpSettings::retry`](flyte_auth_oauth::HttpSettings::retry).
    #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
    pub fn retry_policy(&self) -> flyte_auth_oauth::RetryPolicy {
        let mut policy = flyte_auth_oauth::RetryPolicy::new();
        if let Some(retries) = self.max_retries {
            policy = policy.max_retries(retries);
        }
        if let Some(timeout) = self.per_retry_timeout {
            policy = policy.per_attempt_timeout(timeout);
        }
        policy
    }

    /// The time the token command (`admin.command`) may take (`admin.commandTimeout`).
    pub fn command_timeout(&self) -> Option<Duration> {
        self.command_timeout
    }

    /// Browser login settings (`admin.pkceConfig`).
    pub fn pkce(&self) -> &PkceSettings {
        &self.pkce
    }

    /// Device flow settings (`admin.deviceFlowConfig`).
    pub fn device_flow(&self) -> &DeviceFlowSettings {
        &self.device_flow
    }

    /// The config file that was read, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.sources.file.as_deref()
    }

    /// The file and the variables this config was read from.
    pub fn sources(&self) -> &ConfigSources {
        &self.sources
    }

    /// The API key in use, if any (`FLYTE_API_KEY` or [`PlatformConfigBuilder::api_key`]).
    pub fn api_key(&self) -> Option<&ApiKeyInUse> {
        self.api_key.as_ref()
    }

    /// Keep tokens out of the system keyring (`admin.disableKeyring`,
    /// `FLYTE_ADMIN_DISABLEKEYRING`).
    pub fn disable_keyring(&self) -> bool {
        self.disable_keyring
    }

    /// Write the keyring entries of every Flyte tool (flytekit, the Flyte 2 SDK, flytectl) on
    /// each login, even where none held one, so one login serves them all
    /// (`admin.writeAllLayouts`, `FLYTE_ADMIN_WRITEALLLAYOUTS`; off by default: only the
    /// layouts that held a login are updated).
    pub fn write_all_layouts(&self) -> bool {
        self.write_all_layouts
    }

    /// Checks that the settings [`auth_mode`](Self::auth_mode) needs are present: a client id
    /// and secret for `ClientSecret`, a command for `ExternalCommand`, non-zero waits for the
    /// interactive flows. Loading does not check this, so that a config can be read (to show
    /// it, or to find the endpoint) before it is complete.
    ///
    /// ```
    /// let cfg = flyte_auth::PlatformConfig::builder()
    ///     .no_config_file()
    ///     .no_env()
    ///     .endpoint("flyte.example.org:443")
    ///     .auth_mode(flyte_auth::AuthMode::ExternalCommand)
    ///     .build()?;
    /// let err = cfg.validate().unwrap_err().to_string();
    /// assert!(err.contains("needs a command"), "{err}");
    /// # Ok::<(), flyte_auth::Error>(())
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        let mode = &self.auth_mode;
        match mode {
            AuthMode::ClientSecret => {
                if self.client_id.is_none() {
                    return Err(Error::config(format!(
                        "auth type {mode} needs a client id: set admin.clientId or {}",
                        env::CREDENTIALS_CLIENT_ID
                    )));
                }
                if self.client_secret.is_none() {
                    let hint = match &self.client_secret_env_var {
                        Some(var) => format!(
                            " (admin.clientSecretEnvVar names {var}, which is not set or empty)"
                        ),
                        None => String::new(),
                    };
                    return Err(Error::config(format!(
                        "auth type {mode} needs a client secret{hint}: set \
                         admin.clientSecretLocation (a file holding it), admin.clientSecretEnvVar \
                         (the name of a variable holding it) or {}",
                        env::CREDENTIALS_CLIENT_SECRET
                    )));
                }
            }
            AuthMode::ExternalCommand => {
                if self.command.is_empty() {
                    return Err(Error::config(format!(
                        "auth type {mode} needs a command: set admin.command (a list: the program \
                         and its arguments) or {}",
                        env::CREDENTIALS_COMMAND
                    )));
                }
            }
            AuthMode::Pkce => {
                if self.pkce.timeout.is_zero() {
                    return Err(Error::config(
                        "admin.pkceConfig.timeout is zero: the browser login could never finish",
                    ));
                }
            }
            AuthMode::DeviceFlow => {
                if self.device_flow.timeout.is_zero() {
                    return Err(Error::config(
                        "admin.deviceFlowConfig.timeout is zero: the login could never be approved",
                    ));
                }
                if self.device_flow.poll_interval.is_zero() {
                    return Err(Error::config(
                        "admin.deviceFlowConfig.pollInterval is zero: it must be at least one second",
                    ));
                }
            }
            // A registered authenticator checks its own settings.
            AuthMode::Plugin(_) => {}
        }
        Ok(())
    }
}

impl fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("endpoint", &self.endpoint)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("ca_cert_file_path", &self.ca_cert_file_path)
            .field("auth_mode", &self.auth_mode)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_secret_location", &self.client_secret_location)
            .field("client_secret_env_var", &self.client_secret_env_var)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("command", &RedactedArgv(&self.command))
            .field("proxy_command", &RedactedArgv(&self.proxy_command))
            .field(
                "http_proxy_url",
                &self.http_proxy_url.as_deref().map(redact_url),
            )
            .field("token_url", &self.token_url.as_deref().map(redact_url))
            .field("authorization_header", &self.authorization_header)
            .field("max_retries", &self.max_retries)
            .field("per_retry_timeout", &self.per_retry_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("pkce", &self.pkce)
            .field("device_flow", &self.device_flow)
            .field("disable_keyring", &self.disable_keyring)
            .field("write_all_layouts", &self.write_all_layouts)
            .field("sources", &self.sources)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Shows a command as its program name and the number of arguments.
struct RedactedArgv<'a>(&'a [String]);

impl fmt::Debug for RedactedArgv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("[]"),
            [program] => write!(f, "[{program:?}]"),
            [program, _] => write!(f, "[{program:?}, <1 argument>]"),
            [program, args @ ..] => write!(f, "[{program:?}, <{} arguments>]", args.len()),
        }
    }
}

/// Which config file to read.
#[derive(Debug, Clone, Default)]
enum FileChoice {
    /// `$FLYTECTL_CONFIG`, else `~/.flyte/config.yaml`.
    #[default]
    Default,
    /// This file, which must exist.
    Path(PathBuf),
    /// None.
    Skip,
}

/// Builds a [`PlatformConfig`]: which file, which environment, and explicit values.
///
/// Values set here override the file and the environment. A client secret set here is used
/// as is (`clientSecretLocation` and `clientSecretEnvVar` are then not read), and a mode set
/// here is kept even when a secret was found through them.
///
/// ```
/// use std::time::Duration;
/// use flyte_auth::{AuthMode, PlatformConfig};
///
/// let cfg = PlatformConfig::builder()
///     .no_config_file()
///     .no_env()
///     .endpoint("dns:///flyte.example.org:443")
///     .auth_mode(AuthMode::ClientSecret)
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .scopes(["all"])
///     .pkce_timeout(Duration::from_secs(300))
///     .build()?;
/// cfg.validate()?;
/// assert!(!format!("{cfg:?}").contains("s3cr3t"));
/// # Ok::<(), flyte_auth::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct PlatformConfigBuilder {
    file: FileChoice,
    env: Option<Box<EnvFn>>,
    current_dir: Option<PathBuf>,
    explicit: Layer,
    api_key: Option<SecretString>,
}

impl fmt::Debug for PlatformConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformConfigBuilder")
            .field("file", &self.file)
            .field(
                "env",
                &if self.env.is_some() {
                    "custom"
                } else {
                    "process"
                },
            )
            .finish_non_exhaustive()
    }
}

impl PlatformConfigBuilder {
    /// Reads this file (YAML, or flytekit's INI format) instead of searching; it must exist.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = FileChoice::Path(path.into());
        self
    }

    /// Reads no config file.
    pub fn no_config_file(mut self) -> Self {
        self.file = FileChoice::Skip;
        self
    }

    /// Uses `env` instead of the process environment, for the `FLYTE_*` variables, for
    /// `FLYTECTL_CONFIG`, for `HOME`/`USERPROFILE` (where `~/.flyte/config.yaml` is) and for
    /// the variable named by `clientSecretEnvVar`.
    pub fn env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Some(Box::new(env));
        self
    }

    /// Searches `./config.yaml`, `./.flyte/config.yaml` and the git root from `dir` instead
    /// of the process's current directory. With a custom [`env`](Self::env) and no directory
    /// set here, those three places are not searched.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// A Flyte 2 API key (what `FLYTE_API_KEY` holds), used instead of that variable: it
    /// selects client credentials with its client id and secret, and names the endpoint
    /// unless [`endpoint`](Self::endpoint) is set (over the file's and the variables'). A key that does not decode fails [`build`](Self::build).
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Keep tokens out of the system keyring.
    pub fn disable_keyring(mut self, disable: bool) -> Self {
        self.explicit.disable_keyring = Some(disable);
        self
    }

    /// Writes every Flyte tool's keyring entries on each login (`admin.writeAllLayouts`).
    pub fn write_all_layouts(mut self, all: bool) -> Self {
        self.explicit.write_all_layouts = Some(all);
        self
    }

    /// Uses an empty environment.
    pub fn no_env(self) -> Self {
        self.env(|_| None)
    }

    /// The server: `host:port` or `dns:///host:port`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.explicit.endpoint = Some(endpoint.into());
        self
    }

    /// Plain text to the server, no TLS.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.explicit.insecure = Some(insecure);
        self
    }

    /// TLS without certificate verification.
    pub fn insecure_skip_verify(mut self, skip: bool) -> Self {
        self.explicit.insecure_skip_verify = Some(skip);
        self
    }

    /// A PEM bundle to trust.
    pub fn ca_cert_file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit.ca_cert_file_path = Some(path.into());
        self
    }

    /// The flow; wins over the file, the environment and the switch to client credentials.
    pub fn auth_mode(mut self, mode: AuthMode) -> Self {
        self.explicit.auth_mode = Some(mode);
        self
    }

    /// The OAuth client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.explicit.client_id = Some(client_id.into());
        self
    }

    /// The client secret itself.
    pub fn client_secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.explicit.client_secret = Some(secret.into());
        self
    }

    /// A file holding the client secret (a trailing newline is ignored).
    pub fn client_secret_location(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit.client_secret_location = Some(path.into());
        self
    }

    /// The name of an environment variable holding the client secret.
    pub fn client_secret_env_var(mut self, name: impl Into<String>) -> Self {
        self.explicit.client_secret_env_var = Some(name.into());
        self
    }

    /// Scopes to ask for.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.explicit.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The `audience` parameter.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.explicit.audience = Some(audience.into());
        self
    }

    /// The program and arguments that print a token.
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.explicit.command = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// The program and arguments that print a token for `proxy-authorization`.
    pub fn proxy_command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.explicit.proxy_command = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// Proxy for the OAuth requests (`http://`, `https://`, `socks5://`, `socks5h://`).
    pub fn http_proxy_url(mut self, url: impl Into<String>) -> Self {
        self.explicit.http_proxy_url = Some(url.into());
        self
    }

    /// Token endpoint to use instead of the discovered one.
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.explicit.token_url = Some(url.into());
        self
    }

    /// Header to send the token in instead of the discovered one.
    pub fn authorization_header(mut self, name: impl Into<String>) -> Self {
        self.explicit.authorization_header = Some(name.into());
        self
    }

    /// How long to wait for the browser login.
    pub fn pkce_timeout(mut self, timeout: Duration) -> Self {
        self.explicit.pkce_timeout = Some(timeout);
        self
    }

    /// Refresh a browser-login token this long before it expires.
    pub fn pkce_refresh_time(mut self, before_expiry: Duration) -> Self {
        self.explicit.pkce_refresh_time = Some(before_expiry);
        self
    }

    /// How long to wait for the device login to be approved.
    pub fn device_flow_timeout(mut self, timeout: Duration) -> Self {
        self.explicit.device_timeout = Some(timeout);
        self
    }

    /// How often to poll during the device flow when the server names no interval.
    pub fn device_flow_poll_interval(mut self, interval: Duration) -> Self {
        self.explicit.device_poll_interval = Some(interval);
        self
    }

    /// Refresh a device-flow token this long before it expires.
    pub fn device_flow_refresh_time(mut self, before_expiry: Duration) -> Self {
        self.explicit.device_refresh_time = Some(before_expiry);
        self
    }

    /// Reads the file and the environment, applies the explicit values and checks the result.
    pub fn build(self) -> Result<PlatformConfig, Error> {
        let process_env = |name: &str| std::env::var(name).ok();
        let inputs = match &self.env {
            Some(env) => Inputs {
                env: env.as_ref(),
                process_env: false,
                cwd: self.current_dir.clone(),
            },
            None => Inputs {
                env: &process_env,
                process_env: true,
                cwd: self
                    .current_dir
                    .clone()
                    .or_else(|| std::env::current_dir().ok()),
            },
        };
        resolve(&inputs, &self.file, self.explicit, self.api_key.as_ref())
    }
}

/// Where the inputs of a load come from.
struct Inputs<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The process environment: the platform's home directory is a fallback for `HOME`.
    process_env: bool,
    /// The directory `./config.yaml` and the git root are searched from; none: not searched.
    cwd: Option<PathBuf>,
}

/// A config file that was read.
struct FileRead {
    path: PathBuf,
    found_by: &'static str,
    ini: bool,
    layer: Layer,
}

/// What happened to the config file.
enum FileOutcome {
    Read(Box<FileRead>),
    /// Nothing found; these were looked for.
    NotFound(Vec<PathBuf>),
    Skipped,
}

/// `~` by `env`'s `HOME` or `USERPROFILE`; with the process environment, the platform's home
/// directory when neither is set.
fn home_dir(env: &dyn Fn(&str) -> Option<String>, process_env: bool) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .or_else(|| env("USERPROFILE").filter(|h| !h.is_empty()))
        .map(PathBuf::from)
        .or_else(|| if process_env { dirs::home_dir() } else { None })
}

/// The nearest directory at or above `dir` holding `.git` (a directory, or a file for a
/// worktree), as `git rev-parse --show-toplevel` finds it.
fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take(64)
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// The places searched when no file is given, in order: `(path, how it was found, must it
/// exist)`. A path named by a variable must exist.
fn search_path(inputs: &Inputs<'_>) -> Vec<(PathBuf, &'static str, bool)> {
    let mut places = Vec::new();
    if let Some(cwd) = &inputs.cwd {
        places.push((cwd.join("config.yaml"), "./config.yaml", false));
        places.push((
            cwd.join(".flyte").join("config.yaml"),
            "./.flyte/config.yaml",
            false,
        ));
        if let Some(root) = git_root(cwd) {
            places.push((
                root.join(".flyte").join("config.yaml"),
                "<git root>/.flyte/config.yaml",
                false,
            ));
        }
    }
    for (name, found_by) in [
        (env::UCTL_CONFIG, "$UCTL_CONFIG"),
        (env::FLYTECTL_CONFIG, "$FLYTECTL_CONFIG"),
    ] {
        if let Some(path) = (inputs.env)(name).filter(|p| !p.trim().is_empty()) {
            places.push((PathBuf::from(path), found_by, true));
        }
    }
    let home = home_dir(inputs.env, inputs.process_env);
    if let Some(home) = &home {
        places.push((
            home.join(".union").join("config.yaml"),
            "~/.union/config.yaml",
            false,
        ));
        places.push((
            home.join(".flyte").join("config.yaml"),
            "~/.flyte/config.yaml",
            false,
        ));
    }
    // flytekit's INI files, only when no YAML file exists.
    if let Some(cwd) = &inputs.cwd {
        places.push((cwd.join("flytekit.config"), "./flytekit.config", false));
    }
    if let Some(home) = &home {
        places.push((home.join(".flyte").join("config"), "~/.flyte/config", false));
    }
    places
}

fn read_config_file(inputs: &Inputs<'_>, choice: &FileChoice) -> Result<FileOutcome, Error> {
    let places = match choice {
        FileChoice::Skip => return Ok(FileOutcome::Skipped),
        FileChoice::Path(path) => vec![(path.clone(), "given", true)],
        FileChoice::Default => search_path(inputs),
    };
    for (path, found_by, must_exist) in &places {
        match read_capped(path, MAX_CONFIG_FILE_BYTES) {
            Ok(text) => {
                tracing::debug!(path = %path.display(), found_by, "read the Flyte config file");
                let ini = is_ini(path, &text);
                let layer = if ini {
                    ini::parse(path, &text)?
                } else {
                    file::parse(path, &text)?
                };
                let layer = layer.checked(&Source::File(path.clone()))?;
                return Ok(FileOutcome::Read(Box::new(FileRead {
                    path: path.clone(),
                    found_by,
                    ini,
                    layer,
                })));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                tracing::trace!(path = %path.display(), "no Flyte config file here");
            }
            Err(e) => {
                let named_by = match *found_by {
                    "given" => String::new(),
                    by => format!(" (named by {})", by.trim_start_matches('$')),
                };
                return Err(Error::config(format!(
                    "cannot read config file {}{named_by}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(FileOutcome::NotFound(
        places.into_iter().map(|(path, ..)| path).collect(),
    ))
}

/// flytekit's INI format: a file not named `.yaml`/`.yml` whose first line that is not blank
/// or a comment is a `[section]` header.
fn is_ini(path: &Path, text: &str) -> bool {
    let yaml_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    !yaml_name
        && text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
            .is_some_and(|l| l.starts_with('[') && l.ends_with(']'))
}

/// Merges file < environment < API key < explicit, resolves the client secret and the mode.
fn resolve(
    inputs: &Inputs<'_>,
    choice: &FileChoice,
    explicit: Layer,
    explicit_api_key: Option<&SecretString>,
) -> Result<PlatformConfig, Error> {
    let env = inputs.env;
    let explicit = explicit.checked(&Source::Explicit)?;
    let (env_layer, used) = env::read(env)?;
    let env_source = Source::Env(used.clone());
    let env_layer = env_layer.checked(&env_source)?;
    let mut variables: Vec<String> = used.iter().map(|v| (*v).to_owned()).collect();
    let outcome = read_config_file(inputs, choice)?;
    let (file_read, file_layer) = match &outcome {
        FileOutcome::Read(read) => (Some(&**read), read.layer.clone()),
        _ => (None, Layer::default()),
    };
    if let Some(read) = file_read
        && let Some(var) = read.found_by.strip_prefix('$')
    {
        variables.push(var.to_owned());
    }
    let file_source = Source::File(file_read.map(|r| r.path.clone()).unwrap_or_default());

    let api_key = match explicit_api_key {
        Some(key) => Some(api_key::decode(
            key.expose_secret(),
            "the explicit setting",
        )?)
        .map(|k| (k, "explicit setting")),
        None => match env(env::API_KEY).filter(|v| !v.trim().is_empty()) {
            Some(key) => {
                variables.push(env::API_KEY.to_owned());
                Some((api_key::decode(&key, env::API_KEY)?, env::API_KEY))
            }
            None => None,
        },
    };

    let layers = [
        (&explicit, &Source::Explicit),
        (&env_layer, &env_source),
        (&file_layer, &file_source),
    ];

    macro_rules! merged {
        ($field:ident) => {
            layers.iter().find_map(|(layer, _)| layer.$field.clone())
        };
    }
    macro_rules! merged_with_source {
        ($field:ident) => {
            layers
                .iter()
                .find_map(|(layer, source)| layer.$field.clone().map(|v| (v, *source)))
        };
    }

    // An explicit endpoint wins over the key's, and the key's over the variables' and the
    // file's (the Flyte 2 CLI's order): the key's secret goes to the server it was issued
    // for, not to one a stale config file names.
    let endpoint = match (&explicit.endpoint, &api_key, merged!(endpoint)) {
        (Some(endpoint), _, _) => endpoint.clone(),
        (None, Some((key, origin)), _) => {
            Endpoint::parse(&key.endpoint).map_err(|e| {
                Error::config(format!("the endpoint of the API key from {origin}: {e}"))
            })?;
            key.endpoint.clone()
        }
        (None, None, Some(endpoint)) => endpoint,
        (None, None, None) => return Err(Error::config(no_endpoint_message(&outcome))),
    };

    // The client secret, in flytekit's order: FLYTE_CREDENTIALS_CLIENT_SECRET (or the INI
    // file's client_secret), replaced by the content of clientSecretLocation, replaced by the
    // variable clientSecretEnvVar names. Finding it through either of the last two switches
    // the mode to client credentials. An API key's secret replaces all of them.
    let client_secret_location = merged_with_source!(client_secret_location);
    let client_secret_env_var = merged_with_source!(client_secret_env_var);
    let mut client_secret = env_layer
        .client_secret
        .clone()
        .or(file_layer.client_secret.clone());
    let mut found_via = None;
    if let Some(secret) = &explicit.client_secret {
        client_secret = Some(secret.clone());
    } else if let Some((key, origin)) = &api_key {
        client_secret = Some(key.client_secret.clone());
        found_via = Some(format!("the API key from {origin}"));
    } else {
        if let Some((path, source)) = &client_secret_location
            && let Some(secret) = read_secret_file(path, source)?
        {
            client_secret = Some(secret);
            found_via = Some(source.name(CLIENT_SECRET_LOCATION));
        }
        if let Some((var, source)) = &client_secret_env_var {
            match env(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                Some(secret) => {
                    client_secret = Some(SecretString::from(secret));
                    found_via = Some(source.name(CLIENT_SECRET_ENV_VAR));
                    variables.push(var.clone());
                }
                None => tracing::debug!(
                    variable = %var,
                    "the client secret variable named by {} is not set",
                    source.name(CLIENT_SECRET_ENV_VAR)
                ),
            }
        }
    }

    let configured_mode = env_layer.auth_mode.clone().or(file_layer.auth_mode.clone());
    let auth_mode = match (explicit.auth_mode.clone(), &found_via) {
        (Some(mode), _) => mode,
        // An API key is for client credentials, whatever the file says.
        (None, Some(_)) if api_key.is_some() => AuthMode::ClientSecret,
        // A registered authenticator may read the secret itself: it keeps its mode.
        (None, Some(_)) if configured_mode.as_ref().is_some_and(|m| !m.is_builtin()) => {
            configured_mode.unwrap_or_default()
        }
        (None, Some(via)) => {
            if let Some(configured) = configured_mode.filter(|m| *m != AuthMode::ClientSecret) {
                tracing::info!(
                    configured = %configured,
                    "a client secret was found through {via}: using auth type ClientSecret"
                );
            }
            AuthMode::ClientSecret
        }
        (None, None) => configured_mode.unwrap_or_default(),
    };
    let client_id = match (&explicit.client_id, &api_key) {
        (Some(id), _) => Some(id.clone()),
        (None, Some((key, _))) => Some(key.client_id.clone()),
        (None, None) => merged!(client_id),
    };

    let pkce_defaults = PkceSettings::default();
    let device_defaults = DeviceFlowSettings::default();
    Ok(PlatformConfig {
        // `checked` has parsed it already.
        endpoint: Endpoint::parse(&endpoint)?.with_insecure(merged!(insecure).unwrap_or(false)),
        insecure_skip_verify: merged!(insecure_skip_verify).unwrap_or(false),
        ca_cert_file_path: merged!(ca_cert_file_path),
        auth_mode,
        client_id,
        client_secret,
        client_secret_location: client_secret_location.map(|(path, _)| path),
        client_secret_env_var: client_secret_env_var.map(|(var, _)| var),
        scopes: merged!(scopes).unwrap_or_default(),
        audience: merged!(audience),
        command: merged!(command).unwrap_or_default(),
        proxy_command: merged!(proxy_command).unwrap_or_default(),
        http_proxy_url: merged!(http_proxy_url),
        token_url: merged!(token_url),
        authorization_header: merged!(authorization_header),
        max_retries: merged!(max_retries),
        per_retry_timeout: merged!(per_retry_timeout),
        command_timeout: merged!(command_timeout),
        pkce: PkceSettings {
            timeout: merged!(pkce_timeout).unwrap_or(pkce_defaults.timeout),
            refresh_time: merged!(pkce_refresh_time).unwrap_or(pkce_defaults.refresh_time),
        },
        device_flow: DeviceFlowSettings {
            timeout: merged!(device_timeout).unwrap_or(device_defaults.timeout),
            poll_interval: merged!(device_poll_interval).unwrap_or(device_defaults.poll_interval),
            refresh_time: merged!(device_refresh_time).unwrap_or(device_defaults.refresh_time),
        },
        disable_keyring: merged!(disable_keyring).unwrap_or(false),
        write_all_layouts: merged!(write_all_layouts).unwrap_or(false),
        sources: ConfigSources {
            file: file_read.map(|r| r.path.clone()),
            found_by: file_read.map(|r| r.found_by),
            ini: file_read.is_some_and(|r| r.ini),
            variables,
        },
        api_key: api_key.map(|(key, origin)| ApiKeyInUse {
            origin,
            endpoint: key.endpoint,
            client_id: key.client_id,
            org: key.org,
        }),
    })
}

/// The largest config file read; flytectl's are a few hundred bytes.
const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;
/// The largest client secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The text of `path`, refusing more than `cap` bytes (a path such as `/dev/zero` must not
/// exhaust memory).
fn read_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "the file is larger than {cap} bytes"
        )));
    }
    Ok(text)
}

/// The secret in `path`, without surrounding white space (as the Go client reads it);
/// `None` when nothing else is left.
fn read_secret_file(path: &Path, source: &Source) -> Result<Option<SecretString>, Error> {
    let text = read_capped(path, MAX_SECRET_FILE_BYTES).map_err(|e| {
        source.error(
            CLIENT_SECRET_LOCATION,
            format!("cannot read the client secret file {}: {e}", path.display()),
        )
    })?;
    let secret = text.trim();
    Ok((!secret.is_empty()).then(|| SecretString::from(secret.to_owned())))
}

fn no_endpoint_message(outcome: &FileOutcome) -> String {
    let file = match outcome {
        FileOutcome::Read(read) => format!("in {}", read.path.display()),
        FileOutcome::NotFound(searched) if !searched.is_empty() => format!(
            "in a config file (none found; searched {})",
            searched
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "in the config file".to_owned(),
    };
    format!(
        "no Flyte endpoint is configured: set admin.endpoint (such as \
         `dns:///flyte.example.org:443`) {file}, or {}, or {}",
        env::PLATFORM_URL,
        env::API_KEY
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_are_flytectls() {
        let cfg = PlatformConfig::for_endpoint("localhost:30080").unwrap();
        assert_eq!(cfg.auth_mode(), AuthMode::Pkce);
        assert!(!cfg.insecure() && !cfg.insecure_skip_verify());
        assert_eq!(cfg.pkce().timeout, Duration::from_secs(120));
        assert_eq!(cfg.pkce().refresh_time, Duration::from_secs(300));
        assert_eq!(cfg.device_flow().timeout, Duration::from_secs(600));
        assert_eq!(cfg.device_flow().poll_interval, Duration::from_secs(5));
        assert_eq!(cfg.device_flow().refresh_time, Duration::from_secs(300));
        assert!(cfg.scopes().is_empty() && cfg.command().is_empty());
        assert!(cfg.config_file().is_none());
    }

    #[test]
    fn without_an_endpoint_loading_says_where_to_set_one() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap().to_owned();
        let err = PlatformConfig::builder()
            .env(env_of(&[("HOME", &home)]))
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Flyte endpoint is configured"), "{err}");
        assert!(err.contains("none found; searched"), "{err}");
        assert!(err.contains(".flyte/config.yaml"), "{err}");
        assert!(err.contains("FLYTE_API_KEY"), "{err}");
        assert!(err.contains("FLYTE_PLATFORM_URL"), "{err}");
    }

    #[test]
    fn debug_shows_the_program_but_not_the_arguments_of_commands() {
        let cfg = PlatformConfig::builder()
            .no_config_file()
            .no_env()
            .endpoint("x:1")
            .command(["get-token", "--password", "hunter2"])
            .proxy_command(["proxy-token"])
            .build()
            .unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains(r#"command: ["get-token", <2 arguments>]"#),
            "{debug}"
        );
        assert!(
            debug.contains(r#"proxy_command: ["proxy-token"]"#),
            "{debug}"
        );
    }

    #[test]
    fn validate_names_what_each_mode_lacks() {
        let base = || {
            PlatformConfig::builder()
                .no_config_file()
                .no_env()
                .endpoint("x:1")
        };
        let err = base()
            .auth_mode(AuthMode::ClientSecret)
            .build()
            .unwrap()
            .validate();
        assert!(err.unwrap_err().to_string().contains("needs a client id"));
        let err = base()
            .auth_mode(AuthMode::ClientSecret)
            .client_id("svc")
            .client_secret_env_var("MY_SECRET")
            .build()
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a client secret"), "{err}");
        assert!(err.contains("names MY_SECRET, which is not set"), "{err}");
        let err = base()
            .auth_mode(AuthMode::DeviceFlow)
            .device_flow_poll_interval(Duration::ZERO)
            .build()
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("pollInterval is zero"), "{err}");
        let err = base()
            .pkce_timeout(Duration::ZERO)
            .build()
            .unwrap()
            .validate();
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("pkceConfig.timeout is zero")
        );
        base()
            .command(["true"])
            .auth_mode(AuthMode::ExternalCommand)
            .build()
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn explicit_values_are_checked_too() {
        let err = PlatformConfig::for_endpoint("grpc://flyte.example.org")
            .unwrap_err()
            .to_string();
        assert!(err.contains("explicit setting `endpoint`"), "{err}");
        assert!(
            err.contains("the scheme must be `http` or `https`"),
            "{err}"
        );
        let err = PlatformConfig::builder()
            .no_config_file()
            .no_env()
            .endpoint("x:1")
            .token_url("idp.example.org/token")
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("explicit setting `token_url`: invalid URL"),
            "{err}"
        );
    }
}
