//! Choosing a store: [`StoreKind`] (`auto`, `keyring`, `file`, `memory`), [`open_store`], and
//! [`DefaultStore`], which picks the keyring when one answers and the file store otherwise.

#[cfg(feature = "keyring")]
use std::{collections::HashMap, sync::Mutex, time::SystemTime};
use std::{
    fmt,
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use flyte_auth_core::{Credentials, Endpoint, MemoryStore, StoreError, StoreLock, TokenStore};

#[cfg(feature = "file")]
use crate::FileStore;
#[cfg(feature = "keyring")]
use crate::{
    KeyringStore,
    keyring_cfg::KeyringCfg,
    layouts::{self, Names},
};

/// Which store to use: the values of a `--store` option.
///
/// ```
/// use flyte_auth_store::StoreKind;
/// assert_eq!("keyring".parse::<StoreKind>().unwrap(), StoreKind::Keyring);
/// assert_eq!("FILE".parse::<StoreKind>().unwrap(), StoreKind::File);
/// assert_eq!(StoreKind::default().to_string(), "auto");
/// assert!("vault".parse::<StoreKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StoreKind {
    /// The keyring when one answers, else the file store ([`DefaultStore`]).
    #[default]
    Auto,
    /// The OS keyring ([`KeyringStore`](crate::KeyringStore), feature `keyring`).
    Keyring,
    /// One `0600` file per endpoint ([`FileStore`](crate::FileStore), feature `file`).
    File,
    /// This process only ([`MemoryStore`]): nothing persists.
    Memory,
}

impl StoreKind {
    /// Every kind, in the order a help text lists them.
    pub const ALL: [StoreKind; 4] = [Self::Auto, Self::Keyring, Self::File, Self::Memory];

    /// The name used on command lines and in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Keyring => "keyring",
            Self::File => "file",
            Self::Memory => "memory",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreKind {
    type Err = ParseStoreKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseStoreKindError {
                given: s.to_owned(),
            })
    }
}

/// A store name that is none of `auto`, `keyring`, `file`, `memory`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token store `{given}`; expected one of: auto, keyring, file, memory")]
pub struct ParseStoreKindError {
    given: String,
}

/// Opens the store `kind` names. `cache_dir` is the file store's directory, and the keyring
/// store's directory for lock files; `None` means `$FLYTE_AUTH_CACHE_DIR`, else `flyte-auth`
/// in the user's cache directory.
///
/// Opening touches neither the keyring nor the disk. It fails only when the store cannot be
/// had at all: a kind this build has no feature for, or no directory for the file store.
///
/// ```
/// use flyte_auth_store::{StoreKind, open_store};
/// let store = open_store(StoreKind::Memory, None)?;
/// assert_eq!(store.name(), "memory");
/// # Ok::<(), flyte_auth_store::StoreError>(())
/// ```
pub fn open_store(
    kind: StoreKind,
    cache_dir: Option<PathBuf>,
) -> Result<Arc<dyn TokenStore>, StoreError> {
    open_store_with(kind, StoreOptions::new().cache_dir(cache_dir))
}

/// How [`open_store_with`] opens a store: its directory, the keyring's layouts and the Flyte 2
/// SDK's `keyring.cfg`. Every option is off (or the default) until set.
///
/// ```
/// use flyte_auth_store::{StoreKind, StoreOptions, open_store_with};
/// let options = StoreOptions::new()
///     .write_all_layouts(true)
///     .keyring_cfg(Some("/work/project/.flyte/keyring.cfg".into()));
/// let store = open_store_with(StoreKind::Keyring, options)?;
/// assert_eq!(store.name(), "keyring");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
#[must_use]
pub struct StoreOptions {
    /// The file store's directory and the keyring store's lock directory.
    pub cache_dir: Option<PathBuf>,
    /// Whether the keyring writes every Flyte tool's layout on each login.
    pub write_all_layouts: bool,
    /// The Flyte 2 SDK's `keyring.cfg`, when not `~/.flyte/keyring.cfg`.
    pub keyring_cfg: Option<PathBuf>,
}

