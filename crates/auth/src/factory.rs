//! [`get_authenticator`]: the authenticator a [`PlatformConfig`] asks for, built the way
//! flytekit's `get_authenticator` builds it, and [`proxy_authenticator`] for `proxyCommand`.
//!
//! See [`get_authenticator_with`] for which setting is used for what.

use std::{fmt, sync::Arc, time::Duration};

use flyte_auth_core::{Authenticator, ClientConfigStore, DiscoveryHints, Error, TokenStore};

use crate::{AuthMode, AuthenticatorRegistry, PlatformConfig};

/// `$call` when this build has `$feature`, else the error saying that `$what` needs it.
macro_rules! with_feature {
    ($feature:tt, $what:expr, $call:expr) => {{
        #[cfg(feature = $feature)]
        {
            $call
        }
        #[cfg(not(feature = $feature))]
        {
            Err(not_built($what, $feature))
        }
    }};
}

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
    #[cfg(any(
        feature = "pkce",
        feature = "device",
        feature = "clientcreds",
        feature = "google"
    ))]
    http_settings: Option<flyte_auth_oauth::HttpSettings>,
    #[cfg(any(
        feature = "pkce",
        feature = "device",
        feature = "clientcreds",
        feature = "google"
    ))]
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
        #[cfg(any(
            feature = "pkce",
            feature = "device",
            feature = "clientcreds",
            feature = "google"
        ))]
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
    /// Flyte 2), so that the next process asks only that generation's documents.
    ///
    /// By default: a `DiscoveryHintFiles` in the token store's directory
    /// ([`TokenStore::directory`]; `0600`, no secret), nowhere for a store without one (a
    /// `MemoryStore`). A hint never fails a login: an unusable one is ignored, a wrong one
    /// costs one fallback and is rewritten.
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
    /// carries, instead of one built from the config's `proxyCommand` or
    /// `proxyGoogleAudience`: pass the one given to `AuthLayer::with_proxy` or
    /// `AuthenticatedClient::with_proxy` (from [`proxy_authenticator`] or
    /// [`proxy_authenticator_with_store`]), so that the proxy command runs once for both, or
    /// both share one Google ID token.
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

#[cfg(any(
    feature = "pkce",
    feature = "device",
    feature = "clientcreds",
    feature = "google"
))]
impl FactoryOptions {
    /// The transport settings of every OAuth request, instead of the config's
    /// ([`PlatformConfig::http_settings`]): start from those and change what the program
    /// decides, such as time-outs or the user agent.
    pub fn http_settings(mut self, settings: flyte_auth_oauth::HttpSettings) -> Self {
        self.http_settings = Some(settings);
        self
    }

    /// Sends every OAuth request through `client` instead of one built from the transport
    /// settings (then [`http_settings`](Self::http_settings) is not used).
    pub fn http_client(mut self, client: flyte_auth_oauth::OAuthClient) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The client of the HTTP requests of `cfg`, without any `proxy-authorization`: the
    /// options' client, else one with the options' settings, else the config's.
    fn client_for(&self, cfg: &PlatformConfig) -> Result<flyte_auth_oauth::OAuthClient, Error> {
        match &self.http_client {
            Some(client) => Ok(client.clone()),
            None => flyte_auth_oauth::OAuthClient::new(
                self.http_settings
                    .clone()
                    .unwrap_or_else(|| cfg.http_settings()),
            ),
        }
    }
}

/// The authenticator `cfg` asks for, with default [`FactoryOptions`]: flytekit's
/// `get_authenticator`.
///
/// `store` is where browser, device and client-credentials logins persist (the one
/// `cfg.open_store(..)` opens, say); `None` keeps them in this process only. See
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

