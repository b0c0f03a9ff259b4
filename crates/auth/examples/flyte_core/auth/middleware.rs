use std::{
    sync::Arc,
    task::{Context, Poll},
};

use flyte_auth::{
    BoxFuture,
    tower::{BoxError, Replay},
};
use tonic012::{body::BoxBody, transport::Channel};
use tower::{Layer, Service};

use super::{client_credentials::ClientCredentialsAuthenticator, errors::TokenError};

/// flyte-auth's service, replaying a rejected unary call.
type Inner<S> = flyte_auth::AuthService<S, Replay<BoxBody>>;

/// Tower layer that adds authentication to gRPC requests.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    /// flyte-auth's layer; the reason none could be made (a bad endpoint, an empty client id)
    /// is every call's answer.
    layer: Result<flyte_auth::AuthLayer<Replay<BoxBody>>, TokenError>,
}

impl AuthLayer {
    /// The layer for `authenticator`; `channel` (unauthenticated) carries its discovery.
    pub fn new(authenticator: Arc<ClientCredentialsAuthenticator>, channel: Channel) -> Self {
        let layer = authenticator.authenticator(&channel).map(|auth| {
            // Eager: the server always wants a token, so no call goes out without one.
            flyte_auth::AuthLayer::new(auth)
                .eager()
                .replay(tonic012::body::boxed)
        });
        Self { layer }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = match &self.layer {
            Ok(layer) => Ok(layer.layer(inner)),
            Err(e) => Err(e.clone()),
        };
        AuthService { inner }
    }
}

/// Tower service that adds the token to requests (`AuthService<Channel>` for a tonic client).
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: Result<Inner<S>, TokenError>,
}

impl<S, B> Service<http::Request<BoxBody>> for AuthService<S>
where
    Inner<S>: Service<http::Request<BoxBody>, Response = http::Response<B>, Error = BoxError>,
    <Inner<S> as Service<http::Request<BoxBody>>>::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<BoxBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.inner {
            Ok(inner) => inner.poll_ready(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: http::Request<BoxBody>) -> Self::Future {
        match &mut self.inner {
            Ok(inner) => {
                let call = inner.call(request);
                Box::pin(async move { Ok(call.await?.map(tonic012::body::boxed)) })
            }
            Err(e) => {
                let status = tonic012::Status::unauthenticated(e.to_string());
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}
