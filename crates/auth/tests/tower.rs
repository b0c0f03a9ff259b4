#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(feature = "tower"),
    allow(missing_docs, reason = "empty without the feature")
)]
#![cfg(feature = "tower")]
//! `AuthLayer` on a real `tonic` 0.14 channel against a real `tonic` 0.14 server (the
//! standard gRPC health service, behind an interceptor that checks the bearer token), the same
//! on tonic 0.12 (the tonic of `flyteidl2` and the Flyte 2 SDK's controller), and on plain
//! `tower` services for the HTTP status and body paths.

use std::{
    collections::HashSet,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use flyte_auth::{
    AuthLayer, Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error,
    MemoryStore, TokenFlow, TokenStore,
    tower::{AuthService, Replay, RequestBody},
};

/// The test server's endpoint, parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse("flyte.test").expect("a valid endpoint"));
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tonic::{
    Code, Status,
    service::interceptor::InterceptedService,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

/// Issues `<prefix>-1`, `<prefix>-2`, ... one per login, in the header it is told.
#[derive(Debug)]
struct Issuer {
    prefix: &'static str,
    header: &'static str,
    logins: Arc<AtomicUsize>,
    refuse: bool,
}

impl TokenFlow for Issuer {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            if self.refuse {
                return Err(Error::authentication("the login was refused by the test"));
            }
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(
                Credentials::new(format!("{}-{n}", self.prefix), "flyte.test")
                    .with_expires_in(3600),
            )
        })
    }
    fn header_name(&self) -> Option<HeaderName> {
        Some(HeaderName::from_static(self.header))
    }
}

fn issuer(
    prefix: &'static str,
    header: &'static str,
) -> (Arc<dyn Authenticator>, Arc<AtomicUsize>) {
    let logins = Arc::new(AtomicUsize::new(0));
    let flow = Issuer {
        prefix,
        header,
        logins: logins.clone(),
        refuse: false,
    };
    (
        Arc::new(CachingAuthenticator::builder(flow).build()),
        logins,
    )
}

/// What the server accepts and what it saw.
#[derive(Default)]
struct Gate {
    /// No auth at all: every call passes.
    open: bool,
    valid: Mutex<HashSet<String>>,
    proxy_valid: Mutex<Option<String>>,
    seen: Mutex<Vec<String>>,
}

impl Gate {
    fn open() -> Self {
        Self {
            open: true,
            ..Self::default()
        }
    }
    fn accept(&self, token: &str) {
        self.valid.lock().unwrap().insert(format!("Bearer {token}"));
    }
    fn revoke(&self, token: &str) {
        self.valid
            .lock()
            .unwrap()
            .remove(&format!("Bearer {token}"));
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
    /// The verdict on a call with these headers (`authorization`, `proxy-authorization`).
    fn check(&self, header: Option<&str>, proxy: Option<&str>) -> Result<(), &'static str> {
        let header = header.unwrap_or_default().to_owned();
        self.seen.lock().unwrap().push(header.clone());
        if self.open {
            return Ok(());
        }
        if let Some(want) = self.proxy_valid.lock().unwrap().as_deref()
            && proxy != Some(want)
        {
            return Err("proxy token missing");
        }
        if self.valid.lock().unwrap().contains(&header) {
            Ok(())
        } else {
            Err("bad token")
        }
    }
}

/// Starts the tonic 0.14 health service on a loopback port, behind the gate.
async fn start_server(gate: Arc<Gate>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let check = move |request: tonic::Request<()>| {
        let get = |name| request.metadata().get(name).and_then(|v| v.to_str().ok());
        match gate.check(get("authorization"), get("proxy-authorization")) {
            Ok(()) => Ok(request),
            Err(why) => Err(Status::unauthenticated(why)),
        }
    };
    let service = InterceptedService::new(health, check);
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
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
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap()
}

type Client = HealthClient<AuthService<Channel>>;
type ReplayingClient = HealthClient<AuthService<Channel, Replay<tonic::body::Body>>>;

async fn check<T>(client: &mut HealthClient<T>) -> Result<(), Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

async fn replaying(addr: SocketAddr, auth: Arc<dyn Authenticator>) -> ReplayingClient {
    let layer = AuthLayer::new(auth).replay(tonic::body::Body::new);
    HealthClient::new(
        ServiceBuilder::new()
            .layer(layer)
            .service(channel(addr).await),
    )
}