/// Opening the token store a config asks for.
#[cfg(any(feature = "keyring", feature = "file"))]
impl PlatformConfig {
    /// Opens the token store `kind` names, as this config asks: `admin.disableKeyring` makes
    /// `auto` the file store, `admin.writeAllLayouts` has the keyring write every Flyte tool's
    /// layout, and the Flyte 2 SDK's `keyring.cfg` is kept where the SDK keeps it for this
    /// config ([`sdk_keyring_cfg`](Self::sdk_keyring_cfg)) unless `options` names one. Touches
    /// nothing yet.
    ///
    /// ```
    /// use flyte_auth::{PlatformConfig, get_authenticator, store::{StoreKind, StoreOptions}};
    ///
    /// let cfg = PlatformConfig::for_endpoint("dns:///flyte.example.org")?;
    /// let store = cfg.open_store(StoreKind::Auto, StoreOptions::new())?;
    /// let auth = get_authenticator(&cfg, Some(store))?; // nothing contacted yet
    /// # Ok::<(), flyte_auth::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be had at all (see `open_store_with`).
    pub fn open_store(
        &self,
        kind: flyte_auth_store::StoreKind,
        mut options: flyte_auth_store::StoreOptions,
    ) -> Result<Arc<dyn TokenStore>, Error> {
        use flyte_auth_store::StoreKind;
        let kind = match kind {
            StoreKind::Auto if self.disable_keyring() => StoreKind::File,
            kind => kind,
        };
        options.write_all_layouts |= self.write_all_layouts();
        if options.keyring_cfg.is_none() {
            options.keyring_cfg = self.sdk_keyring_cfg();
        }
        Ok(flyte_auth_store::open_store_with(kind, options)?)
    }
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
/// | `deviceFlowConfig.pkce` | whether the device login sends a PKCE challenge (unset: when the server announces `S256`) |
/// | `tokenRefreshWindow` | the refresh margin of every flow whose own `refreshTime` is unset (`0s`: the default) |
/// | `proxyCommand` | `proxy-authorization` on every OAuth request to the Flyte endpoint's origin (discovery; token, device and code exchange at Flyte's own authorization server, never at an identity provider elsewhere); [`proxy_authenticator`] gives the same header for the API calls |
/// | `proxyGoogleAudience` | the same, with a Google ID token for that audience instead of a command's (feature `google`), kept in `store` under its own entry ([`proxy_authenticator_with_store`]) |
/// | `googleAudience` | the audience of the Google ID token of [`AuthMode::GoogleIdToken`] |
///
/// Building an authenticator touches neither the network nor the token store (the CA file is
/// read, to build the HTTP client): discovery, logins and store reads happen on the first
/// [`Authenticator::get_credentials`].
///
/// Each built-in flow is in a [`CachingAuthenticator`](crate::CachingAuthenticator) (`{:?}`
/// names the flow); the HTTP flows share one `flyte_auth::oauth::ClientContext`.
///
/// | `auth_mode` | authenticator (flow) | needs the feature |
/// | --- | --- | --- |
/// | [`AuthMode::Pkce`] | `PkceAuthenticator` (`PkceFlow`) | `pkce` |
/// | [`AuthMode::ClientSecret`] | `ClientCredentialsAuthenticator` (`ClientCredentialsFlow`) | `clientcreds` |
/// | [`AuthMode::DeviceFlow`] | `DeviceCodeAuthenticator` (`DeviceCodeFlow`) | `device` |
/// | [`AuthMode::ExternalCommand`] | `CommandAuthenticator` (`CommandFlow`) | `command` |
/// | [`AuthMode::GoogleIdToken`] | `GoogleIdTokenAuthenticator` (`GoogleIdTokenFlow`; in `authorizationHeader`, else `authorization`: no discovery, which an identity-aware proxy would refuse without the token) | `google` |
/// | [`AuthMode::Passthrough`] | `flyte_auth::Passthrough`: the caller's headers, no login, no store | `tower` |
/// | [`AuthMode::Plugin`] | what the registered factory returns | — |
///
/// # Errors
///
/// [`Error::Config`] when the settings the mode needs are missing (each flow's builder
/// checks its own; [`PlatformConfig::validate`] asks them), a header name or the CA file is
/// invalid, the program was built without the mode's feature, or a plugin name is not
/// registered (the message lists the names accepted). A plugin factory's error is returned as
/// is.
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
        AuthMode::Pkce => {
            with_feature!(
                "pkce",
                "auth type Pkce (browser login)",
                pkce(cfg, store, options)
            )
        }
        AuthMode::ClientSecret => with_feature!(
            "clientcreds",
            "auth type ClientSecret (client credentials)",
            client_credentials(cfg, store, options)
        ),
        AuthMode::DeviceFlow => with_feature!(
            "device",
            "auth type DeviceFlow (device code login)",
            device(cfg, store, options)
        ),
        AuthMode::ExternalCommand => with_feature!(
            "command",
            "auth type ExternalCommand",
            command(cfg, store, options)
        ),
        AuthMode::GoogleIdToken => with_feature!(
            "google",
            "auth type GoogleIdToken",
            google::id_token(cfg, store, options)
        ),
        AuthMode::Passthrough => with_feature!("tower", "the Passthrough auth type", {
            Ok(Arc::new(crate::Passthrough::new()) as Arc<dyn Authenticator>)
        }),
        AuthMode::Plugin(_) => unreachable!("handled above"),
    }
}

