//! The authenticator for a config: the flow its auth mode names, with the command line's
//! transport settings, browser choice and token store.

use std::sync::Arc;

use flyte_auth::{
    AuthMode, Authenticator, Error, PlatformConfig, TokenStore,
    clientcreds::ClientCredentialsAuthenticator,
    command::CommandAuthenticator,
    device::DeviceCodeAuthenticator,
    oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore},
    pkce::PKCEAuthenticator,
};

use crate::args::Options;

/// The HTTP settings of the config, with `--timeout` bounding each request.
fn http_settings(cfg: &PlatformConfig, options: &Options) -> HttpSettings {
    let mut settings = HttpSettings::new().danger_accept_invalid_certs(cfg.insecure_skip_verify());
    if let Some(path) = cfg.ca_cert_file_path() {
        settings = settings.ca_cert_file(path);
    }
    if let Some(proxy) = cfg.http_proxy_url() {
        settings = settings.proxy(proxy);
    }
    if let Some(timeout) = options.timeout {
        let connect = timeout.min(settings.connect_timeout);
        settings = settings.request_timeout(timeout).connect_timeout(connect);
    }
    settings
}

/// The authenticator `cfg.auth_mode()` names, persisting to `store`.
pub(crate) fn authenticator(
    cfg: &PlatformConfig,
    options: &Options,
    store: Arc<dyn TokenStore>,
) -> Result<Arc<dyn Authenticator>, Error> {
    let endpoint = cfg.endpoint().to_owned();
    let settings = http_settings(cfg, options);
    Ok(match cfg.auth_mode() {
        AuthMode::ExternalCommand => Arc::new(
            CommandAuthenticator::builder()
                .command(cfg.command().iter().cloned())
                .endpoint(endpoint)
                .store(store)
                .build()?,
        ),
        AuthMode::ClientSecret => {
            let mut builder = ClientCredentialsAuthenticator::builder(
                endpoint,
                cfg.client_id().unwrap_or_default(),
                cfg.client_secret()
                    .cloned()
                    .ok_or_else(|| Error::config("no client secret"))?,
            )
            .insecure(cfg.insecure())
            .http_settings(settings)
            .store(store);
            if !cfg.scopes().is_empty() {
                builder = builder.scopes(cfg.scopes().iter().cloned());
            }
            if let Some(audience) = cfg.audience() {
                builder = builder.audience(audience);
            }
            Arc::new(builder.build()?)
        }
        AuthMode::DeviceFlow => {
            let mut builder = DeviceCodeAuthenticator::builder(endpoint)
                .insecure(cfg.insecure())
                .http_settings(settings)
                .poll_interval(cfg.device_flow().poll_interval)
                .timeout(cfg.device_flow().timeout)
                .store(store);
            if let Some(id) = cfg.client_id() {
                builder = builder.client_id(id);
            }
            if !cfg.scopes().is_empty() {
                builder = builder.scopes(cfg.scopes().iter().cloned());
            }
            Arc::new(builder.build()?)
        }
        _ => {
            let http = OAuthClient::new(settings)?;
            let discovery =
                RemoteClientConfigStore::new(cfg.endpoint(), cfg.insecure(), http.clone())?;
            let mut builder = PKCEAuthenticator::builder(endpoint, Arc::new(discovery))
                .http_client(http)
                .timeout(cfg.pkce().timeout)
                .store(store);
            if options.no_browser {
                builder = builder.no_browser();
            }
            if !cfg.scopes().is_empty() {
                builder = builder.scopes(cfg.scopes().iter().cloned());
            }
            Arc::new(builder.build()?)
        }
    })
}
