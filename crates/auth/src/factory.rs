//! [`get_authenticator`]: the authenticator a [`PlatformConfig`] asks for, built the way
//! flytekit's `get_authenticator` builds it, and [`proxy_authenticator`] for `proxyCommand`.
//!
//! See [`get_authenticator_with`] for which setting is used for what.

use std::{fmt, sync::Arc, time::Duration};

use flyte_auth_core::{Authenticator, ClientConfigStore, Error, TokenStore};

use crate::{AuthMode, AuthenticatorRegistry, PlatformConfig};

/// What a program adds to the platform config when it asks for an authenticator: how the
/// interactive flows talk to the user, transport overrides, and where plugins are looked up.
///
/// Start from [`FactoryOptions::new`] (same as `Default`) and chain setters; every setting is
/// optional. Setters of flow-specific types exist only with the flow's feature.
///
/// ```
/// use std::time::Duration;
/// use flyte_auth::FactoryOptions;
///
/// let options = FactoryOptions::new()
///     .no_browser(true)                              // print the login URL only
///     .request_timeout(Duration::from_secs(10))      // every OAuth request
///     .command_timeout(Duration::from_secs(20));     // `command` / `proxyCommand`
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
#[must_use]
pub struct FactoryOptions {
    no_browser: bool,
    request_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    command_timeout: Option<Duration>,
    interactive_command: bool,
    store_command_token: bool,
    cfg_store: Option<Arc<dyn ClientConfigStore>>,
    registry: Option<Arc<AuthenticatorRegistry>>,
    #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
    http_client: Option<flyte_auth_oauth::OAuthClient>,
    #[cfg(feature = "pkce")]
    browser: Option<flyte_auth_pkce::BrowserOpener>,
    #[cfg(feature = "pkce")]
    login_prompt: Option<flyte_auth_pkce::LoginPrompt>,
    #[cfg(feature = "device")]
    device_prompt: Option<flyte_auth_device::PromptCallback>,
}

impl fmt::Debug for FactoryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("FactoryOptions");
        s.field("no_browser", &self.no_browser)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .field("command_timeout", &self.command_timeout)
            .field("interactive_command", &self.interactive_command)
            .field("store_command_token", &self.store_command_token)
            .field("cfg_store", &self.cfg_store)
            .field("registry", &self.registry);
        #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
        s.field("http_client", &self.http_client);
        #[cfg(feature = "pkce")]
        s.field("browser", &self.browser.as_ref().map(|_| "custom"))
            .field(
                "login_prompt",
                &self.login_prompt.as_ref().map(|_| "custom"),
            );
        #[cfg(feature = "device")]
        s.field(
            "device_prompt",
            &self.device_prompt.as_ref().map(|_| "custom"),
        );
        s.finish()
    }
}

impl FactoryOptions {
    /// Every option at its default: the system browser, the config's transport settings with
    /// the HTTP client's default time-outs, prompts on standard error, the global registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Browser login: open no browser, only show the URL (on standard error, or through
    /// [`login_prompt`](Self::login_prompt)) for the user to open. For SSH sessions and
    /// other machines where opening a browser makes no sense.
    pub fn no_browser(mut self, no_browser: bool) -> Self {
        self.no_browser = no_browser;
        self
    }

