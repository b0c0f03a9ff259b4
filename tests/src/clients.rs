//! The OAuth clients registered in the test identity provider (`tests/idp/server.mjs`).

use std::fmt;

/// Client id of the public client, registered as Flyte registers `flytectl`.
///
/// Native application, no client secret (`token_endpoint_auth_method` `none`), PKCE with
/// S256 required, grants `authorization_code`, `refresh_token` and
/// `urn:ietf:params:oauth:grant-type:device_code`. Its registered redirect URIs are
/// `http://localhost:53593/callback`, `http://127.0.0.1:53593/callback` and
/// `http://[::1]:53593/callback`; as a native client it may use any port on those loopback
/// hosts (RFC 8252 section 7.3), so tests bind a free port and use
/// `http://127.0.0.1:{port}/callback`. A refresh token comes with every token response of
/// this client, and refresh tokens rotate: a used one is rejected (`invalid_grant`) and
/// revokes the whole grant.
pub const FLYTECTL: &str = "flytectl";

/// The redirect URI that flyteadmin advertises for `flytectl` by default.
pub const FLYTECTL_REDIRECT_URI: &str = "http://localhost:53593/callback";

/// How a confidential client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret
    /// (RFC 6749 section 2.3.1).
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The registered `token_endpoint_auth_method` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A confidential client allowed the `client_credentials` grant (scope `all`).
///
/// `Debug` never shows the secret; [`ConfidentialClient::secret`] returns it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConfidentialClient {
    id: &'static str,
    secret: &'static str,
    auth_method: ClientAuthMethod,
}

impl ConfidentialClient {
    /// The client id, as registered (not encoded).
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The client secret, as registered (not encoded).
    ///
    /// Only a test fixture's secret, yet still a secret: do not log it.
    pub fn secret(&self) -> &'static str {
        self.secret
    }

    /// The only authentication method the server accepts from this client.
    pub fn auth_method(&self) -> ClientAuthMethod {
        self.auth_method
    }

    /// The id form-encoded as RFC 6749 section 2.3.1 wants it inside HTTP Basic.
    pub fn form_encoded_id(&self) -> String {
        form_urlencode(self.id)
    }

    /// The secret form-encoded as RFC 6749 section 2.3.1 wants it inside HTTP Basic.
    pub fn form_encoded_secret(&self) -> String {
        form_urlencode(self.secret)
    }
}

impl fmt::Debug for ConfidentialClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfidentialClient")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// `flyte-service`: `client_secret_basic`, with a secret made of the characters that break
/// a Basic header written without form-encoding (`:`, `/`, `+`, `%`, `&`, `=`, space).
///
/// The server follows RFC 6749 strictly here: the id and secret inside the Basic header must
/// be form-encoded (`+` or `%20` for a space, `%2B` for `+`, `%3A` for `:`, ...), and a raw
/// `%` is rejected as badly encoded. Secrets in Basic are printable ASCII only (RFC 6749
/// Appendix A.2); [`POST_CLIENT`] has a non-ASCII one.
pub const BASIC_CLIENT: ConfidentialClient = ConfidentialClient {
    id: "flyte-service",
    secret: "s3cr:t/+%&= ~",
    auth_method: ClientAuthMethod::ClientSecretBasic,
};

/// `flyte-service-post`: `client_secret_post`, with a secret containing a space, `+`, a
/// literal `%2B`, `&`, `=`, `:` and a non-ASCII `é` (sent as UTF-8, percent-encoded).
pub const POST_CLIENT: ConfidentialClient = ConfidentialClient {
    id: "flyte-service-post",
    secret: "p0st s3cr:t/+%2B&=é",
    auth_method: ClientAuthMethod::ClientSecretPost,
};

/// `flyte:propeller`: `client_secret_basic` with a colon in the client id, which a Basic
/// header only carries correctly when the id is form-encoded (`flyte%3Apropeller`).
pub const COLON_ID_CLIENT: ConfidentialClient = ConfidentialClient {
    id: "flyte:propeller",
    secret: "propeller secret+%",
    auth_method: ClientAuthMethod::ClientSecretBasic,
};

/// `flyte-api-key`: `client_secret_basic`, with a secret without `:` so that it fits a Flyte 2
/// API key (`FLYTE_API_KEY`: base64 of `endpoint:client_id:client_secret:org`).
pub const API_KEY_CLIENT: ConfidentialClient = ConfidentialClient {
    id: "flyte-api-key",
    secret: "api-key s3cret/+",
    auth_method: ClientAuthMethod::ClientSecretBasic,
};

/// `application/x-www-form-urlencoded` encoding of one value (space as `+`, UTF-8 bytes
/// percent-encoded), as RFC 6749 Appendix B describes.
///
/// ```
/// assert_eq!(flyte_auth_tests::form_urlencode("a b:+%é"), "a+b%3A%2B%25%C3%A9");
/// ```
pub fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        for client in [BASIC_CLIENT, POST_CLIENT, COLON_ID_CLIENT, API_KEY_CLIENT] {
            let shown = format!("{client:?}");
            assert!(!shown.contains(client.secret()), "{shown}");
            assert!(shown.contains(client.id()), "{shown}");
        }
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(
            BASIC_CLIENT.form_encoded_secret(),
            "s3cr%3At%2F%2B%25%26%3D+%7E"
        );
        assert_eq!(COLON_ID_CLIENT.form_encoded_id(), "flyte%3Apropeller");
    }
}
