//! `FLYTE_API_KEY`: the Flyte 2 SDK's API key, decoded as the SDK decodes it.
//!
//! The key is base64 (standard alphabet, padded) of `endpoint:client_id:client_secret:org`.
//! The SDK splits the decoded text at its first three `:`, so a key whose text holds more than
//! three (an endpoint with a port or a scheme, a secret with a `:`) would be split wrongly by
//! it; such a key is refused here rather than used with the wrong parts. No error shows the
//! key, its decoded text or the secret.

use std::fmt;

use base64::Engine as _;
use flyte_auth_core::{Error, SecretString};

/// The parts of an API key.
#[derive(Clone)]
pub(crate) struct ApiKey {
    pub(crate) endpoint: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) org: Option<String>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// Decodes `key`; `origin` names where it came from (`FLYTE_API_KEY`, `--api-key`) in errors.
pub(crate) fn decode(key: &str, origin: &str) -> Result<ApiKey, Error> {
    let refuse = |why: &str| Error::config(format!("the API key from {origin} {why}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| refuse("is not base64; copy the whole key as it was given to you"))?;
    let text = String::from_utf8(bytes).map_err(|_| refuse("does not decode to text"))?;
    let parts: Vec<&str> = text.split(':').collect();
    match parts.len() {
        4 => {}
        n if n < 4 => {
            return Err(refuse(&format!(
                "has {n} `:`-separated parts, not 4 (endpoint:client_id:client_secret:org)"
            )));
        }
        n => {
            return Err(refuse(&format!(
                "has {n} `:`-separated parts, not 4: its endpoint has a port or a scheme, or its \
                 secret a `:`, which the Flyte 2 SDK would split wrongly; ask for a key whose \
                 endpoint is a host name, or set the endpoint and client credentials separately"
            )));
        }
    }
    let [endpoint, client_id, secret, org] = [parts[0], parts[1], parts[2], parts[3]];
    if endpoint.trim().is_empty() {
        return Err(refuse("names no endpoint"));
    }
    if client_id.trim().is_empty() {
        return Err(refuse("names no client id"));
    }
    if secret.is_empty() {
        return Err(refuse("has an empty client secret"));
    }
    // The SDK spells a missing org "None".
    let org = (!org.is_empty() && org != "None").then(|| org.to_owned());
    Ok(ApiKey {
        endpoint: endpoint.trim().to_owned(),
        client_id: client_id.trim().to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
        org,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn four_parts_decode_as_the_sdk_does() {
        let key = decode(
            &encode("flyte.example.org:svc:s3cret:acme"),
            "FLYTE_API_KEY",
        )
        .unwrap();
        assert_eq!(key.endpoint, "flyte.example.org");
        assert_eq!(key.client_id, "svc");
        assert_eq!(key.client_secret.expose_secret(), "s3cret");
        assert_eq!(key.org.as_deref(), Some("acme"));
        let key = decode(&encode("h:svc:s3cret:"), "FLYTE_API_KEY").unwrap();
        assert_eq!(key.org, None);
        assert!(!format!("{key:?}").contains("s3cret"));
    }

    #[test]
    fn malformed_keys_are_refused_in_one_line_without_the_secret() {
        for (key, want) in [
            ("not base64!".to_owned(), "is not base64"),
            (encode("h:svc:s3cret"), "has 3 `:`-separated parts, not 4"),
            (encode("h:8080:svc:s3cret:org"), "would split wrongly"),
            (encode("dns:///h:svc:s3cret:org"), "would split wrongly"),
            (encode("h:svc::org"), "empty client secret"),
            (encode(":svc:s3cret:org"), "names no endpoint"),
            (encode("h::s3cret:org"), "names no client id"),
        ] {
            let err = decode(&key, "FLYTE_API_KEY").unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
            assert!(err.contains("FLYTE_API_KEY"), "{err}");
            assert!(!err.contains("s3cret") && !err.contains('\n'), "{err}");
        }
    }
}
