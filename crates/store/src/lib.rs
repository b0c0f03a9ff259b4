//! Token stores for `flyte-auth`: where credentials live between processes.
//!
//! - [`KeyringStore`] (feature `keyring`, default): the OS keyring, in the entries every Flyte
//!   tool writes (pyflyte, the Flyte 2 SDK and its `~/.flyte/keyring.cfg`, flytectl,
//!   flyte-sdk-go), so that a login done by any of them serves the others.
//! - [`FileStore`] (feature `file`, default): one `0600` JSON file per endpoint, replaced
//!   atomically, with a cross-process lock. For machines without a keyring.
//! - [`MemoryStore`] (from `flyte-auth-core`): this process only.
//! - [`DefaultStore`] / [`default_store`]: the keyring when one answers, else the file store,
//!   else memory; [`StoreKind`] and [`open_store`] (with [`StoreOptions`]: [`open_store_with`])
//!   for a `--store auto|keyring|file|memory` option. A Flyte program with a platform config
//!   opens its store with `flyte_auth`'s `PlatformConfig::open_store`, which applies the
//!   config's store settings.
//! - [`DiscoveryHintFiles`] (either feature): which discovery flavour, and answer, each
//!   endpoint's server gave, in a small file next to the token files.
//!
//! Every store implements [`TokenStore`] from `flyte-auth-core`, which the credential cache
//! (`CachingAuthenticator`) uses. Opening a store touches nothing: the keyring or the disk is
//! reached on the first call, when a flow needs credentials.
//!
//! ```
//! use flyte_auth_store::{Credentials, Endpoint, StoreKind, TokenStore, open_store};
//!
//! # #[cfg(feature = "file")] {
//! let dir = tempfile::tempdir()?;
//! let store = open_store("file".parse::<StoreKind>()?, Some(dir.path().to_owned()))?;
//! let endpoint = Endpoint::parse("dns:///flyte.example.org:443")?;
//! store.store(&endpoint, &Credentials::new("token", endpoint.key()).with_expires_in(3600))?;
//! let back = store.retrieve(&endpoint)?.expect("stored above");
//! assert_eq!(back.access_token.expose_secret(), "token");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The crate docs link to the stores of every feature; a build without some of them has
// nothing to link to (docs.rs builds with all features).
#![cfg_attr(
    not(all(feature = "keyring", feature = "file")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "keyring")]
mod bounded;
#[cfg(any(feature = "keyring", feature = "file"))]
mod disk;
#[cfg(feature = "file")]
mod file;
#[cfg(any(feature = "keyring", feature = "file"))]
mod hints;
#[cfg(feature = "keyring")]
mod keyring_cfg;
#[cfg(feature = "keyring")]
mod keyring_store;
#[cfg(feature = "keyring")]
mod layouts;
mod select;

pub use flyte_auth_core::{
    Credentials, DiscoveryFlavour, DiscoveryHints, Endpoint, Error, MemoryStore, StoreError,
    StoreLock, TokenStore,
};

#[cfg(feature = "file")]
pub use file::FileStore;
#[cfg(any(feature = "keyring", feature = "file"))]
pub use hints::DiscoveryHintFiles;
#[cfg(feature = "keyring")]
#[doc(hidden)]
pub use keyring_cfg::{IniSection, parse_ini};
#[cfg(feature = "keyring")]
pub use keyring_store::KeyringStore;
#[cfg(feature = "keyring")]
#[doc(hidden)]
pub use layouts::{RawEntries, credentials_from_entries};
pub use select::{
    DefaultStore, ParseStoreKindError, StoreKind, StoreOptions, default_store, open_store,
    open_store_with,
};

/// The endpoint as stores key it: as configured, without the `dns:///` prefix of Flyte
/// configs (pyflyte strips it before it uses the endpoint as the keyring service name).
#[cfg(any(feature = "keyring", feature = "file"))]
pub(crate) fn store_key(endpoint: &str) -> &str {
    endpoint.strip_prefix("dns:///").unwrap_or(endpoint)
}
