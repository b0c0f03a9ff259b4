//! [`AuthLayer`]: a tower layer that sends the token with the requests of a service — a
//! `tonic` channel (0.12 or 0.14), a hyper client, anything that takes `http::Request`s — and
//! gets a new token when the server rejects the one sent (feature `tower`).
//!
//! Written against `tower-service`, `tower-layer`, `http` and `http-body` only, so one layer
//! serves tower 0.4 stacks (tonic 0.12, the `flyteidl2` crate, the Flyte 2 SDK's controller)
//! and tower 0.5 stacks (tonic 0.14) alike.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use flyte_auth::{AuthLayer, PlatformConfig, get_authenticator, proxy_authenticator};
//!
//! let cfg = PlatformConfig::load()?;
//! let auth = get_authenticator(&cfg, None)?;
//! let layer = AuthLayer::new(auth).maybe_proxy(proxy_authenticator(&cfg)?);
//!
//! // With tonic 0.14 (`.replay(tonic::body::Body::new)` sends a rejected unary call again):
//! // let channel = tonic::transport::Channel::from_shared(cfg.base_url())?.connect().await?;
//! // let layer = layer.replay(tonic::body::Body::new);
//! // let mut admin = AdminServiceClient::new(tower::ServiceBuilder::new().layer(layer).service(channel));
//! // With tonic 0.12: `.replay(tonic::body::boxed)`.
//! # let _ = layer; Ok(()) }
//! ```
//!
//! A flow can discover the server's OAuth configuration over the same channel, as flytekit
//! and flytectl do: [`GrpcDiscovery`](crate::GrpcDiscovery).
//!
//! # What it does per request
//!
//! 1. **Lazy** (the default): adds the token when there are credentials without a login
//!    (fresh in memory, stored, or renewable: [`Authenticator::load_credentials_without_login`]);
//!    else the request goes without one, so a server without auth needs no login, and the
//!    first rejection starts it. **Eager** ([`AuthLayer::eager`]): every request waits for a
//!    token. The header is [`Authenticator::header_name`] (asked again for each new token).
//!    A proxy authenticator's header ([`AuthLayer::with_proxy`]) is always added.
//! 2. A rejection in the response head (HTTP 401, or `grpc-status: 16` in the headers) drops
//!    the token sent and gets a new one, once for concurrent rejections; 407 does the same
//!    for the proxy. `UNKNOWN` (2) saying "unauthenticated" replaces a token sent but starts
//!    no login. A rejection at the end of the call (gRPC trailers, a Connect end-of-stream
//!    message or error body) is seen by [`ResponseBody`] as it is read: the next call gets a
//!    new token.
//! 3. **Replay** ([`AuthLayer::replay`]): a request whose body was complete when sent (a unary
//!    call) and at most [`DEFAULT_REPLAY_LIMIT`] bytes is sent once more with the new token;
//!    a streaming body is not, and the caller sees the rejection.
//!
//! When a required token cannot be obtained, the request is not sent and is answered as a
//! refusing server would: a gRPC request with `grpc-status: 16` and the reason (the error's
//! text, never a secret) in `grpc-message`; any other with HTTP 401 and a Connect error body.
//!
//! ```text
//! eager, the identity provider refuses the client (tonic):
//!   Status { code: Unauthenticated, message: "authentication failed: invalid_client: ..." }
//! ```

