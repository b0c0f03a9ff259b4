//! The device authorization request of RFC 8628 §3.1–3.2.

use std::{fmt, time::Duration};

use flyte_auth_core::{Error, SecretString};

use crate::{
    ClientAuth, OAuthClient,
    pkce::{Pkce, S256},
    token::{Form, json_object_or_error, seconds_field, string_field},
    transport::display_url,
};

/// How often to poll when the server does not say (RFC 8628 §3.2).
pub const DEFAULT_DEVICE_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The longest poll interval a server's `interval` is taken as: five minutes. A device
/// login is a person typing a code; a larger number (`1e30`) is a broken server, and waiting
/// longer would only outlast the login.
pub const MAX_DEVICE_POLL_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The longest a device code's `expires_in` is taken as: one day (RFC 8628 suggests
/// minutes; the login's own timeout, ten minutes by default, usually ends it first).
pub const MAX_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A device authorization request (RFC 8628 §3.1).
///
/// ```
/// use flyte_auth_oauth::{ClientAuth, DeviceAuthorizationRequest};
/// let request = DeviceAuthorizationRequest::new(
///     "https://idp.example.org/oauth2/device/authorize",
///     ClientAuth::public("flytectl"),
/// )
/// .with_scopes(["all", "offline"]);
/// assert_eq!(request.scopes(), ["all", "offline"]);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct DeviceAuthorizationRequest {
    endpoint: String,
    client: ClientAuth,
    scopes: Vec<String>,
    audience: Option<String>,
    /// The PKCE `code_challenge` (S256), when the login proves itself with a verifier.
    code_challenge: Option<String>,
    extra: Vec<(String, String)>,
}