impl StoreOptions {
    /// Every option at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The file store's directory and the keyring store's lock directory, as in
    /// [`open_store`]; `None` for the default.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The keyring store (chosen or automatic) writes every Flyte tool's layout on each login
    /// ([`KeyringStore::write_all_layouts`](crate::KeyringStore::write_all_layouts)).
    pub fn write_all_layouts(mut self, all: bool) -> Self {
        self.write_all_layouts = all;
        self
    }

    /// The Flyte 2 SDK's `keyring.cfg` the keyring and automatic stores keep coherent, instead
    /// of `~/.flyte/keyring.cfg`; `None` for that default.
    pub fn keyring_cfg(mut self, path: Option<PathBuf>) -> Self {
        self.keyring_cfg = path;
        self
    }
}

/// [`open_store`] with [`StoreOptions`]; the file and memory stores ignore the keyring's.
pub fn open_store_with(
    kind: StoreKind,
    options: StoreOptions,
) -> Result<Arc<dyn TokenStore>, StoreError> {
    let StoreOptions {
        cache_dir,
        write_all_layouts,
        keyring_cfg,
    } = options;
    match kind {
        StoreKind::Auto => {
            let mut store = DefaultStore::new(cache_dir).write_all_layouts(write_all_layouts);
            if keyring_cfg.is_some() {
                store = store.with_keyring_cfg(keyring_cfg);
            }
            Ok(Arc::new(store))
        }
        #[cfg(feature = "keyring")]
        StoreKind::Keyring => {
            let mut store = keyring_store(cache_dir).write_all_layouts(write_all_layouts);
            if keyring_cfg.is_some() {
                store = store.with_keyring_cfg(keyring_cfg);
            }
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "keyring"))]
        StoreKind::Keyring => Err(not_built("keyring", "keyring")),
        #[cfg(feature = "file")]
        StoreKind::File => Ok(Arc::new(FileStore::open(cache_dir)?)),
        #[cfg(not(feature = "file"))]
        StoreKind::File => Err(not_built("file", "file")),
        StoreKind::Memory => Ok(Arc::new(MemoryStore::new())),
    }
}

#[cfg(any(not(feature = "keyring"), not(feature = "file")))]
fn not_built(store: &'static str, feature: &str) -> StoreError {
    StoreError::Unavailable {
        store,
        message: format!(
            "this program was built without the `{feature}` feature of flyte-auth-store"
        ),
    }
}

/// The store to use when nobody chose one: a [`DefaultStore`] with the default directory. A
/// program with a Flyte platform config opens it with `flyte_auth`'s
/// `PlatformConfig::open_store` instead, which applies the config's store settings.
pub fn default_store() -> Arc<dyn TokenStore> {
    Arc::new(DefaultStore::new(None))
}

/// The keyring when one answers, else the file store, else memory; decided on first use.
///
/// Creating it touches nothing. The first call that needs the store probes the keyring with
/// a write ([`KeyringStore::probe_writable`](crate::KeyringStore::probe_writable), within
/// [`DefaultStore::PROBE_TIMEOUT`]) and keeps the answer for the process; in a task pod, or on
/// Linux and the BSDs without a D-Bus session bus, the keyring is not asked at all. The first
/// login a fallback keeps is logged at `warn`. [`delete`](TokenStore::delete) also removes the
/// file store's copy when the keyring was chosen, and the Flyte 2 SDK's `keyring.cfg`
/// ([`with_keyring_cfg`](Self::with_keyring_cfg)) is kept coherent beside the file or memory
/// store. Until the probe [`TokenStore::name`] says `auto`. The crate's README ("Which store
/// by default") says why and how in full.
///
/// ```
/// use flyte_auth_store::{DefaultStore, TokenStore};
/// let dir = tempfile::tempdir()?;
/// let store = DefaultStore::new(Some(dir.path().to_owned()));
/// assert_eq!(store.name(), "auto"); // nothing probed yet
/// let chosen = store.chosen();      // probes
/// assert!(["keyring", "file", "memory"].contains(&chosen.name()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DefaultStore {
    cache_dir: Option<PathBuf>,
    /// The keyring store it picks, when it picks one; its Flyte 2 SDK keyring file is kept
    /// beside the file or memory store too.
    #[cfg(feature = "keyring")]
    keyring: KeyringStore,
    chosen: OnceLock<Choice>,
    /// Whether a login saved by the fallback was reported at `warn` already.
    warned: AtomicBool,
    /// Per endpoint (as written): whether the keyring file held its login when last read or
    /// deleted.
    #[cfg(feature = "keyring")]
    cfg_held: Mutex<HashMap<String, bool>>,
}