/// The authenticator for `proxyCommand` or `proxyGoogleAudience`, when the config has one:
/// a `flyte_auth::command::CommandAuthenticator` (flytekit's `proxy_authenticator`), or a
/// `flyte_auth::google::GoogleIdTokenAuthenticator` (feature `google`), sending its token
/// in `proxy-authorization`, for an authenticating proxy in front of Flyte.
///
/// Its token is kept in memory only; [`proxy_authenticator_with_store`] also keeps a Google
/// ID token in a store, shared between processes. Send its header next to the main one:
/// `AuthLayer::with_proxy` (feature `tower`) and `AuthenticatedClient::with_proxy` (feature
/// `reqwest`) do that.
///
/// `Ok(None)` when neither is set. Runs nothing yet.
///
/// # Errors
///
/// [`Error::Config`] when the program was built without the feature the setting needs
/// (`command` for `proxyCommand`, `google` for `proxyGoogleAudience`).
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

/// [`proxy_authenticator`] with `options` (its [`command_timeout`](FactoryOptions::command_timeout),
/// and the HTTP settings of the Google token requests).
pub fn proxy_authenticator_with(
    cfg: &PlatformConfig,
    options: &FactoryOptions,
) -> Result<Option<Arc<dyn Authenticator>>, Error> {
    proxy_authenticator_with_store(cfg, None, options)
}

