#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(all(feature = "tower", feature = "clientcreds")),
    allow(missing_docs, reason = "empty without the features")
)]
//! The flyte_core example's auth API (`examples/flyte_core/auth/`) against a tonic 0.12
//! server on loopback, which serves `AuthMetadataService` and a health service that checks
//! the token, and a mock token endpoint: the behaviours flyte_core's hand-written layer lacks.
#![cfg(all(feature = "tower", feature = "clientcreds"))]

#[path = "../examples/flyte_core/auth/mod.rs"]
mod auth;

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use auth::{AuthConfig, AuthLayer, AuthService, ClientCredentialsAuthenticator};
use base64::Engine as _;
use tonic_health012::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic012::{
    Code, Status,
    body::BoxBody,
    codec::ProstCodec,
    server::{Grpc, NamedService},
    service::interceptor::InterceptedService,
    transport::{Channel, Server, server::TcpIncoming},
};
use tower::{ServiceBuilder, service_fn};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

const SECRET: &str = "s3cret-of-the-app";

/// `GetOAuth2MetadataResponse` (`flyteidl2.auth`), the fields the server fills.
#[derive(Clone, PartialEq, prost::Message)]
struct OAuth2Metadata {
    #[prost(string, tag = "1")]
    issuer: String,
    #[prost(string, tag = "3")]
    token_endpoint: String,
}

/// `GetPublicClientConfigResponse` (`flyteidl2.auth`).
#[derive(Clone, PartialEq, prost::Message)]
struct PublicClientConfig {
    #[prost(string, tag = "1")]
    client_id: String,
    #[prost(string, repeated, tag = "3")]
    scopes: Vec<String>,
    #[prost(string, tag = "4")]
    authorization_metadata_key: String,
    #[prost(string, tag = "6")]
    audience: String,
}

/// The server's `AuthMetadataService`, counting the calls it answers.
#[derive(Clone)]
struct AuthMetadata {
    token_endpoint: String,
    header_key: String,
    calls: Arc<AtomicUsize>,
}

impl NamedService for AuthMetadata {
    const NAME: &'static str = "flyteidl2.auth.AuthMetadataService";
}

impl tower::Service<http::Request<BoxBody>> for AuthMetadata {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<BoxBody>) -> Self::Future {
        let this = self.clone();
        this.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let answer = match request.uri().path().rsplit('/').next() {
                Some("GetOAuth2Metadata") => {
                    let metadata = OAuth2Metadata {
                        issuer: "http://idp.invalid".to_owned(),
                        token_endpoint: this.token_endpoint.clone(),
                    };
                    let answer = service_fn(move |_: tonic012::Request<()>| {
                        let metadata = metadata.clone();
                        async move { Ok::<_, Status>(tonic012::Response::new(metadata)) }
                    });
                    let mut grpc = Grpc::new(ProstCodec::<OAuth2Metadata, ()>::default());
                    grpc.unary(answer, request).await
                }
                Some("GetPublicClientConfig") => {
                    let config = PublicClientConfig {
                        client_id: "flytectl".to_owned(),
                        scopes: vec!["all".to_owned()],
                        authorization_metadata_key: this.header_key.clone(),
                        audience: "flyte-audience".to_owned(),
                    };
                    let answer = service_fn(move |_: tonic012::Request<()>| {
                        let config = config.clone();
                        async move { Ok::<_, Status>(tonic012::Response::new(config)) }
                    });
                    let mut grpc = Grpc::new(ProstCodec::<PublicClientConfig, ()>::default());
                    grpc.unary(answer, request).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(answer)
        })
    }
}

/// Which tokens the health service accepts, in which header, and what it was sent.
struct Gate {
    header: String,
    accepted: Mutex<HashSet<String>>,
    seen: Mutex<Vec<String>>,
}

impl Gate {
    fn new(header: &str) -> Arc<Self> {
        Arc::new(Self {
            header: header.to_owned(),
            accepted: Mutex::default(),
            seen: Mutex::default(),
        })
    }

    fn accept(&self, token: &str) {
        self.accepted
            .lock()
            .unwrap()
            .insert(format!("Bearer {token}"));
    }

