//! [`GrpcDiscovery`]: Flyte discovery over the program's own gRPC channel (feature `tower`).
//!
//! Like flytekit, flytectl and the Flyte 2 SDK, it asks the server's `AuthMetadataService`
//! (`GetPublicClientConfig`, `GetOAuth2Metadata`) as gRPC unary calls on any tower service of
//! `http::Request`s (a `tonic` 0.12 or 0.14 `Channel`): also for servers that expose only
//! gRPC. Only the transport is here (the messages decoded without generated code); the rest
//! (flavour fallback, https-only rule, kept answer) is [`RemoteClientConfigStore`]'s.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use flyte_auth::{ClientConfigStore, Endpoint, GrpcDiscovery};
//!
//! let endpoint = Endpoint::parse("dns:///flyte.example.org")?;
//! // The program's channel (tonic 0.14 here; with tonic 0.12, `tonic::body::boxed`):
//! // let channel = tonic::transport::Channel::from_shared(endpoint.base_url())?.connect().await?;
//! // let discovery = GrpcDiscovery::new(channel.clone(), &endpoint, tonic::body::Body::new);
//! # let discovery = GrpcDiscovery::new(tower_service_stub(), &endpoint, |body| body);
//! let config = discovery.get_client_config().await?;
//! println!("token endpoint: {}", config.token_endpoint);
//!
//! // As a flow's discovery (client credentials here), and the token on the same channel:
//! // let ctx = flyte_auth::oauth::ClientContext::builder(endpoint)
//! //     .server_discovery(discovery.into_store())
//! //     .build()?;
//! // let flow = flyte_auth::clientcreds::ClientCredentialsFlow::builder(ctx, client_id, secret).build()?;
//! // let auth = std::sync::Arc::new(flyte_auth::CachingAuthenticator::builder(flow).build());
//! // let channel = flyte_auth::AuthLayer::new(auth).eager().replay(tonic::body::Body::new).layer(channel);
//! # Ok(()) }
//! # fn tower_service_stub() -> impl tower_service::Service<
//! #     http::Request<flyte_auth::tower::RequestBody>,
//! #     Response = http::Response<http_body_util::Full<bytes::Bytes>>,
//! #     Error = std::convert::Infallible,
//! #     Future = std::future::Ready<Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible>>,
//! # > + Clone + Send + Sync + 'static {
//! #     #[derive(Clone)] struct Stub;
//! #     impl tower_service::Service<http::Request<flyte_auth::tower::RequestBody>> for Stub {
//! #         type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
//! #         type Error = std::convert::Infallible;
//! #         type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
//! #         fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
//! #         fn call(&mut self, _: http::Request<flyte_auth::tower::RequestBody>) -> Self::Future { unimplemented!() }
//! #     }
//! #     Stub
//! # }
//! ```