/// [`proxy_authenticator_with`], keeping a Google ID token (`proxyGoogleAudience`) in
/// `store` too, so that every process shares one until near its `exp`: pass the store given
/// to [`get_authenticator_with`] (which does the same for its own OAuth requests).
///
/// The token is filed under an entry of its own, named after the audience
/// (`google-id-token.<audience>`, characters other than letters, digits, `.` and `-` as
/// `-`), never under the Flyte endpoint's, where the main login is; it is used only for the
/// exact audience it was issued for. A `proxyCommand`'s token is never stored (the command
/// caches its own).
///
/// ```
/// use flyte_auth::{PlatformConfig, proxy_authenticator_with_store, FactoryOptions, MemoryStore};
/// use std::sync::Arc;
///
/// let cfg = PlatformConfig::builder()
///     .no_config_file()
///     .no_env()
///     .endpoint("flyte.example.org:443")
///     .proxy_google_audience("123-abc.apps.googleusercontent.com")
///     .build()?;
/// let store = Arc::new(MemoryStore::new());
/// # #[cfg(feature = "google")] {
/// let proxy = proxy_authenticator_with_store(&cfg, Some(store), &FactoryOptions::new())?
///     .expect("proxyGoogleAudience is set");
/// assert!(format!("{proxy:?}").contains("GoogleIdTokenFlow"));
/// # }
/// # Ok::<(), flyte_auth::Error>(())
/// ```
pub fn proxy_authenticator_with_store(
    cfg: &PlatformConfig,
    store: Option<Arc<dyn TokenStore>>,
    options: &FactoryOptions,
) -> Result<Option<Arc<dyn Authenticator>>, Error> {
    if let Some(audience) = cfg.proxy_google_audience() {
        return google::proxy(cfg, audience, store, options).map(Some);
    }
    if cfg.proxy_command().is_empty() {
        return Ok(None);
    }
    with_feature!("command", "proxyCommand", {
        use flyte_auth_command::{CommandFlow, PROXY_HEADER_KEY};
        let mut flow = CommandFlow::builder()
            .command(cfg.proxy_command().iter().cloned())
            .header_key(PROXY_HEADER_KEY)
            .endpoint(cfg.endpoint().clone());
        if let Some(timeout) = options.command_timeout.or(cfg.command_timeout()) {
            flow = flow.timeout(timeout);
        }
        Ok(Some(cached(flow.build()?, None, cfg, None)))
    })
}

/// The token-store entry the Google proxy's ID token for `audience` (`proxyGoogleAudience`)
/// is kept under by [`proxy_authenticator_with_store`]: `google-id-token.<audience>`, apart
/// from the Flyte endpoint's login. For tools that look at the store (a status, a logout).
///
/// ```
/// let entry = flyte_auth::google_proxy_entry("123-abc.apps.googleusercontent.com")?;
/// assert_eq!(entry.key(), "google-id-token.123-abc.apps.googleusercontent.com");
/// # Ok::<(), flyte_auth::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when no entry can be named after `audience`.
pub fn google_proxy_entry(audience: &str) -> Result<flyte_auth_core::Endpoint, Error> {
    google::proxy_entry(audience)
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

    /// The one client of all OAuth requests of one authenticator; a Google proxy token is
    /// kept in `store`.
    pub(super) fn client(
        cfg: &PlatformConfig,
        options: &FactoryOptions,
        store: Option<&Arc<dyn TokenStore>>,
    ) -> Result<OAuthClient, Error> {
        let client = options.client_for(cfg)?;
        // With `proxyCommand` or `proxyGoogleAudience`, every OAuth request to the Flyte
        // endpoint's origin carries `proxy-authorization` too (discovery, and the token,
        // device and code exchange requests of Flyte's own authorization server): an
        // authenticating proxy such as GCP IAP rejects them otherwise. An identity provider
        // elsewhere never receives it.
        let proxy = match &options.proxy {
            Some(proxy) => Some(Arc::clone(proxy)),
            None => super::proxy_authenticator_with_store(cfg, store.cloned(), options)?,
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
            .http_client(client(cfg, options, store)?)
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
}

/// Core's cache around `flow`, the one place the factory wraps a flow. The refresh margin is
/// the flow's own `refreshTime`, else `admin.tokenRefreshWindow`, else (unset, or `0s`, the
/// Go client's default) core's default.
#[cfg(any(
    feature = "pkce",
    feature = "device",
    feature = "clientcreds",
    feature = "command",
    feature = "google"
))]
fn cached<F: flyte_auth_core::TokenFlow>(
    flow: F,
    store: Option<Arc<dyn TokenStore>>,
    cfg: &PlatformConfig,
    refresh_time: Option<Duration>,
) -> Arc<dyn Authenticator> {
    let mut builder = flyte_auth_core::CachingAuthenticator::builder(flow).maybe_store(store);
    if let Some(margin) =
        refresh_time.or_else(|| cfg.token_refresh_window().filter(|w| !w.is_zero()))
    {
        builder = builder.refresh_margin(margin);
    }
    Arc::new(builder.build())
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
    Ok(cached(flow.build()?, store, cfg, cfg.pkce_refresh_time()))
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
    Ok(cached(flow, store, cfg, None))
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
    if let Some(pkce) = cfg.device_flow_pkce() {
        flow = flow.pkce(pkce);
    }
    if let Some(prompt) = &options.device_prompt {
        let prompt = Arc::clone(prompt);
        flow = flow.prompt(move |p| prompt(p));
    }
    Ok(cached(
        flow.build()?,
        store,
        cfg,
        cfg.device_flow_refresh_time(),
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
    if let Some(timeout) = options.command_timeout.or(cfg.command_timeout()) {
        flow = flow.timeout(timeout);
    }
    let store = if options.store_command_token {
        store
    } else {
        None
    };
    Ok(cached(flow.build()?, store, cfg, None))
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
            None => flow.header_from(Arc::new(oauth::context(cfg, options, store)?)),
        })
    }
    #[cfg(not(any(feature = "pkce", feature = "device", feature = "clientcreds")))]
    {
        let _ = (cfg, options, store);
        Ok(flow)
    }
}

