//! How the Flyte 2 SDK's Rust controller (`rs_controller/src/auth/` in flyteorg/flyte-sdk)
//! would authenticate with flyte-auth instead of its hand-written layer.
//!
//! The controller decodes `_UNION_EAGER_API_KEY` (base64 of `endpoint:client_id:secret:org`),
//! runs the client-credentials grant itself, and wraps its tonic 0.12 `Channel` in its own
//! tower layer that adds the token (logging the header at `warn`), sends a call on without a
//! token when the grant fails, and after a 401 refreshes for the *next* call. With flyte-auth:
//!
//! - `ClientCredentialsAuthenticator` replaces `client_credentials.rs` and `token_client.rs`:
//!   caching, refresh before expiry, one grant for many concurrent calls, typed errors that
//!   never show the secret, retries of transient failures (`RetryPolicy`);
//! - `AuthLayer` replaces `middleware.rs`: the same `tower` layer type works on the
//!   controller's tonic 0.12 / tower 0.4 channel, reacts to gRPC `UNAUTHENTICATED` as well as
//!   401, and replays a rejected unary call (`.replay(tonic::body::boxed)`) instead of failing
//!   it.
//!
//! The generated clients (`StateServiceClient`, `QueueServiceClient`,
//! `ActionsServiceClient` of `flyteidl2`) take the layered channel unchanged; the standard
//! gRPC health client stands in for them here.
//!
//! Run against a server: `_UNION_EAGER_API_KEY=... cargo run -p flyte-auth --example
//! flyte_sdk_controller --features tower,clientcreds`.
#![allow(clippy::print_stdout, reason = "an example shows its result")]

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use flyte_auth::{
    AuthLayer, Authenticator, CachingAuthenticator, Endpoint, clientcreds::ClientCredentialsFlow,
    oauth::ClientContext,
};
use tonic_health012::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic012::transport::{Channel, ClientTlsConfig};
use tower::Layer as _;

/// What the controller's `AuthConfig::new_from_api_key` reads from the key.
struct ApiKey {
    endpoint: String,
    client_id: String,
    client_secret: String,
}

fn decode(api_key: &str) -> Result<ApiKey, Box<dyn std::error::Error>> {
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(api_key)?)?;
    let parts: Vec<&str> = decoded.split(':').collect();
    let [endpoint, client_id, client_secret, _org] = parts[..] else {
        return Err(format!("the API key has {} parts, not 4", parts.len()).into());
    };
    Ok(ApiKey {
        endpoint: endpoint.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(api_key) = std::env::var("_UNION_EAGER_API_KEY") else {
        eprintln!("set _UNION_EAGER_API_KEY (base64 of endpoint:client_id:secret:org) to run this");
        return Ok(());
    };
    let key = decode(&api_key)?;

    // client_credentials.rs + token_client.rs: one authenticator, in memory (a service has
    // no keyring; add `.store(...)` to share the token between processes).
    let ctx = ClientContext::builder(Endpoint::parse(&key.endpoint)?).build()?;
    let flow = ClientCredentialsFlow::builder(ctx, &key.client_id, key.client_secret).build()?;
    let auth: Arc<dyn Authenticator> = Arc::new(CachingAuthenticator::builder(flow).build());

    // middleware.rs: the controller's channel, unchanged, wrapped in flyte-auth's layer.
    // Eager: the controller's servers always require auth, so no call goes without a token.
    let channel = Channel::from_shared(format!("https://{}", key.endpoint))?
        .tls_config(ClientTlsConfig::new().with_native_roots())?
        .connect_timeout(Duration::from_secs(10))
        .connect_lazy();
    let layer = AuthLayer::new(auth).eager().replay(tonic012::body::boxed);
    let mut client = HealthClient::new(layer.layer(channel));

    let answer = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    match answer {
        Ok(answer) => println!("health: {:?}", answer.into_inner().status()),
        Err(status) => println!(
            "the server answered {:?}: {}",
            status.code(),
            status.message()
        ),
    }
    Ok(())
}
