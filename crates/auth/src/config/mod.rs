//! The Flyte platform config, read the way the Flyte 2 SDK, pyflyte and flytectl read it.
//!
//! [`PlatformConfig::load`] reads, each overriding the one before:
//!
//! 1. the config file: the one given ([`PlatformConfigBuilder::config_file`]), else the first
//!    that exists of the Flyte 2 SDK's search: `./config.yaml`, `./.flyte/config.yaml`,
//!    `<git root>/.flyte/config.yaml` (the git root looked for up to the home directory, on one
//!    file system), the files named by `$UCTL_CONFIG`, `$FLYTECTL_CONFIG`, `$UNION_CONFIG`,
//!    `$UNIONAI_CONFIG` (which must exist), `~/.union/config.yaml`, `~/.uctl/config.yaml`,
//!    `~/.flyte/config.yaml`, then flytekit's INI files `./flytekit.config`, `~/.flyte/config`.
//!    A file found in the working tree (before the named ones) may not run a program, read a
//!    secret from elsewhere or change whom the connection trusts (`command`, `proxyCommand`,
//!    `clientSecretLocation`, `clientSecretEnvVar`, `insecureSkipVerify`, `caCertFilePath`,
//!    `httpProxyURL`: a config error) unless a variable names it too.
//!    Of a YAML file, the `admin` section is read, and `union.connection.host` /
//!    `union.auth.type` (what `union create login` writes) where `admin.endpoint` /
//!    `admin.authType` are not set;
//! 2. in a task pod (one of `_U_EP_OVERRIDE`, `_U_INSECURE`, `_U_INSECURE_SKIP_VERIFY`,
//!    `_U_ORG_NAME`, `KUBERNETES_SERVICE_HOST` is set) without a named config file, as the
//!    Flyte 2 SDK's `init_in_cluster`: `_U_EP_OVERRIDE` the endpoint (with none, but a `_U_*`
//!    variable set, `host.docker.internal:8090`), `_U_INSECURE*` the transport;
//! 3. the `FLYTE_*` environment variables ([`mod@env`]);
//! 4. an API key ([`PlatformConfigBuilder::api_key`], else the first set of
//!    [`env::API_KEYS`]): client credentials with its client id and secret, at the endpoint it
//!    names, in lieu of the variables' and the files' (only an endpoint set explicitly wins
//!    over the key's, as in the Flyte 2 CLI). A key's secret goes only to the host the key
//!    names (any port; any loopback name for `localhost`): for an explicit endpoint on another
//!    host a key from the environment is set aside ([`ConfigSources::api_key_set_aside`]) and
//!    an explicit key is an error; and what variables and files say of a server (`tokenUrl`,
//!    `scopes`, `audience`, `authorizationHeader`, `proxyCommand`, `proxyGoogleAudience`)
//!    applies to the key only where they name its host. In a task pod, a config file named by
//!    `UCTL_CONFIG` or `FLYTECTL_CONFIG` wins over a key in the environment;
//! 5. values set explicitly on a [`PlatformConfigBuilder`].
//!
//! [`PlatformConfig::sources`] tells which file and which variables were used.
//!
//! A file found by the search, not named, may have been put there by another user (who owns
//! `/tmp/.git` and `/tmp/.flyte/config.yaml`, say). So on Unix, as git does
//! (`safe.directory`), it is used only when it is a regular file, and it and its directory
//! belong to the user (or root) and nobody else may write them; otherwise it is skipped with
//! a warning ([`ConfigSources::skipped`]). A named file is used as named; one that is not a
//! regular file (a pipe) is read for at most a few seconds.
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
//! assert_eq!(cfg.device_flow_poll_interval(), Some(std::time::Duration::from_secs(10)));
//! // Unset: the device flow's own default applies.
//! assert_eq!(cfg.device_flow_timeout(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api_key;
mod duration;
pub mod env;
#[cfg(feature = "config")]
mod file;
mod getters;
#[cfg(any(
    feature = "pkce",
    feature = "device",
    feature = "clientcreds",
    feature = "google"
))]
mod http;
#[cfg(feature = "config")]
mod ini;
mod mode;
mod settings;
mod table;
#[cfg_attr(
    not(feature = "config"),
    allow(dead_code, reason = "the search is read with the feature `config`")
)]
mod trust;
mod value;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use flyte_auth_core::{Endpoint, Error, SecretString};

pub use api_key::{ApiKey, ApiKeyError};
pub use duration::{ParseDurationError, parse_duration};
pub use mode::{AuthMode, ParseAuthModeError};
use settings::{Settings, Source};
pub use trust::SkipReason;