/// What a [`DefaultStore`] chose, and why.
struct Choice {
    store: Arc<dyn TokenStore>,
    /// Why the keyring was passed over, when this build has one and it did not answer.
    keyring_failure: Option<String>,
    /// The file store, when it is the one chosen.
    #[cfg(feature = "file")]
    file: Option<FileStore>,
}

impl DefaultStore {
    /// How long the keyring may take to answer the probe.
    pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

    /// A store that decides on first use; `cache_dir` as in [`open_store`].
    pub fn new(cache_dir: Option<PathBuf>) -> Self {
        Self {
            #[cfg(feature = "keyring")]
            keyring: keyring_store(cache_dir.clone()),
            cache_dir,
            chosen: OnceLock::new(),
            warned: AtomicBool::new(false),
            #[cfg(feature = "keyring")]
            cfg_held: Mutex::default(),
        }
    }

    /// The Flyte 2 SDK's plaintext keyring file to keep coherent, `None` for none; by default
    /// `.flyte/keyring.cfg` in `$HOME`
    /// ([`KeyringStore::with_keyring_cfg`](crate::KeyringStore::with_keyring_cfg)). Without the
    /// `keyring` feature there is none.
    #[must_use]
    pub fn with_keyring_cfg(self, path: Option<PathBuf>) -> Self {
        #[cfg(feature = "keyring")]
        {
            Self {
                keyring: self.keyring.with_keyring_cfg(path),
                ..self
            }
        }
        #[cfg(not(feature = "keyring"))]
        {
            let _ = path;
            self
        }
    }

    /// Writes every Flyte tool's layout when the keyring is chosen
    /// ([`KeyringStore::write_all_layouts`](crate::KeyringStore::write_all_layouts)); no
    /// effect on the other stores.
    #[must_use]
    pub fn write_all_layouts(self, all: bool) -> Self {
        #[cfg(feature = "keyring")]
        {
            Self {
                keyring: self.keyring.write_all_layouts(all),
                ..self
            }
        }
        #[cfg(not(feature = "keyring"))]
        {
            let _ = all;
            self
        }
    }

    /// Decides now (if not yet done) and returns the chosen store.
    pub fn chosen(&self) -> &Arc<dyn TokenStore> {
        &self.choice().store
    }

    fn choice(&self) -> &Choice {
        self.chosen.get_or_init(|| {
            choose(
                #[cfg(feature = "keyring")]
                &self.keyring,
                self.cache_dir.clone(),
            )
        })
    }

    /// Says, at `warn` the first time, that a login went to the fallback store.
    fn report_fallback(&self, choice: &Choice, endpoint: &Endpoint) {
        let Some(why) = &choice.keyring_failure else {
            return;
        };
        let first = !self.warned.swap(true, Ordering::SeqCst);
        #[cfg(feature = "file")]
        if let Some(file) = &choice.file {
            let path = file.path_for(endpoint);
            let message = "the keyring did not answer; the login was saved to a file instead (readable by this user only; `logout` removes it)";
            if first {
                tracing::warn!(path = %path.display(), keyring = %why, "{message}");
            } else {
                tracing::debug!(path = %path.display(), keyring = %why, "{message}");
            }
            return;
        }
        let message = "the keyring did not answer and no file store is available; the login is kept in this process's memory only";
        if first {
            tracing::warn!(endpoint = %endpoint, keyring = %why, "{message}");
        } else {
            tracing::debug!(endpoint = %endpoint, keyring = %why, "{message}");
        }
    }

