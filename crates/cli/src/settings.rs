//! From the command line to a [`PlatformConfig`] and a token store: the flags are the explicit
//! layer over the config file and the `FLYTE_*` environment.

use std::sync::Arc;

use flyte_auth::{
    Error, PlatformConfig, TokenStore, config::PlatformConfigBuilder, oauth::HttpSettings,
};
use flyte_auth_store::{StoreKind, open_store_with};

use crate::args::Options;

/// The builder with every flag that was given set on it: flags win over the environment,
/// which wins over the file. The file is `--config` when given (it must then exist).
pub(crate) fn config_builder(options: &Options) -> PlatformConfigBuilder {
    let mut builder = PlatformConfig::builder();
    if let Some(path) = &options.config {
        builder = builder.config_file(path);
    }
    if let Some(endpoint) = &options.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(insecure) = options.insecure {
        builder = builder.insecure(insecure);
    }
    if let Some(path) = &options.ca_cert {
        builder = builder.ca_cert_file_path(path);
    }
    if let Some(skip) = options.insecure_skip_verify {
        builder = builder.insecure_skip_verify(skip);
    }
    if let Some(proxy) = &options.http_proxy {
        builder = builder.http_proxy_url(&proxy.0);
    }
    if let Some(mode) = &options.auth_mode {
        builder = builder.auth_mode(mode.clone());
    }
    if let Some(client_id) = &options.client_id {
        builder = builder.client_id(client_id);
    }
    if let Some(var) = &options.client_secret_env {
        builder = builder.client_secret_env_var(var);
    }
    if let Some(path) = &options.client_secret_file {
        builder = builder.client_secret_location(path);
    }
    if let Some(scopes) = &options.scopes {
        builder = builder.scopes(scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()));
    }
    if let Some(audience) = &options.audience {
        builder = builder.audience(audience);
    }
    if let Some(key) = &options.api_key {
        builder = builder.api_key(key.clone());
    }
    if let Some(timeout) = options.per_retry_timeout {
        builder = builder.per_retry_timeout(timeout);
    }
    builder
}

/// The HTTP settings of every OAuth request: the config's (TLS, proxy, retries), with
/// `--timeout` as the deadline of each operation (a discovery, a request with its retries).
/// The command as a whole is bounded in `commands`.
pub(crate) fn http_settings(cfg: &PlatformConfig, options: &Options) -> HttpSettings {
    let settings = cfg.http_settings();
    match options.timeout {
        Some(timeout) => settings.deadline(timeout),
        None => settings,
    }
}

/// Loads the platform config from the process environment, the config file and the flags.
pub(crate) fn load_config(options: &Options) -> Result<PlatformConfig, Error> {
    config_builder(options).build()
}

