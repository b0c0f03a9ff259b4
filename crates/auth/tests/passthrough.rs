#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(all(
        feature = "tower",
        feature = "reqwest",
        feature = "config",
        feature = "file"
    )),
    allow(missing_docs, reason = "empty without the features")
)]
#![cfg(all(
    feature = "tower",
    feature = "reqwest",
    feature = "config",
    feature = "file"
))]
//! Passthrough end to end: an axum app on loopback behind `passthrough::CaptureLayer` whose
//! handler calls a tonic backend (through `AuthLayer`) and an HTTP backend (through
//! `AuthenticatedClient`), both with the authenticator `admin.authType: Passthrough` builds.
//! The backends see the caller's own `authorization` and `cookie`.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use flyte_auth::{
    AuthLayer, AuthMode, AuthenticatedClient, Authenticator, Error, PlatformConfig,
    get_authenticator,
    passthrough::{self, CallerCredentials, CaptureLayer},
    store::FileStore,
    tower::AuthService,
};
use tonic::{
    Status,
    service::interceptor::InterceptedService,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::ServiceBuilder;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

/// What a backend saw: `(authorization, cookie)` of each call.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// The tonic health service on a loopback port, recording the credentials of each call.
async fn grpc_backend() -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let record = seen.clone();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let check = move |request: tonic::Request<()>| {
        let get = |name| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        record
            .lock()
            .unwrap()
            .push((get("authorization"), get("cookie")));
        Ok::<_, Status>(request)
    };
    tokio::spawn(async move {
        Server::builder()
            .add_service(InterceptedService::new(health, check))
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, seen)
}

/// An HTTP backend on loopback answering `GET /api`.
async fn http_backend() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::method("GET"))
        .and(matchers::path("/api"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// What the HTTP backend saw.
async fn http_seen(server: &MockServer) -> Vec<(Option<String>, Option<String>)> {
    let get = |r: &wiremock::Request, name| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (get(r, "authorization"), get(r, "cookie")))
        .collect()
}

/// The authenticator a config file saying `authType: Passthrough` builds, with a file store
/// in `dir` (which must stay empty).
fn passthrough_from_config(dir: &std::path::Path, endpoint: SocketAddr) -> Arc<dyn Authenticator> {
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "admin:\n  endpoint: dns:///{endpoint}\n  insecure: true\n  authType: Passthrough\n"
        ),
    )
    .unwrap();
    let cfg = PlatformConfig::builder()
        .config_file(&file)
        .no_env()
        .build()
        .unwrap();
    assert_eq!(cfg.auth_mode(), AuthMode::Passthrough);
    cfg.validate().unwrap();
    let store = FileStore::open(Some(dir.join("tokens"))).unwrap();
    get_authenticator(&cfg, Some(Arc::new(store))).unwrap()
}

/// The backends' clients, as the app holds them.
struct Clients {
    grpc: HealthClient<AuthService<Channel>>,
    http: AuthenticatedClient,
    http_url: String,
}

impl Clients {
    async fn new(auth: Arc<dyn Authenticator>, grpc: SocketAddr, http: &MockServer) -> Self {
        let channel = Channel::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        let grpc = HealthClient::new(
            ServiceBuilder::new()
                .layer(AuthLayer::new(auth.clone()))
                .service(channel),
        );
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        Self {
            grpc,
            http: AuthenticatedClient::new(client, auth).unwrap(),
            http_url: format!("{}/api", http.uri()),
        }
    }

    /// Both backends called: their errors, if any.
    async fn call_both(&self) -> Result<(), String> {
        let grpc = self
            .grpc
            .clone()
            .check(HealthCheckRequest::default())
            .await
            .map_err(|s| format!("grpc: {s:?}"));
        let http = self
            .http
            .send(self.http.get(&self.http_url))
            .await
            .map_err(|e| format!("http: {e}"));
        grpc?;
        http?.error_for_status().map_err(|e| e.to_string())?;
        Ok(())
    }
}

struct App {
    clients: Clients,
    /// Holds each request in the handler until the other one is there too.
    both_in: Option<tokio::sync::Barrier>,
}