impl fmt::Debug for DeviceAuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorizationRequest")
            .field("endpoint", &display_url(&self.endpoint))
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("pkce", &self.code_challenge.is_some())
            .field(
                "extra",
                &self.extra.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl DeviceAuthorizationRequest {
    /// A request to `endpoint` (the server's `device_authorization_endpoint`).
    pub fn new(endpoint: impl Into<String>, client: ClientAuth) -> Self {
        Self {
            endpoint: endpoint.into(),
            client,
            scopes: Vec::new(),
            audience: None,
            code_challenge: None,
            extra: Vec::new(),
        }
    }

    form_params!();

    /// Sends `pkce`'s S256 `code_challenge` (as Keycloak wants of public clients); every poll
    /// must then carry its verifier ([`TokenRequest::with_code_verifier`]).
    ///
    /// [`TokenRequest::with_code_verifier`]: crate::TokenRequest::with_code_verifier
    pub fn with_pkce(mut self, pkce: &Pkce) -> Self {
        self.code_challenge = Some(pkce.challenge().to_owned());
        self
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The PKCE `code_challenge`, when one is sent.
    pub fn code_challenge(&self) -> Option<&str> {
        self.code_challenge.as_deref()
    }

    fn encode(&self) -> (String, Option<String>) {
        let mut form = Form::default();
        let basic = self.client.apply(&mut form);
        if let Some(challenge) = &self.code_challenge {
            form.push("code_challenge", challenge);
            form.push("code_challenge_method", S256);
        }
        form.push_common(&self.scopes, self.audience.as_deref(), &self.extra);
        (form.finish(), basic)
    }
}

/// The server's answer to a device authorization request (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The code the device polls the token endpoint with.
    pub device_code: SecretString,
    /// The code the user types at `verification_uri`.
    pub user_code: String,
    /// Where the user goes (`verification_url`, Google's spelling, is accepted too).
    pub verification_uri: String,
    /// A URL that already carries the user code, when the server offers one.
    pub verification_uri_complete: Option<String>,
    /// How many seconds the codes stay valid, when the server says (a number or a numeric
    /// string; at most [`MAX_DEVICE_CODE_LIFETIME`]).
    pub expires_in: Option<u64>,
    /// The minimum number of seconds between two polls, when the server says (at most
    /// [`MAX_DEVICE_POLL_INTERVAL`]).
    pub interval: Option<u64>,
}

impl DeviceAuthorization {
    /// The poll interval: the server's `interval`, else [`DEFAULT_DEVICE_POLL_INTERVAL`].
    pub fn poll_interval(&self) -> Duration {
        self.server_interval()
            .unwrap_or(DEFAULT_DEVICE_POLL_INTERVAL)
    }

    /// The server's `interval`, when it gave one above zero, at most
    /// [`MAX_DEVICE_POLL_INTERVAL`] (also when the field was set directly).
    pub fn server_interval(&self) -> Option<Duration> {
        self.interval
            .filter(|&secs| secs > 0)
            .map(|secs| Duration::from_secs(secs).min(MAX_DEVICE_POLL_INTERVAL))
    }

    /// How long the codes stay valid, when the server says: at most
    /// [`MAX_DEVICE_CODE_LIFETIME`].
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_in
            .map(|secs| Duration::from_secs(secs).min(MAX_DEVICE_CODE_LIFETIME))
    }

    /// The URL to show the user: `verification_uri_complete` when present, else
    /// `verification_uri`.
    pub fn url_for_user(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

impl OAuthClient {
    /// Sends a device authorization request (RFC 8628 §3.1).
    ///
    /// # Errors
    ///
    /// As for [`OAuthClient::token`]; an answer without `device_code`, `user_code` or
    /// `verification_uri` is [`Error::InvalidResponse`].
    pub async fn device_authorization(
        &self,
        request: &DeviceAuthorizationRequest,
    ) -> Result<DeviceAuthorization, Error> {
        let operation = "device authorization request";
        let (form, basic) = request.encode();
        let raw = self
            .post_form(operation, &request.endpoint, form, basic.as_deref())
            .await?;
        let secrets: Vec<&str> = request.client.secrets(basic.as_deref()).collect();
        let object = json_object_or_error(&raw, operation, &secrets)?;
        let missing = |field: &str| Error::InvalidResponse {
            status: Some(raw.status),
            message: format!(
                "the answer to the {operation} has no {field}; is {} a device authorization endpoint?",
                display_url(&request.endpoint)
            ),
        };
        let device_code =
            string_field(&object, "device_code").ok_or_else(|| missing("device_code"))?;
        let user_code = string_field(&object, "user_code").ok_or_else(|| missing("user_code"))?;
        let verification_uri = string_field(&object, "verification_uri")
            .or_else(|| string_field(&object, "verification_url"))
            .ok_or_else(|| missing("verification_uri"))?;
        Ok(DeviceAuthorization {
            device_code: SecretString::new(device_code),
            user_code,
            verification_uri,
            verification_uri_complete: string_field(&object, "verification_uri_complete")
                .or_else(|| string_field(&object, "verification_url_complete")),
            expires_in: seconds_field(&object, "expires_in")
                .map(|secs| secs.min(MAX_DEVICE_CODE_LIFETIME.as_secs())),
            interval: seconds_field(&object, "interval")
                .map(|secs| secs.min(MAX_DEVICE_POLL_INTERVAL.as_secs())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pkce_challenge_is_sent_with_its_method_and_only_when_asked() {
        let pkce = Pkce::new_s256().unwrap();
        let request =
            DeviceAuthorizationRequest::new("https://idp/device", ClientAuth::public("cli"))
                .with_scopes(["openid"]);
        assert_eq!(request.encode().0, "client_id=cli&scope=openid");
        let request = request.with_pkce(&pkce);
        assert_eq!(
            request.encode().0,
            format!(
                "client_id=cli&code_challenge={}&code_challenge_method=S256&scope=openid",
                pkce.challenge()
            )
        );
        assert_eq!(request.code_challenge(), Some(pkce.challenge()));
    }
}