    /// Time-out of each OAuth request, body included: discovery, token, device and refresh
    /// requests (the HTTP client's default, 30 s, otherwise).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Time-out of establishing each OAuth connection (the HTTP client's default, 10 s,
    /// otherwise).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` of the OAuth requests (`flyte-auth/<version>` otherwise).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// How long `command` and `proxyCommand` may run (30 s otherwise).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = Some(timeout);
        self
    }

    /// Lets `command` talk to the user on the terminal (stdin inherited; an MFA prompt, say).
    /// Off by default.
    pub fn interactive_command(mut self, interactive: bool) -> Self {
        self.interactive_command = interactive;
        self
    }

    /// Also keep the token `command` printed in the token store. Off by default, as in
    /// flytekit: the command usually caches its own token, and running it again is cheap.
    /// Browser, device and client-credentials tokens always go to the store when one is given.
    pub fn store_command_token(mut self, store: bool) -> Self {
        self.store_command_token = store;
        self
    }

    /// Where the OAuth client configuration comes from, instead of the Flyte server's
    /// discovery documents (for a server without them, or tests). `tokenUrl`, `scopes`,
    /// `audience` and `authorizationHeader` of the config still win over it.
    pub fn client_config_store(mut self, store: Arc<dyn ClientConfigStore>) -> Self {
        self.cfg_store = Some(store);
        self
    }

    /// Looks plugin auth types up in `registry` instead of
    /// [`AuthenticatorRegistry::global`].
    pub fn registry(mut self, registry: Arc<AuthenticatorRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Sends every OAuth request through `client` instead of one built from the config's
    /// transport settings (then [`request_timeout`](Self::request_timeout),
    /// [`connect_timeout`](Self::connect_timeout) and [`user_agent`](Self::user_agent) are
    /// not used either).
    #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
    pub fn http_client(mut self, client: flyte_auth_oauth::OAuthClient) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Browser login: how the authorization URL is opened (the system browser otherwise).
    /// [`no_browser`](Self::no_browser) wins over it.
    #[cfg(feature = "pkce")]
    pub fn browser(mut self, browser: flyte_auth_pkce::BrowserOpener) -> Self {
        self.browser = Some(browser);
        self
    }

    /// Browser login: how the user is told where to log in (standard error otherwise).
    #[cfg(feature = "pkce")]
    pub fn login_prompt(mut self, prompt: flyte_auth_pkce::LoginPrompt) -> Self {
        self.login_prompt = Some(prompt);
        self
    }

    /// Device login: how the user is shown the URL and code (standard error otherwise).
    /// Called once per device login; it should return at once.
    #[cfg(feature = "device")]
    pub fn device_prompt(
        mut self,
        prompt: impl Fn(&flyte_auth_device::DevicePrompt) + Send + Sync + 'static,
    ) -> Self {
        self.device_prompt = Some(Arc::new(prompt));
        self
    }

    /// The registry plugin auth types are looked up in.
    fn registry_ref(&self) -> &AuthenticatorRegistry {
        self.registry
            .as_deref()
            .unwrap_or_else(|| AuthenticatorRegistry::global())
    }
}

/// The authenticator `cfg` asks for, with default [`FactoryOptions`]: flytekit's
/// `get_authenticator`.
///
/// `store` is where browser, device and client-credentials logins persist (a
/// `flyte_auth::store::DefaultStore`, say); `None` keeps them in this process only. See
/// [`get_authenticator_with`].
///
/// ```
/// use flyte_auth::{AuthMode, PlatformConfig, get_authenticator};
///
/// let cfg = PlatformConfig::builder()
///     .no_config_file()
///     .no_env()
///     .endpoint("dns:///flyte.example.org")
///     .auth_mode(AuthMode::ExternalCommand)
///     .command(["gcloud", "auth", "print-identity-token"])
///     .build()?;
/// let auth = get_authenticator(&cfg, None)?; // runs nothing yet
/// assert!(format!("{auth:?}").starts_with("CommandAuthenticator"));
/// # Ok::<(), flyte_auth::Error>(())
/// ```
pub fn get_authenticator(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
) -> Result<Arc<dyn Authenticator>, Error> {
    get_authenticator_with(cfg, store, &FactoryOptions::default())
}

