#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(feature = "reqwest"),
    allow(missing_docs, reason = "empty without the feature")
)]
#![cfg(feature = "reqwest")]
//! `AuthenticatedClient` against a mock HTTP server that checks the bearer token.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use flyte_auth::{
    AuthenticatedClient, Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint,
    Error, TokenFlow,
};

/// The test server's endpoint, parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse("flyte.test").expect("a valid endpoint"));
use http::HeaderName;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string, header, method, path},
};

/// Issues `<prefix>-1`, `<prefix>-2`, ... one per login.
#[derive(Debug)]
struct Issuer {
    prefix: &'static str,
    header: &'static str,
    logins: Arc<AtomicUsize>,
    /// Logins after this many fail.
    fail_after: usize,
}

impl TokenFlow for Issuer {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.fail_after {
                return Err(Error::authentication("no more logins in this test"));
            }
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
    fail_after: usize,
) -> (Arc<dyn Authenticator>, Arc<AtomicUsize>) {
    let logins = Arc::new(AtomicUsize::new(0));
    let flow = Issuer {
        prefix,
        header,
        logins: logins.clone(),
        fail_after,
    };
    (
        Arc::new(CachingAuthenticator::builder(flow).build()),
        logins,
    )
}

/// `/api` answers 401 to `Bearer token-1` and 200 to `Bearer token-2`, echoing nothing.
async fn server_that_revoked_token_1() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/api"))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/api"))
        .and(header("authorization", "Bearer token-2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

fn client(auth: Arc<dyn Authenticator>) -> AuthenticatedClient {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    AuthenticatedClient::new(http, auth).unwrap().eager()
}

fn lazy_client(auth: Arc<dyn Authenticator>) -> AuthenticatedClient {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    AuthenticatedClient::new(http, auth).unwrap()
}

#[tokio::test]
async fn lazy_a_server_without_auth_gets_no_token_and_no_login_happens() {
    let server = MockServer::start().await;
    Mock::given(path("/api"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let client = lazy_client(auth);
    let url = format!("{}/api", server.uri());
    for _ in 0..2 {
        assert_eq!(client.send(client.get(&url)).await.unwrap().status(), 200);
    }
    assert_eq!(logins.load(Ordering::SeqCst), 0);
    assert!(
        requests(&server)
            .await
            .iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
}

#[tokio::test]
async fn lazy_the_first_401_logs_in_and_sends_the_request_again() {
    let server = MockServer::start().await;
    Mock::given(path("/api"))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(path("/api"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let client = lazy_client(auth);
    let url = format!("{}/api", server.uri());
    let response = client.send(client.post(&url).body("once")).await.unwrap();
    assert_eq!(response.status(), 200);
    client.send(client.get(&url)).await.unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 3);
    assert!(!seen[0].headers.contains_key("authorization"));
    assert_eq!(seen[1].body, b"once");
    assert_eq!(seen[2].headers["authorization"], "Bearer token-1");
}

#[tokio::test]
async fn every_request_carries_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api"))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&server)
        .await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let client = client(auth);
    let url = format!("{}/api", server.uri());
    for _ in 0..3 {
        assert_eq!(client.send(client.get(&url)).await.unwrap().status(), 200);
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_401_refreshes_and_the_request_is_sent_again_with_its_body() {
    let server = server_that_revoked_token_1().await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let client = client(auth);
    let response = client
        .send(client.post(format!("{}/api", server.uri())).body("payload"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.body == b"payload"));
}

#[tokio::test]
async fn a_streamed_body_is_not_sent_again_but_the_next_request_has_the_new_token() {
    let server = server_that_revoked_token_1().await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let client = client(auth);
    let url = format!("{}/api", server.uri());
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("streamed")]);
    let response = client
        .send(client.post(&url).body(reqwest::Body::wrap_stream(stream)))
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the rejection is handed on");
    assert_eq!(requests(&server).await.len(), 1, "sent once");
    assert_eq!(
        logins.load(Ordering::SeqCst),
        2,
        "but the token was renewed"
    );
    assert_eq!(client.send(client.get(&url)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_failed_refresh_after_a_401_is_the_error() {
    let server = server_that_revoked_token_1().await;
    let (auth, _) = issuer("token", "authorization", 1);
    let client = client(auth);
    let err = client
        .send(client.get(format!("{}/api", server.uri())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no more logins"), "{err}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn no_token_means_no_request() {
    let server = MockServer::start().await;
    let (auth, _) = issuer("token", "authorization", 0);
    let client = client(auth);
    let err = client
        .send(client.get(format!("{}/api", server.uri())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no more logins"), "{err}");
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn the_proxy_token_is_sent_and_a_407_renews_it() {
    let server = MockServer::start().await;
    Mock::given(path("/api"))
        .and(header("proxy-authorization", "Bearer proxy-1"))
        .respond_with(ResponseTemplate::new(407))
        .mount(&server)
        .await;
    Mock::given(path("/api"))
        .and(header("authorization", "Bearer token-1"))
        .and(header("proxy-authorization", "Bearer proxy-2"))
        .and(body_string("{}"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let (proxy, proxy_logins) = issuer("proxy", "proxy-authorization", usize::MAX);
    let client = client(auth).with_proxy(proxy);
    let response = client
        .send(client.put(format!("{}/api", server.uri())).body("{}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(proxy_logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn other_statuses_are_the_callers() {
    let server = MockServer::start().await;
    Mock::given(path("/api"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let (auth, logins) = issuer("token", "authorization", usize::MAX);
    let client = client(auth);
    let response = client
        .send(client.delete(format!("{}/api", server.uri())))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_transport_failure_names_the_url_without_its_query() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (auth, _) = issuer("token", "authorization", usize::MAX);
    let client = client(auth);
    let err = client
        .send(client.get(format!("http://127.0.0.1:{port}/api?key=s3cr3t")))
        .await
        .unwrap_err();
    match &err {
        Error::Transport { url, .. } => assert_eq!(url, &format!("http://127.0.0.1:{port}/api")),
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(!format!("{err:?}").contains("s3cr3t"), "{err:?}");
}

/// The token goes to the origin the request was made for: a redirect within it is followed
/// with the token, one to another origin (another port here) is not followed, so a
/// discovered header name (`flyte-authorization`, which `reqwest` itself does not strip on
/// a cross-origin redirect as it strips `authorization`) never reaches the other server. The
/// 3xx is returned for the caller to follow.
#[tokio::test]
async fn the_token_does_not_follow_a_redirect_to_another_origin() {
    let flyte = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/moved"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/api"))
        .mount(&flyte)
        .await;
    for header_name in ["flyte-authorization", "authorization"] {
        Mock::given(path("/api"))
            .and(header(header_name, "Bearer token-1"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&flyte)
            .await;
    }
    Mock::given(path("/away"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/landing", elsewhere.uri())),
        )
        .mount(&flyte)
        .await;
    Mock::given(path("/landing"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;
    for header_name in ["flyte-authorization", "authorization"] {
        let (auth, _) = issuer("token", header_name, usize::MAX);
        let client = client(auth);
        let same = client
            .send(client.get(format!("{}/moved", flyte.uri())))
            .await
            .unwrap();
        assert_eq!(
            same.status(),
            200,
            "a same-origin redirect is followed with the {header_name} header"
        );

        let away = client
            .send(client.get(format!("{}/away", flyte.uri())))
            .await
            .unwrap();
        assert_eq!(away.status(), 302, "{header_name}");
        assert_eq!(
            away.headers()["location"],
            format!("{}/landing", elsewhere.uri()).as_str()
        );
    }
    let leaked: Vec<_> = requests(&elsewhere)
        .await
        .into_iter()
        .filter(|r| {
            r.headers.contains_key("flyte-authorization") || r.headers.contains_key("authorization")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the token reached another origin: {leaked:?}"
    );
    assert!(requests(&elsewhere).await.is_empty(), "not followed at all");
}
