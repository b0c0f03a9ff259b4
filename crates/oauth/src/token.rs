//! Token-endpoint requests (RFC 6749 §4, §6; RFC 8628 §3.4), client authentication
//! (RFC 6749 §2.3.1) and the lenient reading of token responses.

use std::fmt;

use base64::Engine as _;
use flyte_auth_core::{
    Credentials, Error, MAX_TOKEN_LIFETIME, OAuthError, SecretString, text::printable,
};
use serde_json::{Map, Value};

use crate::{
    OAuthClient,
    transport::{RawResponse, display_url, redact, snippet},
};

/// The `grant_type` of the device flow (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How a confidential client proves its identity at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: `Authorization: Basic base64(urlenc(id) ":" urlenc(secret))`
    /// (RFC 6749 §2.3.1; both parts form-encoded, so `:`, `+`, `%` and non-ASCII work).
    #[default]
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Who is asking: a client id, and for a confidential client its secret and how to send it.
///
/// ```
/// use flyte_auth_oauth::{ClientAuth, ClientAuthMethod};
/// let public = ClientAuth::public("flytectl");
/// assert!(public.client_secret().is_none());
/// let confidential = ClientAuth::confidential("my-app", "s3cr3t")
///     .with_method(ClientAuthMethod::ClientSecretPost);
/// assert!(!format!("{confidential:?}").contains("s3cr3t"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    client_id: String,
    client_secret: Option<SecretString>,
    method: ClientAuthMethod,
}

impl ClientAuth {
    /// A public client: only `client_id` is sent, in the body.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            method: ClientAuthMethod::default(),
        }
    }

    /// A confidential client, authenticated with HTTP Basic by default.
    pub fn confidential(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::default(),
        }
    }

    /// Chooses how the secret is sent (ignored for a public client).
    #[must_use]
    pub fn with_method(mut self, method: ClientAuthMethod) -> Self {
        self.method = method;
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret, for a confidential client.
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// How the secret is sent.
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }

    /// The client's secret and its `Basic` credentials: what error excerpts redact.
    pub(crate) fn secrets<'a>(&'a self, basic: Option<&'a str>) -> impl Iterator<Item = &'a str> {
        self.client_secret
            .iter()
            .map(SecretString::expose_secret)
            .chain(basic)
    }

    /// Adds the client's parameters to `form`, and returns the `Basic` credentials (without
    /// the `Basic ` prefix) when they go in a header.
    pub(crate) fn apply(&self, form: &mut Form) -> Option<String> {
        match (&self.client_secret, self.method) {
            (None, _) => {
                form.push("client_id", &self.client_id);
                None
            }
            (Some(secret), ClientAuthMethod::ClientSecretBasic) => {
                Some(basic_credentials(&self.client_id, secret.expose_secret()))
            }
            (Some(secret), ClientAuthMethod::ClientSecretPost) => {
                form.push("client_id", &self.client_id);
                form.push("client_secret", secret.expose_secret());
                None
            }
        }
    }
}

/// `base64(urlenc(id) ":" urlenc(secret))`, RFC 6749 §2.3.1 with Appendix B's encoding.
pub(crate) fn basic_credentials(client_id: &str, client_secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        enc(client_id),
        enc(client_secret)
    ))
}

/// The grant being redeemed at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken {
        /// The refresh token.
        refresh_token: SecretString,
    },
    /// `authorization_code` (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5).
    AuthorizationCode {
        /// The code the browser brought back.
        code: SecretString,
        /// The PKCE `code_verifier`, when the authorization request had a challenge.
        code_verifier: Option<SecretString>,
        /// The `redirect_uri` of the authorization request, which must be repeated.
        redirect_uri: Option<String>,
    },
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).
    DeviceCode {
        /// The `device_code` of the device authorization answer.
        device_code: SecretString,
    },
}

impl Grant {
    /// The `grant_type` value.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken { .. } => "refresh_token",
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::DeviceCode { .. } => DEVICE_CODE_GRANT_TYPE,
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Self::ClientCredentials => Vec::new(),
            Self::RefreshToken { refresh_token } => vec![refresh_token.expose_secret()],
            Self::AuthorizationCode {
                code,
                code_verifier,
                ..
            } => {
                let mut v = vec![code.expose_secret()];
                v.extend(code_verifier.iter().map(SecretString::expose_secret));
                v
            }
            Self::DeviceCode { device_code } => vec![device_code.expose_secret()],
        }
    }
}

