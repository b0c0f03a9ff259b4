#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(feature = "tower"),
    allow(missing_docs, reason = "empty without the feature")
)]
#![cfg(feature = "tower")]
//! `GrpcDiscovery` on a real `tonic` 0.14 channel against a tonic server that serves Flyte 2's
//! and/or Flyte 1's `AuthMetadataService` as raw gRPC (hand-encoded protobuf), as flyteadmin
//! and a Flyte 2 backend answer them.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use flyte_auth::{
    BoxFuture, ClientConfigStore, DiscoveryFlavour, DiscoveryHints, Endpoint, Error, GrpcDiscovery,
    StoreError,
};
use http::{Request, Response};
use tonic::{
    body::Body,
    server::NamedService,
    service::Routes,
    transport::{Channel, Server, server::TcpIncoming},
};

/// Protobuf: a length-delimited field (a string).
fn string(field: u64, value: &str) -> Vec<u8> {
    let mut out = varint(field << 3 | 2);
    out.extend(varint(value.len() as u64));
    out.extend_from_slice(value.as_bytes());
    out
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `GetPublicClientConfigResponse` / `PublicClientAuthConfigResponse`.
fn client_config(client_id: &str, header: &str) -> Vec<u8> {
    [
        string(1, client_id),
        string(2, "http://localhost:53593/callback"),
        string(3, "all"),
        string(3, "offline"),
        string(4, header),
        string(5, "https://flyte.test/console"),
        string(6, "https://flyte.test"),
        // Flyte 2's `dataplane_domain`, and a varint field from a newer server: skipped.
        string(7, "dp.flyte.test"),
        [varint(20 << 3), varint(1)].concat(),
    ]
    .concat()
}

/// `GetOAuth2MetadataResponse` / `OAuth2MetadataResponse`.
fn metadata(token_endpoint: &str) -> Vec<u8> {
    [
        string(1, "https://idp.test"),
        string(2, "https://idp.test/authorize"),
        string(3, token_endpoint),
        string(4, "code"),
        string(5, "all"),
        string(7, "https://idp.test/keys"),
        string(8, "S256"),
        string(9, "client_credentials"),
        string(10, "https://idp.test/device"),
    ]
    .concat()
}

/// What a server answers per method (the part after the service name), and what it was
/// asked.
#[derive(Default)]
struct Answers {
    messages: HashMap<&'static str, Vec<u8>>,
    /// A gRPC error status and message instead of a message.
    error: Option<(u16, &'static str)>,
    /// Answer every call trailers-only (`grpc-status: 0` in the headers, no message).
    empty: bool,
    asked: Mutex<Vec<String>>,
}

/// A raw gRPC service answering with hand-encoded messages; `FLYTE2` picks the service name.
#[derive(Clone)]
struct Raw<const FLYTE2: bool>(Arc<Answers>);

impl NamedService for Raw<true> {
    const NAME: &'static str = "flyteidl2.auth.AuthMetadataService";
}

impl NamedService for Raw<false> {
    const NAME: &'static str = "flyteidl.service.AuthMetadataService";
}

impl<const FLYTE2: bool> tower::Service<Request<Body>> for Raw<FLYTE2> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let answers = self.0.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            assert_eq!(request.headers()["content-type"], "application/grpc");
            assert!(request.headers().get("authorization").is_none());
            answers.asked.lock().unwrap().push(path.clone());
            let method = path.rsplit('/').next().unwrap_or_default();
            if answers.empty {
                let mut response = Response::new(Body::empty());
                let headers = response.headers_mut();
                headers.insert("content-type", "application/grpc".parse().unwrap());
                headers.insert("grpc-status", 0.into());
                return Ok(response);
            }
            let mut trailers = http::HeaderMap::new();
            let mut frames = Vec::new();
            match (answers.error, answers.messages.get(method)) {
                (Some((code, message)), _) => {
                    trailers.insert("grpc-status", code.into());
                    trailers.insert("grpc-message", message.parse().unwrap());
                }
                (None, Some(message)) => {
                    let mut frame = vec![0];
                    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
                    frame.extend_from_slice(message);
                    frames.push(Ok::<_, Infallible>(http_body::Frame::data(
                        bytes::Bytes::from(frame),
                    )));
                    trailers.insert("grpc-status", 0.into());
                }
                (None, None) => {
                    trailers.insert("grpc-status", 12.into());
                }
            }
            frames.push(Ok(http_body::Frame::trailers(trailers)));
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            let mut response = Response::new(Body::new(body));
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/grpc"),
            );
            Ok(response)
        })
    }
}