mod google {
    //! Google ID tokens: the `proxy-authorization` token of `proxyGoogleAudience`, and the
    //! token of [`AuthMode::GoogleIdToken`](crate::AuthMode::GoogleIdToken).

    use std::sync::Arc;

    use flyte_auth_core::{Authenticator, Endpoint, Error, TokenStore};

    use super::FactoryOptions;
    use crate::PlatformConfig;

    /// What a Google proxy token is filed under in a token store, before the audience.
    pub(super) const PROXY_ENTRY_PREFIX: &str = "google-id-token.";

    /// The store entry of the proxy token for `audience`: its own, never the Flyte
    /// endpoint's (the main login is there), and one for every Flyte endpoint behind the
    /// same proxy. Characters other than letters, digits, `.` and `-` become `-`; two
    /// audiences that meet there cost a request, never a wrong token (a stored token is used
    /// only for the audience it was issued for). Known without the feature `google` too, so
    /// that a logout deletes a token another build stored.
    pub(super) fn proxy_entry(audience: &str) -> Result<Endpoint, Error> {
        let name: String = audience
            .trim()
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c.to_ascii_lowercase(),
                _ => '-',
            })
            .collect();
        Endpoint::parse(&format!("{PROXY_ENTRY_PREFIX}{name}"))
    }

    /// The `proxy-authorization` authenticator of `proxyGoogleAudience`.
    #[cfg(feature = "google")]
    pub(super) fn proxy(
        cfg: &PlatformConfig,
        audience: &str,
        store: Option<Arc<dyn TokenStore>>,
        options: &FactoryOptions,
    ) -> Result<Arc<dyn Authenticator>, Error> {
        let flow = flyte_auth_google::GoogleIdTokenFlow::builder(audience)
            .endpoint(proxy_entry(audience)?)
            .header_key(http::header::PROXY_AUTHORIZATION.as_str())
            .http_client(options.client_for(cfg)?)
            .build()?;
        tracing::debug!(%audience, "proxy-authorization: a Google ID token");
        Ok(super::cached(flow, store, cfg, None))
    }

    /// The authenticator of [`AuthMode::GoogleIdToken`](crate::AuthMode::GoogleIdToken):
    /// the ID token for `googleAudience` in `authorizationHeader`, else `authorization`,
    /// filed under the Flyte endpoint like every login.
    #[cfg(feature = "google")]
    pub(super) fn id_token(
        cfg: &PlatformConfig,
        store: Option<Arc<dyn TokenStore>>,
        options: &FactoryOptions,
    ) -> Result<Arc<dyn Authenticator>, Error> {
        let Some(audience) = cfg.google_audience() else {
            return Err(Error::config(
                "auth type GoogleIdToken needs an audience: set admin.googleAudience \
                 (FLYTE_ADMIN_GOOGLEAUDIENCE) to the OAuth client id of the identity-aware proxy",
            ));
        };
        let header = cfg
            .authorization_header()
            .unwrap_or(http::header::AUTHORIZATION.as_str());
        let flow = flyte_auth_google::GoogleIdTokenFlow::builder(audience)
            .endpoint(cfg.endpoint().clone())
            .header_key(header)
            .http_client(options.client_for(cfg)?)
            .build()?;
        Ok(super::cached(flow, store, cfg, None))
    }

    #[cfg(not(feature = "google"))]
    pub(super) fn proxy(
        _: &PlatformConfig,
        _: &str,
        _: Option<Arc<dyn TokenStore>>,
        _: &FactoryOptions,
    ) -> Result<Arc<dyn Authenticator>, Error> {
        Err(super::not_built("proxyGoogleAudience", "google"))
    }
}