/// The environment, as a lookup from variable name to value.
type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// How to reach and authenticate to a Flyte server: the `admin` section of the flytectl /
/// pyflyte config file, overridden by `FLYTE_*` variables and explicit values.
///
/// Build it with [`load`](Self::load), [`load_from`](Self::load_from) or
/// [`builder`](Self::builder); see the [module documentation](self) for the order of sources.
/// A loaded config always has a valid endpoint.
///
/// An unset setting reads as `None` (or `false`, or empty), and the flow that uses it applies
/// its own default.
///
/// `Debug` shows every setting (`None` when unset) and no secret: the client secret is a
/// [`SecretString`], of the commands only the program name is shown (their arguments may
/// carry credentials), and URLs lose their user info and query.
#[derive(Clone)]
pub struct PlatformConfig {
    /// The server (also in `settings`, for `Debug`).
    endpoint: Endpoint,
    /// Every setting, merged: the resolved endpoint, flow, client id and secret included.
    settings: Settings,
    sources: ConfigSources,
    api_key: Option<ApiKeyInUse>,
    keyring_cfg: Option<PathBuf>,
}

/// Where a [`PlatformConfig`] came from: the file and the variables that were read, for
/// `flyte-auth status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigSources {
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// How that file was found: `given`, `./config.yaml`, `./.flyte/config.yaml`,
    /// `<git root>/.flyte/config.yaml`, `$UCTL_CONFIG`, `$FLYTECTL_CONFIG`, `$UNION_CONFIG`,
    /// `$UNIONAI_CONFIG`, `~/.union/config.yaml`, `~/.uctl/config.yaml`,
    /// `~/.flyte/config.yaml`, `./flytekit.config` or `~/.flyte/config`.
    pub found_by: Option<&'static str>,
    /// `true` when the file was read as flytekit's INI format.
    pub ini: bool,
    /// The names of the environment variables that were set and used (never their values).
    pub variables: Vec<String>,
    /// Files the search found but did not use, because another user could have written them
    /// or they are not regular files; each was skipped with a warning.
    pub skipped: Vec<SkippedFile>,
    /// An API key in the environment that was not used, and why.
    pub api_key_set_aside: Option<SetAsideKey>,
}

/// An API key in the environment that was not used: the endpoint chosen for this run names
/// another server (a key's secret is sent only to the server it names), or, in a task pod, a
/// config file named by `UCTL_CONFIG` or `FLYTECTL_CONFIG` wins over it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SetAsideKey {
    /// The variable that holds the key (one of [`env::API_KEYS`]).
    pub variable: &'static str,
    /// Why it was not used, in words (never the key).
    pub why: String,
}

impl fmt::Display for SetAsideKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the API key in {} is not used: {}",
            self.variable, self.why
        )
    }
}

/// A config file the search found and did not use (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// How it was found: `./config.yaml`, `<git root>/.flyte/config.yaml`, ...
    pub found_by: &'static str,
    /// Why it was not used.
    pub why: SkipReason,
}

impl SkippedFile {
    /// Why it was not used, in words: `it belongs to user id 1001, ...` or `its directory
    /// /tmp is writable by group or others (mode 1777)`.
    pub fn reason(&self) -> String {
        self.why.of_file(&self.path)
    }
}

impl fmt::Display for SkippedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (found as {}): {}; to use it anyway, name it: `--config {}` or FLYTECTL_CONFIG",
            self.path.display(),
            self.found_by,
            self.reason(),
            self.path.display()
        )
    }
}

/// An API key in use (the secret is not kept here).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyInUse {
    /// Where the key came from: the variable (`FLYTE_API_KEY`, `UNION_API_KEY`, ... one of
    /// [`env::API_KEYS`]) or `explicit setting`.
    pub origin: &'static str,
    /// The endpoint the key names (the one in use is on the same host).
    pub endpoint: String,
    /// The key's client id.
    pub client_id: String,
    /// The key's organization, if any.
    pub org: Option<String>,
}

impl PlatformConfig {
    /// Loads the config from the default file, the process environment and nothing else.
    ///
    /// Same as `PlatformConfig::builder().build()`. Only with the feature `config`.
    #[cfg(feature = "config")]
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
    ///
    /// Only with the feature `config`.
    #[cfg(feature = "config")]
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
        resolve(&inputs, &choice, Settings::default(), None)
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

    /// The flow to use (`admin.authType`; [`AuthMode::Pkce`] by default, and
    /// [`AuthMode::ClientSecret`] when a secret was found through `clientSecretLocation` or
    /// `clientSecretEnvVar` and no mode was set explicitly on the builder).
    ///
    /// A name that is not a built-in mode is [`AuthMode::Plugin`]; see
    /// [`get_authenticator`](crate::get_authenticator).
    pub fn auth_mode(&self) -> AuthMode {
        self.auth_mode_ref().clone()
    }

    /// The flow to use, by reference (no clone of a plugin's name).
    pub fn auth_mode_ref(&self) -> &AuthMode {
        // `resolve` always sets it.
        static DEFAULT: AuthMode = AuthMode::Pkce;
        self.settings.auth_mode.as_ref().unwrap_or(&DEFAULT)
    }