fn answers(client_id: &str, token_endpoint: &str) -> Arc<Answers> {
    Arc::new(Answers {
        messages: HashMap::from([
            (
                "GetPublicClientConfig",
                client_config(client_id, "flyte-authorization"),
            ),
            ("GetOAuth2Metadata", metadata(token_endpoint)),
        ]),
        ..Answers::default()
    })
}

/// Serves `flyte2` as Flyte 2's service and `flyte1` as Flyte 1's, on a loopback port.
async fn serve(flyte2: Option<Arc<Answers>>, flyte1: Option<Arc<Answers>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut routes = Routes::builder();
    if let Some(answers) = flyte2 {
        routes.add_service(Raw::<true>(answers));
    }
    if let Some(answers) = flyte1 {
        routes.add_service(Raw::<false>(answers));
    }
    let routes = routes.routes();
    tokio::spawn(async move {
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint::parse(&format!("http://{addr}")).unwrap()
}

/// Hints kept in memory.
#[derive(Debug, Default)]
struct Hints(Mutex<HashMap<String, DiscoveryFlavour>>);

impl DiscoveryHints for Hints {
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour> {
        self.0.lock().unwrap().get(endpoint).copied()
    }
    fn remember(&self, endpoint: &str, flavour: DiscoveryFlavour) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(endpoint.to_owned(), flavour);
        Ok(())
    }
}

#[tokio::test]
async fn a_flyte_2_backend_is_asked_its_two_calls_and_the_answer_is_kept() {
    let flyte2 = answers("flyte2-cli", "/oauth2/token");
    let addr = serve(Some(flyte2.clone()), None).await;
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new);
    let config = discovery.get_client_config().await.unwrap();
    assert_eq!(config.client_id, "flyte2-cli");
    assert_eq!(
        config.token_endpoint,
        format!("http://{addr}/oauth2/token"),
        "a relative endpoint is the server's"
    );
    assert_eq!(config.authorization_endpoint, "https://idp.test/authorize");
    assert_eq!(
        config.device_authorization_endpoint.as_deref(),
        Some("https://idp.test/device")
    );
    assert_eq!(config.scopes, ["all", "offline"]);
    assert_eq!(config.header_key, "flyte-authorization");
    assert_eq!(config.audience.as_deref(), Some("https://flyte.test"));
    assert_eq!(config.redirect_uri, "http://localhost:53593/callback");

    discovery.get_client_config().await.unwrap();
    assert_eq!(
        *flyte2.asked.lock().unwrap(),
        [
            "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig",
            "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata",
        ],
        "asked once"
    );
}

#[tokio::test]
async fn a_flyte_1_server_that_only_speaks_grpc_is_found_and_remembered() {
    let flyte1 = answers("flytectl", "https://idp.test/token");
    let addr = serve(None, Some(flyte1.clone())).await;
    let hints = Arc::new(Hints::default());
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new)
        .remember_in(hints.clone());
    let config = discovery.get_client_config().await.unwrap();
    assert_eq!(config.client_id, "flytectl");
    assert_eq!(config.token_endpoint, "https://idp.test/token");
    assert_eq!(
        hints.recall(endpoint(addr).key()),
        Some(DiscoveryFlavour::FlyteAdmin)
    );

    // The next process asks Flyte 1's service at once.
    flyte1.asked.lock().unwrap().clear();
    let again = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new)
        .remember_in(hints.clone());
    again.get_client_config().await.unwrap();
    assert_eq!(
        *flyte1.asked.lock().unwrap(),
        [
            "/flyteidl.service.AuthMetadataService/GetPublicClientConfig",
            "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata",
        ]
    );
}

