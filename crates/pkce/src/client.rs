//! [`AuthorizationClient`]: one browser login (authorization code + PKCE) and the refresh
//! grant, flytekit's `AuthorizationClient`.

use std::{fmt, time::Duration};

use flyte_auth_core::{Credentials, Error, jwt_claim, text::printable};
use flyte_auth_oauth::{
    ClientAuth, HttpSettings, OAuthClient, TokenRequest, TokenResponse,
    pkce::{Pkce, S256},
};
use url::Url;

use crate::{
    BrowserOpener, DEFAULT_LOGIN_TIMEOUT, EndpointMetadata, LoginEvent, LoginPrompt,
    challenge::{constant_time_eq, new_state},
    pages::Page,
    redirect::RedirectTarget,
    server::{CallbackServer, truncate},
};

/// Authorization request parameters the flow must control: extra parameters with these names
/// are ignored.
const PROTECTED_AUTH_PARAMS: [&str; 5] = [
    "state",
    "nonce",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
];

/// How a login runs, beyond the endpoints: shared by [`AuthorizationClientBuilder`] and
/// [`PkceAuthenticatorBuilder`](crate::PkceAuthenticatorBuilder).
#[derive(Debug, Clone)]
pub(crate) struct LoginOptions {
    pub(crate) endpoint_metadata: Option<EndpointMetadata>,
    pub(crate) request_auth_code_params: Vec<(String, String)>,
    pub(crate) request_access_token_params: Vec<(String, String)>,
    pub(crate) refresh_access_token_params: Vec<(String, String)>,
    pub(crate) add_auth_code_params_to_token_request: bool,
    pub(crate) timeout: Duration,
    pub(crate) browser: BrowserOpener,
    pub(crate) prompt: LoginPrompt,
}

impl LoginOptions {
    pub(crate) fn new(add_auth_code_params_to_token_request: bool) -> Self {
        Self {
            endpoint_metadata: None,
            request_auth_code_params: Vec::new(),
            request_access_token_params: Vec::new(),
            refresh_access_token_params: Vec::new(),
            add_auth_code_params_to_token_request,
            timeout: DEFAULT_LOGIN_TIMEOUT,
            browser: BrowserOpener::system(),
            prompt: LoginPrompt::stderr(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.timeout.is_zero() {
            return Err(Error::config(
                "pkceConfig.timeout is zero: the browser login could never finish",
            ));
        }
        Ok(())
    }
}

/// The browser came back with an authorization response that does not name the issuer the
/// login was sent to (RFC 9207): it comes from another authorization server, as in a mix-up
/// attack, and its code is not exchanged. Returned inside core's `Error::Other`:
///
/// ```
/// # fn check(error: &flyte_auth_core::Error) -> bool {
/// use flyte_auth_pkce::IssuerMismatch;
/// matches!(error, flyte_auth_core::Error::Other(e) if e.downcast_ref::<IssuerMismatch>().is_some())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the browser login was refused: the authorization server announces the `iss` parameter \
     (RFC 9207), and the callback names {}, not the issuer {expected} the login was sent to \
     (the answer comes from another authorization server)",
    received.as_deref().map_or_else(|| "no issuer".to_owned(), |iss| format!("the issuer {iss}"))
)]
#[non_exhaustive]
pub struct IssuerMismatch {
    /// The issuer of the authorization server the login was sent to.
    pub expected: String,
    /// The `iss` of the callback (shortened), or `None` when it had none.
    pub received: Option<String>,
}

impl IssuerMismatch {
    /// The longest `iss` kept from a callback.
    const MAX_CHARS: usize = 200;

    pub(crate) fn new(expected: &str, received: Option<&str>) -> Self {
        // Both are shown on a terminal; the callback's comes from whoever sent the browser.
        let received = received.map(|iss| truncate(&printable(iss), Self::MAX_CHARS));
        Self {
            expected: printable(expected).into_owned(),
            received,
        }
    }
}

/// The token endpoint answered the code exchange with an id token whose `nonce` claim is not
/// the one this login sent (OpenID Connect Core §3.1.3.7): the id token was issued for another
/// login, and nothing is stored. Returned inside core's `Error::Other`, as [`IssuerMismatch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the browser login was refused: the id token the token endpoint returned carries another \
     nonce than the one this login sent (it was issued for another login)"
)]
#[non_exhaustive]
pub struct NonceMismatch;

