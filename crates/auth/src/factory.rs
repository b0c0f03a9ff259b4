//! [`get_authenticator`]: the authenticator a [`PlatformConfig`] asks for, built the way
//! flytekit's `get_authenticator` builds it, and [`proxy_authenticator`] for `proxyCommand`.
//!
//! See [`get_authenticator_with`] for which setting is used for what.

use std::{fmt, sync::Arc, time::Duration};

use flyte_auth_core::{Authenticator, ClientConfigStore, DiscoveryHints, Error, TokenStore};

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
/// let cfg = flyte_auth::PlatformConfig::for_endpoint("dns:///flyte.example.org")?;
/// let options = FactoryOptions::new()
///     .no_browser(true)                                          // print the login URL only
///     .http_settings(cfg.http_settings().request_timeout(Duration::from_secs(10)))
///     .command_timeout(Duration::from_secs(20));                 // `command` / `proxyCommand`
/// # let _ = options;
/// # Ok::<(), flyte_auth::Error>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
#[must_use]
pub struct FactoryOptions {
    no_browser: bool,
    command_timeout: Option<Duration>,
    interactive_command: bool,
    store_command_token: bool,
    cfg_store: Option<Arc<dyn ClientConfigStore>>,
    hints: Hints,
    registry: Option<Arc<AuthenticatorRegistry>>,
    proxy: Option<Arc<dyn Authenticator>>,
    #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
    http_settings: Option<flyte_auth_oauth::HttpSettings>,
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
            .field("command_timeout", &self.command_timeout)
            .field("interactive_command", &self.interactive_command)
            .field("store_command_token", &self.store_command_token)
            .field("cfg_store", &self.cfg_store)
            .field("discovery_hints", &self.hints)
            .field("registry", &self.registry)
            .field("proxy", &self.proxy);
        #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
        s.field("http_settings", &self.http_settings)
            .field("http_client", &self.http_client);
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

/// Where discovery remembers the flavour that answered; see
/// [`FactoryOptions::discovery_hints`].
#[derive(Clone, Debug, Default)]
#[cfg_attr(
    not(any(feature = "pkce", feature = "device", feature = "clientcreds")),
    allow(dead_code, reason = "no discovery without an HTTP flow")
)]
enum Hints {
    /// Next to the token store's files ([`TokenStore::directory`]), when it has any.
    #[default]
    NextToStore,
    /// Where the program says.
    Custom(Arc<dyn DiscoveryHints>),
    /// Nowhere: every process asks both flavours.
    Off,
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

    /// How long `command` and `proxyCommand` may run, instead of the config's
    /// `admin.commandTimeout` (30 s when neither says).
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

    /// Where discovery remembers which generation of Flyte server answered (flyteadmin or
    /// Flyte 2), so that the next process asks only that generation's two documents instead
    /// of both at once (one failed request on every cold start).
    ///
    /// By default the hint is kept next to the token store's files
    /// ([`TokenStore::directory`]): with a `flyte_auth::store::FileStore`, `KeyringStore`
    /// or `DefaultStore`, a `DiscoveryHintFiles` in that directory (`<endpoint>-<hash>.discovery`,
    /// `0600`, no secret in it); with a `MemoryStore`, no store, or a store of the program's
    /// own without a directory, nowhere. A hint never fails a login: an unusable one is
    /// ignored, a wrong one (the server changed generation) costs one fallback and is
    /// rewritten. See also [`no_discovery_hints`](Self::no_discovery_hints).
    pub fn discovery_hints(mut self, hints: Arc<dyn DiscoveryHints>) -> Self {
        self.hints = Hints::Custom(hints);
        self
    }

    /// Remembers no discovery flavour: every process asks both generations' documents.
    pub fn no_discovery_hints(mut self) -> Self {
        self.hints = Hints::Off;
        self
    }