#[tokio::test]
async fn a_server_with_neither_service_is_one_clear_error() {
    let addr = serve(None, None).await;
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new);
    let error = discovery.get_client_config().await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("neither Flyte 2's nor Flyte 1's AuthMetadataService"),
        "{text}"
    );
}

#[tokio::test]
async fn a_grpc_error_is_reported_with_its_code_and_message_and_not_kept() {
    let failing = Arc::new(Answers {
        error: Some((14, "the%20database%20is%20down")),
        ..Answers::default()
    });
    let addr = serve(Some(failing.clone()), None).await;
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new);
    let error = discovery.get_client_config().await.unwrap_err();
    assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("status 14: the database is down"), "{text}");
    discovery.get_client_config().await.unwrap_err();
    assert_eq!(failing.asked.lock().unwrap().len(), 2, "asked again");
}

#[tokio::test]
async fn a_tls_server_may_not_announce_a_plain_http_token_endpoint() {
    let addr = serve(Some(answers("cli", "http://idp.test/token")), None).await;
    // The channel is the test's plain connection; the endpoint says the server is on TLS.
    let tls = Endpoint::parse("https://flyte.test").unwrap();
    let discovery = GrpcDiscovery::new(channel(addr).await, &tls, Body::new);
    let error = discovery.get_client_config().await.unwrap_err();
    assert!(matches!(error, Error::Config { .. }), "{error:?}");
    assert!(error.to_string().contains("token_endpoint"), "{error}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_on_in_time() {
    let silent = tower::service_fn(|_request: Request<Body>| {
        std::future::pending::<Result<Response<Body>, Infallible>>()
    });
    let ep = Endpoint::parse("flyte.test").unwrap();
    let discovery = GrpcDiscovery::new(silent, &ep, Body::new).timeout(Duration::from_millis(200));
    let started = Instant::now();
    let error = discovery.get_client_config().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.to_string().contains("took longer than"), "{error}");
}

/// A client-credentials authenticator whose discovery is `GrpcDiscovery` over the channel,
/// with the token endpoint configured or not, behind an eager `AuthLayer`; what the request
/// carried.
#[cfg(feature = "clientcreds")]
async fn client_credentials_over_grpc_discovery(configure_token_url: bool) -> http::HeaderMap {
    use flyte_auth::{
        AuthLayer, Authenticator, CachingAuthenticator,
        clientcreds::ClientCredentialsFlow,
        oauth::{ClientContext, Overrides},
    };
    use tower::{Layer as _, ServiceExt as _};
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

    let idp = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "cc-token", "token_type": "Bearer", "expires_in": 3600
        })))
        .expect(1)
        .mount(&idp)
        .await;
    let token_url = format!("{}/token", idp.uri());
    let flyte = answers("cli", &token_url);
    let addr = serve(Some(flyte.clone()), None).await;
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new);
    let mut overrides = Overrides::new().scopes(["all"]);
    if configure_token_url {
        overrides = overrides.token_endpoint(token_url);
    }
    // Both ways in: as any store, and as the context's own server discovery.
    let ctx = ClientContext::builder(endpoint(addr)).overrides(overrides);
    let ctx = match configure_token_url {
        false => ctx.discovery(Arc::new(discovery)),
        true => ctx.server_discovery(discovery.into_store()),
    };
    let ctx = ctx.build().unwrap();
    let flow = ClientCredentialsFlow::builder(ctx, "svc", "s3cr3t")
        .build()
        .unwrap();
    let auth: Arc<dyn Authenticator> = Arc::new(CachingAuthenticator::builder(flow).build());
    let sent = Arc::new(Mutex::new(http::HeaderMap::new()));
    let recorded = sent.clone();
    let api = tower::service_fn(move |request: Request<()>| {
        *recorded.lock().unwrap() = request.headers().clone();
        std::future::ready(Ok::<_, Infallible>(Response::new(())))
    });
    AuthLayer::new(auth)
        .eager()
        .layer(api)
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(flyte.asked.lock().unwrap().len(), 2, "discovery asked once");
    sent.lock().unwrap().clone()
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn a_flow_discovers_its_token_endpoint_and_header_over_the_channel() {
    let sent = client_credentials_over_grpc_discovery(false).await;
    assert_eq!(sent["flyte-authorization"], "Bearer cc-token");
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn with_the_token_endpoint_configured_the_header_is_still_the_servers() {
    let sent = client_credentials_over_grpc_discovery(true).await;
    assert_eq!(sent["flyte-authorization"], "Bearer cc-token");
    assert!(sent.get("authorization").is_none());
}

#[tokio::test]
async fn the_same_discovery_on_a_tonic_0_12_channel() {
    let flyte2 = answers("flyte2-cli", "https://idp.test/token");
    let addr = serve(Some(flyte2), None).await;
    let channel = tonic012::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let discovery = GrpcDiscovery::new(channel, &endpoint(addr), tonic012::body::boxed);
    let config = discovery.get_client_config().await.unwrap();
    assert_eq!(config.client_id, "flyte2-cli");
    assert_eq!(config.token_endpoint, "https://idp.test/token");
}

#[tokio::test]
async fn a_trailers_only_answer_is_an_empty_message() {
    let empty = Arc::new(Answers {
        empty: true,
        ..Answers::default()
    });
    let addr = serve(Some(empty), None).await;
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new);
    let error = discovery.get_client_config().await.unwrap_err();
    assert!(
        error.to_string().contains("names no token_endpoint"),
        "{error}"
    );
}