/// The authenticator `cfg` asks for, with `options`.
///
/// What comes from where:
///
/// | setting | used for |
/// | --- | --- |
/// | `authType` | the flow; a name that is not built in is looked up in the [`AuthenticatorRegistry`] |
/// | `endpoint`, `insecure` | the key of stored tokens; discovery from `https://endpoint` (`http://` when insecure) |
/// | `caCertFilePath`, `insecureSkipVerify`, `httpProxyURL` | the one HTTP client every OAuth request goes through: discovery, token, device and refresh requests |
/// | `tokenUrl` | the token endpoint, instead of the discovered one; client credentials then need no discovery at all |
/// | `authorizationHeader` | the header the token goes in, instead of the discovered `authorization_metadata_key` |
/// | `scopes`, `audience` | instead of the discovered ones, when set |
/// | `clientId`, secret | client credentials (browser and device logins use the server's public client id) |
/// | `command` | the external command |
/// | `pkceConfig.timeout` / `.refreshTime` | how long the browser login waits; refresh margin |
/// | `deviceFlowConfig.pollInterval` / `.timeout` / `.refreshTime` | device polling; refresh margin |
/// | `proxyCommand` | [`proxy_authenticator`]: a second header, `proxy-authorization` |
///
/// Building an authenticator touches neither the network nor the token store (the CA file is
/// read, to build the HTTP client): discovery, logins and store reads happen on the first
/// [`Authenticator::get_credentials`].
///
/// The flow for each auth type:
///
/// | `auth_mode` | authenticator (`{:?}` names it) | needs the feature |
/// | --- | --- | --- |
/// | [`AuthMode::Pkce`] | `PKCEAuthenticator` | `pkce` |
/// | [`AuthMode::ClientSecret`] | `ClientCredentialsAuthenticator` | `clientcreds` |
/// | [`AuthMode::DeviceFlow`] | `DeviceCodeAuthenticator` | `device` |
/// | [`AuthMode::ExternalCommand`] | `CommandAuthenticator` | `command` |
/// | [`AuthMode::Plugin`] | what the registered factory returns | — |
///
/// Touches neither the network nor `store`.
///
/// # Errors
///
/// [`Error::Config`] when the settings the mode needs are missing
/// ([`PlatformConfig::validate`]), a header name or the CA file is invalid, the program was
/// built without the mode's feature, or a plugin name is not registered (the message lists
/// the built-in names and the registered ones). A plugin factory's own error is returned
/// as is.
pub fn get_authenticator_with(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    let mode = cfg.auth_mode_ref();
    if let AuthMode::Plugin(name) = mode {
        let registry = options.registry_ref();
        if !registry.contains(name) {
            return Err(registry.unknown(name));
        }
        return registry.create(name, cfg, store);
    }
    cfg.validate()?;
    tracing::debug!(mode = %mode, endpoint = %cfg.endpoint(), "creating the authenticator");
    match mode {
        AuthMode::Pkce => pkce(cfg, store, options),
        AuthMode::ClientSecret => client_credentials(cfg, store, options),
        AuthMode::DeviceFlow => device(cfg, store, options),
        AuthMode::ExternalCommand => command(cfg, store, options),
        AuthMode::Plugin(_) => unreachable!("handled above"),
    }
}

/// The authenticator for `proxyCommand`, when the config has one: a
/// `flyte_auth::command::CommandAuthenticator` sending its token in `proxy-authorization`,
/// for an authenticating proxy in front of Flyte (flytekit's `proxy_authenticator`).
///
/// Its token is kept in memory only, never in a store (it would share the endpoint's key
/// with the main token). Send its header next to the main one: `AuthLayer::with_proxy`
/// (feature `tower`) and `AuthenticatedClient::with_proxy` (feature `reqwest`) do that.
///
/// `Ok(None)` when `proxyCommand` is not set. Runs nothing yet.
///
/// # Errors
///
/// [`Error::Config`] when the program was built without the `command` feature and a
/// `proxyCommand` is set.
///
/// ```
/// use flyte_auth::{PlatformConfig, proxy_authenticator};
///
/// let cfg = PlatformConfig::builder()
///     .no_config_file()
///     .no_env()
///     .endpoint("flyte.example.org:443")
///     .proxy_command(["iap-token", "--audience", "flyte"])
///     .build()?;
/// let proxy = proxy_authenticator(&cfg)?.expect("proxyCommand is set");
/// assert!(format!("{proxy:?}").contains("proxy-authorization"));
/// # Ok::<(), flyte_auth::Error>(())
/// ```
pub fn proxy_authenticator(cfg: &PlatformConfig) -> Result<Option<Arc<dyn Authenticator>>, Error> {
    proxy_authenticator_with(cfg, &FactoryOptions::default())
}

/// [`proxy_authenticator`] with `options` (its [`command_timeout`](FactoryOptions::command_timeout)).
pub fn proxy_authenticator_with(
    cfg: &PlatformConfig,
    options: &FactoryOptions,
) -> Result<Option<Arc<dyn Authenticator>>, Error> {
    if cfg.proxy_command().is_empty() {
        return Ok(None);
    }
    #[cfg(feature = "command")]
    {
        use flyte_auth_command::{CommandAuthenticator, PROXY_HEADER_KEY};
        let mut builder = CommandAuthenticator::builder()
            .command(cfg.proxy_command().iter().cloned())
            .header_key(PROXY_HEADER_KEY)
            .endpoint(format!("{} (proxy)", cfg.endpoint().key()));
        if let Some(timeout) = options.command_timeout {
            builder = builder.timeout(timeout);
        }
        Ok(Some(Arc::new(builder.build()?)))
    }
    #[cfg(not(feature = "command"))]
    {
        let _ = options;
        Err(not_built("proxyCommand", "command"))
    }
}