    /// Removes the file-store copy of `endpoint`'s login when the keyring was chosen: one an
    /// earlier process saved there while the keyring was away must not outlive a logout. The
    /// keyring is never touched from here: when the file store was chosen the keyring did not
    /// answer, and its entries include other tools' logins, which only a delete of the
    /// keyring store itself may remove.
    fn delete_elsewhere(&self, chosen: &'static str, endpoint: &Endpoint) {
        #[cfg(feature = "file")]
        if chosen != "file"
            && let Ok(file) = FileStore::open(self.cache_dir.clone())
        {
            let path = file.path_for(endpoint);
            let existed = path.symlink_metadata().is_ok();
            match file.delete(endpoint) {
                Ok(()) if existed => tracing::info!(
                    path = %path.display(),
                    "removed the login the file store kept too"
                ),
                Ok(()) => {}
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "could not remove the login the file store may keep"
                ),
            }
        }
        #[cfg(not(feature = "file"))]
        let _ = (chosen, endpoint);
    }
}

/// The Flyte 2 SDK's keyring file beside the file or memory store (the keyring store reads
/// it as one of its layouts).
#[cfg(feature = "keyring")]
impl DefaultStore {
    /// The keyring file, when one is kept beside the chosen store.
    fn beside(&self, choice: &Choice) -> Option<&KeyringCfg> {
        self.keyring
            .cfg_file()
            .filter(|_| choice.store.name() != "keyring")
    }

    fn set_cfg_held(&self, endpoint: &Endpoint, held: bool) {
        self.cfg_held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(endpoint.as_written().to_owned(), held);
    }

    fn cfg_held(&self, endpoint: &Endpoint) -> Option<bool> {
        self.cfg_held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(endpoint.as_written())
            .copied()
    }

    /// The newer of the chosen store's login and the keyring file's, marked as having stale
    /// copies when they differ (the cache then writes it back to both). The newer is the one
    /// whose file was written last; beside the memory store, the keyring file's (this process
    /// writes every login to it too, so a different one was written since).
    fn newer_of(
        &self,
        cfg: &KeyringCfg,
        choice: &Choice,
        endpoint: &Endpoint,
        own: Option<Credentials>,
    ) -> Option<Credentials> {
        let service = Names::new(endpoint.as_written()).flyte2;
        let found = cfg.read(&service);
        self.set_cfg_held(endpoint, found.copy.is_some());
        let Some(copy) = found.copy else {
            return own;
        };
        let same = own.as_ref().is_some_and(|own| {
            own.access_token.expose_secret() == copy.access_token
                && own.refresh_token.as_ref().map(|t| t.expose_secret())
                    == copy.refresh_token.as_deref()
        });
        if same {
            return own;
        }
        let theirs = layouts::choose(
            std::slice::from_ref(&copy),
            None,
            endpoint.key(),
            layouts::unix_now(),
        );
        let Some(own) = own else {
            return theirs;
        };
        let own_written = self.own_written(choice, endpoint);
        let theirs_newer = found
            .modified
            .is_some_and(|theirs| own_written.is_none_or(|own| theirs > own));
        let mut newer = if theirs_newer {
            tracing::debug!(path = %cfg.path().display(), "the Flyte 2 SDK's keyring file holds a newer login");
            theirs.unwrap_or(own)
        } else {
            own
        };
        newer.set_stale_copies(true);
        Some(newer)
    }

    /// When the chosen store last wrote `endpoint`'s login (the file store's file).
    fn own_written(&self, choice: &Choice, endpoint: &Endpoint) -> Option<SystemTime> {
        #[cfg(feature = "file")]
        if let Some(file) = &choice.file {
            return std::fs::symlink_metadata(file.path_for(endpoint))
                .and_then(|m| m.modified())
                .ok();
        }
        let _ = (choice, endpoint);
        None
    }

    /// Writes `credentials` to the keyring file when it held the endpoint's login (read now
    /// if this store never looked).
    fn store_in_cfg(
        &self,
        cfg: &KeyringCfg,
        endpoint: &Endpoint,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        let service = Names::new(endpoint.as_written()).flyte2;
        let held = match self.cfg_held(endpoint) {
            Some(held) => held,
            None => cfg.read(&service).copy.is_some(),
        };
        if held {
            cfg.write(&service, credentials)?;
            self.set_cfg_held(endpoint, true);
        }
        Ok(())
    }
}