    /// The retry policy of `admin.maxRetries` and `admin.perRetryTimeout`, for
    /// [`HttpSettings::retry`](flyte_auth_oauth::HttpSettings::retry).
    #[cfg(any(
        feature = "pkce",
        feature = "device",
        feature = "clientcreds",
        feature = "google"
    ))]
    pub fn retry_policy(&self) -> flyte_auth_oauth::RetryPolicy {
        let mut policy = flyte_auth_oauth::RetryPolicy::new();
        if let Some(retries) = self.max_retries() {
            policy = policy.max_retries(retries);
        }
        if let Some(timeout) = self.per_retry_timeout() {
            policy = policy.per_attempt_timeout(timeout);
        }
        policy
    }

    /// The config file that was read, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.sources.file.as_deref()
    }

    /// Where the Flyte 2 SDK keeps its notebook keyring file (`keyring.cfg`) for this config:
    /// next to a config file in a folder named `.flyte` (`<dir>/.flyte/keyring.cfg`) when that
    /// file was named (`--config`, `FLYTECTL_CONFIG`, ...) or is in `~/.flyte`; `None`
    /// otherwise: the default, `~/.flyte/keyring.cfg`. A file the search found in a working
    /// tree does not choose where a refresh token is written.
    pub fn sdk_keyring_cfg(&self) -> Option<PathBuf> {
        self.keyring_cfg.clone()
    }

    /// The file and the variables this config was read from.
    pub fn sources(&self) -> &ConfigSources {
        &self.sources
    }

    /// The API key in use, if any ([`PlatformConfigBuilder::api_key`] or one of
    /// [`env::API_KEYS`]; [`ApiKeyInUse::origin`] says which).
    pub fn api_key(&self) -> Option<&ApiKeyInUse> {
        self.api_key.as_ref()
    }

    /// Checks that the settings [`auth_mode`](Self::auth_mode) needs are present (a client id
    /// and secret for `ClientSecret`, a command for `ExternalCommand`, ...), which loading does
    /// not, so that an incomplete config can still be shown. The checks are the flows' own: this
    /// builds the authenticator [`get_authenticator`](crate::get_authenticator) would (touching
    /// neither the network nor a store), so a mode this program was built without fails too; a
    /// [`AuthMode::Plugin`] passes.
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
        if let AuthMode::Plugin(_) = self.auth_mode_ref() {
            return Ok(());
        }
        crate::get_authenticator_with(self, None, &crate::FactoryOptions::default()).map(drop)
    }
}

impl fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("settings", &self.settings)
            .field("sources", &self.sources)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Which config file to read.
#[derive(Debug, Clone, Default)]
enum FileChoice {
    /// `$FLYTECTL_CONFIG`, else `~/.flyte/config.yaml`.
    #[cfg_attr(feature = "config", default)]
    #[cfg(feature = "config")]
    Default,
    /// This file, which must exist.
    #[cfg(feature = "config")]
    Path(PathBuf),
    /// None.
    #[cfg_attr(not(feature = "config"), default)]
    Skip,
}

impl FileChoice {
    /// A file given to the builder (or [`PlatformConfig::load_from`]).
    fn is_given(&self) -> bool {
        #[cfg(feature = "config")]
        if let Self::Path(_) = self {
            return true;
        }
        false
    }
}

/// Builds a [`PlatformConfig`]: which file, which environment, and explicit values.
///
/// Values set here override the file and the environment; every setting has a method of the
/// same name as its getter on [`PlatformConfig`]. A client secret set here is used
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
    /// The endpoint as given, parsed by `build`.
    endpoint: Option<String>,
    explicit: Settings,
    api_key: Option<SecretString>,
}

impl fmt::Debug for PlatformConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformConfigBuilder")
            .field("file", &self.file)
            .field("env", &self.env.as_ref().map_or("process", |_| "custom"))
            .finish_non_exhaustive()
    }
}