    /// The `proxy-authorization` authenticator every OAuth request to the Flyte endpoint
    /// carries, instead of one built from the config's `proxyCommand`: pass the one given to
    /// `AuthLayer::with_proxy` or `AuthenticatedClient::with_proxy` (from
    /// [`proxy_authenticator`]), so that the proxy command runs once for both.
    pub fn proxy_authenticator(mut self, proxy: Arc<dyn Authenticator>) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Looks plugin auth types up in `registry` instead of
    /// [`AuthenticatorRegistry::global`].
    pub fn registry(mut self, registry: Arc<AuthenticatorRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The transport settings of every OAuth request (discovery, token, device and refresh
    /// requests), instead of the config's ([`PlatformConfig::http_settings`]): start from
    /// those and change what the program decides, such as time-outs or the user agent.
    #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
    pub fn http_settings(mut self, settings: flyte_auth_oauth::HttpSettings) -> Self {
        self.http_settings = Some(settings);
        self
    }

    /// Sends every OAuth request through `client` instead of one built from the transport
    /// settings (then [`http_settings`](Self::http_settings) is not used).
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
/// assert!(format!("{auth:?}").contains("CommandFlow"));
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
/// | `tokenUrl` | the token endpoint, instead of the discovered one; with `scopes` and `authorizationHeader` also set, client credentials need no discovery at all |
/// | `authorizationHeader` | the header the token goes in, instead of the discovered `authorization_metadata_key` (for `command` too) |
/// | `scopes`, `audience` | instead of the discovered ones, when set |
/// | `clientId`, secret | client credentials (browser and device logins use the server's public client id) |
/// | `command` | the external command |
/// | `pkceConfig.timeout` / `.refreshTime` | how long the browser login waits; refresh margin |
/// | `deviceFlowConfig.pollInterval` / `.timeout` / `.refreshTime` | device polling; refresh margin |
/// | `tokenRefreshWindow` | the refresh margin of every flow whose own `refreshTime` is unset (`0s`: the default) |
/// | `proxyCommand` | `proxy-authorization` on every OAuth request to the Flyte endpoint's origin (discovery; token, device and code exchange at Flyte's own authorization server, never at an identity provider elsewhere); [`proxy_authenticator`] gives the same header for the API calls |
///
/// Building an authenticator touches neither the network nor the token store (the CA file is
/// read, to build the HTTP client): discovery, logins and store reads happen on the first
/// [`Authenticator::get_credentials`].
///
/// The flow for each auth type:
///
/// Each built-in flow gets the same [`CachingAuthenticator`](crate::CachingAuthenticator)
/// (`{:?}` names the flow inside); the HTTP flows share one
/// `flyte_auth::oauth::ClientContext` (endpoint, client, discovery under the overrides).
///
/// | `auth_mode` | authenticator (flow) | needs the feature |
/// | --- | --- | --- |
/// | [`AuthMode::Pkce`] | `PkceAuthenticator` (`PkceFlow`) | `pkce` |
/// | [`AuthMode::ClientSecret`] | `ClientCredentialsAuthenticator` (`ClientCredentialsFlow`) | `clientcreds` |
/// | [`AuthMode::DeviceFlow`] | `DeviceCodeAuthenticator` (`DeviceCodeFlow`) | `device` |
/// | [`AuthMode::ExternalCommand`] | `CommandAuthenticator` (`CommandFlow`) | `command` |
/// | [`AuthMode::Plugin`] | what the registered factory returns | — |
///
/// Touches neither the network nor `store`.
///
/// # Errors
///
/// [`Error::Config`] when the settings the mode needs are missing (each flow's builder
/// checks its own; [`PlatformConfig::validate`] asks them), a header name or the CA file is
/// invalid, the program was built without the mode's feature, or a plugin name is not
/// registered (the message lists the built-in names and the registered ones). A plugin factory's own error is returned
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
        use flyte_auth_command::{CommandFlow, PROXY_HEADER_KEY};
        let mut flow = CommandFlow::builder()
            .command(cfg.proxy_command().iter().cloned())
            .header_key(PROXY_HEADER_KEY)
            .endpoint(cfg.endpoint().clone());
        if let Some(timeout) = command_timeout(cfg, options) {
            flow = flow.timeout(timeout);
        }
        Ok(Some(cached(flow.build()?, None, refresh_margin(cfg, None))))
    }
    #[cfg(not(feature = "command"))]
    {
        let _ = options;
        Err(not_built("proxyCommand", "command"))
    }
}

/// The time a token command may take: the options', else the config's
/// (`admin.commandTimeout`), else the command crate's default (`None`).
#[cfg(feature = "command")]
fn command_timeout(cfg: &PlatformConfig, options: &FactoryOptions) -> Option<Duration> {
    options.command_timeout.or(cfg.command_timeout())
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
pub(crate) mod oauth {
    //! The HTTP flows' one context: the endpoint, the one client, discovery with the
    //! config's overrides.

    use std::sync::Arc;

    use flyte_auth_core::{DiscoveryHints, Error, TokenStore};
    use flyte_auth_oauth::{ClientContext, OAuthClient, Overrides};

    use super::{FactoryOptions, Hints};
    use crate::PlatformConfig;

    /// The one client of all OAuth requests of one authenticator.
    pub(super) fn client(
        cfg: &PlatformConfig,
        options: &FactoryOptions,
    ) -> Result<OAuthClient, Error> {
        let client = match &options.http_client {
            Some(client) => client.clone(),
            None => OAuthClient::new(
                options
                    .http_settings
                    .clone()
                    .unwrap_or_else(|| cfg.http_settings()),
            )?,
        };
        // With `proxyCommand`, every OAuth request to the Flyte endpoint's origin carries
        // `proxy-authorization` too (discovery, and the token, device and code exchange
        // requests of Flyte's own authorization server): an authenticating proxy such as GCP
        // IAP rejects them otherwise. An identity provider elsewhere never receives it.
        let proxy = match &options.proxy {
            Some(proxy) => Some(Arc::clone(proxy)),
            None => super::proxy_authenticator_with(cfg, options)?,
        };
        Ok(match proxy {
            Some(proxy) => client.with_request_header(cfg.endpoint(), proxy),
            None => client,
        })
    }

    /// What the config says, which wins over the server's discovery.
    fn overrides(cfg: &PlatformConfig) -> Overrides {
        let mut overrides = Overrides::new().scopes(cfg.scopes().iter().cloned());
        if let Some(url) = cfg.token_url() {
            overrides = overrides.token_endpoint(url);
        }
        if let Some(audience) = cfg.audience() {
            overrides = overrides.audience(audience);
        }
        if let Some(header) = cfg.authorization_header() {
            overrides = overrides.header_key(header);
        }
        overrides
    }

    /// The context every HTTP flow of `cfg` works in (and a logout revokes in): the options'
    /// client config store, else the Flyte server's discovery (remembering its flavour where
    /// [`discovery_hints`] says), under the config's overrides.
    pub(crate) fn context(
        cfg: &PlatformConfig,
        options: &FactoryOptions,
        store: Option<&Arc<dyn TokenStore>>,
    ) -> Result<ClientContext, Error> {
        let mut builder = ClientContext::builder(cfg.endpoint().clone())
            .http_client(client(cfg, options)?)
            .overrides(overrides(cfg));
        if let Some(store) = &options.cfg_store {
            builder = builder.discovery(Arc::clone(store));
        } else if let Some(hints) = discovery_hints(options, store) {
            builder = builder.discovery_hints(hints);
        }
        builder.build()
    }

    /// Where discovery remembers the flavour that answered: the options' choice, else
    /// [`DiscoveryHintFiles`](flyte_auth_store::DiscoveryHintFiles) in the token store's
    /// directory, if it has one (a memory store has none). The one place this is decided.
    pub(super) fn discovery_hints(
        options: &FactoryOptions,
        store: Option<&Arc<dyn TokenStore>>,
    ) -> Option<Arc<dyn DiscoveryHints>> {
        match &options.hints {
            Hints::Off => None,
            Hints::Custom(hints) => Some(Arc::clone(hints)),
            Hints::NextToStore => {
                #[cfg(any(feature = "keyring", feature = "file"))]
                {
                    let dir = store?.directory()?;
                    Some(Arc::new(flyte_auth_store::DiscoveryHintFiles::in_dir(dir)))
                }
                #[cfg(not(any(feature = "keyring", feature = "file")))]
                {
                    let _ = store;
                    None
                }
            }
        }
    }

    /// The Flyte server's discovery, for the one thing a command needs from it: the header.
    #[cfg(feature = "command")]
    pub(super) fn discovery(
        cfg: &PlatformConfig,
        options: &FactoryOptions,
        store: Option<&Arc<dyn TokenStore>>,
    ) -> Result<Arc<dyn flyte_auth_core::ClientConfigStore>, Error> {
        Ok(Arc::new(context(cfg, options, store)?))
    }
}

/// Core's cache around `flow`: the one place the factory wraps a flow.
#[cfg(any(
    feature = "pkce",
    feature = "device",
    feature = "clientcreds",
    feature = "command"
))]
fn cached<F: flyte_auth_core::TokenFlow>(
    flow: F,
    store: Option<Arc<dyn TokenStore>>,
    refresh_margin: Option<Duration>,
) -> Arc<dyn Authenticator> {
    let mut builder = flyte_auth_core::CachingAuthenticator::builder(flow).maybe_store(store);
    if let Some(margin) = refresh_margin {
        builder = builder.refresh_margin(margin);
    }
    Arc::new(builder.build())
}