async fn handler(State(app): State<Arc<App>>) -> (StatusCode, String) {
    if let Some(barrier) = &app.both_in {
        barrier.wait().await;
    }
    match app.clients.call_both().await {
        Ok(()) => (StatusCode::OK, "ok".into()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The app on a loopback port, behind the capture layer.
async fn start_app(app: Arc<App>) -> SocketAddr {
    let router = Router::new()
        .route("/call", get(handler))
        .with_state(app)
        .layer(CaptureLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn call_app(app: SocketAddr, authorization: &str, cookie: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{app}/call"))
        .header("authorization", authorization)
        .header("cookie", cookie)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn pair(authorization: &str, cookie: &str) -> (Option<String>, Option<String>) {
    (Some(authorization.to_owned()), Some(cookie.to_owned()))
}

#[tokio::test]
async fn the_backends_see_the_callers_own_authorization_and_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, grpc_seen) = grpc_backend().await;
    let http = http_backend().await;
    let auth = passthrough_from_config(dir.path(), grpc);
    let clients = Clients::new(auth, grpc, &http).await;
    let app = start_app(Arc::new(App {
        clients,
        both_in: None,
    }))
    .await;

    let (status, body) = call_app(app, "Bearer alice-token", "session=alice; theme=dark").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    let want = pair("Bearer alice-token", "session=alice; theme=dark");
    assert_eq!(*grpc_seen.lock().unwrap(), std::slice::from_ref(&want));
    assert_eq!(http_seen(&http).await, [want]);
    // Nothing was stored: no token file, no lock file.
    let tokens = dir.path().join("tokens");
    let written = std::fs::read_dir(&tokens)
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(written, 0, "files were written in {}", tokens.display());
}

#[tokio::test]
async fn concurrent_requests_each_forward_their_own_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, grpc_seen) = grpc_backend().await;
    let http = http_backend().await;
    let auth = passthrough_from_config(dir.path(), grpc);
    let clients = Clients::new(auth, grpc, &http).await;
    let app = start_app(Arc::new(App {
        clients,
        both_in: Some(tokio::sync::Barrier::new(2)),
    }))
    .await;

    let alice = call_app(app, "Bearer alice-token", "session=alice");
    let bob = call_app(app, "Bearer bob-token", "session=bob");
    let (alice, bob) =
        tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(alice, bob) })
            .await
            .expect("both requests are served together");
    assert_eq!(alice, (200, "ok".into()));
    assert_eq!(bob, (200, "ok".into()));

    let (a, b) = (
        pair("Bearer alice-token", "session=alice"),
        pair("Bearer bob-token", "session=bob"),
    );
    let grpc_seen = grpc_seen.lock().unwrap().clone();
    for seen in [grpc_seen, http_seen(&http).await] {
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.contains(&a) && seen.contains(&b), "{seen:?}");
    }
}

#[tokio::test]
async fn a_call_outside_a_request_fails_clearly_and_reaches_no_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, grpc_seen) = grpc_backend().await;
    let http = http_backend().await;
    let auth = passthrough_from_config(dir.path(), grpc);
    let clients = Clients::new(auth, grpc, &http).await;

    let status = clients
        .grpc
        .clone()
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status
            .message()
            .contains("no incoming request's credentials are in scope"),
        "{status:?}"
    );
    let err = clients
        .http
        .send(clients.http.get(&clients.http_url))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccessTokenNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("no incoming request's credentials are in scope"),
        "{err}"
    );

    assert!(grpc_seen.lock().unwrap().is_empty());
    assert!(http_seen(&http).await.is_empty());
}

#[tokio::test]
async fn a_spawned_task_forwards_only_when_the_scope_is_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, grpc_seen) = grpc_backend().await;
    let http = http_backend().await;
    let auth = passthrough_from_config(dir.path(), grpc);
    let clients = Arc::new(Clients::new(auth, grpc, &http).await);

    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer carol-token".parse().unwrap());
    headers.insert("cookie", "session=carol".parse().unwrap());
    let caller = CallerCredentials::from_headers(&headers);
    assert!(!format!("{caller:?}").contains("carol"), "{caller:?}");

    let (bare, carried) = passthrough::scope(caller, {
        let clients = clients.clone();
        async move {
            let bare = tokio::spawn({
                let clients = clients.clone();
                async move { clients.call_both().await }
            });
            let carried = tokio::spawn(passthrough::scope(
                passthrough::current().unwrap(),
                async move { clients.call_both().await },
            ));
            (bare.await.unwrap(), carried.await.unwrap())
        }
    })
    .await;
    let bare = bare.unwrap_err();
    assert!(
        bare.contains("no incoming request's credentials are in scope"),
        "{bare}"
    );
    carried.unwrap();

    let want = pair("Bearer carol-token", "session=carol");
    assert_eq!(*grpc_seen.lock().unwrap(), std::slice::from_ref(&want));
    assert_eq!(http_seen(&http).await, [want]);
}

#[tokio::test]
async fn a_rejection_of_the_callers_credentials_is_handed_on_and_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, _) = grpc_backend().await;
    let http = MockServer::start().await;
    Mock::given(matchers::path("/api"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&http)
        .await;
    let auth = passthrough_from_config(dir.path(), grpc);
    let clients = Clients::new(auth, grpc, &http).await;

    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer expired-token".parse().unwrap());
    let response = passthrough::scope(
        CallerCredentials::from_headers(&headers),
        clients.http.send(clients.http.get(&clients.http_url)),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        http_seen(&http).await,
        [(Some("Bearer expired-token".into()), None)]
    );
}

#[tokio::test]
async fn a_tonic_server_with_the_capture_layer_serves_in_the_callers_scope() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    // The interceptor runs while the request is served: the caller's credentials are in scope.
    let check = |request: tonic::Request<()>| {
        let caller = passthrough::current().ok_or_else(|| Status::internal("no scope"))?;
        let sent = caller.headers();
        let authorization = sent.iter().find(|(name, _)| name == "authorization");
        match authorization.map(|(_, value)| value.to_str().unwrap()) {
            Some("Bearer dave-token") => Ok(request),
            other => Err(Status::permission_denied(format!("saw {other:?}"))),
        }
    };
    tokio::spawn(async move {
        Server::builder()
            .layer(CaptureLayer::new())
            .add_service(InterceptedService::new(health, check))
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("authorization", "Bearer dave-token".parse().unwrap());
    HealthClient::new(channel).check(request).await.unwrap();
}