use std::{
    fmt,
    future::poll_fn,
    marker::PhantomData,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::{Buf, Bytes};
use flyte_auth_core::{
    BoxFuture, ClientConfig, ClientConfigStore, DiscoveryFlavour, DiscoveryHints, Endpoint, Error,
    redact_url, text::printable,
};
use flyte_auth_oauth::{
    AuthorizationServerMetadata, Discovery, DiscoveryTransport, FetchError, PublicClientConfig,
    RemoteClientConfigStore,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::{BodyExt as _, Limited};
use tower_service::Service;

use crate::tower::{BoxError, RequestBody};

/// The gRPC unary method of a Flyte 1 server (flyteadmin) for the public client config.
pub const FLYTE1_PUBLIC_CLIENT_CONFIG_METHOD: &str =
    "/flyteidl.service.AuthMetadataService/GetPublicClientConfig";
/// The gRPC unary method of a Flyte 1 server (flyteadmin) for the OAuth 2 metadata.
pub const FLYTE1_OAUTH2_METADATA_METHOD: &str =
    "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata";
/// The gRPC unary method of a Flyte 2 backend for the public client config.
pub const FLYTE2_PUBLIC_CLIENT_CONFIG_METHOD: &str =
    "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig";
/// The gRPC unary method of a Flyte 2 backend for the OAuth 2 metadata.
pub const FLYTE2_OAUTH2_METADATA_METHOD: &str =
    "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata";

/// How long a discovery may take, both calls and the fallback to the other flavour included,
/// unless [`GrpcDiscovery::timeout`] says otherwise.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read (the messages are a few hundred bytes).
const ANSWER_LIMIT: usize = 1024 * 1024;

/// A [`ClientConfigStore`] asking the Flyte server's `AuthMetadataService` over a gRPC
/// channel; see the [module documentation](self).
///
/// Asks Flyte 2's service first, then Flyte 1's on `UNIMPLEMENTED` (unless another flavour is
/// [`prefer`](Self::prefer)red or recalled); the answer is kept, a failure is not. The calls
/// carry no token. An HTTP error status (a proxy's 401 or 403) is reported as it is, not
/// taken for a missing service.
pub struct GrpcDiscovery<S, B> {
    send: SendFn,
    base_url: String,
    key: String,
    timeout: Duration,
    preferred: Option<DiscoveryFlavour>,
    hints: Option<Arc<dyn DiscoveryHints>>,
    store: OnceLock<RemoteClientConfigStore>,
    discovered: OnceLock<ClientConfig>,
    channel: PhantomData<fn(S, B)>,
}

/// Sends a request on the channel: the answer's head, and its body and trailers unless the
/// head says all (an HTTP error, a trailers-only gRPC status).
type SendFn =
    Arc<dyn Fn(Request<RequestBody>) -> BoxFuture<'static, Result<Answer, BoxError>> + Sync + Send>;

struct Answer {
    head: http::response::Parts,
    body: Bytes,
    trailers: HeaderMap,
}

impl<S, B> fmt::Debug for GrpcDiscovery<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcDiscovery")
            .field("base_url", &redact_url(&self.base_url))
            .field("timeout", &self.timeout)
            .field("preferred", &self.preferred)
            .field("hints", &self.hints)
            .field("discovered", &self.discovered.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> GrpcDiscovery<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    /// Discovery for `endpoint` over `channel` (a clone of the program's channel, without the
    /// auth layer: the calls need no token). `body` turns the request body into the
    /// channel's: `tonic::body::Body::new` for tonic 0.14, `tonic::body::boxed` for tonic 0.12.
    pub fn new(channel: S, endpoint: &Endpoint, body: fn(RequestBody) -> B) -> Self {
        let send: SendFn = Arc::new(move |request: Request<RequestBody>| {
            let mut channel = channel.clone();
            let request = request.map(body);
            Box::pin(async move {
                poll_fn(|cx| channel.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let (head, body) = channel
                    .call(request)
                    .await
                    .map_err(Into::into)?
                    .into_parts();
                let (body, trailers) =
                    if !head.status.is_success() || head.headers.contains_key("grpc-status") {
                        (Bytes::new(), HeaderMap::new())
                    } else {
                        let collected = Limited::new(body, ANSWER_LIMIT).collect().await?;
                        let trailers = collected.trailers().cloned().unwrap_or_default();
                        (collected.to_bytes(), trailers)
                    };
                Ok(Answer {
                    head,
                    body,
                    trailers,
                })
            })
        });
        Self {
            send,
            base_url: endpoint.base_url(),
            key: endpoint.key().to_owned(),
            timeout: DEFAULT_DISCOVERY_TIMEOUT,
            preferred: None,
            hints: None,
            store: OnceLock::new(),
            discovered: OnceLock::new(),
            channel: PhantomData,
        }
    }
}

impl<S, B> GrpcDiscovery<S, B> {
    /// Bounds the whole discovery by `timeout` (also sent as `grpc-timeout`) instead of
    /// [`DEFAULT_DISCOVERY_TIMEOUT`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Asks `flavour`'s service first ([`DiscoveryFlavour::FlyteAdmin`]: Flyte 1's
    /// `flyteidl.service`; [`DiscoveryFlavour::Flyte2`]: `flyteidl2.auth`). Wins over a
    /// flavour recalled from [`remember_in`](Self::remember_in).
    #[must_use]
    pub fn prefer(mut self, flavour: DiscoveryFlavour) -> Self {
        self.preferred = Some(flavour);
        self
    }

    /// Keeps the flavour that answers and its answer in `hints` (under the endpoint's key, as
    /// the HTTP discovery does), and asks the recalled flavour first next time.
    #[must_use]
    pub fn remember_in(mut self, hints: Arc<dyn DiscoveryHints>) -> Self {
        self.hints = Some(hints);
        self
    }

    /// The client configuration, once a discovery has succeeded.
    pub fn cached(&self) -> Option<&ClientConfig> {
        self.discovered.get()
    }

    /// This discovery as the HTTP discovery's store over the gRPC transport, for
    /// `ClientContextBuilder::server_discovery`.
    pub fn into_store(mut self) -> RemoteClientConfigStore {
        self.store.take().unwrap_or_else(|| self.build_store())
    }

    fn build_store(&self) -> RemoteClientConfigStore {
        let transport = GrpcTransport {
            send: Arc::clone(&self.send),
            base_url: self.base_url.clone(),
            timeout: self.timeout,
        };
        let mut store =
            RemoteClientConfigStore::with_transport(Arc::new(transport)).timeout(self.timeout);
        if let Some(flavour) = self.preferred {
            store = store.prefer(flavour);
        }
        if let Some(hints) = &self.hints {
            store = store.remember_in(Arc::clone(hints), self.key.clone());
        }
        store
    }
}

impl<S, B> ClientConfigStore for GrpcDiscovery<S, B> {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        Box::pin(async move {
            let store = self.store.get_or_init(|| self.build_store());
            let config = store.get_client_config().await?;
            Ok(self.discovered.get_or_init(|| config).clone())
        })
    }
}

/// The two unary calls of one flavour on the channel, and their messages decoded.
struct GrpcTransport {
    send: SendFn,
    base_url: String,
    /// Sent as `grpc-timeout`.
    timeout: Duration,
}

impl fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("base_url", &redact_url(&self.base_url))
            .finish_non_exhaustive()
    }
}