/// The refresh margin of a flow: its own `refreshTime`, else `admin.tokenRefreshWindow`, else
/// (unset, or `0s`, the Go client's default) core's default.
#[cfg(any(
    feature = "pkce",
    feature = "device",
    feature = "clientcreds",
    feature = "command"
))]
fn refresh_margin(cfg: &PlatformConfig, flow_refresh_time: Option<Duration>) -> Option<Duration> {
    flow_refresh_time.or_else(|| cfg.token_refresh_window().filter(|w| !w.is_zero()))
}

#[cfg(feature = "pkce")]
fn pkce(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    // Unset settings keep the flow's and the cache's own defaults.
    let mut flow =
        flyte_auth_pkce::PkceFlow::builder(oauth::context(cfg, options, store.as_ref())?);
    if let Some(timeout) = cfg.pkce_timeout() {
        flow = flow.timeout(timeout);
    }
    if let Some(browser) = &options.browser {
        flow = flow.browser(browser.clone());
    }
    if options.no_browser {
        flow = flow.no_browser();
    }
    if let Some(prompt) = &options.login_prompt {
        flow = flow.prompt(prompt.clone());
    }
    let margin = refresh_margin(cfg, cfg.pkce_refresh_time());
    Ok(cached(flow.build()?, store, margin))
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
    // The builder refuses an empty client id or secret.
    let client_id = cfg.client_id().unwrap_or_default();
    let secret = cfg.client_secret().cloned().unwrap_or_default();
    let flow = flyte_auth_clientcreds::ClientCredentialsFlow::builder(
        oauth::context(cfg, options, store.as_ref())?,
        client_id,
        secret,
    )
    .build()
    .map_err(
        |e| match (e, cfg.client_secret(), cfg.client_secret_env_var()) {
            // Why there is no secret, when the config named a variable for it.
            (Error::Config { message }, None, Some(var)) => Error::config(format!(
                "{message} (admin.clientSecretEnvVar names {var}, which is not set or empty)"
            )),
            (e, ..) => e,
        },
    )?;
    Ok(cached(flow, store, refresh_margin(cfg, None)))
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
    // Unset settings keep the flow's and the cache's own defaults.
    let mut flow =
        flyte_auth_device::DeviceCodeFlow::builder(oauth::context(cfg, options, store.as_ref())?);
    if let Some(interval) = cfg.device_flow_poll_interval() {
        flow = flow.poll_interval(interval);
    }
    if let Some(timeout) = cfg.device_flow_timeout() {
        flow = flow.timeout(timeout);
    }
    if let Some(prompt) = &options.device_prompt {
        let prompt = Arc::clone(prompt);
        flow = flow.prompt(move |p| prompt(p));
    }
    let margin = refresh_margin(cfg, cfg.device_flow_refresh_time());
    Ok(cached(flow.build()?, store, margin))
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
    let mut flow = flyte_auth_command::CommandFlow::builder()
        .command(cfg.command().iter().cloned())
        .endpoint(cfg.endpoint().clone())
        .interactive(options.interactive_command);
    match cfg.authorization_header() {
        Some(header) => flow = flow.header_key(header),
        None => flow = command_header_from_server(flow, cfg, options, store.as_ref())?,
    }
    if let Some(timeout) = command_timeout(cfg, options) {
        flow = flow.timeout(timeout);
    }
    let store = if options.store_command_token {
        store
    } else {
        None
    };
    Ok(cached(flow.build()?, store, refresh_margin(cfg, None)))
}

/// Without `authorizationHeader`, the command's token goes in the header the server names
/// (asked once, on the first run), as in flytekit; without an HTTP stack, in `authorization`.
#[cfg(feature = "command")]
fn command_header_from_server(
    flow: flyte_auth_command::CommandFlowBuilder,
    cfg: &PlatformConfig,
    options: &FactoryOptions,
    store: Option<&Arc<dyn TokenStore>>,
) -> Result<flyte_auth_command::CommandFlowBuilder, Error> {
    #[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
    {
        Ok(match &options.cfg_store {
            Some(cfg_store) => flow.header_from(Arc::clone(cfg_store)),
            None => flow.header_from(oauth::discovery(cfg, options, store)?),
        })
    }
    #[cfg(not(any(feature = "pkce", feature = "device", feature = "clientcreds")))]
    {
        let _ = (cfg, options, store);
        Ok(flow)
    }
}

#[cfg(not(feature = "command"))]
fn command(
    _: &PlatformConfig,
    _: Option<Arc<dyn TokenStore>>,
    _: &FactoryOptions,
) -> Result<Arc<dyn Authenticator>, Error> {
    Err(not_built("auth type ExternalCommand", "command"))
}