/// A request to the token endpoint: the grant plus Flyte's extras (scopes, `audience`, any
/// other parameter). Each parameter name is sent once: an extra one already present is dropped.
///
/// ```
/// use flyte_auth_oauth::{ClientAuth, TokenRequest};
/// let request = TokenRequest::client_credentials(
///     "https://idp.example.org/oauth2/token",
///     ClientAuth::confidential("my-app", "s3cr3t"),
/// )
/// .with_scopes(["all"])
/// .with_audience("flyte");
/// assert_eq!(request.grant().grant_type(), "client_credentials");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct TokenRequest {
    token_endpoint: String,
    client: ClientAuth,
    grant: Grant,
    scopes: Vec<String>,
    audience: Option<String>,
    /// A PKCE verifier for a grant that has no field for it (the device code).
    code_verifier: Option<SecretString>,
    extra: Vec<(String, String)>,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("token_endpoint", &display_url(&self.token_endpoint))
            .field("client", &self.client)
            .field("grant_type", &self.grant.grant_type())
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("code_verifier", &self.code_verifier.is_some())
            .field(
                "extra",
                &self.extra.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TokenRequest {
    /// A request for any grant.
    pub fn new(token_endpoint: impl Into<String>, client: ClientAuth, grant: Grant) -> Self {
        Self {
            token_endpoint: token_endpoint.into(),
            client,
            grant,
            scopes: Vec::new(),
            audience: None,
            code_verifier: None,
            extra: Vec::new(),
        }
    }

    /// `grant_type=client_credentials`.
    pub fn client_credentials(token_endpoint: impl Into<String>, client: ClientAuth) -> Self {
        Self::new(token_endpoint, client, Grant::ClientCredentials)
    }

    /// `grant_type=refresh_token`.
    pub fn refresh_token(
        token_endpoint: impl Into<String>,
        client: ClientAuth,
        refresh_token: impl Into<SecretString>,
    ) -> Self {
        Self::new(
            token_endpoint,
            client,
            Grant::RefreshToken {
                refresh_token: refresh_token.into(),
            },
        )
    }

    /// `grant_type=authorization_code`, with the PKCE verifier and the redirect URI of the
    /// authorization request when there were any.
    pub fn authorization_code(
        token_endpoint: impl Into<String>,
        client: ClientAuth,
        code: impl Into<SecretString>,
        code_verifier: Option<SecretString>,
        redirect_uri: Option<String>,
    ) -> Self {
        Self::new(
            token_endpoint,
            client,
            Grant::AuthorizationCode {
                code: code.into(),
                code_verifier,
                redirect_uri,
            },
        )
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
    pub fn device_code(
        token_endpoint: impl Into<String>,
        client: ClientAuth,
        device_code: impl Into<SecretString>,
    ) -> Self {
        Self::new(
            token_endpoint,
            client,
            Grant::DeviceCode {
                device_code: device_code.into(),
            },
        )
    }

    form_params!();

    /// Sends `code_verifier` (RFC 7636 §4.5) with the device code grant, after
    /// [`DeviceAuthorizationRequest::with_pkce`](crate::DeviceAuthorizationRequest::with_pkce).
    pub fn with_code_verifier(mut self, verifier: impl Into<SecretString>) -> Self {
        self.code_verifier = Some(verifier.into());
        self
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The grant.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The form body and the `Basic` credentials, if any.
    pub(crate) fn encode(&self) -> (String, Option<String>) {
        let mut form = Form::default();
        form.push("grant_type", self.grant.grant_type());
        match &self.grant {
            Grant::ClientCredentials => {}
            Grant::RefreshToken { refresh_token } => {
                form.push("refresh_token", refresh_token.expose_secret());
            }
            Grant::AuthorizationCode {
                code,
                code_verifier,
                redirect_uri,
            } => {
                form.push("code", code.expose_secret());
                if let Some(verifier) = code_verifier {
                    form.push("code_verifier", verifier.expose_secret());
                }
                if let Some(uri) = redirect_uri.as_deref().filter(|u| !u.is_empty()) {
                    form.push("redirect_uri", uri);
                }
            }
            Grant::DeviceCode { device_code } => {
                form.push("device_code", device_code.expose_secret());
            }
        }
        if let Some(verifier) = &self.code_verifier
            && !form.has("code_verifier")
        {
            form.push("code_verifier", verifier.expose_secret());
        }
        let basic = self.client.apply(&mut form);
        form.push_common(&self.scopes, self.audience.as_deref(), &self.extra);
        (form.finish(), basic)
    }

    /// Every secret value of the request, redacted from error excerpts.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut secrets = self.grant.secrets();
        secrets.extend(self.code_verifier.iter().map(SecretString::expose_secret));
        secrets
    }
}

/// A form body under construction, which knows the names already in it.
#[derive(Default)]
pub(crate) struct Form {
    names: Vec<String>,
    serializer: Option<url::form_urlencoded::Serializer<'static, String>>,
}

impl Form {
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        self.names.push(name.to_owned());
        self.serializer
            .get_or_insert_with(|| url::form_urlencoded::Serializer::new(String::new()))
            .append_pair(name, value);
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// `scope`, `audience` and the extra parameters, skipping names already present.
    pub(crate) fn push_common(
        &mut self,
        scopes: &[String],
        audience: Option<&str>,
        extra: &[(String, String)],
    ) {
        let scopes: Vec<&str> = scopes
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if !scopes.is_empty() {
            self.push("scope", &scopes.join(" "));
        }
        if let Some(audience) = audience.filter(|a| !a.is_empty()) {
            self.push("audience", audience);
        }
        for (name, value) in extra {
            if self.has(name) {
                tracing::debug!(
                    parameter = %name,
                    "extra parameter already set by the request; not sent twice"
                );
            } else {
                self.push(name, value);
            }
        }
    }

    pub(crate) fn finish(self) -> String {
        self.serializer.map(|mut s| s.finish()).unwrap_or_default()
    }
}

/// A successful token response (RFC 6749 §5.1), read leniently. `Debug` shows no token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: SecretString,
    /// The `token_type` as sent: `Bearer` in any case, or `None` (read as `Bearer`).
    pub token_type: Option<String>,
    /// The lifetime in seconds (a number or a numeric string), when sent; at most
    /// [`MAX_TOKEN_LIFETIME`](flyte_auth_core::MAX_TOKEN_LIFETIME).
    pub expires_in: Option<u64>,
    /// The refresh token, when sent. A refresh answer without one leaves this `None`; the
    /// credential cache then keeps the old refresh token (RFC 6749 §6).
    pub refresh_token: Option<SecretString>,
    /// The OpenID Connect id token, when sent.
    pub id_token: Option<SecretString>,
    /// The granted scopes (`scope`, split on spaces), when sent.
    pub scopes: Vec<String>,
}

impl TokenResponse {
    /// Reads a token endpoint answer: a token, an OAuth error, or an invalid response, with
    /// `secrets` (what the request sent) redacted from errors.
    pub fn from_http(
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        secrets: &[&str],
    ) -> Result<Self, Error> {
        let raw = RawResponse {
            status,
            content_type: content_type.map(str::to_owned),
            location: None,
            retry_after: None,
            body: body.to_vec(),
        };
        parse_token_response(&raw, "token request", secrets)
    }

    /// The credentials for `for_endpoint`; a missing refresh token stays `None` here
    /// ([`Credentials::carry_forward`] keeps the previous one).
    pub fn into_credentials(self, for_endpoint: impl Into<String>) -> Credentials {
        let mut credentials = Credentials::new(self.access_token, for_endpoint);
        if let Some(seconds) = self.expires_in {
            credentials = credentials.with_expires_in(seconds);
        }
        if let Some(refresh) = self.refresh_token {
            credentials = credentials.with_refresh_token(refresh);
        }
        if let Some(id) = self.id_token {
            credentials = credentials.with_id_token(id);
        }
        if !self.scopes.is_empty() {
            credentials = credentials.with_scopes(self.scopes);
        }
        credentials
    }
}

impl OAuthClient {
    /// Sends a token request and reads the answer.
    ///
    /// # Errors
    ///
    /// [`Error::OAuth`] when the server answers an OAuth error (any status, including the
    /// device flow's `authorization_pending`); [`Error::InvalidResponse`] for any other answer
    /// that is not a bearer token; [`Error::Transport`] / [`Error::Timeout`] when none arrived.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), flyte_auth_core::Error> {
    /// use flyte_auth_oauth::{ClientAuth, HttpSettings, OAuthClient, TokenRequest};
    /// let client = OAuthClient::new(HttpSettings::new())?;
    /// let token = client
    ///     .token(&TokenRequest::client_credentials(
    ///         "https://idp.example.org/oauth2/token",
    ///         ClientAuth::confidential("my-app", "s3cr3t"),
    ///     ))
    ///     .await?;
    /// let credentials = token.into_credentials("flyte.example.org");
    /// # let _ = credentials; Ok(()) }
    /// ```
    pub async fn token(&self, request: &TokenRequest) -> Result<TokenResponse, Error> {
        let (form, basic) = request.encode();
        let operation = "token request";
        tracing::debug!(
            url = %display_url(&request.token_endpoint),
            grant_type = request.grant.grant_type(),
            client_id = request.client.client_id(),
            "sending token request"
        );
        let (url, basic) = (&request.token_endpoint, basic.as_deref());
        // Grants that can be sent twice are retried; a code (browser, device) is sent once.
        let raw = match request.grant {
            Grant::ClientCredentials | Grant::RefreshToken { .. } => {
                self.post_form_retrying(operation, url, form, basic).await?
            }
            _ => self.post_form(operation, url, form, basic).await?,
        };
        let mut secrets = request.secrets();
        secrets.extend(request.client.secrets(basic));
        parse_token_response(&raw, operation, &secrets)
    }
}

/// Reads a token endpoint answer.
pub(crate) fn parse_token_response(
    raw: &RawResponse,
    operation: &str,
    secrets: &[&str],
) -> Result<TokenResponse, Error> {
    let object = json_object_or_error(raw, operation, secrets)?;
    let access_token = match object.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => SecretString::new(s.clone()),
        _ => {
            // Only the names of standard members are shown: any other name could be a value
            // the server echoes.
            const KNOWN: [&str; 6] = [
                "access_token",
                "token_type",
                "expires_in",
                "refresh_token",
                "id_token",
                "scope",
            ];
            let mut fields: Vec<String> = KNOWN
                .iter()
                .filter(|k| object.contains_key(**k))
                .map(|k| (*k).to_owned())
                .collect();
            let others = object.len() - fields.len();
            if others > 0 {
                fields.push(format!("{others} other member(s)"));
            }
            return Err(Error::InvalidResponse {
                status: Some(raw.status),
                message: format!(
                    "the answer to the {operation} has no access_token (members present: {})",
                    if fields.is_empty() {
                        "none".to_owned()
                    } else {
                        fields.join(", ")
                    }
                ),
            });
        }
    };
    let token_type = string_field(&object, "token_type");
    if let Some(kind) = token_type.as_deref()
        && !kind.trim().eq_ignore_ascii_case("bearer")
    {
        return Err(not_bearer(raw.status, kind, operation, secrets));
    }
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in: seconds_field(&object, "expires_in")
            .map(|secs| secs.min(MAX_TOKEN_LIFETIME.as_secs())),
        refresh_token: string_field(&object, "refresh_token").map(SecretString::new),
        id_token: string_field(&object, "id_token").map(SecretString::new),
        scopes: string_list(object.get("scope")),
    })
}