#[tokio::test]
async fn a_server_without_auth_is_called_without_a_token_and_without_a_login() {
    let gate = Arc::new(Gate::open());
    let addr = start_server(gate.clone()).await;
    let (auth, logins) = issuer("token", "authorization");
    let mut client = replaying(addr, auth).await;
    for _ in 0..3 {
        check(&mut client).await.unwrap();
    }
    assert_eq!(gate.seen(), ["", "", ""]);
    assert_eq!(logins.load(Ordering::SeqCst), 0, "nobody asked for a login");
}

/// A memory store that counts reads.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    reads: AtomicUsize,
}

impl TokenStore for CountingStore {
    fn store(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
    ) -> Result<(), flyte_auth::StoreError> {
        self.inner.store(endpoint, credentials)
    }
    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, flyte_auth::StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.retrieve(endpoint)
    }
    fn delete(&self, endpoint: &Endpoint) -> Result<(), flyte_auth::StoreError> {
        self.inner.delete(endpoint)
    }
    fn name(&self) -> &'static str {
        "counting"
    }
}

#[tokio::test]
async fn without_a_login_the_store_is_read_once_not_per_call() {
    let gate = Arc::new(Gate::open());
    let addr = start_server(gate.clone()).await;
    let store = Arc::new(CountingStore::default());
    let flow = Issuer {
        prefix: "token",
        header: "authorization",
        logins: Arc::default(),
        refuse: false,
    };
    let auth: Arc<dyn Authenticator> = Arc::new(
        CachingAuthenticator::builder(flow)
            .store(store.clone())
            .build(),
    );
    let client = replaying(addr, auth).await;
    for _ in 0..5 {
        check(&mut client.clone()).await.unwrap();
    }
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_first_rejection_logs_in_and_the_unary_call_is_sent_again() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    let addr = start_server(gate.clone()).await;
    let (auth, logins) = issuer("token", "authorization");
    let mut client = replaying(addr, auth).await;

    check(&mut client).await.unwrap();
    check(&mut client).await.unwrap();
    assert_eq!(gate.seen(), ["", "Bearer token-1", "Bearer token-1"]);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn stored_credentials_are_sent_at_once_without_a_login() {
    let gate = Arc::new(Gate::default());
    gate.accept("stored");
    let addr = start_server(gate.clone()).await;
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("stored", "flyte.test").with_expires_in(3600),
        )
        .unwrap();
    let logins = Arc::new(AtomicUsize::new(0));
    let flow = Issuer {
        prefix: "token",
        header: "authorization",
        logins: logins.clone(),
        refuse: false,
    };
    let auth: Arc<dyn Authenticator> =
        Arc::new(CachingAuthenticator::builder(flow).store(store).build());
    let mut client = replaying(addr, auth).await;
    check(&mut client).await.unwrap();
    assert_eq!(gate.seen(), ["Bearer stored"]);
    assert_eq!(logins.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_token_the_server_stops_accepting_is_dropped_and_all_rejected_calls_share_one_login() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    let addr = start_server(gate.clone()).await;
    let (auth, logins) = issuer("token", "authorization");
    let client = replaying(addr, auth.clone()).await;
    check(&mut client.clone()).await.unwrap();

    // token-1 has not expired, the cache would keep serving it: the server revokes it.
    gate.revoke("token-1");
    gate.accept("token-2");
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { check(&mut client).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(logins.load(Ordering::SeqCst), 2, "one new login for all");
    assert_eq!(gate.seen().last().unwrap(), "Bearer token-2");
    assert_eq!(
        auth.fetch_grpc_call_auth_metadata().unwrap().value(),
        "Bearer token-2"
    );
}

#[tokio::test]
async fn without_replay_the_rejected_call_fails_once_and_the_next_carries_the_new_token() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    let addr = start_server(gate.clone()).await;
    let (auth, logins) = issuer("token", "authorization");
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(auth.clone()).eager())
        .service(channel(addr).await);
    let client: Client = HealthClient::new(service);
    check(&mut client.clone()).await.unwrap();

    gate.revoke("token-1");
    gate.accept("token-2");
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { check(&mut client).await })
        })
        .collect();
    for call in calls {
        assert_eq!(
            call.await.unwrap().unwrap_err().code(),
            Code::Unauthenticated
        );
    }
    assert_eq!(logins.load(Ordering::SeqCst), 2, "one new login for all");
    check(&mut client.clone()).await.unwrap();
    assert_eq!(gate.seen().last().unwrap(), "Bearer token-2");
}

