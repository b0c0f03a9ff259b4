//! The [`ClientContext`] of the flows under test, built the way the factory builds it, and
//! each flow at the provider, set up the way most tests want it.

use std::{sync::Arc, time::Duration};

use flyte_auth_clientcreds::{ClientCredentialsFlow, ClientCredentialsFlowBuilder};
use flyte_auth_core::{ClientConfigStore, Endpoint};
use flyte_auth_device::{DeviceCodeFlow, DeviceCodeFlowBuilder};
use flyte_auth_oauth::{ClientContext, OAuthClient, Overrides, RemoteClientConfigStore};
use flyte_auth_pkce::{BrowserOpener, LoginPrompt, PkceFlow, PkceFlowBuilder};

use crate::{ClientAuthMethod, ConfidentialClient, Idp};

/// The device flow at `idp` (discovery from its Flyte documents, every request through
/// `http`), polling every 200 ms (the provider names no `interval` unless started with one)
/// and waiting a minute at most for the approval. Chain the prompt, and any other setting.
pub fn device_flow(idp: &Idp, http: OAuthClient) -> DeviceCodeFlowBuilder {
    DeviceCodeFlow::builder(idp_context(idp, http, Overrides::new()))
        .poll_interval(Duration::from_millis(200))
        .timeout(Duration::from_secs(60))
}

/// The browser login at `idp` (discovery from its Flyte documents, every request through
/// `http`), with `browser` playing the user and no prompt. Chain the timeout, and any other
/// setting.
pub fn pkce_flow(idp: &Idp, http: OAuthClient, browser: BrowserOpener) -> PkceFlowBuilder {
    PkceFlow::builder(idp_context(idp, http, Overrides::new()))
        .browser(browser)
        .prompt(LoginPrompt::new(|_| {}))
}

/// Client credentials of `client` at `idp` (the token endpoint discovered from its Flyte
/// documents under `overrides`, every request through `http`), authenticating the way the
/// provider registered the client.
pub fn client_credentials_flow(
    idp: &Idp,
    http: OAuthClient,
    overrides: Overrides,
    client: &ConfidentialClient,
) -> ClientCredentialsFlowBuilder {
    let method = match client.auth_method() {
        ClientAuthMethod::ClientSecretBasic => {
            flyte_auth_oauth::ClientAuthMethod::ClientSecretBasic
        }
        ClientAuthMethod::ClientSecretPost => flyte_auth_oauth::ClientAuthMethod::ClientSecretPost,
    };
    ClientCredentialsFlow::builder(
        idp_context(idp, http, overrides),
        client.id(),
        client.secret(),
    )
    .auth_method(method)
}

/// The context of a flow at `idp`: its Flyte discovery documents read through `http`, under
/// `overrides`; stored tokens are keyed by the provider's `host:port`.
pub fn idp_context(idp: &Idp, http: OAuthClient, overrides: Overrides) -> ClientContext {
    let discovery = RemoteClientConfigStore::from_base_url(idp.base_url().as_str(), http.clone());
    context(&idp.host_port(), http, Some(Arc::new(discovery)), overrides)
}

/// The context of a flow for `endpoint`: `discovery` if given, else only the overrides.
pub fn context(
    endpoint: &str,
    http: OAuthClient,
    discovery: Option<Arc<dyn ClientConfigStore>>,
    overrides: Overrides,
) -> ClientContext {
    let builder = ClientContext::builder(Endpoint::parse(endpoint).expect("a valid endpoint"))
        .http_client(http)
        .overrides(overrides);
    match discovery {
        Some(store) => builder.discovery(store),
        None => builder.no_discovery(),
    }
    .build()
    .expect("a valid context")
}
