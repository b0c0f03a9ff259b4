//! Passthrough: a service calls Flyte with the credentials of the request it is serving (the
//! Flyte 2 SDK's `Passthrough` auth type, for Flyte apps that act as the signed-in user).
//! Feature `tower`.
//!
//! - On the server, [`CaptureLayer`] captures each request's `authorization` and `cookie`
//!   headers ([`CallerCredentials`]) into a task-local scope lasting as long as the inner
//!   service's future (up to the response head: a streamed body or a server-streaming
//!   handler's stream runs outside it; take [`current`] and run it in [`scope`]).
//! - On the client, the [`Passthrough`] authenticator never logs in nor stores anything:
//!   [`AuthLayer`](crate::AuthLayer) and `AuthenticatedClient` send the captured headers with
//!   every call made inside the scope, and hand a rejection to the caller as it is.
//!
//! A call outside a scope is not sent ([`Error::AccessTokenNotFound`]). A task started with
//! `tokio::spawn` does not inherit the scope; carry it over:
//!
//! ```
//! # async fn handler() {
//! use flyte_auth::passthrough;
//!
//! let caller = passthrough::current().unwrap_or_default();
//! tokio::spawn(passthrough::scope(caller, async {
//!     // calls through a Passthrough `AuthLayer` here carry the caller's headers
//! }));
//! # }
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use flyte_auth::{AuthLayer, passthrough::{CaptureLayer, Passthrough}};
//!
//! // The client: calls to Flyte carry the headers of the request being served.
//! let to_flyte = AuthLayer::new(Arc::new(Passthrough::new()));
//! // The server: `axum::Router::new().route(..).layer(CaptureLayer::new())`, or
//! // `tonic::transport::Server::builder().layer(CaptureLayer::new())`.
//! let capture = CaptureLayer::new();
//! # let _ = (to_flyte, capture); Ok(()) }
//! ```

use std::{
    fmt,
    future::Future,
    sync::Arc,
    task::{Context, Poll},
};

use flyte_auth_core::{
    AuthHeader, Authenticator, BoxFuture, Credentials, DEFAULT_HEADER_KEY, Error,
};
use http::{
    HeaderMap, HeaderName, HeaderValue, Request,
    header::{AUTHORIZATION, COOKIE},
};
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

tokio::task_local! {
    static CALLER: CallerCredentials;
}

/// The credentials of an incoming request: its `authorization` and `cookie` headers.
///
/// `{:?}` says which are present, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallerCredentials {
    authorization: Option<HeaderValue>,
    cookie: Option<HeaderValue>,
}

impl CallerCredentials {
    /// The `authorization` and `cookie` headers of `headers`: the first `authorization`, and
    /// every `cookie` field joined with `; ` (HTTP/2 sends each cookie in a field of its own).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut cookies = headers.get_all(COOKIE).iter();
        let cookie = cookies.next().map(|first| {
            let mut joined = first.as_bytes().to_vec();
            for more in cookies {
                joined.extend_from_slice(b"; ");
                joined.extend_from_slice(more.as_bytes());
            }
            joined
        });
        Self {
            authorization: headers.get(AUTHORIZATION).cloned().map(sensitive),
            cookie: cookie
                .and_then(|c| HeaderValue::from_bytes(&c).ok())
                .map(sensitive),
        }
    }

    /// Whether the request carried neither header.
    pub fn is_empty(&self) -> bool {
        self.authorization.is_none() && self.cookie.is_none()
    }

    /// The headers to forward, as captured: `authorization` and `cookie`, those present. The
    /// values are the caller's credentials: do not log them.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let authorization = self.authorization.clone().map(|v| (AUTHORIZATION, v));
        let cookie = self.cookie.clone().map(|v| (COOKIE, v));
        authorization.into_iter().chain(cookie).collect()
    }

    /// The bearer token of `authorization`, when it carries one.
    fn bearer(&self) -> Option<&str> {
        let value = self.authorization.as_ref()?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

impl fmt::Debug for CallerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<HeaderValue>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("CallerCredentials")
            .field("authorization", &shown(&self.authorization))
            .field("cookie", &shown(&self.cookie))
            .finish()
    }
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// Runs `future` with `credentials` as the caller's: what a [`Passthrough`] client sends for
/// calls made inside it. For a task spawned while serving a request (which does not inherit
/// the scope), with the credentials from [`current`].
pub fn scope<F: Future>(
    credentials: CallerCredentials,
    future: F,
) -> TaskLocalFuture<CallerCredentials, F> {
    CALLER.scope(credentials, future)
}

/// The caller's credentials in scope, if any: inside a request served through
/// [`CaptureLayer`], or a [`scope`].
pub fn current() -> Option<CallerCredentials> {
    CALLER.try_with(Clone::clone).ok()
}

/// The headers a [`Passthrough`] client sends now, or why there are none.
pub(crate) fn forwarded_headers() -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let caller = current().ok_or_else(not_in_scope)?;
    if caller.is_empty() {
        return Err(Error::AccessTokenNotFound {
            reason: "Passthrough: the request being served carried no authorization or cookie \
                     header to forward"
                .into(),
        });
    }
    Ok(caller.headers())
}

fn not_in_scope() -> Error {
    Error::AccessTokenNotFound {
        reason: "Passthrough: no incoming request's credentials are in scope (the call is not \
                 made while serving a request through `passthrough::CaptureLayer`, or from a \
                 spawned task not wrapped in `passthrough::scope`)"
            .into(),
    }
}