    fn revoke(&self, token: &str) {
        self.accepted
            .lock()
            .unwrap()
            .remove(&format!("Bearer {token}"));
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    #[allow(
        clippy::result_large_err,
        reason = "tonic 0.12's interceptor signature returns its Status"
    )]
    fn check(&self, request: tonic012::Request<()>) -> Result<tonic012::Request<()>, Status> {
        let sent = request
            .metadata()
            .get(self.header.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.seen.lock().unwrap().push(sent.clone());
        if self.accepted.lock().unwrap().contains(&sent) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("token expired"))
        }
    }
}

/// A Flyte server on loopback: `AuthMetadataService` naming `idp`'s token endpoint and
/// `header_key`, and a health service behind `gate`. Discovery is gRPC only: the server
/// answers no HTTP GET.
struct Flyte {
    addr: SocketAddr,
    gate: Arc<Gate>,
    metadata_calls: Arc<AtomicUsize>,
}

impl Flyte {
    async fn start(idp: &MockServer, header_key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gate = Gate::new(if header_key.is_empty() {
            "authorization"
        } else {
            header_key
        });
        let metadata_calls = Arc::new(AtomicUsize::new(0));
        let metadata = AuthMetadata {
            token_endpoint: format!("{}/oauth2/token", idp.uri()),
            header_key: header_key.to_owned(),
            calls: metadata_calls.clone(),
        };
        let (_reporter, health) = tonic_health012::server::health_reporter();
        let checker = gate.clone();
        #[allow(
            clippy::result_large_err,
            reason = "tonic 0.12's interceptor signature returns its Status"
        )]
        let check = move |request| checker.check(request);
        let incoming = TcpIncoming::from_listener(listener, true, None).unwrap();
        tokio::spawn(async move {
            Server::builder()
                .add_service(metadata)
                .add_service(InterceptedService::new(health, check))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        Self {
            addr,
            gate,
            metadata_calls,
        }
    }

    fn config(&self) -> AuthConfig {
        AuthConfig {
            endpoint: format!("http://{}", self.addr),
            client_id: "svc".to_owned(),
            client_secret: SECRET.to_owned(),
        }
    }

    /// What flyte_core's controller builds: the channel, the authenticator, the layer.
    fn client(
        &self,
    ) -> (
        HealthClient<AuthService<Channel>>,
        Arc<ClientCredentialsAuthenticator>,
    ) {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        let authenticator = Arc::new(ClientCredentialsAuthenticator::new(self.config()));
        let auth_channel = ServiceBuilder::new()
            .layer(AuthLayer::new(authenticator.clone(), channel.clone()))
            .service(channel);
        (HealthClient::new(auth_channel), authenticator)
    }
}

fn token(access_token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
    }))
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::test]
async fn the_servers_header_name_is_honoured() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token("token-1"))
        .mount(&idp)
        .await;
    let flyte = Flyte::start(&idp, "flyte-authorization").await;
    flyte.gate.accept("token-1");
    let (mut client, authenticator) = flyte.client();

    client.check(check()).await.unwrap();
    assert_eq!(flyte.gate.seen(), ["Bearer token-1"]);
    assert_eq!(authenticator.get_header_key().await, "flyte-authorization");
}