impl PlatformConfigBuilder {
    /// Reads this file (YAML, or flytekit's INI format) instead of searching; it must exist.
    /// Only with the feature `config`.
    #[cfg(feature = "config")]
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
    /// the variable named by `clientSecretEnvVar` (without the feature `config`, only for
    /// that one).
    pub fn env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Some(Box::new(env));
        self
    }

    /// Searches `./config.yaml`, `./.flyte/config.yaml` and the git root from `dir` instead
    /// of the process's current directory. With a custom [`env`](Self::env) and no directory
    /// set here, those three places are not searched. Only with the feature `config`.
    #[cfg(feature = "config")]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// A Flyte 2 API key (what `FLYTE_API_KEY` holds), used instead of that variable: it
    /// selects client credentials with its client id and secret, and names the endpoint
    /// unless [`endpoint`](Self::endpoint) is set. [`build`](Self::build) fails for a key that
    /// does not decode, or with an `endpoint` on another host (the key's secret goes only to
    /// the host it names).
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Uses an empty environment.
    pub fn no_env(self) -> Self {
        self.env(|_| None)
    }

    /// Reads the file and the environment, applies the explicit values and checks the result.
    pub fn build(self) -> Result<PlatformConfig, Error> {
        let process_env = |name: &str| std::env::var(name).ok();
        let process = self.env.is_none();
        let inputs = Inputs {
            env: match &self.env {
                Some(env) => env.as_ref(),
                None => &process_env,
            },
            process_env: process,
            cwd: (self.current_dir.clone()).or_else(|| process.then(std::env::current_dir)?.ok()),
        };
        let mut explicit = self.explicit;
        if let Some(endpoint) = &self.endpoint {
            explicit.endpoint = Some(Endpoint::parse(endpoint).map_err(|e| match e {
                Error::Config { message } => Source::Explicit.error("endpoint", message),
                other => other,
            })?);
        }
        resolve(&inputs, &self.file, explicit, self.api_key.as_ref())
    }
}

/// Where the inputs of a load come from.
#[cfg_attr(
    not(feature = "config"),
    allow(dead_code, reason = "the search is read with the feature `config`")
)]
struct Inputs<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The process environment: the platform's home directory is a fallback for `HOME`.
    process_env: bool,
    /// The directory `./config.yaml` and the git root are searched from; none: not searched.
    cwd: Option<PathBuf>,
}

/// A config file that was read.
#[cfg_attr(
    not(feature = "config"),
    allow(dead_code, reason = "files are read with the feature `config`")
)]
struct FileRead {
    path: PathBuf,
    found_by: &'static str,
    ini: bool,
    settings: Settings,
    /// The Flyte 2 SDK's `keyring.cfg` for this file, when not the default.
    keyring_cfg: Option<PathBuf>,
}

/// What happened to the config file.
#[cfg_attr(
    not(feature = "config"),
    allow(dead_code, reason = "files are read with the feature `config`")
)]
enum FileOutcome {
    Read(Box<FileRead>),
    /// Nothing found; these were looked for.
    NotFound(Vec<PathBuf>),
    /// No file was to be read.
    Skipped,
}

#[cfg(feature = "config")]
/// `~` by `env`'s `HOME` or `USERPROFILE`; with the process environment, the platform's home
/// directory when neither is set.
fn home_dir(env: &dyn Fn(&str) -> Option<String>, process_env: bool) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .or_else(|| env("USERPROFILE").filter(|h| !h.is_empty()))
        .map(PathBuf::from)
        .or_else(|| if process_env { dirs::home_dir() } else { None })
}