#[tokio::test]
async fn eager_a_call_without_a_token_is_not_sent_and_fails_with_the_reason() {
    let gate = Arc::new(Gate::default());
    let addr = start_server(gate.clone()).await;
    let flow = Issuer {
        prefix: "token",
        header: "authorization",
        logins: Arc::default(),
        refuse: true,
    };
    let auth: Arc<dyn Authenticator> = Arc::new(CachingAuthenticator::builder(flow).build());
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(auth).eager())
        .service(channel(addr).await);
    let status = check(&mut HealthClient::new(service)).await.unwrap_err();
    assert!(
        status
            .message()
            .contains("the login was refused by the test"),
        "{status:?}"
    );
    assert!(gate.seen().is_empty(), "the call reached the server");
}

#[tokio::test]
async fn lazy_a_failed_login_hands_on_the_servers_rejection() {
    let gate = Arc::new(Gate::default());
    let addr = start_server(gate.clone()).await;
    let flow = Issuer {
        prefix: "token",
        header: "authorization",
        logins: Arc::default(),
        refuse: true,
    };
    let auth: Arc<dyn Authenticator> = Arc::new(CachingAuthenticator::builder(flow).build());
    let mut client = replaying(addr, auth).await;
    let status = check(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(gate.seen(), [""], "sent once, not again without a token");
}

#[tokio::test]
async fn the_proxy_token_goes_in_its_own_header() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    *gate.proxy_valid.lock().unwrap() = Some("Bearer proxy-1".into());
    let addr = start_server(gate.clone()).await;
    let (auth, _) = issuer("token", "authorization");
    let (proxy, proxy_logins) = issuer("proxy", "proxy-authorization");
    let layer = AuthLayer::new(auth).eager().with_proxy(proxy);
    let mut client = HealthClient::new(layer.layer(channel(addr).await));
    check(&mut client).await.unwrap();
    check(&mut client).await.unwrap();
    assert_eq!(proxy_logins.load(Ordering::SeqCst), 1);
}

/// The same layer on tonic 0.12 (tower 0.4): a tonic 0.12 server and channel.
mod tonic_012 {
    use super::*;
    use tonic_health012::pb::{
        HealthCheckRequest as Check012, health_client::HealthClient as HealthClient012,
    };
    use tonic012::{
        service::interceptor::InterceptedService as Intercepted012,
        transport::{
            Channel as Channel012, Server as Server012, server::TcpIncoming as Incoming012,
        },
    };