#[tokio::test]
async fn a_proxys_401_is_reported_as_it_is_not_taken_for_a_missing_service() {
    let asked = Arc::new(Mutex::new(0));
    let counted = asked.clone();
    let proxy = tower::service_fn(move |_request: Request<Body>| {
        *counted.lock().unwrap() += 1;
        let mut response = Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::UNAUTHORIZED;
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let ep = Endpoint::parse("https://flyte.test").unwrap();
    let discovery = GrpcDiscovery::new(proxy, &ep, Body::new);
    let error = discovery.get_client_config().await.unwrap_err();
    match &error {
        Error::InvalidResponse { status, message } => {
            assert_eq!(*status, Some(401));
            assert!(message.contains("HTTP status 401"), "{message}");
        }
        other => panic!("expected the 401, got {other:?}"),
    }
    assert_eq!(
        *asked.lock().unwrap(),
        1,
        "no fallback to the other flavour"
    );
}

/// The OAuth 2 metadata of a server whose endpoints are relative: protobuf field number, name,
/// value (the `_supported` ones are lists).
const RELATIVE_METADATA: [(u64, &str, &str); 6] = [
    (1, "issuer", "https://idp.test"),
    (2, "authorization_endpoint", "/oauth2/authorize"),
    (3, "token_endpoint", "/oauth2/token"),
    (8, "code_challenge_methods_supported", "S256"),
    (9, "grant_types_supported", "client_credentials"),
    (10, "device_authorization_endpoint", "/oauth2/device"),
];

#[tokio::test]
async fn relative_urls_and_pkce_methods_come_out_as_over_http() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

    // The same answers over gRPC (Flyte 1's service) and as flyteadmin's HTTP documents.
    let proto = RELATIVE_METADATA
        .map(|(n, _, value)| string(n, value))
        .concat();
    let flyte1 = Arc::new(Answers {
        messages: HashMap::from([
            (
                "GetPublicClientConfig",
                client_config("cli", "flyte-authorization"),
            ),
            ("GetOAuth2Metadata", proto),
        ]),
        ..Answers::default()
    });
    let addr = serve(None, Some(flyte1)).await;
    let over_grpc = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new)
        .get_client_config()
        .await
        .unwrap();

    let http = MockServer::start().await;
    let json = serde_json::Map::from_iter(RELATIVE_METADATA.map(|(_, name, value)| {
        let value = match name.ends_with("_supported") {
            true => serde_json::json!([value]),
            false => serde_json::json!(value),
        };
        (name.to_owned(), value)
    }));
    for (path, document) in [
        (
            "/.well-known/oauth-authorization-server",
            serde_json::Value::Object(json),
        ),
        (
            "/config/v1/flyte_client",
            serde_json::json!({
                "client_id": "cli",
                "redirect_uri": "http://localhost:53593/callback",
                "scopes": ["all", "offline"],
                "authorization_metadata_key": "flyte-authorization",
                "service_http_endpoint": "https://flyte.test/console",
                "audience": "https://flyte.test",
            }),
        ),
    ] {
        Mock::given(matchers::path(path))
            .respond_with(ResponseTemplate::new(200).set_body_json(document))
            .mount(&http)
            .await;
    }
    let client = flyte_auth_oauth::OAuthClient::new(
        flyte_auth_oauth::HttpSettings::new().system_proxy(false),
    )
    .unwrap();
    let over_http = flyte_auth_oauth::RemoteClientConfigStore::from_base_url(http.uri(), client)
        .get_client_config()
        .await
        .unwrap();

    assert_eq!(
        over_grpc.token_endpoint,
        format!("http://{addr}/oauth2/token")
    );
    assert_eq!(over_grpc.code_challenge_methods_supported, ["S256"]);
    let same = |config: &flyte_auth::ClientConfig, base: &str| {
        serde_json::to_string(config)
            .unwrap()
            .replace(base, "{base}")
    };
    assert_eq!(
        same(&over_grpc, &format!("http://{addr}")),
        same(&over_http, &http.uri())
    );
}