impl DiscoveryTransport for GrpcTransport {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn fetch(&self, flavour: DiscoveryFlavour) -> BoxFuture<'_, Result<Discovery, FetchError>> {
        let (flavour, client_method, metadata_method) = match flavour {
            DiscoveryFlavour::FlyteAdmin => (
                flavour,
                FLYTE1_PUBLIC_CLIENT_CONFIG_METHOD,
                FLYTE1_OAUTH2_METADATA_METHOD,
            ),
            _ => (
                DiscoveryFlavour::Flyte2,
                FLYTE2_PUBLIC_CLIENT_CONFIG_METHOD,
                FLYTE2_OAUTH2_METADATA_METHOD,
            ),
        };
        Box::pin(async move {
            let client = self.call(client_method).await?;
            let metadata = self.call(metadata_method).await?;
            let client = decode_client(&client).map_err(|e| self.bad(client_method, e))?;
            let metadata = decode_metadata(&metadata).map_err(|e| self.bad(metadata_method, e))?;
            Ok(Discovery::new(&self.base_url, flavour, metadata, client))
        })
    }
}

impl GrpcTransport {
    /// One unary call with an empty request: the answer's message.
    async fn call(&self, method: &'static str) -> Result<Bytes, FetchError> {
        let uri: Uri = format!("{}{method}", self.base_url)
            .parse()
            .map_err(|_| Error::config(format!("`{}` makes no URI", self.base_url)))?;
        // An empty message: not compressed, length 0.
        let message = http_body_util::Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]));
        let mut request = Request::new(RequestBody::new(message));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.version_mut() = http::Version::HTTP_2;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        let millis = self.timeout.as_millis().clamp(1, 99_999_999);
        if let Ok(timeout) = HeaderValue::from_str(&format!("{millis}m")) {
            headers.insert("grpc-timeout", timeout);
        }
        let Answer {
            head,
            body,
            trailers,
        } = (self.send)(request).await.map_err(|e| {
            let what = format!("failed: {}", printable(&e.to_string()));
            self.failed(method, None, what)
        })?;
        let status = head.status.as_u16();
        if !head.status.is_success() {
            let why = format!("HTTP status {status}");
            return Err(match status {
                // No such path here (the other flavour may be served).
                404 | 405 | 415 | 501 => self.not_served(method, &why),
                // Anything else, a proxy's 401 or 403 included, is final.
                _ => {
                    let what = format!("was answered {why}, not by the gRPC service");
                    self.failed(method, Some(status), what).into()
                }
            });
        }
        // A trailers-only answer has the status in the headers, and no message.
        let trailers_only = grpc_status(&head.headers).is_some();
        let trailers = if trailers_only {
            &head.headers
        } else {
            &trailers
        };
        match grpc_status(trailers) {
            Some(0) if trailers_only => Ok(Bytes::new()),
            Some(0) => unframe(body).map_err(|e| self.bad(method, e)),
            Some(code) => Err(self.status(method, code, trailers)),
            None => Err(self.not_served(method, "an answer without a gRPC status")),
        }
    }

    /// A gRPC error status: `UNIMPLEMENTED` (12) means not served here.
    fn status(&self, method: &'static str, code: u32, headers: &HeaderMap) -> FetchError {
        let message = headers
            .get("grpc-message")
            .map(|m| percent_decode(m.as_bytes()))
            .unwrap_or_default();
        let message = printable(&message);
        match code {
            12 => self.not_served(method, &format!("UNIMPLEMENTED: {message}")),
            _ => FetchError::Failed(self.failed(
                method,
                None,
                format!("failed with status {code}: {message}"),
            )),
        }
    }

    fn failed(&self, method: &str, status: Option<u16>, what: String) -> Error {
        Error::InvalidResponse {
            status,
            message: format!(
                "the gRPC call {method} to {} {what}",
                redact_url(&self.base_url)
            ),
        }
    }

    /// What is reported when neither flavour is served.
    fn not_served(&self, method: &str, why: &str) -> FetchError {
        let error = Error::InvalidResponse {
            status: None,
            message: format!(
                "{} serves neither Flyte 2's nor Flyte 1's AuthMetadataService over gRPC \
                 ({method}: {why}); is it the Flyte API endpoint, with authentication enabled?",
                redact_url(&self.base_url),
            ),
        };
        FetchError::NotServed { error, html: false }
    }

    fn bad(&self, method: &str, why: &str) -> FetchError {
        FetchError::Failed(Error::InvalidResponse {
            status: None,
            message: format!(
                "the answer to {method} from {} is not the expected message: {why}",
                redact_url(&self.base_url)
            ),
        })
    }
}

