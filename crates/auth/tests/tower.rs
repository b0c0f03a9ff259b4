#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(feature = "tower"),
    allow(missing_docs, reason = "empty without the feature")
)]
#![cfg(feature = "tower")]
//! `AuthLayer` on a real `tonic` channel against a real `tonic` server (the standard gRPC
//! health service, behind an interceptor that checks the bearer token), and on a plain
//! `tower` service for the HTTP status paths.

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
    AuthLayer, AuthService, Authenticator, BoxFuture, CachingAuthenticator, Credentials, Error,
    TokenFlow,
};
use http::{HeaderName, Request, Response, StatusCode};
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
    fn endpoint(&self) -> &str {
        "flyte.test"
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
    valid: Mutex<HashSet<String>>,
    proxy_valid: Mutex<Option<String>>,
    seen: Mutex<Vec<String>>,
}

impl Gate {
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
}

/// Starts the health service on a loopback port, behind the gate.
async fn start_server(gate: Arc<Gate>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let check = move |request: tonic::Request<()>| {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        gate.seen.lock().unwrap().push(header.clone());
        if let Some(proxy) = gate.proxy_valid.lock().unwrap().as_deref() {
            let sent = request
                .metadata()
                .get("proxy-authorization")
                .and_then(|v| v.to_str().ok());
            if sent != Some(proxy) {
                return Err(Status::unauthenticated("proxy token missing"));
            }
        }
        if gate.valid.lock().unwrap().contains(&header) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("bad token"))
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

async fn check(client: &mut Client) -> Result<(), Status> {
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn every_grpc_call_carries_the_token_and_one_login_serves_them_all() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    let addr = start_server(gate.clone()).await;
    let (auth, logins) = issuer("token", "authorization");
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(auth))
        .service(channel(addr).await);
    let mut client = HealthClient::new(service);

    for _ in 0..3 {
        check(&mut client).await.unwrap();
    }
    assert_eq!(gate.seen(), ["Bearer token-1"; 3]);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unauthenticated_refreshes_so_that_the_next_call_succeeds() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    let addr = start_server(gate.clone()).await;
    let (auth, logins) = issuer("token", "authorization");
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(auth.clone()))
        .service(channel(addr).await);
    let client = HealthClient::new(service);
    check(&mut client.clone()).await.unwrap();

    // The server revokes token-1 and will accept token-2: every call in flight with the
    // old token fails once, one new login happens, the next calls succeed.
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
    assert_eq!(
        logins.load(Ordering::SeqCst),
        2,
        "one new login for all rejected calls"
    );
    check(&mut client.clone()).await.unwrap();
    assert_eq!(gate.seen().last().unwrap(), "Bearer token-2");
    assert_eq!(
        auth.fetch_grpc_call_auth_metadata().unwrap().value(),
        "Bearer token-2"
    );
}

#[tokio::test]
async fn a_call_without_a_token_is_not_sent_and_fails_with_the_reason() {
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
        .layer(AuthLayer::new(auth))
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
async fn the_proxy_token_goes_in_its_own_header() {
    let gate = Arc::new(Gate::default());
    gate.accept("token-1");
    *gate.proxy_valid.lock().unwrap() = Some("Bearer proxy-1".into());
    let addr = start_server(gate.clone()).await;
    let (auth, _) = issuer("token", "authorization");
    let (proxy, proxy_logins) = issuer("proxy", "proxy-authorization");
    let layer = AuthLayer::new(auth).with_proxy(proxy);
    let mut client = HealthClient::new(layer.layer(channel(addr).await));
    check(&mut client).await.unwrap();
    check(&mut client).await.unwrap();
    assert_eq!(proxy_logins.load(Ordering::SeqCst), 1);
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
    let service = AuthLayer::new(auth).layer(inner);
    service.oneshot(Request::new(())).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].as_ref().unwrap(), "Bearer token-1");
}

/// A plain HTTP service answering `status` to everything, recording the headers it got.
fn answering(
    status: StatusCode,
    seen: Arc<Mutex<Vec<http::HeaderMap>>>,
) -> impl tower::Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = BoxFuture<'static, Result<Response<()>, Infallible>>,
> + Clone
+ Send
+ 'static {
    service_fn(move |request: Request<()>| {
        seen.lock().unwrap().push(request.headers().clone());
        let mut response = Response::new(());
        *response.status_mut() = status;
        let answer: BoxFuture<'static, _> = Box::pin(async move { Ok(response) });
        answer
    })
}

#[tokio::test]
async fn http_401_refreshes_the_token_without_resending() {
    let (auth, logins) = issuer("token", "authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service =
        AuthLayer::new(auth.clone()).layer(answering(StatusCode::UNAUTHORIZED, seen.clone()));
    let response = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the 401 is handed on"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the request was not sent again"
    );
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(seen.lock().unwrap()[1]["authorization"], "Bearer token-2");
}

#[tokio::test]
async fn http_407_refreshes_the_proxy_token_only() {
    let (auth, logins) = issuer("token", "authorization");
    let (proxy, proxy_logins) = issuer("proxy", "proxy-authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth).with_proxy(proxy).layer(answering(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        seen.clone(),
    ));
    service.oneshot(Request::new(())).await.unwrap();
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first["authorization"], "Bearer token-1");
    assert_eq!(first["proxy-authorization"], "Bearer proxy-1");
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(proxy_logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn success_refreshes_nothing() {
    let (auth, logins) = issuer("token", "authorization");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = AuthLayer::new(auth).layer(answering(StatusCode::OK, seen.clone()));
    for _ in 0..3 {
        service.clone().oneshot(Request::new(())).await.unwrap();
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().unwrap().len(), 3);
}
