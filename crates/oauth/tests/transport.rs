#![allow(clippy::unwrap_used, reason = "tests")]
//! TLS trust (test CA, CA file, skip-verify) and proxying against real loopback servers.

mod support;

use flyte_auth_core::Error;
use flyte_auth_oauth::{
    ClientAuth, HttpSettings, OAuthClient, RemoteClientConfigStore, TokenRequest,
};
use support::{RecordingProxy, TestPki, TlsServer};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const TOKEN: &str = r#"{"access_token":"tls-token","token_type":"Bearer","expires_in":60}"#;

fn request(url: String) -> TokenRequest {
    TokenRequest::client_credentials(url, ClientAuth::confidential("app", "secret"))
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_by_default() {
    let pki = TestPki::generate();
    let server = TlsServer::start(&pki, TOKEN);
    let client = OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap();
    let e = client
        .token(&request(server.url("/token")))
        .await
        .unwrap_err();
    match &e {
        Error::Transport { message, .. } => {
            assert!(message.contains("certificate"), "{message}");
            assert!(message.contains("caCertFilePath"), "{message}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(server.handshakes(), 0, "no request got through");
}

#[tokio::test]
async fn a_ca_file_makes_the_certificate_trusted() {
    let pki = TestPki::generate();
    let server = TlsServer::start(&pki, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let client = OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .ca_cert_file(&ca_file),
    )
    .unwrap();
    let token = client.token(&request(server.url("/token"))).await.unwrap();
    assert_eq!(token.access_token.expose_secret(), "tls-token");
    assert_eq!(server.handshakes(), 1);
}

/// The configured CA certificates are checked when the client is made, not at the first
/// handshake (the roots load later, on a thread): a PEM block that holds no certificate is a
/// configuration error at once, naming where it came from.
#[test]
fn a_ca_bundle_with_an_unusable_certificate_is_refused_at_construction() {
    let pki = TestPki::generate();
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
    for pem in [garbage.to_owned(), format!("{}{garbage}", pki.ca_pem)] {
        let e = OAuthClient::new(
            HttpSettings::new()
                .system_proxy(false)
                .ca_cert_pem(pem.as_bytes()),
        )
        .unwrap_err();
        match &e {
            Error::Config { message } => {
                assert!(message.contains("the given PEM certificates"), "{message}");
            }
            other => panic!("expected Config, got {other:?}"),
        }
    }
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .ca_cert_pem(pki.ca_pem.as_bytes()),
    )
    .unwrap();
}

#[tokio::test]
async fn skip_verify_accepts_the_certificate() {
    let pki = TestPki::generate();
    let server = TlsServer::start(&pki, TOKEN);
    let settings = HttpSettings::new()
        .system_proxy(false)
        .danger_accept_invalid_certs(true);
    assert!(!settings.verifies_certificates());
    let client = OAuthClient::new(settings).unwrap();
    let token = client.token(&request(server.url("/token"))).await.unwrap();
    assert_eq!(token.access_token.expose_secret(), "tls-token");
}

#[tokio::test]
async fn discovery_uses_the_same_tls_settings() {
    let pki = TestPki::generate();
    let server = TlsServer::start(
        &pki,
        r#"{"token_endpoint":"https://idp.example.org/token","client_id":"flytectl"}"#,
    );
    let trusting = OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .ca_cert_pem(pki.ca_pem.as_bytes()),
    )
    .unwrap();
    let store = RemoteClientConfigStore::new(&server.addr.to_string(), false, trusting).unwrap();
    assert!(store.base_url().starts_with("https://"));
    let discovery = store.discover().await.unwrap();
    assert_eq!(
        discovery.metadata.token_endpoint.as_deref(),
        Some("https://idp.example.org/token")
    );

    let default = OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap();
    let store = RemoteClientConfigStore::new(&server.addr.to_string(), false, default).unwrap();
    assert!(matches!(
        store.discover().await.unwrap_err(),
        Error::Transport { .. }
    ));
}

#[tokio::test]
async fn the_token_request_goes_through_the_proxy() {
    let origin = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "proxied-token"
        })))
        .expect(1)
        .mount(&origin)
        .await;
    let proxy = RecordingProxy::start().await;
    let client = OAuthClient::new(HttpSettings::new().proxy(proxy.url())).unwrap();
    let token = client
        .token(&request(format!("{}/oauth2/token", origin.uri())))
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "proxied-token");
    assert_eq!(
        proxy.lines(),
        [format!("POST {}/oauth2/token HTTP/1.1", origin.uri())],
        "the proxy saw the absolute-form request"
    );
}

#[tokio::test]
async fn a_proxy_that_is_down_is_reported_as_such() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client =
        OAuthClient::new(HttpSettings::new().proxy(format!("http://user:proxy-pw-XYZ@{addr}")))
            .unwrap();
    let e = client
        .token(&request("http://flyte.invalid/token".to_owned()))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?} {:?}", client);
    assert!(!shown.contains("XYZ"), "{shown}");
    match &e {
        Error::Transport { message, .. } => assert!(message.contains("proxy"), "{message}"),
        other => panic!("expected Transport, got {other:?}"),
    }
}