use std::{
    collections::VecDeque,
    fmt,
    future::poll_fn,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use bytes::{Buf, Bytes};
use flyte_auth_core::{Authenticator, BoxFuture, Error};
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tower_layer::Layer;
use tower_service::Service;

pub use crate::response_body::ResponseBody;
use crate::{
    rejected::{Headers, Tokens},
    response_body,
};

/// The error type of [`AuthService`]: the inner service's error, or the
/// [`flyte_auth_core::Error`] that kept the request from being sent, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest request body [`AuthLayer::replay`] keeps for sending again: 4 MiB, gRPC's
/// default message size limit.
pub const DEFAULT_REPLAY_LIMIT: usize = 4 * 1024 * 1024;

/// Adds the token header to requests; see the [module documentation](self). `R`: [`NoReplay`]
/// or [`Replay`] ([`AuthLayer::replay`]). Cheap to clone; its services share the authenticators.
#[derive(Clone, Debug)]
pub struct AuthLayer<R = NoReplay> {
    tokens: Tokens,
    replay: R,
}

impl AuthLayer {
    /// A lazy layer sending `auth`'s header (`authorization: Bearer ...`, or the server's
    /// header) once there are credentials, without replaying rejected requests.
    pub fn new(auth: Arc<dyn Authenticator>) -> Self {
        Self {
            tokens: Tokens::new(auth),
            replay: NoReplay,
        }
    }
}

impl<R> AuthLayer<R> {
    /// Every request waits for a token, logging in first when needed, and is not sent
    /// without one: for servers known to require auth.
    #[must_use]
    pub fn eager(mut self) -> Self {
        self.tokens.eager = true;
        self
    }

    /// Also sends `proxy`'s header (from [`proxy_authenticator`](crate::proxy_authenticator):
    /// `proxy-authorization`), for an authenticating proxy in front of Flyte.
    #[must_use]
    pub fn with_proxy(mut self, proxy: Arc<dyn Authenticator>) -> Self {
        self.tokens.proxy = Some(proxy);
        self
    }

    /// [`with_proxy`](Self::with_proxy) when there is one: takes what
    /// [`proxy_authenticator`](crate::proxy_authenticator) returns.
    #[must_use]
    pub fn maybe_proxy(mut self, proxy: Option<Arc<dyn Authenticator>>) -> Self {
        self.tokens.proxy = proxy;
        self
    }

    /// Sends a rejected request once more with the new token when its body could be kept
    /// (complete at once, at most [`DEFAULT_REPLAY_LIMIT`] bytes). `body` turns the layer's
    /// [`RequestBody`] into the inner service's body type: `tonic::body::Body::new` for tonic
    /// 0.14, `tonic::body::boxed` for tonic 0.12, `reqwest::Body::wrap`, ...
    #[must_use]
    pub fn replay<B>(self, body: fn(RequestBody) -> B) -> AuthLayer<Replay<B>> {
        AuthLayer {
            tokens: self.tokens,
            replay: Replay {
                body,
                limit: DEFAULT_REPLAY_LIMIT,
            },
        }
    }
}

impl<B> AuthLayer<Replay<B>> {
    /// Keeps bodies of at most `limit` bytes for replay instead of [`DEFAULT_REPLAY_LIMIT`].
    #[must_use]
    pub fn replay_limit(mut self, limit: usize) -> Self {
        self.replay.limit = limit;
        self
    }
}

impl<S, R: Clone> Layer<S> for AuthLayer<R> {
    type Service = AuthService<S, R>;

    fn layer(&self, inner: S) -> AuthService<S, R> {
        AuthService {
            inner,
            tokens: self.tokens.clone(),
            replay: self.replay.clone(),
        }
    }
}

/// Rejected requests are not sent again (the default of [`AuthLayer`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplay;

/// Rejected requests are sent again when their body could be kept; see [`AuthLayer::replay`].
pub struct Replay<B> {
    body: fn(RequestBody) -> B,
    limit: usize,
}

impl<B> Clone for Replay<B> {
    fn clone(&self) -> Self {
        Self {
            body: self.body,
            limit: self.limit,
        }
    }
}

impl<B> fmt::Debug for Replay<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("limit", &self.limit)
            .finish()
    }
}

/// How a request is prepared for a possible second sending; implemented by [`NoReplay`]
/// and [`Replay`].
pub trait ReplayPolicy<B>: Clone + Send + Sync + 'static {
    /// The request to send, and a copy to send again after a rejection, if it can be kept.
    fn split(&self, request: Request<B>) -> (Request<B>, Option<Request<B>>);
}

impl<B> ReplayPolicy<B> for NoReplay {
    fn split(&self, request: Request<B>) -> (Request<B>, Option<Request<B>>) {
        (request, None)
    }
}

impl<B, D, E> ReplayPolicy<B> for Replay<B>
where
    B: Body<Data = D, Error = E> + Send + 'static,
    D: Buf + Send + 'static,
    E: Into<BoxError> + 'static,
{
    fn split(&self, request: Request<B>) -> (Request<B>, Option<Request<B>>) {
        let (parts, body) = request.into_parts();
        let kept = RequestBody::read_ready(body, self.limit);
        let copy = kept.copy().map(|body| {
            let mut copy = Request::new((self.body)(body));
            *copy.method_mut() = parts.method.clone();
            *copy.uri_mut() = parts.uri.clone();
            *copy.version_mut() = parts.version;
            *copy.headers_mut() = parts.headers.clone();
            *copy.extensions_mut() = parts.extensions.clone();
            copy
        });
        (Request::from_parts(parts, (self.body)(kept)), copy)
    }
}

type BoxedBody = Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>;

fn boxed<B, D, E>(body: B) -> BoxedBody
where
    B: Body<Data = D, Error = E> + Send + 'static,
    D: Buf + Send + 'static,
    E: Into<BoxError> + 'static,
{
    Box::pin(
        body.map_frame(|frame| frame.map_data(|mut d| d.copy_to_bytes(d.remaining())))
            .map_err(Into::into),
    )
}