/// The error for a token of a type other than `Bearer` (RFC 6750): a DPoP (RFC 9449) or MAC
/// token is bound to a key this client does not hold, and sending it as a bearer token would
/// only be refused, or accepted where it must not be.
fn not_bearer(status: u16, kind: &str, operation: &str, secrets: &[&str]) -> Error {
    const MAX_CHARS: usize = 40;
    let kind = printable(&redact(kind.trim(), secrets)).into_owned();
    let kind = match kind.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &kind[..cut]),
        None => kind,
    };
    Error::InvalidResponse {
        status: Some(status),
        message: format!(
            "the answer to the {operation} holds a token of type `{kind}`; only Bearer tokens \
             can be sent: configure the identity provider's client to issue Bearer tokens \
             (not DPoP or sender-constrained ones)"
        ),
    }
}

/// The JSON object of a successful answer, or the error the answer means: an `error` member
/// is an OAuth error whatever the status; a 2xx answer that is not a JSON object is described
/// without an excerpt (it may hold tokens).
pub(crate) fn json_object_or_error(
    raw: &RawResponse,
    operation: &str,
    secrets: &[&str],
) -> Result<Map<String, Value>, Error> {
    let parsed = serde_json::from_slice::<Value>(&raw.body).ok();
    if let Some(Value::Object(object)) = &parsed
        && let Some(Value::String(code)) = object.get("error")
        && !code.is_empty()
    {
        // Shown on a terminal and in logs: control characters are escaped, never passed on.
        let shown = |text: &str| printable(&redact(text, secrets)).into_owned();
        let mut error = OAuthError::new(shown(code).as_str()).with_status(raw.status);
        if let Some(d) = string_field(object, "error_description") {
            error = error.with_description(shown(&d));
        }
        if let Some(u) = string_field(object, "error_uri") {
            error = error.with_uri(shown(&u));
        }
        return Err(Error::OAuth(error));
    }
    if raw.is_success() {
        return match parsed {
            Some(Value::Object(object)) => Ok(object),
            Some(_) => Err(Error::InvalidResponse {
                status: Some(raw.status),
                message: format!("the answer to the {operation} is JSON but not an object"),
            }),
            None => Err(Error::InvalidResponse {
                status: Some(raw.status),
                message: format!(
                    "the answer to the {operation} is not JSON (content-type {}, {} bytes); is \
                     the URL right, or did a proxy answer instead of the server?",
                    redact(raw.content_type(), secrets),
                    raw.body.len()
                ),
            }),
        };
    }
    Err(unexpected_status(raw, operation, secrets))
}

