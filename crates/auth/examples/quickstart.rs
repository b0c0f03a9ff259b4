//! The README's quick start: print the header a call to Flyte would carry.
//!
//! Reads `~/.flyte/config.yaml` (or `$FLYTECTL_CONFIG`) and the `FLYTE_*` variables, logs in by
//! the configured flow if needed, and prints the header name and the token's expiry (never the
//! token). Run with `cargo run -p flyte-auth --example quickstart`.
#![allow(clippy::print_stdout, reason = "an example prints its result")]

use flyte_auth::store::{StoreKind, StoreOptions};
use flyte_auth::{Authenticator, PlatformConfig, get_authenticator};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), flyte_auth::Error> {
    let config = PlatformConfig::load()?; // ~/.flyte/config.yaml + FLYTE_* variables
    let store = config.open_store(StoreKind::Auto, StoreOptions::new())?; // keyring, else a file
    let auth = get_authenticator(&config, Some(store))?; // nothing contacted yet
    let header = auth.auth_header().await?; // from the cache, a refresh, or a login
    let credentials = auth.get_credentials().await?;
    let seconds_left = credentials
        .expires_at()
        .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
        .map_or(0, |left| left.as_secs());
    println!(
        "{}: Bearer <token>, valid for {seconds_left} more seconds",
        header.name()
    );
    // On every call afterwards, lock-free: auth.fetch_grpc_call_auth_metadata()
    Ok(())
}
