//! flyte_core's authentication on flyte-auth: the Flyte 2 SDK's Rust controller
//! (`flyte_core` on crates.io, `rs_controller/` in flyteorg/flyte-sdk) keeps its public auth
//! API (`AuthConfig::new_from_api_key`, `ClientCredentialsAuthenticator`,
//! `AuthLayer::new(auth, channel)`, `AuthService<Channel>`) and hands the work to flyte-auth.
//! The module is in `flyte_core/auth/`; `tests/flyte_core.rs` checks its behaviour against a
//! tonic 0.12 server.
//!
//! As the controller does (`CoreBaseController::new_with_auth`): read `_UNION_EAGER_API_KEY`,
//! open a TLS channel to the key's endpoint, and wrap it with the layer. The standard gRPC
//! health client stands in for its `StateServiceClient`, `QueueServiceClient` and
//! `ActionsServiceClient`, which take `AuthService<Channel>` the same way.
//!
//! Run against a server: `_UNION_EAGER_API_KEY=... cargo run -p flyte-auth --example
//! flyte_core --features tower,clientcreds`.
#![allow(clippy::print_stdout, reason = "an example shows its result")]

#[path = "flyte_core/auth/mod.rs"]
mod auth;

use std::{sync::Arc, time::Duration};

use auth::{AuthConfig, AuthLayer, AuthService, ClientCredentialsAuthenticator};
use tonic_health012::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic012::transport::{Channel, ClientTlsConfig};
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(api_key) = std::env::var("_UNION_EAGER_API_KEY") else {
        eprintln!("set _UNION_EAGER_API_KEY (an API key, as `flyte create api-key` prints it)");
        return Ok(());
    };
    let auth_config = AuthConfig::new_from_api_key(&api_key)?;
    let channel = Channel::from_shared(auth_config.endpoint.clone())?
        .tls_config(ClientTlsConfig::new().with_native_roots())?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .connect_lazy();

    let authenticator = Arc::new(ClientCredentialsAuthenticator::new(auth_config));
    let auth_channel: AuthService<Channel> = ServiceBuilder::new()
        .layer(AuthLayer::new(authenticator, channel.clone()))
        .service(channel);

    let mut health = HealthClient::new(auth_channel);
    match health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(answer) => println!("health: {:?}", answer.into_inner().status()),
        Err(status) => println!("{:?}: {}", status.code(), status.message()),
    }
    Ok(())
}
