//! [`GrpcDiscovery`]: Flyte discovery over the program's own gRPC channel (feature `tower`).
//!
//! flytekit, flytectl and the Flyte 2 SDK's controller ask the server's
//! `AuthMetadataService` (`GetPublicClientConfig`, `GetOAuth2Metadata`) as gRPC unary calls on
//! the channel they already have. [`GrpcDiscovery`] does the same on any tower service that
//! takes `http::Request`s (a `tonic` 0.12 or 0.14 `Channel`), and is a [`ClientConfigStore`]:
//! every flow takes it where it takes the HTTP discovery store
//! (`ClientContext::builder(..).discovery(..)`). It also serves Flyte 1 endpoints that
//! expose only gRPC (no `/.well-known` document, no `/config/v1/flyte_client`).
//!
//! The two messages are small, so they are decoded here (protobuf: strings and repeated
//! strings; unknown fields are skipped), without generated code.
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
//! //     .discovery(std::sync::Arc::new(discovery))
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
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::{Buf, Bytes};
use flyte_auth_core::{
    BoxFuture, ClientConfig, ClientConfigStore, DiscoveryFlavour, DiscoveryHints, Endpoint, Error,
    redact_url, text::printable,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::BodyExt as _;
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

/// gRPC's `UNIMPLEMENTED`: the server has no such service (the other flavour may).
const GRPC_UNIMPLEMENTED: u32 = 12;

/// A [`ClientConfigStore`] that asks the Flyte server's `AuthMetadataService` over a gRPC
/// channel; see the [module documentation](self).
///
/// The first [`get_client_config`](ClientConfigStore::get_client_config) asks
/// `GetPublicClientConfig` and `GetOAuth2Metadata`, Flyte 2's
/// (`flyteidl2.auth.AuthMetadataService`) first, then Flyte 1's
/// (`flyteidl.service.AuthMetadataService`) when the server answers `UNIMPLEMENTED` (or
/// the flavour [`prefer`](Self::prefer)red or recalled from [`remember_in`](Self::remember_in)
/// first); the answer is kept and reused, a failure is not. The whole discovery is bounded by
/// [`timeout`](Self::timeout) (sent as `grpc-timeout` too). The calls carry no token.
///
/// The endpoints a Flyte server on `https://` announces must be `https://` too, as with the
/// HTTP discovery; relative ones are resolved against the server's URL.
pub struct GrpcDiscovery<S, B> {
    channel: S,
    body: fn(RequestBody) -> B,
    base_url: String,
    key: String,
    timeout: Duration,
    preferred: Option<DiscoveryFlavour>,
    hints: Option<Arc<dyn DiscoveryHints>>,
    discovered: OnceLock<ClientConfig>,
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

impl<S, B> GrpcDiscovery<S, B> {
    /// Discovery for `endpoint` over `channel` (a clone of the program's channel, without the
    /// auth layer: the calls need no token). `body` turns the request body into the
    /// channel's: `tonic::body::Body::new` for tonic 0.14, `tonic::body::boxed` for tonic 0.12.
    pub fn new(channel: S, endpoint: &Endpoint, body: fn(RequestBody) -> B) -> Self {
        Self {
            channel,
            body,
            base_url: endpoint.base_url(),
            key: endpoint.key().to_owned(),
            timeout: DEFAULT_DISCOVERY_TIMEOUT,
            preferred: None,
            hints: None,
            discovered: OnceLock::new(),
        }
    }

    /// Bounds the whole discovery (both calls, and the other flavour's) by `timeout` instead
    /// of [`DEFAULT_DISCOVERY_TIMEOUT`].
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

    /// Keeps the flavour that answers in `hints` (under the endpoint's key, as the HTTP
    /// discovery does), and asks the recalled one first next time.
    #[must_use]
    pub fn remember_in(mut self, hints: Arc<dyn DiscoveryHints>) -> Self {
        self.hints = Some(hints);
        self
    }

    /// The client configuration, once a discovery has succeeded.
    pub fn cached(&self) -> Option<&ClientConfig> {
        self.discovered.get()
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
    /// Asks the server, within the time limit.
    async fn discover(&self) -> Result<ClientConfig, Error> {
        let recalled = self.hints.as_ref().and_then(|h| h.recall(&self.key));
        let first = self
            .preferred
            .or(recalled)
            .unwrap_or(DiscoveryFlavour::Flyte2);
        let attempt = async {
            match self.discover_flavour(first).await {
                Err(Fail::NotServed(not_served)) => {
                    tracing::debug!(
                        endpoint = %self.key,
                        flavour = %first,
                        "the AuthMetadataService of this flavour is not served; asking the other"
                    );
                    self.discover_flavour(first.other())
                        .await
                        .map_err(|fail| match fail {
                            Fail::NotServed(_) => not_served.into_error(&self.base_url),
                            Fail::Failed(e) => e,
                        })
                }
                Err(Fail::Failed(e)) => Err(e),
                Ok(done) => Ok(done),
            }
        };
        let (flavour, config) = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(Error::InvalidResponse {
                    status: None,
                    message: format!(
                        "discovery over gRPC at {} took longer than {:?}",
                        redact_url(&self.base_url),
                        self.timeout
                    ),
                });
            }
        };
        tracing::debug!(endpoint = %self.key, %flavour, "discovered the Flyte server's OAuth configuration over gRPC");
        if let Some(hints) = &self.hints
            && recalled != Some(flavour)
            && let Err(e) = hints.remember(&self.key, flavour)
        {
            tracing::debug!(endpoint = %self.key, error = %e, "could not remember the discovery flavour");
        }
        Ok(config)
    }

    async fn discover_flavour(
        &self,
        flavour: DiscoveryFlavour,
    ) -> Result<(DiscoveryFlavour, ClientConfig), Fail> {
        let (client_method, metadata_method) = match flavour {
            DiscoveryFlavour::FlyteAdmin => (
                FLYTE1_PUBLIC_CLIENT_CONFIG_METHOD,
                FLYTE1_OAUTH2_METADATA_METHOD,
            ),
            _ => (
                FLYTE2_PUBLIC_CLIENT_CONFIG_METHOD,
                FLYTE2_OAUTH2_METADATA_METHOD,
            ),
        };
        let client = self.call(client_method).await?;
        let metadata = self.call(metadata_method).await?;
        let client = PublicClientConfig::decode(&client).map_err(|e| self.bad(client_method, e))?;
        let metadata =
            OAuth2Metadata::decode(&metadata).map_err(|e| self.bad(metadata_method, e))?;
        let config = self.client_config(&client, &metadata, metadata_method)?;
        Ok((flavour, config))
    }

    /// One unary call with an empty request: the answer's message.
    async fn call(&self, method: &'static str) -> Result<Bytes, Fail> {
        let uri: Uri = format!("{}{method}", self.base_url)
            .parse()
            .map_err(|_| Error::config(format!("`{}` makes no URI", self.base_url)))?;
        // An empty message: not compressed, length 0.
        let message = http_body_util::Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]));
        let mut request = Request::new((self.body)(RequestBody::new(message)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.version_mut() = http::Version::HTTP_2;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        if let Ok(timeout) = HeaderValue::from_str(&format!(
            "{}m",
            self.timeout.as_millis().clamp(1, 99_999_999)
        )) {
            headers.insert("grpc-timeout", timeout);
        }
        let transport = |e: BoxError| {
            Fail::Failed(Error::InvalidResponse {
                status: None,
                message: format!(
                    "the gRPC call {method} to {} failed: {}",
                    redact_url(&self.base_url),
                    printable(&e.to_string())
                ),
            })
        };
        let mut channel = self.channel.clone();
        poll_fn(|cx| channel.poll_ready(cx))
            .await
            .map_err(|e| transport(e.into()))?;
        let response = channel
            .call(request)
            .await
            .map_err(|e| transport(e.into()))?;
        let (head, body) = response.into_parts();
        if !head.status.is_success() {
            // Not a gRPC server at this path (a proxy, a web console): the other flavour may be.
            return Err(Fail::NotServed(NotServed {
                method,
                why: format!("HTTP status {}", head.status.as_u16()),
            }));
        }
        // A trailers-only answer: the status in the headers, no message.
        match grpc_status(&head.headers) {
            Some(0) => return Ok(Bytes::new()),
            Some(status) => return Err(self.status(method, status, &head.headers)),
            None => {}
        }
        let collected = http_body_util::Limited::new(body, ANSWER_LIMIT)
            .collect()
            .await
            .map_err(transport)?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let answer = collected.to_bytes();
        match grpc_status(&trailers) {
            Some(0) => {}
            Some(status) => return Err(self.status(method, status, &trailers)),
            None => {
                return Err(Fail::NotServed(NotServed {
                    method,
                    why: "an answer without a gRPC status".into(),
                }));
            }
        }
        unframe(answer).map_err(|e| self.bad(method, e))
    }

    /// A gRPC error status: `UNIMPLEMENTED` means not served here.
    fn status(&self, method: &'static str, code: u32, headers: &HeaderMap) -> Fail {
        let message = headers
            .get("grpc-message")
            .map(|m| percent_decode(m.as_bytes()))
            .unwrap_or_default();
        if code == GRPC_UNIMPLEMENTED {
            return Fail::NotServed(NotServed {
                method,
                why: format!("UNIMPLEMENTED: {}", printable(&message)),
            });
        }
        Fail::Failed(Error::InvalidResponse {
            status: None,
            message: format!(
                "the gRPC call {method} to {} failed with status {code}: {}",
                redact_url(&self.base_url),
                printable(&message)
            ),
        })
    }

    fn bad(&self, method: &str, why: &str) -> Fail {
        Fail::Failed(Error::InvalidResponse {
            status: None,
            message: format!(
                "the answer to {method} from {} is not the expected message: {why}",
                redact_url(&self.base_url)
            ),
        })
    }

    /// Both messages as flytekit's [`ClientConfig`].
    fn client_config(
        &self,
        client: &PublicClientConfig,
        metadata: &OAuth2Metadata,
        metadata_method: &str,
    ) -> Result<ClientConfig, Error> {
        let url = |value: &Option<String>| {
            value.as_ref().map(|v| match v.starts_with('/') {
                true => format!("{}{v}", self.base_url),
                false => v.clone(),
            })
        };
        let token_endpoint =
            url(&metadata.token_endpoint).ok_or_else(|| Error::InvalidResponse {
                status: None,
                message: format!(
                    "the answer to {metadata_method} from {} names no token_endpoint",
                    redact_url(&self.base_url)
                ),
            })?;
        let authorization_endpoint = url(&metadata.authorization_endpoint);
        let device_endpoint = url(&metadata.device_authorization_endpoint);
        for (field, value) in [
            ("token_endpoint", Some(&token_endpoint)),
            ("authorization_endpoint", authorization_endpoint.as_ref()),
            ("device_authorization_endpoint", device_endpoint.as_ref()),
        ] {
            if let Some(value) = value {
                flyte_auth_core::refuse_cleartext(&self.base_url, field, value)?;
            }
        }
        let mut config =
            ClientConfig::new(token_endpoint, client.client_id.clone().unwrap_or_default())
                .with_authorization_endpoint(authorization_endpoint.unwrap_or_default())
                .with_redirect_uri(client.redirect_uri.clone().unwrap_or_default())
                .with_scopes(client.scopes.clone())
                .with_header_key(
                    client
                        .authorization_metadata_key
                        .clone()
                        .unwrap_or_default(),
                )
                .with_audience(client.audience.clone().unwrap_or_default());
        if let Some(device) = device_endpoint {
            config = config.with_device_authorization_endpoint(device);
        }
        Ok(config)
    }
}

