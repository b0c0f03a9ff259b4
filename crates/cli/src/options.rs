//! What the flags ask for beyond the config's settings, and what the commands build from it:
//! the HTTP settings, the token store and the authenticator.

use std::{io::IsTerminal as _, path::PathBuf, sync::Arc, time::Duration};

use flyte_auth::{
    Authenticator, Error, FactoryOptions, PlatformConfig, TokenStore, get_authenticator_with,
    oauth::HttpSettings,
};
use flyte_auth_store::{StoreKind, StoreOptions};

use crate::prompt;

/// The flags that are not config settings (those are set on the
/// [`PlatformConfigBuilder`](flyte_auth::config::PlatformConfigBuilder) as they are read).
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// `--timeout`: the deadline of the whole command.
    pub(crate) timeout: Option<Duration>,
    /// `--no-browser`.
    pub(crate) no_browser: bool,
    /// `--qr`.
    pub(crate) qr: bool,
    /// `--store`, else `$FLYTE_AUTH_STORE`, else `auto`.
    pub(crate) store: StoreKind,
    /// `--all-layouts`, else `$FLYTE_AUTH_ALL_LAYOUTS`.
    pub(crate) all_layouts: bool,
    /// `--cache-dir`.
    pub(crate) cache_dir: Option<PathBuf>,
}

impl Options {
    /// The HTTP settings of every OAuth request: the config's (TLS, proxy, retries), with
    /// `--timeout` as the deadline of each operation (a discovery, a request with its
    /// retries). The command as a whole is bounded in `commands`.
    pub(crate) fn http_settings(&self, cfg: &PlatformConfig) -> HttpSettings {
        let settings = cfg.http_settings();
        match self.timeout {
            Some(timeout) => settings.deadline(timeout),
            None => settings,
        }
    }

    /// Opens the store `--store` names, in `--cache-dir` when given, as the config asks
    /// ([`PlatformConfig::open_store`]); `--all-layouts` makes the keyring write every Flyte
    /// tool's layout. Touches nothing yet.
    pub(crate) fn store(&self, cfg: &PlatformConfig) -> Result<Arc<dyn TokenStore>, Error> {
        let options = StoreOptions::new()
            .cache_dir(self.cache_dir.clone())
            .write_all_layouts(self.all_layouts);
        cfg.open_store(self.store, options)
    }

    /// The authenticator `cfg.auth_mode()` names (`flyte_auth::get_authenticator_with`),
    /// persisting logins to `store`, with what the command line adds: `--no-browser`, `--qr`,
    /// `--timeout`, and the prompts (also on the controlling terminal). Touches neither the
    /// network nor the store.
    pub(crate) fn authenticator(
        &self,
        cfg: &PlatformConfig,
        store: Arc<dyn TokenStore>,
    ) -> Result<Arc<dyn Authenticator>, Error> {
        let factory = FactoryOptions::new()
            .no_browser(self.no_browser)
            .device_prompt(prompt::device(self.qr))
            .login_prompt(prompt::browser())
            // A token command may ask the person at the terminal (an MFA prompt); without a
            // terminal its stdin is empty and a time-out kills everything it started.
            .interactive_command(std::io::stdin().is_terminal())
            // `--timeout` is the deadline of each operation (`commands` bounds the whole
            // command).
            .http_settings(self.http_settings(cfg));
        get_authenticator_with(cfg, Some(store), &factory)
    }
}

#[cfg(test)]
mod tests {
    use crate::args::cli;

    use super::*;

    fn parsed(args: &[&str]) -> (PlatformConfig, Options) {
        let args: Vec<&str> = args.iter().copied().chain(["status"]).collect();
        let cli = cli(&args);
        let cfg = cli.config.no_config_file().no_env().build().unwrap();
        (cfg, cli.options)
    }

    #[test]
    fn timeout_is_the_deadline_of_each_operation_and_per_retry_timeout_bounds_an_attempt() {
        let (cfg, options) = parsed(&[
            "--endpoint",
            "h:1",
            "--timeout",
            "5",
            "--per-retry-timeout",
            "2s",
        ]);
        assert_eq!(cfg.per_retry_timeout(), Some(Duration::from_secs(2)));
        let settings = options.http_settings(&cfg);
        assert_eq!(settings.deadline, Some(Duration::from_secs(5)));
        assert_eq!(
            settings.retry.per_attempt_timeout,
            Some(Duration::from_secs(2))
        );

        // Neither: no deadline, and the Go client's time per attempt.
        let (cfg, options) = parsed(&["--endpoint", "h:1"]);
        let settings = options.http_settings(&cfg);
        assert_eq!(settings.deadline, None);
        assert_eq!(
            settings.retry.per_attempt_timeout,
            Some(flyte_auth::oauth::DEFAULT_PER_RETRY_TIMEOUT)
        );
    }

    #[test]
    fn the_memory_or_file_store_can_be_chosen() {
        let (cfg, options) = parsed(&["--endpoint", "h:1", "--store", "memory"]);
        assert_eq!(options.store(&cfg).unwrap().name(), "memory");
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_str().unwrap();
        let (cfg, options) = parsed(&["--endpoint", "h:1", "--store", "file", "--cache-dir", dir]);
        assert_eq!(options.store(&cfg).unwrap().name(), "file");
    }
}
