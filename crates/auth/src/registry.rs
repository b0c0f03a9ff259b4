//! [`AuthenticatorRegistry`]: authenticators an application adds under a name of its own,
//! chosen by `admin.authType` like the built-in flows (flytekit's authenticator plugins).

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use flyte_auth_core::{Authenticator, Error, TokenStore};

use crate::{AuthMode, PlatformConfig};

/// Makes an authenticator from the platform config and the token store the caller passed to
/// [`get_authenticator`](crate::get_authenticator).
///
/// Like the built-in flows, it should only build the authenticator: no network, no store
/// access until credentials are first asked for.
pub type AuthenticatorFactory = Arc<
    dyn Fn(&PlatformConfig, Option<Arc<dyn TokenStore>>) -> Result<Arc<dyn Authenticator>, Error>
        + Send
        + Sync,
>;

/// Named authenticator factories: when `admin.authType` (or `FLYTE_CREDENTIALS_AUTH_MODE`) is
/// not a built-in mode, [`get_authenticator`](crate::get_authenticator) looks the name up
/// here, case-insensitively, and calls the factory registered under it.
///
/// [`AuthenticatorRegistry::global`] is the process-wide registry (flytekit's
/// `register_authenticator_plugin`), used unless
/// [`FactoryOptions::registry`](crate::FactoryOptions::registry) names another; a library or
/// a test that must not touch process state makes its own with
/// [`AuthenticatorRegistry::new`].
///
/// ```
/// use std::sync::Arc;
/// use flyte_auth::{
///     Authenticator, AuthenticatorRegistry, BoxFuture, CachingAuthenticator, Credentials,
///     Endpoint, Error, FactoryOptions, PlatformConfig, TokenFlow, get_authenticator_with,
/// };
///
/// /// A company's own way to obtain tokens.
/// #[derive(Debug)]
/// struct CorpSso {
///     endpoint: Endpoint,
/// }
///
/// impl TokenFlow for CorpSso {
///     fn endpoint(&self) -> &Endpoint {
///         &self.endpoint
///     }
///     fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
///         Box::pin(async { Ok(Credentials::new("from-corp-sso", "flyte.example.org")) })
///     }
/// }
///
/// let registry = Arc::new(AuthenticatorRegistry::new());
/// registry.register("corp-sso", |cfg, store| {
///     let flow = CorpSso { endpoint: cfg.endpoint().clone() };
///     Ok(Arc::new(CachingAuthenticator::builder(flow).maybe_store(store).build()))
/// })?;
///
/// let cfg = PlatformConfig::builder()
///     .no_config_file()
///     .env(|name| match name {
///         "FLYTE_PLATFORM_URL" => Some("dns:///flyte.example.org".into()),
///         "FLYTE_CREDENTIALS_AUTH_MODE" => Some("Corp-SSO".into()), // any case
///         _ => None,
///     })
///     .build()?;
/// let options = FactoryOptions::new().registry(registry);
/// let auth = get_authenticator_with(&cfg, None, &options)?;
/// assert!(format!("{auth:?}").contains("CorpSso"));
/// # Ok::<(), Error>(())
/// ```
#[derive(Default)]
pub struct AuthenticatorRegistry {
    entries: RwLock<Entries>,
}

/// By lower-case name: the name as registered, and the factory.
type Entries = BTreeMap<String, (String, AuthenticatorFactory)>;