/// Checks the `nonce` claim of the answer's id token, when there is one, against the `nonce`
/// the authorization request carried, when it carried one.
///
/// Only the payload is decoded: the signature is not verified, because this id token came
/// straight from the token endpoint over TLS, with the access token, and that is what
/// authenticates it (OpenID Connect Core §3.1.3.7, item 6). An id token without a `nonce`
/// claim is accepted (not every server echoes it; the code exchange with the PKCE verifier
/// already binds the answer to this login); one with another nonce is refused.
fn check_nonce(token: &TokenResponse, nonce: Option<&str>) -> Result<(), NonceMismatch> {
    let Some(nonce) = nonce else {
        return Ok(());
    };
    let claim = token
        .id_token
        .as_ref()
        .and_then(|id_token| jwt_claim(id_token.expose_secret(), "nonce"));
    match claim {
        Some(claim)
            if !claim
                .as_str()
                .is_some_and(|claim| constant_time_eq(claim.as_bytes(), nonce.as_bytes())) =>
        {
            Err(NonceMismatch)
        }
        _ => Ok(()),
    }
}

/// Sets `name` to `value`, replacing an earlier value (the semantics of a Python dict update).
pub(crate) fn set_param(params: &mut Vec<(String, String)>, name: String, value: String) {
    match params.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => params.push((name, value)),
    }
}

/// `params` with a later value of a name replacing an earlier one.
pub(crate) fn collect_params(
    params: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in params {
        set_param(&mut out, k.into(), v.into());
    }
    out
}

/// The builder methods of [`LoginOptions`], for both builders.
macro_rules! login_option_methods {
    () => {
        /// How long to wait for the browser to come back (`pkceConfig.timeout`;
        /// [`DEFAULT_LOGIN_TIMEOUT`](crate::DEFAULT_LOGIN_TIMEOUT), two minutes, by default).
        /// When it passes, the login fails with `Error::Timeout` naming the redirect URI.
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.timeout = timeout;
            self
        }

        /// How the authorization URL is opened ([`BrowserOpener::system`](crate::BrowserOpener::system)
        /// by default).
        pub fn browser(mut self, browser: crate::BrowserOpener) -> Self {
            self.options.browser = browser;
            self
        }

        /// Opens no browser: the user opens the URL that the prompt shows (standard error by
        /// default). Same as `browser(BrowserOpener::disabled())`.
        pub fn no_browser(self) -> Self {
            self.browser(crate::BrowserOpener::disabled())
        }

        /// How the user is told where to log in ([`LoginPrompt::stderr`](crate::LoginPrompt::stderr)
        /// by default: the URL is always written to standard error).
        pub fn prompt(mut self, prompt: crate::LoginPrompt) -> Self {
            self.options.prompt = prompt;
            self
        }

        /// The pages shown in the browser at the end of the login (flytekit's
        /// `endpoint_metadata`); by default built-in pages naming the endpoint.
        pub fn endpoint_metadata(mut self, metadata: crate::EndpointMetadata) -> Self {
            self.options.endpoint_metadata = Some(metadata);
            self
        }

        /// Extra parameters of the authorization request (flytekit's
        /// `request_auth_code_params`), e.g. `prompt=login` or `access_type=offline`. They
        /// replace parameters of the same name (`scope`, `audience`, ...), except `state`,
        /// `nonce`, `redirect_uri`, `code_challenge` and `code_challenge_method`, which the
        /// flow generates for each login and which are kept.
        pub fn request_auth_code_params(
            mut self,
            params: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        ) -> Self {
            self.options.request_auth_code_params = crate::client::collect_params(params);
            self
        }

        /// Extra parameters of the code exchange (flytekit's `request_access_token_params`).
        /// `grant_type`, `code`, `code_verifier`, `redirect_uri` and `client_id` are always the
        /// flow's own.
        pub fn request_access_token_params(
            mut self,
            params: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        ) -> Self {
            self.options.request_access_token_params = crate::client::collect_params(params);
            self
        }

        /// Extra parameters of the refresh grant (flytekit's `refresh_access_token_params`).
        pub fn refresh_access_token_params(
            mut self,
            params: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        ) -> Self {
            self.options.refresh_access_token_params = crate::client::collect_params(params);
            self
        }

        /// Whether the code exchange also carries every parameter of the authorization
        /// request (`client_id`, `response_type`, `scope`, `redirect_uri`, `state`,
        /// `audience`, `code_challenge`, `code_challenge_method`, and the extra ones), as
        /// flytekit's `add_request_auth_code_params_to_request_access_token_params` does.
        /// flyteadmin's built-in authorization server wants them.
        pub fn add_request_auth_code_params_to_request_access_token_params(
            mut self,
            add: bool,
        ) -> Self {
            self.options.add_auth_code_params_to_token_request = add;
            self
        }
    };
}
pub(crate) use login_option_methods;