/// The error for a non-2xx answer that is not an OAuth error.
pub(crate) fn unexpected_status(raw: &RawResponse, operation: &str, secrets: &[&str]) -> Error {
    let status = raw.status;
    let hint = match status {
        300..=399 => format!(
            "the server redirects{}; redirects are not followed on OAuth requests, so configure \
             the final URL (is http:// being redirected to https://?)",
            raw.location
                .as_deref()
                .map(|l| format!(" to {}", display_url(l)))
                .unwrap_or_default()
        ),
        401 | 403 => "the server refused the request: check the client id and secret".to_owned(),
        404 | 405 => "check the URL: nothing answers it here".to_owned(),
        429 => "too many requests; try again later".to_owned(),
        500..=599 => {
            "the server, or a proxy or load balancer in front of it, failed; try again later"
                .to_owned()
        }
        _ => "unexpected answer".to_owned(),
    };
    let excerpt = snippet(&raw.body, secrets);
    let body = if excerpt.is_empty() {
        "empty body".to_owned()
    } else {
        format!("body: {excerpt}")
    };
    Error::InvalidResponse {
        status: Some(status),
        message: format!(
            "the {operation} got HTTP {status} without an OAuth error ({hint}); content-type {}, {body}",
            redact(raw.content_type(), secrets)
        ),
    }
}

