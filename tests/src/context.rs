//! The [`ClientContext`] of the flows under test, built the way the factory builds it.

use std::sync::Arc;

use flyte_auth_core::{ClientConfigStore, Endpoint};
use flyte_auth_oauth::{ClientContext, OAuthClient, Overrides, RemoteClientConfigStore};

use crate::Idp;

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