/// One browser login against an authorization server, and the refresh grant: flytekit's
/// `AuthorizationClient`.
///
/// It keeps no credentials: a [`PkceAuthenticator`](crate::PkceAuthenticator) caches them.
/// Every login uses a new verifier and a new `state`. Creating the client touches no network.
///
/// ```no_run
/// # async fn run() -> Result<(), flyte_auth_core::Error> {
/// use std::time::Duration;
/// use flyte_auth_pkce::AuthorizationClient;
///
/// let client = AuthorizationClient::builder(
///     "flyte.example.org",
///     "https://idp.example.org/oauth2/authorize",
///     "https://idp.example.org/oauth2/token",
///     "flytectl",
///     "http://localhost:53593/callback",
/// )
/// .scopes(["openid", "offline_access", "all"])
/// .timeout(Duration::from_secs(300))
/// .build()?;
/// let credentials = client.get_creds_from_remote().await?;
/// let refreshed = client.refresh_access_token(&credentials).await?;
/// # let _ = refreshed; Ok(()) }
/// ```
pub struct AuthorizationClient {
    endpoint: String,
    auth_endpoint: Url,
    token_endpoint: String,
    client_id: String,
    redirect: RedirectTarget,
    audience: Option<String>,
    scopes: Vec<String>,
    issuer: Option<String>,
    metadata: EndpointMetadata,
    http: OAuthClient,
    options: LoginOptions,
}