/// The error for a mode whose feature is off.
#[allow(dead_code, reason = "unused when every flow feature is on")]
fn not_built(what: &str, feature: &str) -> Error {
    Error::config(format!(
        "{what} needs the `{feature}` feature of flyte-auth, and this program was built \
         without the `{feature}` feature"
    ))
}

#[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
mod oauth {
    //! The HTTP flows' shared pieces: the transport settings of the config, the one client,
    //! discovery.

    use std::sync::Arc;

    #[cfg(feature = "pkce")]
    use flyte_auth_core::{BoxFuture, ClientConfig};
    use flyte_auth_core::{ClientConfigStore, Error};
    use flyte_auth_oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore};

    use super::FactoryOptions;
    use crate::PlatformConfig;

    impl PlatformConfig {
        /// The transport settings of the OAuth requests: the CA file (`caCertFilePath`),
        /// skipping certificate verification (`insecureSkipVerify`) and the proxy
        /// (`httpProxyURL`), with the HTTP client's defaults for the rest.
        ///
        /// Only with one of the features `pkce`, `device`, `clientcreds`.
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
            settings
        }
    }

    /// The one client of all OAuth requests of one authenticator.
    pub(super) fn client(
        cfg: &PlatformConfig,
        options: &FactoryOptions,
    ) -> Result<OAuthClient, Error> {
        if let Some(client) = &options.http_client {
            return Ok(client.clone());
        }
        let mut settings = cfg.http_settings();
        if let Some(timeout) = options.request_timeout {
            settings = settings.request_timeout(timeout);
        }
        if let Some(timeout) = options.connect_timeout {
            settings = settings.connect_timeout(timeout);
        }
        if let Some(agent) = &options.user_agent {
            settings = settings.user_agent(agent.clone());
        }
        OAuthClient::new(settings)
    }

    /// The options' client config store, else the Flyte server's discovery through `client`.
    pub(super) fn discovery(
        cfg: &PlatformConfig,
        options: &FactoryOptions,
        client: &OAuthClient,
    ) -> Result<Arc<dyn ClientConfigStore>, Error> {
        match &options.cfg_store {
            Some(store) => Ok(Arc::clone(store)),
            None => Ok(Arc::new(RemoteClientConfigStore::new(
                cfg.endpoint().key(),
                cfg.insecure(),
                client.clone(),
            )?)),
        }
    }

    /// A client config store with the config's `tokenUrl` and `audience` over another's
    /// answer (for the browser login, whose builder takes everything else directly).
    #[cfg(feature = "pkce")]
    #[derive(Debug)]
    pub(super) struct Overridden {
        pub(super) inner: Arc<dyn ClientConfigStore>,
        pub(super) token_endpoint: Option<String>,
        pub(super) audience: Option<String>,
    }

    #[cfg(feature = "pkce")]
    impl ClientConfigStore for Overridden {
        fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
            Box::pin(async move {
                let mut cfg = self.inner.get_client_config().await?;
                if let Some(url) = &self.token_endpoint {
                    cfg.token_endpoint.clone_from(url);
                }
                if let Some(audience) = &self.audience {
                    cfg.audience = Some(audience.clone());
                }
                Ok(cfg)
            })
        }
    }
}

#[cfg(feature = "pkce")]
fn pkce(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    use flyte_auth_pkce::PKCEAuthenticator;

    let client = oauth::client(cfg, options)?;
    let mut cfg_store = oauth::discovery(cfg, options, &client)?;
    if cfg.token_url().is_some() || cfg.audience().is_some() {
        cfg_store = Arc::new(oauth::Overridden {
            inner: cfg_store,
            token_endpoint: cfg.token_url().map(str::to_owned),
            audience: cfg.audience().map(str::to_owned),
        });
    }
    let mut builder = PKCEAuthenticator::builder(cfg.endpoint().key(), cfg_store)
        .http_client(client)
        .maybe_store(store)
        .timeout(cfg.pkce().timeout)
        .refresh_margin(cfg.pkce().refresh_time);
    if !cfg.scopes().is_empty() {
        builder = builder.scopes(cfg.scopes().iter().cloned());
    }
    if let Some(header) = cfg.authorization_header() {
        builder = builder.header_key(header);
    }
    if let Some(browser) = &options.browser {
        builder = builder.browser(browser.clone());
    }
    if options.no_browser {
        builder = builder.no_browser();
    }
    if let Some(prompt) = &options.login_prompt {
        builder = builder.prompt(prompt.clone());
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "pkce"))]
fn pkce(
    _: &PlatformConfig,
    _: Option<Arc<dyn TokenStore>>,
    _: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    Err(not_built("auth type Pkce (browser login)", "pkce"))
}