/// Opens the store `--store` names, in `--cache-dir` when given (`--all-layouts` or
/// `admin.writeAllLayouts` makes the keyring write every Flyte tool's layout;
/// `admin.disableKeyring` makes the automatic choice the file store). Touches nothing yet.
pub(crate) fn store(options: &Options, cfg: &PlatformConfig) -> Result<Arc<dyn TokenStore>, Error> {
    let kind = match options.store {
        StoreKind::Auto if cfg.disable_keyring() => StoreKind::File,
        kind => kind,
    };
    Ok(open_store_with(
        kind,
        options.cache_dir.clone(),
        options.all_layouts || cfg.write_all_layouts(),
    )?)
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use flyte_auth::AuthMode;

    use super::*;

    fn options(args: &[&str]) -> Options {
        let args: Vec<&str> = args.iter().copied().chain(["status"]).collect();
        crate::args::cli(&args).options
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let (_dir, path) = config_file(
            "admin:\n  endpoint: dns:///file.example.org:443\n  authType: Pkce\n  \
             clientId: from-file\n  scopes: [file]\n  insecure: true\n",
        );
        let path = path.to_str().unwrap().to_owned();
        let environment = env(&[
            ("FLYTE_PLATFORM_URL", "env.example.org:443"),
            ("FLYTE_CREDENTIALS_AUTH_MODE", "DeviceFlow"),
            ("FLYTE_CREDENTIALS_CLIENT_ID", "from-env"),
        ]);

        let cfg = config_builder(&options(&["--config", &path]))
            .env(env(&[]))
            .build()
            .unwrap();
        assert_eq!(cfg.endpoint().key(), "file.example.org:443");
        assert_eq!(cfg.auth_mode(), AuthMode::Pkce);
        assert_eq!(cfg.client_id(), Some("from-file"));
        assert!(cfg.insecure());

        let cfg = config_builder(&options(&["--config", &path]))
            .env(environment)
            .build()
            .unwrap();
        assert_eq!(cfg.endpoint().key(), "env.example.org:443");
        assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
        assert_eq!(cfg.client_id(), Some("from-env"));
        assert_eq!(cfg.scopes(), ["file"]);

        let cfg = config_builder(&options(&[
            "--config",
            &path,
            "--endpoint",
            "dns:///flag.example.org:8443",
            "--auth-mode",
            "ExternalCommand",
            "--client-id",
            "from-flag",
            "--scopes",
            "all, offline",
            "--insecure=false",
            "--audience",
            "https://aud",
        ]))
        .env(env(&[
            ("FLYTE_PLATFORM_URL", "env.example.org:443"),
            ("FLYTE_CREDENTIALS_AUTH_MODE", "DeviceFlow"),
        ]))
        .build()
        .unwrap();
        assert_eq!(cfg.endpoint().key(), "flag.example.org:8443");
        assert_eq!(cfg.auth_mode(), AuthMode::ExternalCommand);
        assert_eq!(cfg.client_id(), Some("from-flag"));
        assert_eq!(cfg.scopes(), ["all", "offline"]);
        assert!(!cfg.insecure());
        assert_eq!(cfg.audience(), Some("https://aud"));
        assert_eq!(cfg.config_file(), Some(std::path::Path::new(&path)));
    }

    #[test]
    fn a_client_secret_from_an_environment_variable_or_a_file_is_read_but_never_shown() {
        let cfg = config_builder(&options(&[
            "--endpoint",
            "h:1",
            "--client-id",
            "svc",
            "--client-secret-env",
            "MY_SECRET",
        ]))
        .no_config_file()
        .env(env(&[("MY_SECRET", "hunter2-secret")]))
        .build()
        .unwrap();
        // A secret found through the variable selects client credentials, as in flytekit.
        assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
        assert_eq!(
            cfg.client_secret().unwrap().expose_secret(),
            "hunter2-secret"
        );
        assert!(!format!("{cfg:?}").contains("hunter2"));
        cfg.validate().unwrap();

        let (_dir, path) = config_file("file-secret\n");
        let cfg = config_builder(&options(&[
            "--endpoint",
            "h:1",
            "--client-id",
            "svc",
            "--client-secret-file",
            path.to_str().unwrap(),
        ]))
        .no_config_file()
        .env(env(&[]))
        .build()
        .unwrap();
        assert_eq!(cfg.client_secret().unwrap().expose_secret(), "file-secret");
    }

    #[test]
    fn transport_flags_reach_the_config() {
        let cfg = config_builder(&options(&[
            "--endpoint",
            "h:1",
            "--ca-cert",
            "/etc/ca.pem",
            "--insecure-skip-verify",
            "--http-proxy",
            "http://proxy:3128",
        ]))
        .no_config_file()
        .env(env(&[]))
        .build()
        .unwrap();
        assert_eq!(
            cfg.ca_cert_file_path(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(cfg.insecure_skip_verify());
        assert_eq!(cfg.http_proxy_url(), Some("http://proxy:3128"));
        // Unset: the browser login keeps its own default.
        assert_eq!(cfg.pkce_timeout(), None);
    }

    #[test]
    fn timeout_is_the_deadline_of_each_operation_and_per_retry_timeout_bounds_an_attempt() {
        let given = options(&[
            "--endpoint",
            "h:1",
            "--timeout",
            "5",
            "--per-retry-timeout",
            "2s",
        ]);
        let cfg = config_builder(&given)
            .no_config_file()
            .env(env(&[]))
            .build()
            .unwrap();
        assert_eq!(cfg.per_retry_timeout(), Some(Duration::from_secs(2)));
        let settings = http_settings(&cfg, &given);
        assert_eq!(settings.deadline, Some(Duration::from_secs(5)));
        assert_eq!(
            settings.retry.per_attempt_timeout,
            Some(Duration::from_secs(2))
        );

        // Neither: no deadline, and the Go client's time per attempt.
        let plain = options(&["--endpoint", "h:1"]);
        let cfg = config_builder(&plain)
            .no_config_file()
            .env(env(&[]))
            .build()
            .unwrap();
        let settings = http_settings(&cfg, &plain);
        assert_eq!(settings.deadline, None);
        assert_eq!(
            settings.retry.per_attempt_timeout,
            Some(flyte_auth::oauth::DEFAULT_PER_RETRY_TIMEOUT)
        );
    }

    #[test]
    fn no_endpoint_anywhere_is_a_configuration_error() {
        let err = config_builder(&options(&[]))
            .no_config_file()
            .env(env(&[]))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
    }

    #[test]
    fn the_memory_store_can_be_chosen() {
        let cfg = PlatformConfig::for_endpoint("dns:///flyte.example.org").unwrap();
        let store = store(&options(&["--store", "memory"]), &cfg).unwrap();
        assert_eq!(store.name(), "memory");
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        assert_eq!(store.name(), "file");
    }

    fn store_in(dir: &std::path::Path) -> Arc<dyn TokenStore> {
        let cfg = PlatformConfig::for_endpoint("dns:///flyte.example.org").unwrap();
        store(
            &options(&["--store", "file", "--cache-dir", dir.to_str().unwrap()]),
            &cfg,
        )
        .unwrap()
    }
}