/// The server layer that captures each request's [`CallerCredentials`] for the calls made
/// while serving it: for an axum `Router`, a tonic server, any service of `http::Request`s.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CaptureLayer;

impl CaptureLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for CaptureLayer {
    type Service = CaptureService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CaptureService { inner }
    }
}

/// The service of [`CaptureLayer`]: runs the inner `call` and its future in the request's scope.
#[derive(Debug, Clone)]
pub struct CaptureService<S> {
    inner: S,
}

impl<S> CaptureService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for CaptureService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<CallerCredentials, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let caller = CallerCredentials::from_headers(request.headers());
        tracing::trace!(
            ?caller,
            "serving a request with its caller's credentials in scope"
        );
        let inner = &mut self.inner;
        let future = CALLER.sync_scope(caller.clone(), || inner.call(request));
        CALLER.scope(caller, future)
    }
}

/// The authenticator of the `Passthrough` auth type; see the [module documentation](self).
/// Used directly, [`get_credentials`](Authenticator::get_credentials) gives the caller's
/// bearer token.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Passthrough;

impl Passthrough {
    /// The authenticator.
    pub fn new() -> Self {
        Self
    }

    fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        let caller = current().ok_or_else(not_in_scope)?;
        let token = caller.bearer().ok_or_else(|| Error::AccessTokenNotFound {
            reason: "Passthrough: the request being served carries no bearer token".into(),
        })?;
        Ok(Arc::new(Credentials::new(token, "passthrough")))
    }

    fn header(&self) -> Result<AuthHeader, Error> {
        AuthHeader::bearer(
            HeaderName::from_static(DEFAULT_HEADER_KEY),
            &*self.credentials()?,
        )
    }
}

impl Authenticator for Passthrough {
    fn get_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        let credentials = self.credentials();
        Box::pin(async move { credentials })
    }

    fn refresh_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        self.get_credentials()
    }

    fn fetch_grpc_call_auth_metadata(&self) -> Option<AuthHeader> {
        self.header().ok()
    }

    fn auth_header(&self) -> BoxFuture<'_, Result<AuthHeader, Error>> {
        let header = self.header();
        Box::pin(async move { header })
    }

    fn header_name(&self) -> BoxFuture<'_, Result<HeaderName, Error>> {
        Box::pin(async move { Ok(HeaderName::from_static(DEFAULT_HEADER_KEY)) })
    }

    fn load_credentials_without_login(&self) -> bool {
        current().is_some_and(|caller| !caller.is_empty())
    }

    fn forwards_caller_credentials(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn debug_never_shows_the_captured_values() {
        let caller = CallerCredentials::from_headers(&headers(&[
            ("authorization", "Bearer the-callers-token"),
            ("cookie", "session=the-callers-session"),
        ]));
        let shown = format!("{caller:?}");
        assert!(!shown.contains("the-callers"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn cookie_fields_are_joined_and_only_the_two_headers_are_kept() {
        let caller = CallerCredentials::from_headers(&headers(&[
            ("authorization", "Bearer t"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-other", "kept out"),
        ]));
        let sent = caller.headers();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            sent[0],
            (AUTHORIZATION, HeaderValue::from_static("Bearer t"))
        );
        assert_eq!(sent[1], (COOKIE, HeaderValue::from_static("a=1; b=2")));
        assert!(sent.iter().all(|(_, v)| v.is_sensitive()));
    }

    /// Each method of the authenticator, called outside a scope: those that need credentials
    /// fail or have none; the header name and the passthrough mark do not depend on a scope.
    #[tokio::test]
    async fn outside_a_scope_there_are_no_credentials_only_the_header_name() {
        let auth = Passthrough::new();
        let not_in_scope = |result: Result<_, Error>| {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::AccessTokenNotFound { .. }), "{err:?}");
            assert!(
                err.to_string()
                    .contains("no incoming request's credentials are in scope"),
                "{err}"
            );
        };
        not_in_scope(auth.get_credentials().await.map(drop));
        not_in_scope(auth.refresh_credentials().await.map(drop));
        not_in_scope(auth.auth_header().await.map(drop));
        not_in_scope(forwarded_headers().map(drop));
        assert!(auth.fetch_grpc_call_auth_metadata().is_none());
        assert!(auth.fresh_credentials().is_none());
        assert!(!auth.load_credentials_without_login());
        auth.invalidate(&HeaderValue::from_static("Bearer rejected"));
        assert_eq!(auth.header_name().await.unwrap(), AUTHORIZATION);
        assert!(auth.forwards_caller_credentials());
    }

    #[tokio::test]
    async fn inside_a_scope_the_callers_bearer_token_is_the_credentials() {
        let caller = CallerCredentials::from_headers(&headers(&[("authorization", "Bearer abc")]));
        let token = scope(caller, async {
            Passthrough::new()
                .get_credentials()
                .await
                .map(|c| c.access_token.expose_secret().to_owned())
        })
        .await
        .unwrap();
        assert_eq!(token, "abc");
        let empty = scope(CallerCredentials::default(), async { forwarded_headers() }).await;
        assert!(
            empty
                .unwrap_err()
                .to_string()
                .contains("no authorization or cookie")
        );
    }
}