#[cfg(feature = "config")]
/// The nearest directory at or above `dir` holding `.git` (a directory, or a file for a
/// worktree), as `git rev-parse --show-toplevel` finds it; not above `home`, and not on
/// another file system.
fn git_root(dir: &Path, home: Option<&Path>) -> Option<PathBuf> {
    trust::walk_up(dir, home)
        .into_iter()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

#[cfg(feature = "config")]
/// The places searched when no file is given, in order: `(path, how it was found, named)`.
/// A path named by a variable must exist and is used whoever owns it; the others are used
/// only when they may be trusted.
fn search_path(inputs: &Inputs<'_>, home: Option<&Path>) -> Vec<(PathBuf, &'static str, bool)> {
    let found =
        |dir: Option<&Path>, rel: &str, found_by| dir.map(|d| (d.join(rel), found_by, false));
    let cwd = inputs.cwd.as_deref();
    let root = cwd.and_then(|cwd| git_root(cwd, home));
    let named = [
        (env::UCTL_CONFIG, "$UCTL_CONFIG"),
        (env::FLYTECTL_CONFIG, "$FLYTECTL_CONFIG"),
        (env::UNION_CONFIG, "$UNION_CONFIG"),
        (env::UNIONAI_CONFIG, "$UNIONAI_CONFIG"),
    ]
    .map(|(name, found_by)| {
        let path = (inputs.env)(name).filter(|p| !p.trim().is_empty())?;
        Some((PathBuf::from(path), found_by, true))
    });
    [
        found(cwd, "config.yaml", "./config.yaml"),
        found(cwd, ".flyte/config.yaml", "./.flyte/config.yaml"),
        found(
            root.as_deref(),
            ".flyte/config.yaml",
            "<git root>/.flyte/config.yaml",
        ),
    ]
    .into_iter()
    .chain(named)
    .chain([
        found(home, ".union/config.yaml", "~/.union/config.yaml"),
        found(home, ".uctl/config.yaml", "~/.uctl/config.yaml"),
        found(home, ".flyte/config.yaml", "~/.flyte/config.yaml"),
        // flytekit's INI files, only when no YAML file exists.
        found(cwd, "flytekit.config", "./flytekit.config"),
        found(home, ".flyte/config", "~/.flyte/config"),
    ])
    .flatten()
    .collect()
}

#[cfg(not(feature = "config"))]
fn read_config_file(
    _: &Inputs<'_>,
    _: &FileChoice,
    _: &mut Vec<SkippedFile>,
) -> Result<FileOutcome, Error> {
    Ok(FileOutcome::Skipped)
}

#[cfg(feature = "config")]
/// Reads the config file `choice` says, recording in `skipped` the files the search found
/// and did not use.
fn read_config_file(
    inputs: &Inputs<'_>,
    choice: &FileChoice,
    skipped: &mut Vec<SkippedFile>,
) -> Result<FileOutcome, Error> {
    let home = home_dir(inputs.env, inputs.process_env);
    let places = match choice {
        FileChoice::Skip => return Ok(FileOutcome::Skipped),
        FileChoice::Path(path) => vec![(path.clone(), "given", true)],
        FileChoice::Default => search_path(inputs, home.as_deref()),
    };
    // A file the search finds that a variable also names is the user's choice.
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let named_too = |path: &Path| {
        places
            .iter()
            .any(|(other, _, named)| *named && same(path, other))
    };
    for (path, found_by, named) in &places {
        let named = *named || named_too(path);
        let text = if named {
            trust::read_named(path, MAX_CONFIG_FILE_BYTES)
        } else {
            match trust::read_found(path, MAX_CONFIG_FILE_BYTES) {
                Ok(trust::Found::Text(text)) => Ok(text),
                Ok(trust::Found::Missing) => {
                    tracing::trace!(path = %path.display(), "no Flyte config file here");
                    continue;
                }
                Ok(trust::Found::Untrusted(why)) => {
                    let file = SkippedFile {
                        path: path.clone(),
                        found_by,
                        why,
                    };
                    tracing::warn!("skipping the Flyte config file {file}");
                    skipped.push(file);
                    continue;
                }
                Err(e) => Err(e),
            }
        }
        .map_err(|e| {
            let named_by = match *found_by {
                "given" => String::new(),
                by => format!(" (named by {})", by.trim_start_matches('$')),
            };
            Error::config(format!(
                "cannot read config file {}{named_by}: {e}",
                path.display()
            ))
        })?;
        tracing::debug!(path = %path.display(), found_by, "read the Flyte config file");
        let ini = is_ini(path, &text);
        let settings = if ini {
            ini::parse(path, &text)?
        } else {
            file::parse(path, &text)?
        };
        let source = Source::File(path.clone());
        let in_working_tree = found_by.starts_with("./") || found_by.starts_with("<git root>");
        if !named && in_working_tree && !in_home(path, home.as_deref()) {
            refuse_reaching_out(&settings, &source)?;
        }
        return Ok(FileOutcome::Read(Box::new(FileRead {
            settings: settings.checked(&source)?,
            keyring_cfg: keyring_cfg_beside(path, named, home.as_deref()),
            path: path.clone(),
            found_by,
            ini,
        })));
    }
    Ok(FileOutcome::NotFound(
        places.into_iter().map(|(path, ..)| path).collect(),
    ))
}

#[cfg(feature = "config")]
/// Whether `path` is in the home directory or its `.flyte` folder: the user's own config, not
/// one that came with a working tree.
fn in_home(path: &Path, home: Option<&Path>) -> bool {
    let folder = path.parent();
    home.is_some_and(|home| folder == Some(home) || folder == Some(&*home.join(".flyte")))
}

#[cfg(feature = "config")]
/// A config file the search found in a working tree (`./config.yaml`, `./.flyte/`, the git
/// root's `.flyte/`) may have come with a cloned repository: it may say where the server is
/// and how to log in, but not run a program, read a secret from elsewhere or choose whom the
/// connection trusts and goes through (which would hand the repository's author the user's
/// shell, files or tokens). Such settings are a config error naming the file and how to use it
/// anyway (name it).
fn refuse_reaching_out(settings: &Settings, source: &Source) -> Result<(), Error> {
    let reaching = [
        ("command", settings.command.is_some()),
        ("proxy_command", settings.proxy_command.is_some()),
        (
            "client_secret_location",
            settings.client_secret_location.is_some(),
        ),
        (
            "client_secret_env_var",
            settings.client_secret_env_var.is_some(),
        ),
        (
            "insecure_skip_verify",
            settings.insecure_skip_verify == Some(true),
        ),
        ("ca_cert_file_path", settings.ca_cert_file_path.is_some()),
        ("http_proxy_url", settings.http_proxy_url.is_some()),
    ];
    match reaching.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(source.error(
            field,
            "a config file found in the working tree may not run a program, read a secret \
             from elsewhere or change whom the connection trusts (it may have come with a \
             cloned repository); to use it, name it: --config <file> or FLYTECTL_CONFIG=<file>",
        )),
        None => Ok(()),
    }
}