impl fmt::Debug for AuthenticatorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl AuthenticatorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry that [`get_authenticator`](crate::get_authenticator) consults
    /// (and [`register_authenticator`] fills). Created empty on first use.
    pub fn global() -> &'static AuthenticatorRegistry {
        static GLOBAL: OnceLock<AuthenticatorRegistry> = OnceLock::new();
        GLOBAL.get_or_init(AuthenticatorRegistry::new)
    }

    /// Registers `factory` under `name`, replacing what was registered under the same name in
    /// any case.
    ///
    /// Fails with [`Error::Config`] when `name` is a built-in auth type (`Pkce`, `basic`, ...:
    /// those always mean the built-in flow) or is not a valid auth type name (letters,
    /// digits, `_`, `-`, `.`).
    pub fn register<F>(&self, name: &str, factory: F) -> Result<(), Error>
    where
        F: Fn(
                &PlatformConfig,
                Option<Arc<dyn TokenStore>>,
            ) -> Result<Arc<dyn Authenticator>, Error>
            + Send
            + Sync
            + 'static,
    {
        self.register_factory(name, Arc::new(factory))
    }

    /// [`register`](Self::register) for a factory that is already an [`AuthenticatorFactory`].
    pub fn register_factory(&self, name: &str, factory: AuthenticatorFactory) -> Result<(), Error> {
        let why = match name.parse::<AuthMode>() {
            Ok(AuthMode::Plugin(name)) => {
                let previous = self
                    .write()
                    .insert(name.to_ascii_lowercase(), (name.clone(), factory));
                tracing::debug!(name = %name, replaced = previous.is_some(), "registered an authenticator");
                return Ok(());
            }
            Ok(builtin) => {
                format!("it names the built-in auth type {builtin}; choose another name")
            }
            Err(e) => e.to_string(),
        };
        Err(Error::config(format!(
            "cannot register an authenticator as `{}`: {why}",
            name.trim()
        )))
    }

    /// Removes the factory registered under `name` (any case); whether there was one.
    pub fn unregister(&self, name: &str) -> bool {
        self.write()
            .remove(&name.trim().to_ascii_lowercase())
            .is_some()
    }

    /// The factory registered under `name` (any case).
    pub fn get(&self, name: &str) -> Option<AuthenticatorFactory> {
        self.read()
            .get(&name.trim().to_ascii_lowercase())
            .map(|(_, factory)| Arc::clone(factory))
    }

    /// Whether a factory is registered under `name` (any case).
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(&name.trim().to_ascii_lowercase())
    }

    /// The registered names, as registered, sorted case-insensitively.
    pub fn names(&self) -> Vec<String> {
        self.read().values().map(|(name, _)| name.clone()).collect()
    }

    /// Calls the factory registered under `name` with `cfg` and `store`.
    ///
    /// Fails with [`Error::Config`] listing the built-in auth types and the registered names
    /// when nothing is registered under `name`; otherwise returns what the factory returns.
    pub fn create(
        &self,
        name: &str,
        cfg: &PlatformConfig,
        store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Arc<dyn Authenticator>, Error> {
        // The lock is released before the factory runs: a factory may use the registry.
        let factory = self.get(name).ok_or_else(|| self.unknown(name))?;
        tracing::debug!(
            name,
            endpoint = %cfg.endpoint(),
            "creating a registered authenticator"
        );
        factory(cfg, store)
    }

    /// The error for an auth type that is neither built in nor registered.
    pub(crate) fn unknown(&self, name: &str) -> Error {
        let names = self.names();
        let registered = if names.is_empty() {
            "no authenticator is registered".to_owned()
        } else {
            format!("registered: {}", names.join(", "))
        };
        Error::config(format!(
            "unknown auth type `{name}` (admin.authType / FLYTE_CREDENTIALS_AUTH_MODE): expected \
             one of {} (case-insensitive), or the name of an authenticator the program \
             registered ({registered})",
            AuthMode::accepted_names()
        ))
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Registers `factory` under `name` in the [global](AuthenticatorRegistry::global) registry:
/// flytekit's `register_authenticator_plugin`. A config whose `authType` is `name` (any case)
/// then gets its authenticator from `factory`.
///
/// Fails like [`AuthenticatorRegistry::register`].
///
/// ```
/// use std::sync::Arc;
/// use flyte_auth::{PlatformConfig, register_authenticator};
///
/// register_authenticator("vault-token", |cfg, store| {
///     let flow = flyte_auth::command::CommandFlow::builder()
///         .command(["vault", "read", "-field=token", "secret/flyte"])
///         .endpoint(cfg.endpoint().clone())
///         .build()?;
///     Ok(Arc::new(flyte_auth::CachingAuthenticator::builder(flow).maybe_store(store).build()))
/// })?;
/// assert!(register_authenticator("Pkce", |_, _| unreachable!()).is_err());
/// # Ok::<(), flyte_auth::Error>(())
/// ```
pub fn register_authenticator<F>(name: &str, factory: F) -> Result<(), Error>
where
    F: Fn(&PlatformConfig, Option<Arc<dyn TokenStore>>) -> Result<Arc<dyn Authenticator>, Error>
        + Send
        + Sync
        + 'static,
{
    AuthenticatorRegistry::global().register(name, factory)
}