#[tokio::test]
async fn a_token_rejected_with_unauthenticated_is_replaced_and_the_call_sent_again() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token("token-1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token("token-2"))
        .mount(&idp)
        .await;
    let flyte = Flyte::start(&idp, "").await;
    flyte.gate.accept("token-1");
    let (mut client, _) = flyte.client();

    client.check(check()).await.unwrap();
    // The server stops accepting the token before it expires (revoked, rotated keys).
    flyte.gate.revoke("token-1");
    flyte.gate.accept("token-2");
    client.check(check()).await.unwrap();
    assert_eq!(
        flyte.gate.seen(),
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    );
    assert_eq!(idp.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn no_secret_or_token_is_in_debug() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token("tok-en-value"))
        .mount(&idp)
        .await;
    let flyte = Flyte::start(&idp, "").await;
    flyte.gate.accept("tok-en-value");
    let channel = Channel::from_shared(format!("http://{}", flyte.addr))
        .unwrap()
        .connect_lazy();
    let config = flyte.config();
    let authenticator = Arc::new(ClientCredentialsAuthenticator::new(config.clone()));
    let credentials = authenticator
        .get_credentials(channel.clone())
        .await
        .unwrap();
    assert_eq!(credentials.access_token, "tok-en-value");
    let layer = AuthLayer::new(authenticator.clone(), channel.clone());
    let service: AuthService<Channel> = ServiceBuilder::new().layer(layer.clone()).service(channel);
    let key_error = AuthConfig::new_from_api_key(
        &base64::engine::general_purpose::STANDARD.encode(format!("h:svc:{SECRET}")),
    )
    .unwrap_err();
    for shown in [
        format!("{config:?}"),
        format!("{authenticator:?}"),
        format!("{credentials:?}"),
        format!("{layer:?}"),
        format!("{service:?}"),
        format!("{key_error} {key_error:?}"),
    ] {
        assert!(
            !shown.contains(SECRET) && !shown.contains("tok-en-value"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn the_identity_providers_reason_is_the_unauthenticated_status_of_the_call() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "client svc is disabled",
        })))
        .mount(&idp)
        .await;
    let flyte = Flyte::start(&idp, "").await;
    let (mut client, _) = flyte.client();

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("client svc is disabled"),
        "{status:?}"
    );
    assert!(!status.message().contains(SECRET), "{status:?}");
    // The call was not sent without a token.
    assert!(flyte.gate.seen().is_empty());
}

#[tokio::test]
async fn discovery_is_asked_over_the_channel_alone() {
    let idp = MockServer::start().await;
    // The token request carries what the server's public client config says.
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("audience=flyte-audience"))
        .and(body_string_contains("scope=all"))
        .respond_with(token("token-1"))
        .expect(1)
        .mount(&idp)
        .await;
    let flyte = Flyte::start(&idp, "").await;
    flyte.gate.accept("token-1");
    let (mut client, _) = flyte.client();

    client.check(check()).await.unwrap();
    // The identity provider got the token request and nothing else: the token endpoint came
    // from the server's AuthMetadataService, over the channel.
    assert_eq!(idp.received_requests().await.unwrap().len(), 1);
    assert_eq!(flyte.metadata_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn api_keys_decode_as_flyte_and_union_make_them() {
    let standard = base64::engine::general_purpose::STANDARD;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // `flyte create api-key` and `union create api-key`: standard, padded, org `None`.
    let made = standard.encode(format!("tenant.example.org:svc:{SECRET}:None"));
    let config = AuthConfig::new_from_api_key(&made).unwrap();
    assert_eq!(config.endpoint, "https://tenant.example.org");
    assert_eq!(config.client_id, "svc");
    assert_eq!(config.client_secret, SECRET);
    // URL-safe and unpadded, with an org.
    let secret = "a~~~b>>?";
    let made = url_safe.encode(format!("tenant.example.org:svc:{secret}:acme"));
    assert!(made.contains(['-', '_']), "{made}");
    let config = AuthConfig::new_from_api_key(&made).unwrap();
    assert_eq!(config.client_secret, secret);
    // A key the tools would split differently is refused, without showing it.
    for bad in [
        standard.encode(format!("tenant.example.org:443:svc:{SECRET}:None")),
        standard.encode(format!("tenant.example.org:svc:{SECRET}")),
        "not a key".to_owned(),
    ] {
        let err = AuthConfig::new_from_api_key(&bad).unwrap_err().to_string();
        assert!(!err.contains(SECRET) && !err.contains(&bad), "{err}");
        assert!(err.contains("_UNION_EAGER_API_KEY"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_calls_make_one_token_request() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token("token-1").set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&idp)
        .await;
    let flyte = Flyte::start(&idp, "").await;
    flyte.gate.accept("token-1");
    let (client, _) = flyte.client();

    let calls: Vec<_> = (0..32)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.check(check()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(flyte.gate.seen().len(), 32);
    assert_eq!(idp.received_requests().await.unwrap().len(), 1);
}
