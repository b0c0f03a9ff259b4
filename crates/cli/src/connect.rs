//! The authenticator for a config, from `flyte_auth::get_authenticator_with`, with what the
//! command line adds: `--no-browser`, `--timeout`, `--command-timeout`, `--qr`, the prompts
//! (also on the controlling terminal) and the token store.

use std::{io::IsTerminal as _, sync::Arc};

use flyte_auth::{
    Authenticator, Error, FactoryOptions, PlatformConfig, TokenStore, get_authenticator_with,
};

use crate::{args::Options, prompt, settings};

/// The factory options the command line asks for (the factory itself applies the config's
/// `admin.commandTimeout` when `--command-timeout` is not given).
pub(crate) fn factory_options(cfg: &PlatformConfig, options: &Options) -> FactoryOptions {
    let mut factory = FactoryOptions::new()
        .no_browser(options.no_browser)
        .device_prompt(prompt::device(options.qr))
        .login_prompt(prompt::browser())
        // A token command may ask the person at the terminal (an MFA prompt); without a
        // terminal its stdin is empty and a time-out kills everything it started.
        .interactive_command(std::io::stdin().is_terminal());
    if let Some(timeout) = options.command_timeout {
        factory = factory.command_timeout(timeout);
    }
    // `--timeout` is the deadline of each operation (`commands` bounds the whole command).
    factory.http_settings(settings::http_settings(cfg, options))
}

/// The authenticator `cfg.auth_mode()` names, persisting logins to `store`. Touches neither
/// the network nor the store.
pub(crate) fn authenticator(
    cfg: &PlatformConfig,
    options: &Options,
    store: Arc<dyn TokenStore>,
) -> Result<Arc<dyn Authenticator>, Error> {
    get_authenticator_with(cfg, Some(store), &factory_options(cfg, options))
}