    #[allow(
        clippy::result_large_err,
        reason = "tonic 0.12's interceptor signature returns its Status"
    )]
    async fn start_server(gate: Arc<Gate>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health012::server::health_reporter();
        let check = move |request: tonic012::Request<()>| {
            let get = |name| request.metadata().get(name).and_then(|v| v.to_str().ok());
            match gate.check(get("authorization"), None) {
                Ok(()) => Ok(request),
                Err(why) => Err(tonic012::Status::unauthenticated(why)),
            }
        };
        let incoming = Incoming012::from_listener(listener, true, None).unwrap();
        tokio::spawn(async move {
            Server012::builder()
                .add_service(Intercepted012::new(health, check))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn eager_a_tonic_0_12_call_without_a_token_is_unauthenticated_with_the_reason() {
        let gate = Arc::new(Gate::default());
        let addr = start_server(gate.clone()).await;
        let channel = Channel012::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let auth: Arc<dyn Authenticator> = Arc::new(
            CachingAuthenticator::builder(Refused("invalid_client: the secret expired")).build(),
        );
        let mut client = HealthClient012::new(AuthLayer::new(auth).eager().layer(channel));
        let status = client
            .check(Check012 {
                service: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic012::Code::Unauthenticated, "{status:?}");
        assert!(
            status.message().contains("the secret expired"),
            "{status:?}"
        );
        assert!(gate.seen().is_empty());
    }

    #[tokio::test]
    async fn the_layer_works_on_a_tonic_0_12_channel_with_login_replay_and_refresh() {
        let gate = Arc::new(Gate::default());
        gate.accept("token-1");
        let addr = start_server(gate.clone()).await;
        let channel = Channel012::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        let (auth, logins) = issuer("token", "authorization");
        let layer = AuthLayer::new(auth).replay(tonic012::body::boxed);
        let mut client = HealthClient012::new(layer.layer(channel));
        let call = || Check012 {
            service: String::new(),
        };

        client.check(call()).await.unwrap();
        gate.revoke("token-1");
        gate.accept("token-2");
        client.check(call()).await.unwrap();
        assert_eq!(
            gate.seen(),
            ["", "Bearer token-1", "Bearer token-1", "Bearer token-2"]
        );
        assert_eq!(logins.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn the_servers_header_name_is_used() {
    let (auth, _) = issuer("token", "flyte-authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let inner = service_fn(move |request: Request<()>| {
        let recorded = recorded.clone();
        async move {
            let header = request.headers().get("flyte-authorization").cloned();
            recorded.lock().unwrap().push(header);
            Ok::<_, Infallible>(Response::new(()))
        }
    });
    let service = AuthLayer::new(auth).eager().layer(inner);
    service.oneshot(Request::new(())).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].as_ref().unwrap(), "Bearer token-1");
}

/// The headers and body of every request a test service got.
type Seen = Arc<Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;

/// A plain HTTP service answering `statuses` in turn (the last one from then on), recording
/// the headers and the body it got.
fn answering(
    statuses: &[StatusCode],
    seen: Seen,
) -> impl tower::Service<
    Request<RequestBody>,
    Response = Response<()>,
    Error = Infallible,
    Future = BoxFuture<'static, Result<Response<()>, Infallible>>,
> + Clone
+ Send
+ 'static {
    let statuses = statuses.to_vec();
    service_fn(move |request: Request<RequestBody>| {
        let seen = seen.clone();
        let statuses = statuses.clone();
        let answer: BoxFuture<'static, _> = Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes().to_vec();
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push((parts.headers, body));
                seen.len()
            };
            let mut response = Response::new(());
            *response.status_mut() = statuses[(n - 1).min(statuses.len() - 1)];
            Ok(response)
        });
        answer
    })
}

fn body(text: &'static str) -> Request<RequestBody> {
    let full = http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes()));
    Request::new(RequestBody::new(full))
}

#[tokio::test]
async fn http_401_refreshes_and_a_complete_body_is_sent_again() {
    let (auth, logins) = issuer("token", "authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth.clone())
        .eager()
        .replay(std::convert::identity)
        .layer(answering(
            &[StatusCode::UNAUTHORIZED, StatusCode::OK],
            seen.clone(),
        ));
    let response = service.clone().oneshot(body("hello")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0["authorization"], "Bearer token-1");
    assert_eq!(seen[1].0["authorization"], "Bearer token-2");
    assert_eq!(seen[1].1, b"hello", "the same body again");
    assert_eq!(logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_streaming_body_is_not_replayed_and_the_next_request_has_the_new_token() {
    let (auth, logins) = issuer("token", "authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth)
        .eager()
        .replay(std::convert::identity)
        .layer(answering(
            &[StatusCode::UNAUTHORIZED, StatusCode::OK],
            seen.clone(),
        ));
    // A body whose data is not there yet when the request is sent.
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<http_body::Frame<bytes::Bytes>, Infallible>>(1);
    let stream =
        http_body_util::StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|frame| (frame, rx))
        }));
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            b"late",
        ))))
        .await
        .unwrap();
    });
    let request = Request::new(RequestBody::new(stream));
    let response = service.clone().oneshot(request).await.unwrap();
    sender.await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "handed on");
    assert_eq!(seen.lock().unwrap().len(), 1, "not sent again");
    assert_eq!(
        seen.lock().unwrap()[0].1,
        b"late",
        "the whole body went out"
    );
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    service.oneshot(body("next")).await.unwrap();
    assert_eq!(seen.lock().unwrap()[1].0["authorization"], "Bearer token-2");
}