#[cfg(feature = "clientcreds")]
fn client_credentials(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    use flyte_auth_clientcreds::ClientCredentialsAuthenticator;

    // validate() has checked that both are present.
    let client_id = cfg.client_id().unwrap_or_default();
    let secret = cfg.client_secret().cloned().unwrap_or_default();
    let client = oauth::client(cfg, options)?;
    let mut builder =
        ClientCredentialsAuthenticator::builder(cfg.endpoint().key(), client_id, secret)
            .insecure(cfg.insecure());
    match (cfg.token_url(), &options.cfg_store) {
        // tokenUrl alone: no discovery at all.
        (Some(url), None) => builder = builder.token_endpoint(url),
        (Some(url), Some(_)) => {
            builder = builder
                .token_endpoint(url)
                .cfg_store(oauth::discovery(cfg, options, &client)?);
        }
        (None, _) => builder = builder.cfg_store(oauth::discovery(cfg, options, &client)?),
    }
    builder = builder.http_client(client);
    if !cfg.scopes().is_empty() {
        builder = builder.scopes(cfg.scopes().iter().cloned());
    }
    if let Some(audience) = cfg.audience() {
        builder = builder.audience(audience);
    }
    if let Some(header) = cfg.authorization_header() {
        builder = builder.header_key(header);
    }
    if let Some(store) = store {
        builder = builder.store(store);
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "clientcreds"))]
fn client_credentials(
    _: &PlatformConfig,
    _: Option<Arc<dyn TokenStore>>,
    _: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    Err(not_built(
        "auth type ClientSecret (client credentials)",
        "clientcreds",
    ))
}

#[cfg(feature = "device")]
fn device(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    use flyte_auth_device::DeviceCodeAuthenticator;

    let client = oauth::client(cfg, options)?;
    let settings = cfg.device_flow();
    let mut builder = DeviceCodeAuthenticator::builder(cfg.endpoint().key())
        .insecure(cfg.insecure())
        .cfg_store(oauth::discovery(cfg, options, &client)?)
        .http_client(client)
        .poll_interval(settings.poll_interval)
        .timeout(settings.timeout)
        .refresh_margin(settings.refresh_time);
    if let Some(url) = cfg.token_url() {
        builder = builder.token_endpoint(url);
    }
    if !cfg.scopes().is_empty() {
        builder = builder.scopes(cfg.scopes().iter().cloned());
    }
    if let Some(audience) = cfg.audience() {
        builder = builder.audience(audience);
    }
    if let Some(header) = cfg.authorization_header() {
        builder = builder.header_key(header);
    }
    if let Some(prompt) = &options.device_prompt {
        let prompt = Arc::clone(prompt);
        builder = builder.prompt(move |p| prompt(p));
    }
    if let Some(store) = store {
        builder = builder.store(store);
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "device"))]
fn device(
    _: &PlatformConfig,
    _: Option<Arc<dyn TokenStore>>,
    _: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    Err(not_built(
        "auth type DeviceFlow (device code login)",
        "device",
    ))
}

#[cfg(feature = "command")]
fn command(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    use flyte_auth_command::CommandAuthenticator;

    let mut builder = CommandAuthenticator::builder()
        .command(cfg.command().iter().cloned())
        .endpoint(cfg.endpoint().key())
        .interactive(options.interactive_command);
    if let Some(header) = cfg.authorization_header() {
        builder = builder.header_key(header);
    }
    if let Some(timeout) = options.command_timeout {
        builder = builder.timeout(timeout);
    }
    if options.store_command_token {
        builder = builder.maybe_store(store);
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "command"))]
fn command(
    _: &PlatformConfig,
    _: Option<Arc<dyn TokenStore>>,
    _: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    Err(not_built("auth type ExternalCommand", "command"))
}