/// A request body as [`AuthLayer::replay`] forwards it: what was read at once, then the rest
/// of the original body, if any. Hand it to the inner service's body constructor.
#[derive(Default)]
pub struct RequestBody {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<BoxedBody>,
    error: Option<BoxError>,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field(
                "buffered",
                &self.chunks.iter().map(Bytes::len).sum::<usize>(),
            )
            .field("streaming", &self.rest.is_some())
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    /// Any body, forwarded as it comes (nothing read ahead).
    pub fn new<B, D, E>(body: B) -> Self
    where
        B: Body<Data = D, Error = E> + Send + 'static,
        D: Buf + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            rest: Some(boxed(body)),
            ..Self::default()
        }
    }

    /// Reads the frames `body` has ready now (never waiting) until it ends or `limit` bytes
    /// were read.
    fn read_ready<B, D, E>(body: B, limit: usize) -> Self
    where
        B: Body<Data = D, Error = E> + Send + 'static,
        D: Buf + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let mut body = boxed(body);
        let mut kept = Self::default();
        let mut cx = Context::from_waker(Waker::noop());
        let mut size = 0;
        loop {
            if size > limit {
                kept.rest = Some(body);
                return kept;
            }
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(None) => return kept,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        size += data.len();
                        kept.chunks.push_back(data);
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            kept.trailers = Some(trailers);
                        }
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    kept.error = Some(e);
                    return kept;
                }
                // Not complete at once (a stream): send what was read, then the rest.
                Poll::Pending => {
                    kept.rest = Some(body);
                    return kept;
                }
            }
        }
    }

    /// A second body with the same content, when all of it was read.
    fn copy(&self) -> Option<Self> {
        (self.rest.is_none() && self.error.is_none()).then(|| Self {
            chunks: self.chunks.clone(),
            trailers: self.trailers.clone(),
            ..Self::default()
        })
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(chunk) = this.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if let Some(rest) = this.rest.as_mut() {
            match rest.as_mut().poll_frame(cx) {
                Poll::Ready(None) => this.rest = None,
                other => return other,
            }
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
            && self.error.is_none()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let buffered = self.chunks.iter().map(Bytes::len).sum::<usize>() as u64;
        match &self.rest {
            None => SizeHint::with_exact(buffered),
            Some(rest) => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(buffered + rest.lower());
                if let Some(upper) = rest.upper() {
                    hint.set_upper(buffered + upper);
                }
                hint
            }
        }
    }
}

/// The service [`AuthLayer`] makes. `inner` must be `Clone` (a tonic `Channel` is): a request
/// that waits for a token, or is sent again, goes through a clone.
#[derive(Clone, Debug)]
pub struct AuthService<S, R = NoReplay> {
    inner: S,
    tokens: Tokens,
    replay: R,
}

impl<S> AuthService<S> {
    /// `inner` sending `auth`'s header; same as `AuthLayer::new(auth).layer(inner)`.
    pub fn new(inner: S, auth: Arc<dyn Authenticator>) -> Self {
        AuthLayer::new(auth).layer(inner)
    }
}

impl<S, R> AuthService<S, R> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The call answered `UNAUTHENTICATED` because no token could be obtained for it.
fn refused<B>(grpc: bool, error: &Error) -> Response<ResponseBody<B>> {
    tracing::warn!(
        error = %error,
        "no token could be obtained for the call; answering it UNAUTHENTICATED"
    );
    response_body::unauthenticated(grpc, &error.to_string())
}

/// The inner service's answer, its body watched for a rejection at the end of the call.
fn forward<B>(response: Response<B>, headers: &Headers) -> Response<ResponseBody<B>> {
    let (head, body) = response.into_parts();
    let body = ResponseBody::watched(body, &head, headers.late_rejection());
    Response::from_parts(head, body)
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    R: ReplayPolicy<ReqBody>,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<ResponseBody<ResBody>>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The readied service sends the first attempt; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mut again = self.inner.clone();
        let mut headers = self.tokens.headers();
        let grpc = response_body::is_grpc_request(request.headers());
        let (mut request, copy) = self.replay.split(request);
        Box::pin(async move {
            if let Err(e) = headers.add_to(request.headers_mut()).await {
                return Ok(refused(grpc, &e));
            }
            let response = inner.call(request).await.map_err(Into::into)?;
            let verdict = response_body::head_verdict(&response);
            let Some(renewed) = headers.renew_after(response.status(), verdict).await else {
                return Ok(forward(response, &headers));
            };
            let Some(mut copy) = copy.filter(|_| renewed.is_ok()) else {
                return Ok(response.map(ResponseBody::forward));
            };
            drop(response);
            tracing::debug!("sending the rejected request again with the new token");
            if let Err(e) = headers.add_to(copy.headers_mut()).await {
                return Ok(refused(grpc, &e));
            }
            poll_fn(|cx| again.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = again.call(copy).await.map_err(Into::into)?;
            Ok(forward(response, &headers))
        })
    }
}