impl<S, B, ResBody> ClientConfigStore for GrpcDiscovery<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        Box::pin(async move {
            if let Some(config) = self.discovered.get() {
                return Ok(config.clone());
            }
            let config = self.discover().await?;
            Ok(self.discovered.get_or_init(|| config).clone())
        })
    }
}

/// Why one discovery call did not give its message.
enum Fail {
    /// The service is not served here (`UNIMPLEMENTED`, not gRPC): the other flavour may be.
    NotServed(NotServed),
    /// Anything else: final.
    Failed(Error),
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail::Failed(error)
    }
}

struct NotServed {
    method: &'static str,
    why: String,
}

impl NotServed {
    fn into_error(self, base_url: &str) -> Error {
        Error::InvalidResponse {
            status: None,
            message: format!(
                "{} serves neither Flyte 2's nor Flyte 1's AuthMetadataService over gRPC \
                 ({}: {}); is it the Flyte API endpoint, with authentication enabled?",
                redact_url(base_url),
                self.method,
                self.why
            ),
        }
    }
}

/// The `grpc-status` in `headers`, if any (an unreadable one is `UNKNOWN`).
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    let status = headers.get("grpc-status")?;
    Some(
        std::str::from_utf8(status.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(2),
    )
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

/// The fields of `flyteidl.service.PublicClientAuthConfigResponse` (Flyte 1) and
/// `flyteidl2.auth.GetPublicClientConfigResponse` (Flyte 2): the same numbers.
#[derive(Debug, Default)]
struct PublicClientConfig {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    authorization_metadata_key: Option<String>,
    audience: Option<String>,
}

impl PublicClientConfig {
    fn decode(message: &[u8]) -> Result<Self, &'static str> {
        let mut out = Self::default();
        for field in Fields(message) {
            match field? {
                (1, Value::Bytes(v)) => out.client_id = text(v)?,
                (2, Value::Bytes(v)) => out.redirect_uri = text(v)?,
                (3, Value::Bytes(v)) => out.scopes.extend(text(v)?),
                (4, Value::Bytes(v)) => out.authorization_metadata_key = text(v)?,
                // 5: service_http_endpoint, 7: dataplane_domain (Flyte 2): not used.
                (6, Value::Bytes(v)) => out.audience = text(v)?,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The fields of `flyteidl.service.OAuth2MetadataResponse` (Flyte 1) and
/// `flyteidl2.auth.GetOAuth2MetadataResponse` (Flyte 2) that the flows use.
#[derive(Debug, Default)]
struct OAuth2Metadata {
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
}

impl OAuth2Metadata {
    fn decode(message: &[u8]) -> Result<Self, &'static str> {
        let mut out = Self::default();
        for field in Fields(message) {
            match field? {
                // 1 issuer, 4-6 and 8-9 lists, 7 jwks_uri: not used by the flows.
                (2, Value::Bytes(v)) => out.authorization_endpoint = text(v)?,
                (3, Value::Bytes(v)) => out.token_endpoint = text(v)?,
                (10, Value::Bytes(v)) => out.device_authorization_endpoint = text(v)?,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// A protobuf string: trimmed, `None` when empty.
fn text(bytes: &[u8]) -> Result<Option<String>, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "a string field is not UTF-8")?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// One field's value on the wire.
enum Value<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message, in order: `(number, value)`.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let key = varint(&mut self.0)?;
            let value = match key & 7 {
                0 => varint(&mut self.0).map(|_| Value::Varint)?,
                1 => skip(&mut self.0, 8).map(|_| Value::Fixed)?,
                2 => {
                    let length = usize::try_from(varint(&mut self.0)?)
                        .map_err(|_| "a field is longer than memory")?;
                    Value::Bytes(skip(&mut self.0, length)?)
                }
                5 => skip(&mut self.0, 4).map(|_| Value::Fixed)?,
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
        let client = PublicClientConfig::decode(&message).unwrap_or_default();
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
            assert!(PublicClientConfig::decode(message).is_err(), "{message:?}");
            assert!(OAuth2Metadata::decode(message).is_err(), "{message:?}");
        }
    }

    #[test]
    fn grpc_message_is_percent_decoded() {
        assert_eq!(percent_decode(b"not%20here%zz%"), "not here%zz%");
    }
}
