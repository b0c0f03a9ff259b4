//! [`AuthenticatedClient`]: `reqwest` requests to Flyte's HTTP API (or anything behind the
//! same login) with the token header, a new token on HTTP 401, and one retry when the request
//! can be sent again (feature `reqwest`).
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth::Error> {
//! use flyte_auth::{AuthenticatedClient, PlatformConfig, get_authenticator, proxy_authenticator};
//!
//! let cfg = PlatformConfig::load()?;
//! let client = AuthenticatedClient::new(reqwest::Client::builder(), get_authenticator(&cfg, None)?)?
//!     .maybe_proxy(proxy_authenticator(&cfg)?);
//! let url = format!("{}/api/v1/projects", cfg.base_url());
//! let projects = client.send(client.get(&url)).await?;
//! println!("{}", projects.status());
//! # Ok(()) }
//! ```
//!
//! [`AuthenticatedClient::send`] adds the header as `AuthLayer` does (lazily unless
//! [`eager`](AuthenticatedClient::eager)), and on HTTP 401 (407 for the proxy) gets a new
//! token and sends the request once more when `RequestBuilder::try_clone` can copy it (any
//! body but a stream).
//!
//! The token goes only to the origin (scheme, host, port) a request is made for: a redirect
//! within it is followed (up to ten); one to another origin is returned as it is, for the
//! caller to follow without the token. (`reqwest` itself keeps a header other than
//! `authorization` on such a redirect, such as `flyte-authorization`.)

use std::{fmt, sync::Arc};

use ::reqwest::{
    Client, ClientBuilder, IntoUrl, Method, Request, RequestBuilder, Response, StatusCode,
    redirect::Policy,
};
use flyte_auth_core::{Authenticator, Error};

use crate::rejected::{Headers, Tokens, Verdict};

/// A `reqwest::Client` that sends the token with every request; see the
/// [module documentation](self).
///
/// Cheap to clone (the client and the authenticators are shared).
#[derive(Clone)]
pub struct AuthenticatedClient {
    client: Client,
    tokens: Tokens,
}

impl fmt::Debug for AuthenticatedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatedClient")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// The most redirects followed for one request (as `reqwest`'s default policy).
const MAX_REDIRECTS: usize = 10;

impl AuthenticatedClient {
    /// Requests through the client `http` builds (its TLS, proxy and time-out settings),
    /// with `auth`'s header. Its redirect policy is replaced: redirects are followed within
    /// the origin of the request only (see the [module documentation](self)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `reqwest` cannot build the client (its TLS set-up fails).
    pub fn new(http: ClientBuilder, auth: Arc<dyn Authenticator>) -> Result<Self, Error> {
        let client = http
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| {
                Error::config(format!(
                    "could not build the HTTP client: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(Self {
            client,
            tokens: Tokens::new(auth),
        })
    }

    /// Every request waits for a token, logging in first when needed, and is not sent
    /// without one: for servers known to require auth.
    #[must_use]
    pub fn eager(mut self) -> Self {
        self.tokens.eager = true;
        self
    }

    /// Also sends `proxy`'s header (`proxy-authorization`, from
    /// [`proxy_authenticator`](crate::proxy_authenticator)).
    #[must_use]
    pub fn with_proxy(mut self, proxy: Arc<dyn Authenticator>) -> Self {
        self.tokens.proxy = Some(proxy);
        self
    }

    /// [`with_proxy`](Self::with_proxy) when there is one.
    #[must_use]
    pub fn maybe_proxy(mut self, proxy: Option<Arc<dyn Authenticator>>) -> Self {
        self.tokens.proxy = proxy;
        self
    }

    /// The `reqwest` client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The authenticator whose header is sent.
    pub fn authenticator(&self) -> &Arc<dyn Authenticator> {
        &self.tokens.auth
    }

    /// Starts a request with the client (send it with [`send`](Self::send)).
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Starts a `GET` (send it with [`send`](Self::send)).
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.client.get(url)
    }

    /// Starts a `POST` (send it with [`send`](Self::send)).
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.client.post(url)
    }

    /// Starts a `PUT` (send it with [`send`](Self::send)).
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder {
        self.client.put(url)
    }

    /// Starts a `DELETE` (send it with [`send`](Self::send)).
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.client.delete(url)
    }

    /// Sends `request` (from any `reqwest::Client`, sent by this one) with the token; see the
    /// [module documentation](self). Any status other than a rejection is the caller's.
    ///
    /// # Errors
    ///
    /// The authenticator's error when no token can be had (before anything is sent, or
    /// when the refresh after a 401 fails); [`Error::Transport`] when the request cannot be
    /// built or fails on the way (URL shown without query string).
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let request = request.build_split().1.map_err(transport_error)?;
        let replay = request.try_clone();
        let mut headers = self.tokens.headers();
        let response = self.send_with(&mut headers, request).await?;
        let verdict = match response.status() {
            StatusCode::UNAUTHORIZED => Verdict::Rejected,
            _ => Verdict::Accepted,
        };
        let Some(renewed) = headers.renew_after(response.status(), verdict).await else {
            return Ok(response);
        };
        renewed?;
        match replay {
            Some(request) => {
                drop(response);
                tracing::debug!("sending the rejected request again with the new token");
                self.send_with(&mut headers, request).await
            }
            None => {
                tracing::debug!(
                    "the rejected request has a streamed body and is not sent again; the next request carries the new token"
                );
                Ok(response)
            }
        }
    }

    async fn send_with(
        &self,
        headers: &mut Headers,
        mut request: Request,
    ) -> Result<Response, Error> {
        headers.add_to(request.headers_mut()).await?;
        self.client.execute(request).await.map_err(transport_error)
    }
}

/// Follows a redirect only within the origin of the request: the token stays there.
fn same_origin_redirects() -> Policy {
    Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            tracing::debug!(
                to = %flyte_auth_core::redact_url(attempt.url().as_str()),
                "a redirect to another origin is not followed; the token stays with the first"
            );
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// The messages of an error and its sources, joined with `: `.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A `reqwest` failure as core's error, without query string or user info in the URL.
fn transport_error(e: ::reqwest::Error) -> Error {
    let url = e
        .url()
        .map(|u| flyte_auth_core::redact_url(u.as_str()))
        .unwrap_or_default();
    let e = e.without_url();
    let message = error_chain(&e);
    Error::Transport {
        url,
        message,
        source: Some(Arc::new(e)),
    }
}