#[cfg(feature = "config")]
/// Where the Flyte 2 SDK keeps `keyring.cfg` for the config file `path`: beside it in a
/// `.flyte` folder. Only for a file the user named or one in the home's `.flyte`: a file the
/// search found in a working tree must not choose where a refresh token is written.
fn keyring_cfg_beside(path: &Path, named: bool, home: Option<&Path>) -> Option<PathBuf> {
    let folder = path.parent()?;
    let chosen = named || home.is_some_and(|home| folder == home.join(".flyte"));
    (chosen && folder.file_name()? == ".flyte").then(|| folder.join("keyring.cfg"))
}

#[cfg(feature = "config")]
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

/// The endpoint of a task pod whose `_U_*` variables name none (the Flyte 2 SDK's default).
const TASK_POD_DEFAULT_ENDPOINT: &str = "host.docker.internal:8090";

/// Merges file < task pod < environment < explicit, with an API key's endpoint over the task
/// pod's and a found file's and its credentials over all but the explicit ones; resolves the
/// client secret and the mode.
fn resolve(
    inputs: &Inputs<'_>,
    choice: &FileChoice,
    explicit: Settings,
    explicit_api_key: Option<&SecretString>,
) -> Result<PlatformConfig, Error> {
    let env = inputs.env;
    let explicit = explicit.checked(&Source::Explicit)?;
    let (env_layer, used) = env::read(env)?;
    let env_source = Source::Env(used.clone());
    let env_layer = env_layer.checked(&env_source)?;
    let mut variables: Vec<String> = used.iter().map(|v| (*v).to_owned()).collect();
    let mut skipped = Vec::new();
    let outcome = read_config_file(inputs, choice, &mut skipped)?;
    let file_read = match &outcome {
        FileOutcome::Read(read) => Some(&**read),
        _ => None,
    };
    let file_layer = file_read.map(|r| r.settings.clone()).unwrap_or_default();
    let named_by = file_read.and_then(|r| r.found_by.strip_prefix('$'));
    variables.extend(named_by.map(str::to_owned));
    let file_source = Source::File(file_read.map(|r| r.path.clone()).unwrap_or_default());

    // In a task pod without a named config file, the `_U_*` variables apply.
    let pod = env::in_task_pod(env);
    let (pod_layer, pod_used) = if pod && named_by.is_none() && !choice.is_given() {
        env::read_task_pod(env)?
    } else {
        (Settings::default(), Vec::new())
    };
    variables.extend(pod_used.iter().map(|v| (*v).to_owned()));

    // The endpoint chosen for this run: only one set explicitly wins over a key's, as in the
    // Flyte 2 CLI; a key supplies the endpoint in lieu of the variables and config files.
    let layers = [
        (&explicit, &Source::Explicit),
        (&env_layer, &env_source),
        (&file_layer, &file_source),
    ];
    let chosen = explicit
        .endpoint
        .as_ref()
        .map(|endpoint| (&explicit, endpoint, &Source::Explicit));
    let pod_file = named_by.filter(|var| pod && matches!(*var, "UCTL_CONFIG" | "FLYTECTL_CONFIG"));
    let (api_key, set_aside) = api_key::key_in_use(
        env,
        explicit_api_key,
        chosen.map(|(_, endpoint, source)| (endpoint, source)),
        pod_file,
    )?;
    if explicit_api_key.is_none()
        && let Some((_, origin)) = &api_key
    {
        variables.push((*origin).to_owned());
    }

    // The source that set a setting, for errors naming it.
    let source_of = |is_set: fn(&Settings) -> bool| {
        layers
            .iter()
            .find(|(layer, _)| is_set(layer))
            .map(|(_, source)| *source)
    };
    // With a key, the variables and files speak of the key's server only where they name its
    // host: elsewhere their token URL, scopes, audience, header and proxy are another server's
    // (or nobody's in particular), and would send the key's secret or a proxy's token where
    // the key does not belong.
    let for_key_server = |layer: &Settings, source: &Source| {
        let Some((key, _)) = &api_key else {
            return layer.clone();
        };
        let key = key.endpoint();
        if layer
            .endpoint
            .as_ref()
            .is_some_and(|e| api_key::same_host(key, e))
        {
            return layer.clone();
        }
        let (layer, dropped) = layer.clone().without_server_settings();
        if !dropped.is_empty() {
            tracing::info!(
                from = %source.name("endpoint"),
                settings = %dropped.join(", "),
                "not used with the API key for {}: they do not name its server",
                key.host()
            );
        }
        layer
    };
    let mut settings = explicit
        .clone()
        .or(for_key_server(&env_layer, &env_source))
        .or(for_key_server(&pod_layer, &env_source))
        .or(for_key_server(&file_layer, &file_source));
    let endpoint = match (chosen, &api_key, settings.endpoint.take()) {
        (Some((_, endpoint, _)), ..) => endpoint.clone(),
        (None, Some((key, _)), _) => key.endpoint().clone(),
        (None, None, Some(endpoint)) => endpoint,
        // The Flyte 2 SDK's default in a Union task pod.
        (None, None, None) if !pod_used.is_empty() => Endpoint::parse(TASK_POD_DEFAULT_ENDPOINT)?,
        (None, None, None) => {
            return Err(Error::config(no_endpoint_message(&outcome, &skipped)));
        }
    };
    if api_key.is_some() {
        // The transport a key's server is reached by: only what the user set for this run,
        // where the endpoint was chosen, or in the task pod (`_U_INSECURE*`, as the Flyte 2
        // SDK); never an `insecure` meant for another server, which would send the key's
        // secret in clear text.
        let trusted = [
            Some(&explicit),
            chosen.map(|(layer, ..)| layer),
            Some(&pod_layer),
        ];
        let first =
            |get: fn(&Settings) -> Option<bool>| trusted.into_iter().flatten().find_map(get);
        settings.insecure = first(|l| l.insecure);
        settings.insecure_skip_verify = first(|l| l.insecure_skip_verify);
    }

    // The client secret, in flytekit's order: FLYTE_CREDENTIALS_CLIENT_SECRET (or the INI
    // file's client_secret), replaced by the content of clientSecretLocation, replaced by the
    // variable clientSecretEnvVar names. Finding it through either of the last two switches
    // the mode to client credentials. An API key's secret replaces all of them; an explicit
    // one wins over everything.
    let mut found_via = None;
    if explicit.client_secret.is_some() {
        // Used as given.
    } else if let Some((key, origin)) = &api_key {
        settings.client_secret = Some(key.client_secret.clone());
        found_via = Some(format!("the API key from {origin}"));
    } else {
        if let Some(path) = &settings.client_secret_location
            && let Some(source) = source_of(|l| l.client_secret_location.is_some())
            && let Some(secret) = read_secret_file(path, source)?
        {
            settings.client_secret = Some(secret);
            found_via = Some(source.name("client_secret_location"));
        }
        if let Some(var) = &settings.client_secret_env_var
            && let Some(source) = source_of(|l| l.client_secret_env_var.is_some())
        {
            match env(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                Some(secret) => {
                    settings.client_secret = Some(SecretString::from(secret));
                    found_via = Some(source.name("client_secret_env_var"));
                    variables.push(var.clone());
                }
                None => tracing::debug!(
                    variable = %var,
                    "the client secret variable named by {} is not set",
                    source.name("client_secret_env_var")
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
    settings.auth_mode = Some(auth_mode);
    if explicit.client_id.is_none()
        && let Some((key, _)) = &api_key
    {
        settings.client_id = Some(key.client_id.clone());
    }

    check_one_proxy(&settings, source_of)?;

    let endpoint = endpoint.with_insecure(settings.insecure.unwrap_or(false));
    settings.endpoint = Some(endpoint.clone());
    Ok(PlatformConfig {
        endpoint,
        settings,
        sources: ConfigSources {
            file: file_read.map(|r| r.path.clone()),
            found_by: file_read.map(|r| r.found_by),
            ini: file_read.is_some_and(|r| r.ini),
            variables,
            skipped,
            api_key_set_aside: set_aside,
        },
        api_key: api_key.map(|(key, origin)| ApiKeyInUse {
            origin,
            endpoint: key.endpoint,
            client_id: key.client_id,
            org: key.org,
        }),
        keyring_cfg: file_read.and_then(|r| r.keyring_cfg.clone()),
    })
}

/// One source of the `proxy-authorization` token: `proxyCommand` and `proxyGoogleAudience`
/// together are an error naming both where they were set (each from any layer: a flag does
/// not silently replace the file's other proxy setting).
fn check_one_proxy<'a>(
    settings: &Settings,
    source_of: impl Fn(fn(&Settings) -> bool) -> Option<&'a Source>,
) -> Result<(), Error> {
    let command = settings
        .proxy_command
        .as_ref()
        .is_some_and(|c| !c.is_empty());
    if !(command && settings.proxy_google_audience.is_some()) {
        return Ok(());
    }
    let name = |is_set: fn(&Settings) -> bool, field: &str| {
        source_of(is_set).map_or_else(|| format!("`{field}`"), |source| source.name(field))
    };
    Err(Error::config(format!(
        "both {} and {} are set: the `proxy-authorization` token comes from one of them; \
         remove one",
        name(|l| l.proxy_command.is_some(), "proxy_command"),
        name(
            |l| l.proxy_google_audience.is_some(),
            "proxy_google_audience"
        ),
    )))
}

/// The largest config file read; flytectl's are a few hundred bytes.
#[cfg(feature = "config")]
const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;
/// The largest client secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The secret in `path`, without surrounding white space (as the Go client reads it);
/// `None` when nothing else is left.
fn read_secret_file(path: &Path, source: &Source) -> Result<Option<SecretString>, Error> {
    let text = trust::read_named(path, MAX_SECRET_FILE_BYTES).map_err(|e| {
        source.error(
            "client_secret_location",
            format!("cannot read the client secret file {}: {e}", path.display()),
        )
    })?;
    let secret = text.trim();
    Ok((!secret.is_empty()).then(|| SecretString::from(secret.to_owned())))
}

fn no_endpoint_message(outcome: &FileOutcome, skipped: &[SkippedFile]) -> String {
    if !cfg!(feature = "config") {
        return "no Flyte endpoint is configured: set one with PlatformConfigBuilder::endpoint \
                or an API key (this build of flyte-auth reads no config file and no \
                environment: its feature `config` is off)"
            .to_owned();
    }
    let mut file = match outcome {
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
    for skipped in skipped {
        file.push_str(&format!(" (skipped {skipped})"));
    }
    format!(
        "no Flyte endpoint is configured: set admin.endpoint (such as \
         `dns:///flyte.example.org:443`) {file}, or {}, or {}",
        env::PLATFORM_URL,
        env::API_KEY
    )
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn unset_settings_stay_unset_and_the_flows_defaults_are_flytectls() {
        let cfg = PlatformConfig::for_endpoint("localhost:30080").unwrap();
        assert_eq!(cfg.auth_mode(), AuthMode::Pkce);
        assert!(!cfg.insecure() && !cfg.insecure_skip_verify());
        // The config does not restate the flows' defaults: the factory leaves them to the
        // crate that owns each.
        for unset in [
            cfg.pkce_timeout(),
            cfg.pkce_refresh_time(),
            cfg.device_flow_timeout(),
            cfg.device_flow_poll_interval(),
            cfg.device_flow_refresh_time(),
            cfg.command_timeout(),
            cfg.per_retry_timeout(),
        ] {
            assert_eq!(unset, None);
        }
        assert_eq!(
            flyte_auth_core::DEFAULT_REFRESH_MARGIN,
            Duration::from_secs(300)
        );
        #[cfg(feature = "pkce")]
        assert_eq!(
            flyte_auth_pkce::DEFAULT_LOGIN_TIMEOUT,
            Duration::from_secs(120)
        );
        #[cfg(feature = "device")]
        {
            assert_eq!(
                flyte_auth_device::DEFAULT_LOGIN_TIMEOUT,
                Duration::from_secs(600)
            );
            assert_eq!(
                flyte_auth_device::DEFAULT_DEVICE_POLL_INTERVAL,
                Duration::from_secs(5)
            );
        }
        #[cfg(feature = "command")]
        assert_eq!(flyte_auth_command::DEFAULT_TIMEOUT, Duration::from_secs(30));
        assert!(cfg.scopes().is_empty() && cfg.command().is_empty());
        assert!(cfg.config_file().is_none());
    }

    #[cfg(feature = "config")]
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
            debug.contains(r#"command: Some(["get-token", <2 arguments>])"#),
            "{debug}"
        );
        assert!(
            debug.contains(r#"proxy_command: Some(["proxy-token"])"#),
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

    /// Without the feature `config`, nothing outside the program is read: not the `FLYTE_*`
    /// variables, not an API key in the environment, not a task pod's variables; the
    /// variable an explicit `client_secret_env_var` names is.
    #[cfg(not(feature = "config"))]
    #[test]
    fn without_the_config_feature_only_explicit_values_count() {
        let env = env_of(&[
            ("FLYTE_PLATFORM_URL", "env.example.org"),
            ("FLYTE_CREDENTIALS_CLIENT_ID", "env-client"),
            (
                "UNION_API_KEY",
                "ZW52LmV4YW1wbGUub3JnOnN2YzpzM2NyZXQ6Tm9uZQ",
            ),
            ("_U_EP_OVERRIDE", "pod.example.org"),
            ("MY_SECRET", "from-the-variable"),
        ]);
        let err = PlatformConfig::builder()
            .env(env_of(&[("FLYTE_PLATFORM_URL", "x")]))
            .build();
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("no Flyte endpoint is configured"),
            "FLYTE_PLATFORM_URL was read"
        );
        let cfg = PlatformConfig::builder()
            .env(env)
            .endpoint("flyte.example.org")
            .client_secret_env_var("MY_SECRET")
            .build()
            .unwrap();
        assert_eq!(cfg.endpoint().key(), "flyte.example.org");
        assert_eq!(cfg.client_id(), None);
        assert!(cfg.api_key().is_none());
        assert_eq!(
            cfg.client_secret().unwrap().expose_secret(),
            "from-the-variable"
        );
        assert_eq!(cfg.sources().variables, ["MY_SECRET"]);
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
