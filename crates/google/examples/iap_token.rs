//! Prints the `proxy-authorization` header for Google's identity-aware proxy, twice: the
//! second comes from the cache. The credentials are found as Google's libraries find them
//! (`GOOGLE_APPLICATION_CREDENTIALS`, the metadata server at `GCE_METADATA_HOST`, gcloud's
//! login); `cargo xtask demo` runs it against a metadata server on loopback.
//!
//! ```text
//! cargo run -p flyte-auth-google --example iap_token -- 123-abc.apps.googleusercontent.com
//! ```

#![allow(clippy::print_stdout, reason = "the header is the example's output")]

use std::process::ExitCode;

use flyte_auth_core::{Authenticator as _, CachingAuthenticator};
use flyte_auth_google::GoogleIdTokenFlow;

#[tokio::main]
async fn main() -> ExitCode {
    let Some(audience) = std::env::args().nth(1) else {
        eprintln!("usage: iap_token <audience: the IAP's OAuth client id>");
        return ExitCode::from(2);
    };
    let flow = match GoogleIdTokenFlow::builder(audience)
        .header_key("proxy-authorization")
        .build()
    {
        Ok(flow) => flow,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let auth = CachingAuthenticator::builder(flow).build();
    for _ in 0..2 {
        match auth.auth_header().await {
            Ok(header) => {
                let value = header.value().to_str().unwrap_or_default();
                println!("{}: {value}", header.name());
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(source) = auth.flow().source() {
        eprintln!("from {source}");
    }
    ExitCode::SUCCESS
}