impl fmt::Debug for DefaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultStore")
            .field("cache_dir", &self.cache_dir)
            .field("chosen", &self.chosen.get().map(|c| c.store.name()))
            .finish()
    }
}

impl TokenStore for DefaultStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        let choice = self.choice();
        choice.store.store(endpoint, credentials)?;
        self.report_fallback(choice, endpoint);
        #[cfg(feature = "keyring")]
        if let Some(cfg) = self.beside(choice)
            && let Err(e) = self.store_in_cfg(cfg, endpoint, credentials)
        {
            // The login is saved; the SDK's copy is only kept coherent where it can be (a
            // directory it may not write, a file it cannot parse): as `delete` does.
            tracing::warn!(error = %e, "could not update the login in the Flyte 2 SDK's keyring file");
        }
        Ok(())
    }

    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        let choice = self.choice();
        let own = choice.store.retrieve(endpoint)?;
        #[cfg(feature = "keyring")]
        if let Some(cfg) = self.beside(choice) {
            return Ok(self.newer_of(cfg, choice, endpoint, own));
        }
        Ok(own)
    }

    /// Deletes the login from the chosen store (its failure is the error), then from the
    /// other persistent store and the Flyte 2 SDK's keyring file (their failures are logged).
    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let choice = self.choice();
        let result = choice.store.delete(endpoint);
        self.delete_elsewhere(choice.store.name(), endpoint);
        #[cfg(feature = "keyring")]
        if let Some(cfg) = self.beside(choice) {
            let service = Names::new(endpoint.as_written()).flyte2;
            match cfg.delete(&service) {
                Ok(had) => self.set_cfg_held(endpoint, had),
                Err(e) => {
                    tracing::warn!(error = %e, "could not remove the login from the Flyte 2 SDK's keyring file")
                }
            }
        }
        result
    }

    fn lock(&self, endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        self.chosen().lock(endpoint)
    }

    fn name(&self) -> &'static str {
        self.chosen.get().map_or("auto", |c| c.store.name())
    }

    /// The file store's directory, which is also the keyring store's lock directory (known
    /// without probing the keyring).
    fn directory(&self) -> Option<PathBuf> {
        #[cfg(any(feature = "keyring", feature = "file"))]
        {
            crate::disk::store_dir(self.cache_dir.clone())
        }
        #[cfg(not(any(feature = "keyring", feature = "file")))]
        {
            None
        }
    }
}

/// A keyring store whose lock files go to `cache_dir` when given.
#[cfg(feature = "keyring")]
fn keyring_store(cache_dir: Option<PathBuf>) -> KeyringStore {
    match cache_dir {
        Some(dir) => KeyringStore::new().with_lock_dir(dir),
        None => KeyringStore::new(),
    }
}

/// Whether the keyring answered its probe in this process (asked once).
#[cfg(feature = "keyring")]
fn keyring_answers() -> &'static Result<(), StoreError> {
    static PROBED: OnceLock<Result<(), StoreError>> = OnceLock::new();
    PROBED.get_or_init(|| {
        KeyringStore::new()
            .with_timeout(DefaultStore::PROBE_TIMEOUT)
            .probe_writable()
    })
}

/// Signals of a Kubernetes pod (a Flyte task's): where the Flyte 2 SDK uses no keyring.
const POD_VARIABLE: &str = "KUBERNETES_SERVICE_HOST";
/// The prefix of the variables Union's task pods carry (`_U_EP_OVERRIDE`, `_U_INSECURE`, ...).
const POD_VARIABLE_PREFIX: &str = "_U_";

/// Whether this process runs in a task pod (a Kubernetes pod, or a Union task's).
fn in_task_pod() -> bool {
    std::env::var_os(POD_VARIABLE).is_some_and(|v| !v.is_empty())
        || std::env::vars_os().any(|(name, _)| {
            name.to_str()
                .is_some_and(|name| name.starts_with(POD_VARIABLE_PREFIX))
        })
}