#[tokio::test]
async fn concurrent_first_callers_share_one_discovery() {
    let flyte2 = answers("cli", "https://idp.test/token");
    let addr = serve(Some(flyte2.clone()), None).await;
    let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new);
    let all = futures_util::future::join_all((0..4).map(|_| discovery.get_client_config())).await;
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(
        flyte2.asked.lock().unwrap().len(),
        2,
        "one discovery: two calls"
    );
}

/// Hints that keep answers too, in memory.
#[cfg(feature = "clientcreds")]
#[derive(Debug, Default)]
struct KeptAnswers(Mutex<HashMap<String, flyte_auth::DiscoveryAnswer>>);

#[cfg(feature = "clientcreds")]
impl DiscoveryHints for KeptAnswers {
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour> {
        self.recall_answer(endpoint).map(|answer| answer.flavour)
    }
    fn remember(&self, _: &str, _: DiscoveryFlavour) -> Result<(), StoreError> {
        Ok(())
    }
    fn recall_answer(&self, endpoint: &str) -> Option<flyte_auth::DiscoveryAnswer> {
        self.0.lock().unwrap().get(endpoint).cloned()
    }
    fn remember_answer(
        &self,
        endpoint: &str,
        answer: &flyte_auth::DiscoveryAnswer,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), answer.clone());
        Ok(())
    }
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn the_next_process_uses_the_answer_kept_from_grpc_discovery() {
    use flyte_auth::{
        Authenticator as _, CachingAuthenticator,
        clientcreds::ClientCredentialsFlow,
        oauth::{ClientContext, Overrides},
    };
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

    let idp = MockServer::start().await;
    Mock::given(matchers::path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "cc-token", "token_type": "Bearer", "expires_in": 3600
        })))
        .expect(2)
        .mount(&idp)
        .await;
    let flyte = answers("cli", &format!("{}/token", idp.uri()));
    let addr = serve(Some(flyte.clone()), None).await;
    let hints = Arc::new(KeptAnswers::default());
    for _process in 0..2 {
        let discovery = GrpcDiscovery::new(channel(addr).await, &endpoint(addr), Body::new)
            .remember_in(hints.clone());
        let ctx = ClientContext::builder(endpoint(addr))
            .server_discovery(discovery.into_store())
            .overrides(Overrides::new().scopes(["all"]))
            .build()
            .unwrap();
        let flow = ClientCredentialsFlow::builder(ctx, "svc", "s3cr3t")
            .build()
            .unwrap();
        let auth = CachingAuthenticator::builder(flow).build();
        let header = auth.auth_header().await.unwrap();
        assert_eq!(header.value(), "Bearer cc-token");
    }
    assert_eq!(
        flyte.asked.lock().unwrap().len(),
        2,
        "the second process asked nothing over gRPC"
    );
}
