//! Token revocation (RFC 7009): what a logout sends so that a refresh token copied off the
//! machine stops being a login.

use std::fmt;

use flyte_auth_core::{Error, SecretString};

use crate::{
    ClientAuth, OAuthClient,
    token::{Form, json_object_or_error, unexpected_status},
    transport::display_url,
};

/// Which kind of token a [`RevocationRequest`] names (`token_type_hint`, RFC 7009 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `refresh_token`: revoking it also ends the access tokens issued with it at most
    /// servers (RFC 7009 §2.1).
    RefreshToken,
    /// `access_token`.
    AccessToken,
}

impl TokenTypeHint {
    /// The `token_type_hint` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::AccessToken => "access_token",
        }
    }
}

/// A revocation request (RFC 7009 §2.1): the token, its type, and the client authenticating
/// as at the token endpoint.
///
/// ```
/// use flyte_auth_oauth::{ClientAuth, RevocationRequest, TokenTypeHint};
/// let request = RevocationRequest::refresh_token(
///     "https://idp.example.org/oauth2/revoke",
///     ClientAuth::public("flytectl"),
///     "refresh-XYZ",
/// );
/// assert_eq!(request.hint(), TokenTypeHint::RefreshToken);
/// assert!(!format!("{request:?}").contains("XYZ"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct RevocationRequest {
    endpoint: String,
    client: ClientAuth,
    token: SecretString,
    hint: TokenTypeHint,
}

impl fmt::Debug for RevocationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("endpoint", &display_url(&self.endpoint))
            .field("client", &self.client)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

impl RevocationRequest {
    /// Revokes `token`, of the kind `hint` says, at `endpoint` (the server's
    /// `revocation_endpoint`).
    pub fn new(
        endpoint: impl Into<String>,
        client: ClientAuth,
        token: impl Into<SecretString>,
        hint: TokenTypeHint,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            client,
            token: token.into(),
            hint,
        }
    }

    /// Revokes a refresh token (`token_type_hint=refresh_token`).
    pub fn refresh_token(
        endpoint: impl Into<String>,
        client: ClientAuth,
        token: impl Into<SecretString>,
    ) -> Self {
        Self::new(endpoint, client, token, TokenTypeHint::RefreshToken)
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The client.
    pub fn client(&self) -> &ClientAuth {
        &self.client
    }

    /// The kind of token.
    pub fn hint(&self) -> TokenTypeHint {
        self.hint
    }

    fn encode(&self) -> (String, Option<String>) {
        let mut form = Form::default();
        form.push("token", self.token.expose_secret());
        form.push("token_type_hint", self.hint.as_str());
        let basic = self.client.apply(&mut form);
        (form.finish(), basic)
    }
}

impl OAuthClient {
    /// Sends a revocation request, retried like a refresh grant (revoking twice is harmless).
    /// Any 2xx answer means done (RFC 7009 §2.2: also for a token the server no longer knows).
    ///
    /// # Errors
    ///
    /// [`Error::OAuth`] when the server refuses; [`Error::InvalidResponse`] for another non-2xx
    /// answer; [`Error::Transport`] / [`Error::Timeout`] when none arrived.
    pub async fn revoke(&self, request: &RevocationRequest) -> Result<(), Error> {
        let operation = "token revocation request";
        let (form, basic) = request.encode();
        tracing::debug!(
            url = %display_url(&request.endpoint),
            token_type_hint = request.hint.as_str(),
            client_id = request.client.client_id(),
            "sending token revocation request"
        );
        let raw = self
            .post_form_retrying(operation, &request.endpoint, form, basic.as_deref())
            .await?;
        if raw.is_success() {
            return Ok(());
        }
        let secrets: Vec<&str> = [request.token.expose_secret()]
            .into_iter()
            .chain(request.client.secrets(basic.as_deref()))
            .collect();
        // Not a success: the OAuth error, or the status with a redacted excerpt.
        Err(match json_object_or_error(&raw, operation, &secrets) {
            Err(e) => e,
            Ok(_) => unexpected_status(&raw, operation, &secrets),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientAuthMethod;

    #[test]
    fn a_public_client_sends_its_id_and_a_confidential_one_basic() {
        let public = RevocationRequest::refresh_token(
            "https://idp/revoke",
            ClientAuth::public("cli"),
            "r&1",
        );
        let (form, basic) = public.encode();
        assert_eq!(
            form,
            "token=r%261&token_type_hint=refresh_token&client_id=cli"
        );
        assert!(basic.is_none());

        let confidential = RevocationRequest::refresh_token(
            "https://idp/revoke",
            ClientAuth::confidential("app", "s3cret"),
            "r1",
        );
        let (form, basic) = confidential.encode();
        assert_eq!(form, "token=r1&token_type_hint=refresh_token");
        assert!(basic.is_some());

        let post = RevocationRequest::new(
            "https://idp/revoke",
            ClientAuth::confidential("app", "s3cret")
                .with_method(ClientAuthMethod::ClientSecretPost),
            "a1",
            TokenTypeHint::AccessToken,
        );
        assert_eq!(
            post.encode().0,
            "token=a1&token_type_hint=access_token&client_id=app&client_secret=s3cret"
        );
    }
}