impl fmt::Debug for AuthorizationClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut auth_endpoint = self.auth_endpoint.clone();
        auth_endpoint.set_query(None);
        f.debug_struct("AuthorizationClient")
            .field("endpoint", &self.endpoint)
            .field("auth_endpoint", &auth_endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect.uri())
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .field("timeout", &self.options.timeout)
            .field("browser", &self.options.browser)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AuthorizationClient`]; see [`AuthorizationClient::builder`].
#[derive(Debug)]
#[must_use]
pub struct AuthorizationClientBuilder {
    endpoint: String,
    auth_endpoint: String,
    token_endpoint: String,
    client_id: String,
    redirect_uri: String,
    audience: Option<String>,
    scopes: Vec<String>,
    issuer: Option<String>,
    http: Option<OAuthClient>,
    options: LoginOptions,
}

impl AuthorizationClientBuilder {
    /// Sends `audience` with the authorization request (Auth0, some Keycloak setups); an
    /// empty string means none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.audience = (!audience.trim().is_empty()).then_some(audience);
        self
    }

    /// The scopes to ask for (sent space-joined; none by default).
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = clean_scopes(scopes);
        self
    }

    /// The issuer identifier of the authorization server, when its metadata announces
    /// `authorization_response_iss_parameter_supported` (RFC 9207): a callback whose `iss`
    /// is missing or differs is then refused with [`IssuerMismatch`] and its code is not
    /// exchanged. Compared as a plain string; an empty string means no check.
    pub fn authorization_response_issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.issuer = (!issuer.trim().is_empty()).then_some(issuer);
        self
    }

    /// The HTTP client for the token requests (TLS, proxy, timeouts); one built from
    /// [`HttpSettings::default`] otherwise.
    pub fn http_client(mut self, client: OAuthClient) -> Self {
        self.http = Some(client);
        self
    }

    login_option_methods!();

    /// Checks the configuration and builds the client. Touches no network.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the authorization endpoint is not an http(s) URL, the token
    /// endpoint or client id is empty, the redirect URI is not a loopback URL with a port
    /// (`http://localhost:53593/callback`), or the timeout is zero.
    pub fn build(self) -> Result<AuthorizationClient, Error> {
        self.options.check()?;
        let auth_endpoint = parse_auth_endpoint(&self.auth_endpoint)?;
        if self.token_endpoint.trim().is_empty() {
            return Err(Error::config(
                "the token endpoint is empty; the browser login needs one to exchange the code",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(Error::config(
                "the client id is empty; the browser login needs the identity provider's client id (admin.clientId)",
            ));
        }
        let redirect = RedirectTarget::parse(&self.redirect_uri)?;
        let http = match self.http {
            Some(http) => http,
            None => OAuthClient::new(HttpSettings::default())?,
        };
        let metadata = self
            .options
            .endpoint_metadata
            .clone()
            .unwrap_or_else(|| EndpointMetadata::new(&self.endpoint));
        Ok(AuthorizationClient {
            endpoint: self.endpoint,
            auth_endpoint,
            token_endpoint: self.token_endpoint.trim().to_owned(),
            client_id: self.client_id.trim().to_owned(),
            redirect,
            audience: self.audience,
            scopes: self.scopes,
            issuer: self.issuer,
            metadata,
            http,
            options: self.options,
        })
    }
}

impl AuthorizationClient {
    /// Starts building a client for `endpoint` (the Flyte endpoint the credentials are for)
    /// that logs in at `auth_endpoint`, exchanges codes at `token_endpoint` as the public
    /// client `client_id`, and receives the browser at `redirect_uri` (a loopback URL with a
    /// port, e.g. [`DEFAULT_REDIRECT_URI`](crate::DEFAULT_REDIRECT_URI); port 0 means any
    /// free port).
    pub fn builder(
        endpoint: impl Into<String>,
        auth_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> AuthorizationClientBuilder {
        AuthorizationClientBuilder {
            endpoint: endpoint.into(),
            auth_endpoint: auth_endpoint.into(),
            token_endpoint: token_endpoint.into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            audience: None,
            scopes: Vec::new(),
            issuer: None,
            http: None,
            options: LoginOptions::new(false),
        }
    }

    pub(crate) fn with_options(
        builder: AuthorizationClientBuilder,
        options: LoginOptions,
    ) -> AuthorizationClientBuilder {
        AuthorizationClientBuilder { options, ..builder }
    }

    /// The endpoint the credentials are for.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The OAuth client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The redirect URI as configured.
    pub fn redirect_uri(&self) -> &str {
        self.redirect.uri()
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Runs one browser login and returns its credentials: flytekit's
    /// `get_creds_from_remote`. Listens on the redirect URI before the browser is opened (a
    /// busy port fails at once), waits for the callback with this login's `state`, exchanges
    /// its code and then tells the browser whether the login succeeded.
    ///
    /// # Errors
    ///
    /// - [`Error::Authentication`] when the port cannot be listened on (naming the port and
    ///   the redirect URI), or the callback carries neither a code nor an error;
    /// - [`Error::Other`] holding an [`IssuerMismatch`] when the authorization server
    ///   announces RFC 9207's `iss` and the callback names another issuer or none;
    /// - [`Error::Other`] holding a [`NonceMismatch`] when the id token of the answer carries
    ///   another `nonce` than the one this login sent;
    /// - [`Error::OAuth`] when the identity provider sends the browser back with `error=`
    ///   (`access_denied` when the user refused), or refuses the code exchange;
    /// - [`Error::Timeout`] when the browser has not come back in time;
    /// - the token request's [`Error::InvalidResponse`], [`Error::Transport`] and
    ///   [`Error::Timeout`].
    pub async fn get_creds_from_remote(&self) -> Result<Credentials, Error> {
        let server = CallbackServer::bind(&self.redirect).await?;
        let redirect_uri = server.redirect_uri().to_owned();
        let pkce = Pkce::new_s256()?;
        let state = new_state()?;
        let nonce = new_state()?;
        let params = self.authorization_params(&redirect_uri, &state, &nonce, &pkce);
        let sent_nonce = params
            .iter()
            .any(|(k, _)| k == "nonce")
            .then_some(nonce.as_str());
        let mut url = self.auth_endpoint.clone();
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));

        let open_browser = !self.options.browser.is_disabled();
        tracing::debug!(
            endpoint = %self.endpoint,
            redirect_uri = %redirect_uri,
            browser = open_browser,
            "starting the browser login"
        );
        self.options.prompt.show(&LoginEvent::Started {
            url: url.as_str(),
            endpoint: &self.endpoint,
            browser_opened: open_browser,
        });
        let opener = async {
            if open_browser && let Err(reason) = self.options.browser.open(url.as_str()).await {
                tracing::warn!(%reason, "could not open a browser for the login");
                self.options.prompt.show(&LoginEvent::BrowserFailed {
                    url: url.as_str(),
                    reason: &reason,
                });
            }
        };
        let callback = server
            .wait_for_code(
                &state,
                self.issuer.as_deref(),
                &self.metadata,
                self.options.timeout,
                opener,
            )
            .await?;

        tracing::debug!(endpoint = %self.endpoint, "exchanging the authorization code");
        let mut request = TokenRequest::authorization_code(
            &self.token_endpoint,
            ClientAuth::public(&self.client_id),
            callback.code.clone(),
            Some(pkce.verifier().clone()),
            Some(redirect_uri),
        );
        if self.options.add_auth_code_params_to_token_request {
            request = request.with_params(params);
        }
        request = request.with_params(self.options.request_access_token_params.clone());
        let answer = self.http.token(&request).await.and_then(|token| {
            check_nonce(&token, sent_nonce).map_err(Error::other)?;
            Ok(token)
        });
        match answer {
            Ok(token) => {
                callback.respond(&Page::success(&self.metadata)).await;
                Ok(self.credentials(token))
            }
            Err(e) => {
                let reason =
                    format!("the authorization code could not be exchanged for a token: {e}");
                callback
                    .respond(&Page::failure(&self.metadata, &reason))
                    .await;
                Err(e)
            }
        }
    }

    /// Redeems the refresh token of `credentials` with the `refresh_access_token_params`:
    /// flytekit's `refresh_access_token`. Used alone (not in a
    /// [`PkceFlow`](crate::PkceFlow)), apply [`Credentials::carry_forward`] to the answer.
    ///
    /// # Errors
    ///
    /// [`Error::AccessTokenNotFound`] when `credentials` has no refresh token; the token
    /// request's errors otherwise ([`Error::OAuth`] with `invalid_grant` when the refresh
    /// token was rejected: [`Error::is_rejected_grant`] tells it apart from a transient
    /// failure).
    pub async fn refresh_access_token(
        &self,
        credentials: &Credentials,
    ) -> Result<Credentials, Error> {
        let Some(refresh_token) = credentials.refresh_token.clone() else {
            return Err(Error::AccessTokenNotFound {
                reason: "no refresh token is available to refresh the credentials; log in again"
                    .into(),
            });
        };
        let request = TokenRequest::refresh_token(
            &self.token_endpoint,
            ClientAuth::public(&self.client_id),
            refresh_token,
        )
        .with_params(self.options.refresh_access_token_params.clone());
        Ok(self.credentials(self.http.token(&request).await?))
    }

    /// The credentials of a token answer, filed under the endpoint, naming the client.
    fn credentials(&self, token: TokenResponse) -> Credentials {
        token
            .into_credentials(&self.endpoint)
            .with_client_id(&self.client_id)
    }

    /// The authorization request's parameters, in flytekit's order.
    fn authorization_params(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = vec![
            ("client_id".into(), self.client_id.clone()),
            ("response_type".into(), "code".into()),
        ];
        if !self.scopes.is_empty() {
            params.push(("scope".into(), self.scopes.join(" ")));
        }
        params.push(("redirect_uri".into(), redirect_uri.to_owned()));
        params.push(("state".into(), state.to_owned()));
        params.push(("nonce".into(), nonce.to_owned()));
        if let Some(audience) = &self.audience {
            params.push(("audience".into(), audience.clone()));
        }
        params.push(("code_challenge".into(), pkce.challenge().to_owned()));
        params.push(("code_challenge_method".into(), S256.to_owned()));
        for (name, value) in &self.options.request_auth_code_params {
            if PROTECTED_AUTH_PARAMS.contains(&name.as_str()) {
                tracing::debug!(
                    parameter = %name,
                    "ignoring an extra authorization parameter that the flow generates itself"
                );
                continue;
            }
            set_param(&mut params, name.clone(), value.clone());
        }
        // The nonce is OpenID Connect's: sent when `openid` is asked for, since a provider
        // refuses it without (oidc-provider: "openid scope must be requested when using the
        // nonce parameter"), and a strict one refuses `openid` without it (glewlwyd).
        let openid = params
            .iter()
            .any(|(k, v)| k == "scope" && v.split_whitespace().any(|scope| scope == "openid"));
        if !openid {
            params.retain(|(k, _)| k != "nonce");
        }
        params
    }
}

/// Scopes without blanks, duplicates kept in order.
pub(crate) fn clean_scopes(scopes: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    scopes
        .into_iter()
        .map(|s| s.into().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_auth_endpoint(url: &str) -> Result<Url, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::config(
            "the authorization endpoint is empty; the browser login (Pkce) needs the identity provider's authorization endpoint",
        ));
    }
    let parsed = Url::parse(url).map_err(|e| {
        Error::config(format!(
            "the authorization endpoint `{url}` is not a valid URL: {e}"
        ))
    })?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(Error::config(format!(
            "the authorization endpoint `{url}` must be an https:// URL"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(builder: AuthorizationClientBuilder) -> AuthorizationClient {
        builder.build().expect("valid configuration")
    }

    fn base() -> AuthorizationClientBuilder {
        AuthorizationClient::builder(
            "flyte.example.org",
            "https://idp.example.org/authorize?tenant=t1",
            "https://idp.example.org/token",
            "flytectl",
            "http://localhost:53593/callback",
        )
    }

    #[test]
    fn authorization_parameters_follow_flytekit() {
        let c = client(
            base()
                .scopes(["openid", " ", "offline"])
                .audience("flyte-api"),
        );
        let pkce = Pkce::new_s256().unwrap();
        let params = c.authorization_params("http://localhost:53593/callback", "st", "n", &pkce);
        let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "client_id",
                "response_type",
                "scope",
                "redirect_uri",
                "state",
                "nonce",
                "audience",
                "code_challenge",
                "code_challenge_method"
            ]
        );
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("scope"), Some("openid offline"));
        assert_eq!(get("nonce"), Some("n"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("code_challenge"), Some(pkce.challenge()));
    }

    #[test]
    fn no_audience_and_no_scopes_means_no_such_parameters() {
        let c = client(base().audience(""));
        let params = c.authorization_params(
            "http://localhost:1/cb",
            "st",
            "n",
            &Pkce::new_s256().unwrap(),
        );
        assert!(params.iter().all(|(k, _)| k != "audience" && k != "scope"));
    }

    #[test]
    fn the_nonce_goes_only_with_the_openid_scope() {
        let pkce = Pkce::new_s256().unwrap();
        let nonce = |c: AuthorizationClient| {
            c.authorization_params("http://localhost:1/cb", "st", "n", &pkce)
                .into_iter()
                .find(|(k, _)| k == "nonce")
                .map(|(_, v)| v)
        };
        assert_eq!(
            nonce(client(base().scopes(["openid", "all"]))),
            Some("n".into())
        );
        // A provider refuses a nonce without `openid` (oidc-provider does).
        assert_eq!(nonce(client(base().scopes(["all", "offline"]))), None);
        assert_eq!(nonce(client(base().scopes(["openidish"]))), None);
        assert_eq!(nonce(client(base())), None);
    }

    #[test]
    fn extra_parameters_override_all_but_the_generated_ones() {
        let c = client(base().scopes(["a"]).request_auth_code_params([
            ("scope", "openid b"),
            ("prompt", "login"),
            ("state", "attacker"),
            ("nonce", "attacker"),
            ("code_challenge", "x"),
            ("redirect_uri", "http://evil.example/"),
        ]));
        let pkce = Pkce::new_s256().unwrap();
        let params = c.authorization_params("http://localhost:53593/callback", "st", "n", &pkce);
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("scope"), Some("openid b"));
        assert_eq!(get("prompt"), Some("login"));
        assert_eq!(get("state"), Some("st"));
        assert_eq!(get("nonce"), Some("n"));
        assert_eq!(get("code_challenge"), Some(pkce.challenge()));
        assert_eq!(get("redirect_uri"), Some("http://localhost:53593/callback"));
    }

    #[test]
    fn build_checks_the_configuration_without_network() {
        let err = |b: AuthorizationClientBuilder| b.build().unwrap_err().to_string();
        let e = err(AuthorizationClient::builder(
            "e",
            "",
            "https://t",
            "c",
            "http://localhost:1/cb",
        ));
        assert!(e.contains("authorization endpoint is empty"), "{e}");
        let e = err(AuthorizationClient::builder(
            "e",
            "ftp://x",
            "https://t",
            "c",
            "http://localhost:1/cb",
        ));
        assert!(e.contains("https://"), "{e}");
        let e = err(AuthorizationClient::builder(
            "e",
            "https://a",
            " ",
            "c",
            "http://localhost:1/cb",
        ));
        assert!(e.contains("token endpoint"), "{e}");
        let e = err(AuthorizationClient::builder(
            "e",
            "https://a",
            "https://t",
            "",
            "http://localhost:1/cb",
        ));
        assert!(e.contains("client id"), "{e}");
        let e = err(AuthorizationClient::builder(
            "e",
            "https://a",
            "https://t",
            "c",
            "http://flyte.example.org:1/cb",
        ));
        assert!(e.contains("http://flyte.example.org:1/cb"), "{e}");
        let e = err(base().timeout(Duration::ZERO));
        assert!(e.contains("timeout"), "{e}");
    }
}