#[cfg(all(test, feature = "google"))]
mod tests {
    use super::*;

    fn config(
        build: impl FnOnce(crate::config::PlatformConfigBuilder) -> crate::config::PlatformConfigBuilder,
    ) -> Result<PlatformConfig, Error> {
        build(
            PlatformConfig::builder()
                .no_config_file()
                .no_env()
                .endpoint("dns:///flyte.example.org:443"),
        )
        .build()
    }

    #[test]
    fn the_google_proxy_token_has_a_store_entry_of_its_own_named_after_the_audience() {
        let entry = google::proxy_entry("123-abc.apps.googleusercontent.com").unwrap();
        assert_eq!(
            entry.key(),
            "google-id-token.123-abc.apps.googleusercontent.com"
        );
        let entry = google::proxy_entry(" https://Svc-x.a.run.app/path?q=1 ").unwrap();
        assert_eq!(
            entry.key(),
            "google-id-token.https---svc-x.a.run.app-path-q-1"
        );
    }

    #[tokio::test]
    async fn the_google_proxy_goes_in_proxy_authorization_and_is_filed_apart_from_the_login() {
        let cfg =
            config(|b| b.proxy_google_audience("123-abc.apps.googleusercontent.com")).unwrap();
        let store: Arc<dyn TokenStore> = Arc::new(flyte_auth_core::MemoryStore::new());
        let proxy = proxy_authenticator_with_store(&cfg, Some(store), &FactoryOptions::new())
            .unwrap()
            .unwrap();
        assert_eq!(proxy.header_name().await.unwrap(), "proxy-authorization");
        let debug = format!("{proxy:?}");
        assert!(debug.contains("GoogleIdTokenFlow"), "{debug}");
        assert!(
            debug.contains("google-id-token.123-abc.apps.googleusercontent.com"),
            "{debug}"
        );
        assert!(
            proxy_authenticator(&config(|b| b).unwrap())
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_google_id_token_as_the_auth_type_needs_an_audience_and_goes_in_authorization() {
        let without = config(|b| b.auth_mode(AuthMode::GoogleIdToken)).unwrap();
        let err = without.validate().unwrap_err().to_string();
        assert!(err.contains("admin.googleAudience"), "{err}");

        let cfg = config(|b| {
            b.auth_mode(AuthMode::GoogleIdToken)
                .google_audience("123-abc.apps.googleusercontent.com")
        })
        .unwrap();
        cfg.validate().unwrap();
        let auth = get_authenticator(&cfg, None).unwrap();
        assert_eq!(auth.header_name().await.unwrap(), "authorization");
        assert!(format!("{auth:?}").contains("GoogleIdTokenFlow"));

        let cfg = config(|b| {
            b.auth_mode(AuthMode::GoogleIdToken)
                .google_audience("123-abc.apps.googleusercontent.com")
                .authorization_header("flyte-authorization")
        })
        .unwrap();
        let auth = get_authenticator(&cfg, None).unwrap();
        assert_eq!(auth.header_name().await.unwrap(), "flyte-authorization");
    }
}