/// A proxy's token, as `proxyCommand` gives it; or no token at all.
#[derive(Debug)]
struct ProxyToken(Option<&'static str>);

impl flyte_auth_core::Authenticator for ProxyToken {
    fn get_credentials(
        &self,
    ) -> flyte_auth_core::BoxFuture<'_, Result<std::sync::Arc<flyte_auth_core::Credentials>, Error>>
    {
        Box::pin(async move {
            match self.0 {
                Some(token) => Ok(std::sync::Arc::new(flyte_auth_core::Credentials::new(
                    token, "proxy",
                ))),
                None => Err(Error::config("the proxy command failed")),
            }
        })
    }
    fn refresh_credentials(
        &self,
    ) -> flyte_auth_core::BoxFuture<'_, Result<std::sync::Arc<flyte_auth_core::Credentials>, Error>>
    {
        self.get_credentials()
    }
    fn fetch_grpc_call_auth_metadata(&self) -> Option<flyte_auth_core::AuthHeader> {
        let credentials = flyte_auth_core::Credentials::new(self.0?, "proxy");
        flyte_auth_core::AuthHeader::bearer(
            reqwest::header::HeaderName::from_static("proxy-authorization"),
            &credentials,
        )
        .ok()
    }
}

#[tokio::test]
async fn the_request_header_goes_on_discovery_and_token_requests() {
    let server = MockServer::start().await;
    let header = || wiremock::matchers::header("proxy-authorization", "Bearer iap-token");
    for document in [
        "/.well-known/oauth-authorization-server",
        "/config/v1/flyte_client",
    ] {
        Mock::given(method("GET"))
            .and(path(document))
            .and(header())
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "token_endpoint": "/token", "client_id": "flytectl"
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header())
        .respond_with(ResponseTemplate::new(200).set_body_string(TOKEN))
        .expect(1)
        .mount(&server)
        .await;
    let client = OAuthClient::new(HttpSettings::new().system_proxy(false))
        .unwrap()
        .with_request_header(
            &flyte_auth_core::Endpoint::parse(&server.uri()).unwrap(),
            std::sync::Arc::new(ProxyToken(Some("iap-token"))),
        );
    let store = RemoteClientConfigStore::from_base_url(server.uri(), client.clone())
        .prefer(flyte_auth_oauth::DiscoveryFlavour::FlyteAdmin);
    let cfg = flyte_auth_core::ClientConfigStore::get_client_config(&store)
        .await
        .unwrap();
    client.token(&request(cfg.token_endpoint)).await.unwrap();
}

#[tokio::test]
async fn without_the_proxy_token_no_request_is_sent() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_string(TOKEN))
        .expect(0)
        .mount(&server)
        .await;
    let client = OAuthClient::new(HttpSettings::new().system_proxy(false))
        .unwrap()
        .with_request_header(
            &flyte_auth_core::Endpoint::parse(&server.uri()).unwrap(),
            std::sync::Arc::new(ProxyToken(None)),
        );
    let err = client
        .token(&request(format!("{}/token", server.uri())))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the proxy command failed"),
        "{err}"
    );
}

/// The proxy in front of Flyte is not in front of a third-party identity provider: the
/// `proxy-authorization` token goes to the Flyte endpoint's origin only (discovery, and the
/// built-in authorization server there), never to a token endpoint on another origin, which
/// would receive a credential meant for the proxy.
#[tokio::test]
async fn the_request_header_goes_to_the_flyte_origin_only() {
    let flyte = MockServer::start().await;
    let idp = MockServer::start().await;
    for document in [
        "/.well-known/oauth-authorization-server",
        "/config/v1/flyte_client",
    ] {
        Mock::given(method("GET"))
            .and(path(document))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "token_endpoint": format!("{}/token", idp.uri()),
                "client_id": "flytectl"
            })))
            .mount(&flyte)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(TOKEN))
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(TOKEN))
        .mount(&flyte)
        .await;
    let client = OAuthClient::new(HttpSettings::new().system_proxy(false))
        .unwrap()
        .with_request_header(
            // Written as configs write it: the origin is compared, not the spelling.
            &flyte_auth_core::Endpoint::parse(&format!("dns:///{}", flyte.address()))
                .unwrap()
                .with_insecure(true),
            std::sync::Arc::new(ProxyToken(Some("iap-token"))),
        );
    let store = RemoteClientConfigStore::from_base_url(flyte.uri(), client.clone())
        .prefer(flyte_auth_oauth::DiscoveryFlavour::FlyteAdmin);
    let cfg = flyte_auth_core::ClientConfigStore::get_client_config(&store)
        .await
        .unwrap();
    client.token(&request(cfg.token_endpoint)).await.unwrap();
    client
        .token(&request(format!("{}/token", flyte.uri())))
        .await
        .unwrap();

    let carried = |r: &wiremock::Request| {
        r.headers
            .get("proxy-authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let at_flyte = flyte.received_requests().await.unwrap();
    assert_eq!(at_flyte.len(), 3, "two documents and a token request");
    for r in &at_flyte {
        assert_eq!(carried(r).as_deref(), Some("Bearer iap-token"), "{}", r.url);
    }
    let at_idp = idp.received_requests().await.unwrap();
    assert_eq!(at_idp.len(), 1);
    assert_eq!(
        carried(&at_idp[0]),
        None,
        "the proxy token went to the identity provider"
    );
}

#[tokio::test]
async fn the_server_date_is_read_from_any_answer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404).insert_header("date", "Mon, 07 Dec 2026 19:00:00 GMT"),
        )
        .mount(&server)
        .await;
    let client = OAuthClient::new(HttpSettings::new()).unwrap();
    assert_eq!(
        client.server_date(&server.uri()).await.as_deref(),
        Some("Mon, 07 Dec 2026 19:00:00 GMT")
    );
    assert_eq!(client.server_date("http://127.0.0.1:1/").await, None);
}