/// A non-empty string member.
pub(crate) fn string_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    match object.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A number of seconds given as a JSON number or a numeric string (Azure AD v1 sends
/// `"3599"`); anything else, negative or missing is `None`.
pub(crate) fn seconds_field(object: &Map<String, Value>, name: &str) -> Option<u64> {
    let (whole, float) = match object.get(name)? {
        Value::Number(n) => (n.as_u64(), n.as_f64()),
        Value::String(s) => (s.trim().parse().ok(), s.trim().parse().ok()),
        _ => return None,
    };
    whole.or_else(|| {
        float
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// A space-separated string, or (leniently) an array of strings, as a list without blanks.
pub(crate) fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            content_type: Some("application/json".into()),
            location: None,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn basic_credentials_form_encode_both_parts() {
        let encoded = basic_credentials("my client:1", "p:/+%&=é s");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "my+client%3A1:p%3A%2F%2B%25%26%3D%C3%A9+s"
        );
    }

    #[test]
    fn form_sends_each_name_once_and_skips_empty_scope_and_audience() {
        let request = TokenRequest::authorization_code(
            "https://idp/token",
            ClientAuth::public("flytectl"),
            "the-code",
            Some(SecretString::from("verifier")),
            Some("http://localhost:53593/callback".into()),
        )
        .with_scopes(["", " "])
        .with_audience("")
        .with_params([
            ("client_id", "flytectl"),
            ("redirect_uri", "http://localhost:53593/callback"),
            ("state", "xyz"),
        ]);
        let (form, basic) = request.encode();
        assert!(basic.is_none());
        assert_eq!(
            form,
            "grant_type=authorization_code&code=the-code&code_verifier=verifier\
             &redirect_uri=http%3A%2F%2Flocalhost%3A53593%2Fcallback&client_id=flytectl&state=xyz"
        );
    }

    #[test]
    fn a_device_code_poll_carries_the_pkce_verifier_and_hides_it() {
        let request = TokenRequest::device_code(
            "https://idp/token",
            ClientAuth::public("flytectl"),
            "dev-code",
        )
        .with_code_verifier("verifier-XYZ");
        let (form, _) = request.encode();
        assert_eq!(
            form,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
             &device_code=dev-code&code_verifier=verifier-XYZ&client_id=flytectl"
        );
        assert!(request.secrets().contains(&"verifier-XYZ"));
        assert!(!format!("{request:?}").contains("XYZ"));
    }

    #[test]
    fn client_secret_post_puts_the_secret_in_the_body() {
        let request = TokenRequest::client_credentials(
            "https://idp/token",
            ClientAuth::confidential("app", "s&cret")
                .with_method(ClientAuthMethod::ClientSecretPost),
        )
        .with_scopes(["a", "b"])
        .with_audience("aud");
        let (form, basic) = request.encode();
        assert!(basic.is_none());
        assert_eq!(
            form,
            "grant_type=client_credentials&client_id=app&client_secret=s%26cret&scope=a+b&audience=aud"
        );
    }

    #[test]
    fn debug_of_a_request_shows_no_secret() {
        let request = TokenRequest::refresh_token(
            "https://idp/token?x=1",
            ClientAuth::confidential("app", "client-secret-XYZ"),
            "refresh-XYZ",
        )
        .with_param("assertion", "assertion-XYZ");
        let printed = format!("{request:?}");
        assert!(!printed.contains("XYZ"), "{printed}");
        assert!(printed.contains("refresh_token"), "{printed}");
    }

    #[test]
    fn expires_in_number_string_float_and_garbage() {
        let parse = |v: &str| {
            let body = format!(r#"{{"access_token":"a","expires_in":{v}}}"#);
            parse_token_response(&raw(200, &body), "token request", &[])
                .unwrap()
                .expires_in
        };
        assert_eq!(parse("3600"), Some(3600));
        assert_eq!(parse(r#""3599""#), Some(3599));
        assert_eq!(parse("59.5"), Some(59));
        assert_eq!(parse(r#""soon""#), None);
        assert_eq!(parse("-5"), None);
        assert_eq!(parse("null"), None);
    }

    #[test]
    fn oauth_error_with_status_200_is_still_an_error() {
        let e = parse_token_response(
            &raw(200, r#"{"error":"authorization_pending"}"#),
            "token request",
            &[],
        )
        .unwrap_err();
        let oauth = e.oauth().expect("an OAuth error");
        assert_eq!(
            oauth.code,
            flyte_auth_core::OAuthErrorCode::AuthorizationPending
        );
        assert_eq!(oauth.status, Some(200));
    }

    #[test]
    fn a_successful_non_json_answer_is_not_quoted() {
        let e = parse_token_response(
            &RawResponse {
                status: 200,
                content_type: Some("application/x-www-form-urlencoded".into()),
                location: None,
                retry_after: None,
                body: b"access_token=TOKEN-XYZ&token_type=bearer".to_vec(),
            },
            "token request",
            &[],
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("XYZ"), "{msg}");
        assert!(msg.contains("not JSON"), "{msg}");
    }

    #[test]
    fn an_error_description_echoing_a_secret_is_redacted() {
        let e = parse_token_response(
            &raw(
                400,
                r#"{"error":"invalid_grant","error_description":"token r-XYZ-1 revoked"}"#,
            ),
            "token request",
            &["r-XYZ-1"],
        )
        .unwrap_err();
        assert!(!e.to_string().contains("XYZ"), "{e}");
    }
}