/// The `grpc-status` in `headers`, if any (an unreadable one is `UNKNOWN`).
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    let status = headers.get("grpc-status")?;
    let code = std::str::from_utf8(status.as_bytes()).ok();
    Some(code.and_then(|s| s.trim().parse().ok()).unwrap_or(2))
}

/// gRPC's percent-decoding of `grpc-message`.
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The message of a unary answer: one uncompressed length-prefixed frame.
fn unframe(mut answer: Bytes) -> Result<Bytes, &'static str> {
    if answer.len() < 5 {
        return Err("shorter than a gRPC frame");
    }
    let compressed = answer.get_u8();
    let length = answer.get_u32() as usize;
    if compressed != 0 {
        return Err("compressed, though no compression was offered");
    }
    if answer.len() != length {
        return Err("the frame's length is not the answer's");
    }
    Ok(answer)
}

/// `flyteidl.service.PublicClientAuthConfigResponse` (Flyte 1) or
/// `flyteidl2.auth.GetPublicClientConfigResponse` (Flyte 2): the same numbers.
fn decode_client(message: &[u8]) -> Result<PublicClientConfig, &'static str> {
    let mut out = PublicClientConfig::default();
    for field in Fields(message) {
        // 7: Flyte 2's dataplane_domain, not used.
        let (number @ 1..=6, Some(bytes)) = field? else {
            continue;
        };
        let value = text(bytes)?;
        match number {
            1 => out.client_id = value,
            2 => out.redirect_uri = value,
            3 => out.scopes.extend(value),
            4 => out.authorization_metadata_key = value,
            5 => out.service_http_endpoint = value,
            _ => out.audience = value,
        }
    }
    Ok(out)
}