/// Why the keyring is not even asked here, when it cannot answer: a task pod, or (where the
/// keyring is the Secret Service) no D-Bus session bus to reach it on. Reads the environment
/// and looks for one socket; never connects.
#[cfg(feature = "keyring")]
fn keyring_skipped() -> Option<String> {
    if in_task_pod() {
        return Some(format!(
            "a task pod ({POD_VARIABLE} or a {POD_VARIABLE_PREFIX}* variable is set), where no \
             keyring is used"
        ));
    }
    #[cfg(all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    ))]
    if !session_bus_configured() {
        return Some(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no \
             $XDG_RUNTIME_DIR/bus), so no Secret Service to ask"
                .to_owned(),
        );
    }
    None
}

/// Whether a D-Bus session bus may be there: an address in the environment, or the socket at
/// the place a client looks without one (`$XDG_RUNTIME_DIR/bus`, else `/run/user/<uid>/bus`).
#[cfg(all(
    feature = "keyring",
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn session_bus_configured() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return true;
    }
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(format!("/run/user/{}", rustix::process::geteuid().as_raw()))
        });
    runtime_dir.join("bus").symlink_metadata().is_ok()
}

/// The file store's directory in a task pod: the one given, `$FLYTE_AUTH_CACHE_DIR`, or the
/// cache directory under `$HOME` (or `$XDG_CACHE_HOME`), created now; a pod without any of
/// them, or where it cannot be created, keeps tokens in memory.
#[cfg(feature = "file")]
fn pod_file_store(cache_dir: Option<PathBuf>) -> Result<FileStore, String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let known = cache_dir.is_some()
        || set(crate::disk::ENV_CACHE_DIR)
        || set("HOME")
        || set("XDG_CACHE_HOME");
    if !known {
        return Err(format!(
            "a task pod without a home directory or ${}",
            crate::disk::ENV_CACHE_DIR
        ));
    }
    let store = FileStore::open(cache_dir).map_err(|e| e.to_string())?;
    crate::disk::create_private_dir("file", "write", store.dir()).map_err(|e| e.to_string())?;
    Ok(store)
}

fn choose(
    #[cfg(feature = "keyring")] keyring: &KeyringStore,
    cache_dir: Option<PathBuf>,
) -> Choice {
    #[cfg(feature = "keyring")]
    let keyring_failure = match keyring_skipped() {
        Some(why) => why,
        None => match keyring_answers() {
            Ok(()) => {
                announce(format_args!("storing tokens in the OS keyring"));
                return Choice {
                    store: Arc::new(keyring.clone()),
                    keyring_failure: None,
                    #[cfg(feature = "file")]
                    file: None,
                };
            }
            Err(e) => e.to_string(),
        },
    };
    #[cfg(not(feature = "keyring"))]
    let keyring_failure = "this build has no keyring support".to_owned();
    // Only a build with a keyring falls back from it; in a task pod no keyring is expected.
    let fallback = (cfg!(feature = "keyring") && !in_task_pod()).then(|| keyring_failure.clone());

    #[cfg(feature = "file")]
    let file_failure = match if in_task_pod() {
        pod_file_store(cache_dir)
    } else {
        FileStore::open(cache_dir).map_err(|e| e.to_string())
    } {
        Ok(store) => {
            announce(format_args!(
                "no keyring available ({keyring_failure}); storing tokens in {} (files readable by this user only)",
                store.dir().display()
            ));
            return Choice {
                store: Arc::new(store.clone()),
                keyring_failure: fallback,
                file: Some(store),
            };
        }
        Err(e) => e,
    };
    #[cfg(not(feature = "file"))]
    let file_failure = {
        let _ = cache_dir;
        "this build has no file store".to_owned()
    };

    announce(format_args!(
        "no keyring available ({keyring_failure}) and no file store ({file_failure}); \
         tokens are kept in memory only, so each new process will log in again"
    ));
    Choice {
        store: Arc::new(MemoryStore::new()),
        keyring_failure: fallback,
        #[cfg(feature = "file")]
        file: None,
    }
}

/// Logs the choice: at `info` the first time in this process, at `debug` afterwards.
fn announce(message: fmt::Arguments<'_>) {
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    if ANNOUNCED.swap(true, Ordering::SeqCst) {
        tracing::debug!("{message}");
    } else {
        tracing::info!("{message}");
    }
}