#[tokio::test]
async fn a_body_over_the_limit_is_sent_whole_but_not_replayed() {
    let (auth, _) = issuer("token", "authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth)
        .eager()
        .replay(std::convert::identity)
        .replay_limit(3)
        .layer(answering(&[StatusCode::UNAUTHORIZED], seen.clone()));
    let response = service.oneshot(body("0123456789")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, b"0123456789");
}

#[tokio::test]
async fn http_407_refreshes_the_proxy_token_only() {
    let (auth, logins) = issuer("token", "authorization");
    let (proxy, proxy_logins) = issuer("proxy", "proxy-authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth)
        .eager()
        .with_proxy(proxy)
        .layer(answering(
            &[StatusCode::PROXY_AUTHENTICATION_REQUIRED],
            seen.clone(),
        ));
    service.oneshot(body("")).await.unwrap();
    let first = seen.lock().unwrap()[0].0.clone();
    assert_eq!(first["authorization"], "Bearer token-1");
    assert_eq!(first["proxy-authorization"], "Bearer proxy-1");
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(proxy_logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn success_refreshes_nothing() {
    let (auth, logins) = issuer("token", "authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth)
        .eager()
        .layer(answering(&[StatusCode::OK], seen.clone()));
    for _ in 0..3 {
        service.clone().oneshot(body("")).await.unwrap();
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// A health service that checks the token itself and, for a token it does not accept,
/// refuses late: `Watch` sends a message, then ends the stream with `late` in the trailers;
/// `Check` answers with `late` too, as a server that lost the code would.
struct LateRefusal {
    gate: Arc<Gate>,
    late: fn(&'static str) -> Status,
}

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for LateRefusal {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match self.gate.check(header, None) {
            Ok(()) => Ok(tonic::Response::new(serving())),
            Err(why) => Err((self.late)(why)),
        }
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<tonic_health::pb::HealthCheckResponse, Status>>
                + Send,
        >,
    >;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let end = self.gate.check(header, None).err().map(self.late);
        let stream = futures_util::stream::iter(std::iter::once(Ok(serving())).chain(end.map(Err)));
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

fn serving() -> tonic_health::pb::HealthCheckResponse {
    tonic_health::pb::HealthCheckResponse {
        status: tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
    }
}

async fn start_late_server(gate: Arc<Gate>, late: fn(&'static str) -> Status) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tonic_health::pb::health_server::HealthServer::new(LateRefusal { gate, late });
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

/// Reads a `Watch` stream to its end: the messages, then the status in the trailers.
async fn watch_to_end(client: &mut ReplayingClient) -> (usize, Status) {
    let mut stream = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut messages = 0;
    loop {
        match stream.message().await {
            Ok(Some(_)) => messages += 1,
            Ok(None) => return (messages, Status::ok("")),
            Err(status) => return (messages, status),
        }
    }
}

#[tokio::test]
async fn a_rejection_in_the_trailers_of_a_stream_gets_the_next_call_a_new_token() {
    // Code 16; and UNKNOWN saying "unauthenticated" (a proxy that lost the code), which
    // replaces a token sent but starts no login for a call without one: logged in first.
    for (late, logged_in) in [
        (Status::unauthenticated as fn(&'static str) -> Status, false),
        (
            |_| Status::unknown("transport: Unauthenticated, the token expired"),
            true,
        ),
    ] {
        let gate = Arc::new(Gate::default());
        gate.accept("token-1");
        let addr = start_late_server(gate.clone(), late).await;
        let (auth, logins) = issuer("token", "authorization");
        if logged_in {
            auth.auth_header().await.unwrap();
        }
        let mut client = replaying(addr, auth).await;
        // Without a token, the first call is refused (trailers-only, the status in the
        // headers), then sent again with one.
        check(&mut client).await.unwrap();
        gate.revoke("token-1");
        gate.accept("token-2");

        let (messages, status) = watch_to_end(&mut client).await;
        assert_eq!(messages, 1, "the stream was handed on as it came");
        assert_eq!(status.code(), late("").code(), "{status:?}");
        // The stream cannot be sent again; the next call carries a new token at once.
        check(&mut client).await.unwrap();
        let first = if logged_in { &[][..] } else { &[""][..] };
        let expected = [
            first,
            &["Bearer token-1", "Bearer token-1", "Bearer token-2"],
        ]
        .concat();
        assert_eq!(gate.seen(), expected);
        assert_eq!(logins.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn an_unknown_application_error_saying_unauthorized_starts_no_login() {
    let gate = Arc::new(Gate::default());
    let addr = start_late_server(gate.clone(), |_| {
        Status::unknown("user is unauthorized to read project p (unauthenticated caller)")
    })
    .await;
    let (auth, logins) = issuer("token", "authorization");
    let mut client = replaying(addr, auth).await;
    // At the end of a stream, then in the head of unary calls: never a login.
    let (_, status) = watch_to_end(&mut client).await;
    assert_eq!(status.code(), Code::Unknown);
    for _ in 0..2 {
        let status = check(&mut client).await.unwrap_err();
        assert_eq!(status.code(), Code::Unknown);
    }
    assert_eq!(gate.seen(), ["", "", ""]);
    assert_eq!(logins.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unknown_error_saying_unauthorized_keeps_the_token_sent() {
    let (auth, logins) = issuer("token", "authorization");
    let seen: Seen = Arc::default();
    let body = br#"{"code":"unknown","message":"user is unauthorized for project p"}"#.to_vec();
    let service = AuthLayer::new(auth.clone()).layer(answering_with_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "application/json",
        body,
        seen.clone(),
    ));
    auth.auth_header().await.unwrap();
    for _ in 0..2 {
        let response = service.clone().oneshot(self::body("")).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].0["authorization"], "Bearer token-1");
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_server_that_wants_a_token_only_at_the_end_of_a_stream_gets_one_next() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    let addr = start_late_server(gate.clone(), Status::unauthenticated).await;
    let (auth, logins) = issuer("token", "authorization");
    let mut client = replaying(addr, auth).await;
    let (_, status) = watch_to_end(&mut client).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    check(&mut client).await.unwrap();
    assert_eq!(gate.seen(), ["", "Bearer token-1"]);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

/// A Connect envelope: flags, big-endian length, message.
fn envelope(flags: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A response body sent in pieces.
type Pieces = http_body_util::StreamBody<
    futures_util::stream::Iter<
        std::vec::IntoIter<Result<http_body::Frame<bytes::Bytes>, Infallible>>,
    >,
>;

/// A plain HTTP service answering every request with `status`, `content_type` and `body`
/// (sent in pieces of three bytes), recording the request headers.
fn answering_with_body(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    seen: Seen,
) -> impl tower::Service<
    Request<RequestBody>,
    Response = Response<Pieces>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Pieces>, Infallible>>,
> + Clone
+ Send
+ 'static {
    service_fn(move |request: Request<RequestBody>| {
        seen.lock()
            .unwrap()
            .push((request.headers().clone(), Vec::new()));
        let frames: Vec<_> = body
            .chunks(3)
            .map(|piece| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(piece))))
            .collect();
        let mut response = Response::new(http_body_util::StreamBody::new(
            futures_util::stream::iter(frames),
        ));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert("content-type", http::HeaderValue::from_static(content_type));
        std::future::ready(Ok(response))
    })
}

#[tokio::test]
async fn a_connect_end_of_stream_or_error_body_that_refuses_the_token_gets_the_next_call_a_new_one()
{
    let end_of_stream = {
        let mut body = envelope(0, br#"{"status":"SERVING"}"#);
        body.extend(envelope(
            0b10,
            br#"{"error":{"code":"unauthenticated","message":"token expired"},"metadata":{}}"#,
        ));
        body
    };
    let unknown_error = br#"{"code":"unknown","message":"Unauthenticated: jwt expired"}"#.to_vec();
    let answers = [
        (
            StatusCode::OK,
            "application/connect+json",
            end_of_stream.clone(),
        ),
        (StatusCode::OK, "application/connect+proto", end_of_stream),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            unknown_error,
        ),
    ];
    for (status, content_type, body) in answers {
        let (auth, logins) = issuer("token", "authorization");
        let seen: Seen = Arc::default();
        let service = AuthLayer::new(auth).eager().layer(answering_with_body(
            status,
            content_type,
            body.clone(),
            seen.clone(),
        ));
        let response = service.clone().oneshot(self::body("")).await.unwrap();
        assert_eq!(response.status(), status);
        let received = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(received, body, "the body was handed on whole");
        service.oneshot(self::body("")).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].0["authorization"], "Bearer token-1",
            "{content_type}"
        );
        assert_eq!(
            seen[1].0["authorization"], "Bearer token-2",
            "{content_type}"
        );
        assert_eq!(logins.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn a_connect_stream_that_ends_well_or_with_another_error_keeps_the_token() {
    let other_error = {
        let mut body = envelope(0, br#"{"error":"unauthenticated"}"#);
        body.extend(envelope(
            0b10,
            br#"{"error":{"code":"permission_denied","message":"unauthenticated users may not"}}"#,
        ));
        body
    };
    for body in [envelope(0b10, b"{}"), other_error] {
        let (auth, logins) = issuer("token", "authorization");
        let seen: Seen = Arc::default();
        let service = AuthLayer::new(auth).eager().layer(answering_with_body(
            StatusCode::OK,
            "application/connect+json",
            body,
            seen.clone(),
        ));
        let response = service.clone().oneshot(self::body("")).await.unwrap();
        response.into_body().collect().await.unwrap();
        service.oneshot(self::body("")).await.unwrap();
        assert_eq!(seen.lock().unwrap()[1].0["authorization"], "Bearer token-1");
        assert_eq!(logins.load(Ordering::SeqCst), 1);
    }
}

/// A flow whose login the identity provider refuses with `reason`.
#[derive(Debug)]
struct Refused(&'static str);

impl TokenFlow for Refused {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move { Err(Error::authentication(self.0)) })
    }
}

#[tokio::test]
async fn eager_a_grpc_call_without_a_token_is_answered_unauthenticated_with_the_reason() {
    let gate = Arc::new(Gate::default());
    let addr = start_server(gate.clone()).await;
    let reason = "invalid_client: client secret expired for “svc-1” (100%)";
    let auth: Arc<dyn Authenticator> =
        Arc::new(CachingAuthenticator::builder(Refused(reason)).build());
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(auth).eager())
        .service(channel(addr).await);
    let status = check(&mut HealthClient::new(service)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains(reason), "{status:?}");
    assert!(gate.seen().is_empty(), "the call reached the server");
}

#[tokio::test]
async fn eager_an_http_request_without_a_token_is_answered_401_with_the_reason() {
    let auth: Arc<dyn Authenticator> =
        Arc::new(CachingAuthenticator::builder(Refused("the client is disabled")).build());
    let seen: Seen = Arc::default();
    let service = AuthLayer::new(auth).eager().layer(answering_with_body(
        StatusCode::OK,
        "text/plain",
        Vec::new(),
        seen.clone(),
    ));
    let response = service.oneshot(body("")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(error["code"], "unauthenticated");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the client is disabled"),
        "{error}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the request was not sent");
}

/// A flow that knows its header only once it has asked (as a flow that discovers it does).
#[derive(Debug)]
struct Discovering {
    asked: Arc<AtomicUsize>,
}

impl TokenFlow for Discovering {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async { Ok(Credentials::new("token-1", "flyte.test").with_expires_in(3600)) })
    }
    fn resolve_header_name(&self) -> BoxFuture<'_, Result<Option<HeaderName>, Error>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Some(HeaderName::from_static("flyte-authorization"))) })
    }
}

#[tokio::test]
async fn the_token_goes_in_the_header_the_authenticator_names_when_asked() {
    let asked = Arc::new(AtomicUsize::new(0));
    let auth: Arc<dyn Authenticator> = Arc::new(
        CachingAuthenticator::builder(Discovering {
            asked: asked.clone(),
        })
        .build(),
    );
    assert_eq!(auth.header_name().await.unwrap(), "flyte-authorization");
    let seen: Seen = Arc::default();
    let service = AuthLayer::new(auth)
        .eager()
        .layer(answering(&[StatusCode::OK], seen.clone()));
    for _ in 0..3 {
        service.clone().oneshot(body("")).await.unwrap();
    }
    let seen = seen.lock().unwrap();
    for (headers, _) in seen.iter() {
        assert_eq!(headers["flyte-authorization"], "Bearer token-1");
        assert!(headers.get("authorization").is_none());
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "once by the test, once by the layer"
    );
}

/// An authenticator written before `Authenticator::header_name` existed.
#[derive(Debug)]
struct Fixed;

impl Authenticator for Fixed {
    fn get_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        Box::pin(async { Ok(Arc::new(Credentials::new("fixed", "flyte.test"))) })
    }
    fn refresh_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        self.get_credentials()
    }
    fn fetch_grpc_call_auth_metadata(&self) -> Option<flyte_auth::AuthHeader> {
        None
    }
}

#[tokio::test]
async fn an_authenticator_without_its_own_header_name_says_authorization() {
    let auth: Arc<dyn Authenticator> = Arc::new(Fixed);
    assert_eq!(auth.header_name().await.unwrap(), "authorization");
}