/// `flyteidl.service.OAuth2MetadataResponse` (Flyte 1) or
/// `flyteidl2.auth.GetOAuth2MetadataResponse` (Flyte 2): the same numbers.
fn decode_metadata(message: &[u8]) -> Result<AuthorizationServerMetadata, &'static str> {
    let mut out = AuthorizationServerMetadata::default();
    for field in Fields(message) {
        let (number @ 1..=10, Some(bytes)) = field? else {
            continue;
        };
        let value = text(bytes)?;
        match number {
            1 => out.issuer = value,
            2 => out.authorization_endpoint = value,
            3 => out.token_endpoint = value,
            4 => out.response_types_supported.extend(value),
            5 => out.scopes_supported.extend(value),
            6 => out.token_endpoint_auth_methods_supported.extend(value),
            7 => out.jwks_uri = value,
            8 => out.code_challenge_methods_supported.extend(value),
            9 => out.grant_types_supported.extend(value),
            _ => out.device_authorization_endpoint = value,
        }
    }
    Ok(out)
}

/// A protobuf string: trimmed, `None` when empty.
fn text(bytes: &[u8]) -> Result<Option<String>, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "a string field is not UTF-8")?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// The fields of a protobuf message, in order: `(number, bytes)`, the bytes of a
/// length-delimited field (strings, messages), `None` for a number.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Option<&'a [u8]>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let key = varint(&mut self.0)?;
            let value = match key & 7 {
                0 => varint(&mut self.0).map(|_| None)?,
                1 => skip(&mut self.0, 8).map(|_| None)?,
                2 => {
                    let length = usize::try_from(varint(&mut self.0)?)
                        .map_err(|_| "a field is longer than memory")?;
                    Some(skip(&mut self.0, length)?)
                }
                5 => skip(&mut self.0, 4).map(|_| None)?,
                _ => return Err("a field of an unknown wire type"),
            };
            Ok((key >> 3, value))
        })();
        if field.is_err() {
            // Nothing after a broken field can be read.
            self.0 = &[];
        }
        Some(field)
    }
}

/// Reads a varint (at most ten bytes).
fn varint(input: &mut &[u8]) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for shift in 0..10 {
        let (&byte, rest) = input
            .split_first()
            .ok_or("the message ends inside a number")?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a number longer than ten bytes")
}

/// Takes `n` bytes.
fn skip<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if input.len() < n {
        return Err("the message ends inside a field");
    }
    let (taken, rest) = input.split_at(n);
    *input = rest;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_and_unknown_ones_skipped() {
        // client_id = "cli", a varint field 9 = 300, scopes "a" and "b", a fixed32 field 8.
        let message = [
            0x0a, 3, b'c', b'l', b'i', 0x48, 0xac, 0x02, 0x1a, 1, b'a', 0x1a, 1, b'b', 0x45, 0, 0,
            0, 0,
        ];
        let client = decode_client(&message).unwrap_or_default();
        assert_eq!(client.client_id.as_deref(), Some("cli"));
        assert_eq!(client.scopes, ["a", "b"]);
    }

    #[test]
    fn a_broken_message_is_an_error_not_a_panic() {
        for message in [
            &[0x0a, 5, b'a'][..],
            &[0x0a],
            &[0xff; 11],
            &[0x0b],
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ] {
            assert!(decode_client(message).is_err(), "{message:?}");
            assert!(decode_metadata(message).is_err(), "{message:?}");
        }
    }

    #[test]
    fn grpc_message_is_percent_decoded() {
        assert_eq!(percent_decode(b"not%20here%zz%"), "not here%zz%");
    }
}
