#![allow(clippy::unwrap_used, reason = "tests")]
//! Flyte server discovery against a mock flyteadmin.

mod support;

use flyte_auth_core::{ClientConfigStore, Endpoint, Error};
use flyte_auth_oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore, RetryPolicy};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn client() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap()
}

/// `http://127.0.0.1:port` → `127.0.0.1:port`, as written in a Flyte config.
fn host_port(server: &MockServer) -> String {
    server.uri().trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn snake_case_documents_with_empty_strings_become_a_client_config() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": format!("{base}/oauth2"),
            "authorization_endpoint": format!("{base}/oauth2/authorize"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "device_authorization_endpoint": "",
            "scopes_supported": ["all", "offline"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "code_challenge_methods_supported": ["S256"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "client_id": "flytectl",
            "redirect_uri": "http://localhost:53593/callback",
            "scopes": ["all", "offline"],
            "authorization_metadata_key": "",
            "service_http_endpoint": "",
            "audience": ""
        })))
        .expect(1)
        .mount(&server)
        .await;

    let store =
        RemoteClientConfigStore::new(&format!("dns:///{}", host_port(&server)), true, client())
            .unwrap();
    assert_eq!(store.base_url(), base);
    let cfg = store.get_client_config().await.unwrap();
    assert_eq!(cfg.token_endpoint, format!("{base}/oauth2/token"));
    assert_eq!(
        cfg.authorization_endpoint,
        format!("{base}/oauth2/authorize")
    );
    assert_eq!(cfg.client_id, "flytectl");
    assert_eq!(cfg.redirect_uri, "http://localhost:53593/callback");
    assert_eq!(cfg.scopes, ["all", "offline"]);
    assert_eq!(
        cfg.header_key, "authorization",
        "empty key means the default"
    );
    assert_eq!(cfg.audience, None, "empty audience means none");
    assert_eq!(cfg.device_authorization_endpoint, None, "empty means unset");

    // Fetched once, reused (the mocks expect one call each).
    let again = store.get_client_config().await.unwrap();
    assert_eq!(again, cfg);
    let discovery = store.discover().await.unwrap();
    assert_eq!(
        discovery.metadata.grant_types_supported,
        ["authorization_code", "client_credentials", "refresh_token"]
    );
    assert_eq!(
        discovery.metadata.code_challenge_methods_supported,
        ["S256"]
    );
}

#[tokio::test]
async fn lower_camel_case_documents_are_read_too() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": "https://idp.example.org",
            "authorizationEndpoint": "https://idp.example.org/authorize",
            "tokenEndpoint": "https://idp.example.org/token",
            "deviceAuthorizationEndpoint": "https://idp.example.org/device",
            "grantTypesSupported": ["urn:ietf:params:oauth:grant-type:device_code"]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "clientId": "flytectl",
            "redirectUri": "http://localhost:53593/callback",
            "scopes": ["all"],
            "authorizationMetadataKey": "flyte-authorization",
            "serviceHttpEndpoint": "",
            "audience": "https://flyte.example.org"
        })))
        .mount(&server)
        .await;

    let store = RemoteClientConfigStore::from_base_url(&base, client());
    let cfg = store.get_client_config().await.unwrap();
    assert_eq!(cfg.token_endpoint, "https://idp.example.org/token");
    assert_eq!(
        cfg.device_authorization_endpoint.as_deref(),
        Some("https://idp.example.org/device")
    );
    assert_eq!(cfg.client_id, "flytectl");
    assert_eq!(cfg.header_key, "flyte-authorization");
    assert_eq!(cfg.audience.as_deref(), Some("https://flyte.example.org"));
    assert_eq!(cfg.scopes, ["all"]);
    let discovery = store.cached().expect("cached after success");
    assert_eq!(
        discovery.metadata.grant_types_supported,
        ["urn:ietf:params:oauth:grant-type:device_code"]
    );
    assert_eq!(discovery.client.service_http_endpoint, None);
}

#[tokio::test]
async fn a_failed_discovery_is_not_remembered() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream connect error"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": "/oauth2/token"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"client_id": "flytectl"})),
        )
        .mount(&server)
        .await;

    // One attempt per request: the 503 is the answer of this discovery.
    let once = OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .retry(RetryPolicy::new().max_retries(0)),
    )
    .unwrap();
    let store = RemoteClientConfigStore::from_base_url(server.uri(), once);
    let e = store.get_client_config().await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { status: Some(503), message } if message.contains("upstream connect error")),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert!(store.cached().is_none());

    let cfg = store.get_client_config().await.unwrap();
    assert_eq!(
        cfg.token_endpoint,
        format!("{}/oauth2/token", server.uri()),
        "a relative endpoint is resolved against the platform URL"
    );
}

#[tokio::test]
async fn metadata_without_a_token_endpoint_is_an_invalid_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"token_endpoint": ""})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&server)
        .await;
    let store = RemoteClientConfigStore::from_base_url(server.uri(), client());
    let e = store.get_client_config().await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { message, .. } if message.contains("token_endpoint")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_server_without_auth_answers_404_and_the_error_says_so() {
    let server = MockServer::start().await;
    let store = RemoteClientConfigStore::from_base_url(server.uri(), client());
    let e = store.get_client_config().await.unwrap_err();
    match &e {
        Error::InvalidResponse { status, message } => {
            assert_eq!(*status, Some(404));
            assert!(message.contains("authentication enabled"), "{message}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

/// A web console answers every path with its HTML page: one error saying so.
#[tokio::test]
async fn an_html_answer_everywhere_says_the_endpoint_is_not_the_api_endpoint() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html; charset=utf-8")
                .set_body_string("<!doctype html><html><body>Flyte console</body></html>"),
        )
        .mount(&server)
        .await;
    let store = RemoteClientConfigStore::from_base_url(server.uri(), client());
    let err = store.get_client_config().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert!(
        text.contains("HTML page: it is not the Flyte API endpoint"),
        "{text}"
    );
    assert!(!text.contains("Flyte console"), "{text}");
}

/// A Flyte 2 backend refusing the call: its Connect code and message reach the user.
#[tokio::test]
async fn a_connect_error_keeps_its_code_and_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(flyte_auth_oauth::CONNECT_PUBLIC_CLIENT_CONFIG_PATH))
        .and(wiremock::matchers::header(
            "content-type",
            "application/json",
        ))
        .and(wiremock::matchers::header("connect-protocol-version", "1"))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({
            "code": "unavailable",
            "message": "auth metadata is warming up"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": "/oauth2/token"
        })))
        .mount(&server)
        .await;
    // No /config/v1/flyte_client: wiremock answers 404.
    let store = RemoteClientConfigStore::from_base_url(server.uri(), client());
    let err = store.get_client_config().await.unwrap_err().to_string();
    assert!(
        err.contains("Connect error `unavailable`: auth metadata is warming up"),
        "{err}"
    );
    assert!(err.contains("HTTP 503"), "{err}");
}

/// protojson names, unknown fields (`dataplaneDomain`, a future one) ignored.
#[tokio::test]
async fn a_flyte_2_answer_with_unknown_fields_is_read() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("POST"))
        .and(path(flyte_auth_oauth::CONNECT_PUBLIC_CLIENT_CONFIG_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "clientId": "flytectl",
            "redirectUri": "http://localhost:53593/callback",
            "scopes": ["all"],
            "authorizationMetadataKey": "flyte-authorization",
            "dataplaneDomain": "dp.example.org",
            "someFutureField": {"nested": true}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(flyte_auth_oauth::CONNECT_OAUTH2_METADATA_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": base,
            "tokenEndpoint": format!("{base}/oauth2/token"),
            "deviceAuthorizationEndpoint": format!("{base}/oauth2/device"),
        })))
        .expect(1)
        .mount(&server)
        .await;
    let store = RemoteClientConfigStore::from_base_url(server.uri(), client())
        .prefer(flyte_auth_oauth::DiscoveryFlavour::Flyte2);
    let cfg = store.get_client_config().await.unwrap();
    assert_eq!(cfg.token_endpoint, format!("{base}/oauth2/token"));
    assert_eq!(cfg.client_id, "flytectl");
    assert_eq!(cfg.header_key, "flyte-authorization");
    assert_eq!(
        store.flavour(),
        Some(flyte_auth_oauth::DiscoveryFlavour::Flyte2)
    );
}

/// A Flyte server on verified TLS whose discovery document is `body` (every path answers it).
fn tls_flyte(pki: &support::TestPki, body: String) -> support::TlsServer {
    support::TlsServer::start(pki, Box::leak(body.into_boxed_str()))
}

fn trusting(pki: &support::TestPki) -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .ca_cert_pem(pki.ca_pem.as_bytes()),
    )
    .unwrap()
}

/// Discovery over verified TLS must not hand the client secret, refresh tokens, codes and
/// device codes to a plain-HTTP endpoint: each such endpoint is a configuration error naming
/// the field and the URL (redacted), and nothing is sent there.
#[tokio::test]
async fn an_https_server_announcing_a_plain_http_endpoint_is_refused() {
    let plain = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"access_token":"at","token_type":"Bearer"}"#),
        )
        .expect(0)
        .mount(&plain)
        .await;
    let http_url = format!("http://user:pw@{}/oauth2/x?secret=leak", host_port(&plain));
    let pki = support::TestPki::generate();
    for field in [
        "token_endpoint",
        "authorization_endpoint",
        "device_authorization_endpoint",
    ] {
        let mut document = serde_json::json!({
            "issuer": "https://idp.example.org",
            "token_endpoint": "https://idp.example.org/token",
            "authorization_endpoint": "HTTPS://idp.example.org/authorize",
            "device_authorization_endpoint": "https://idp.example.org/device",
            "client_id": "flytectl",
        });
        document[field] = http_url.clone().into();
        let server = tls_flyte(&pki, document.to_string());
        let store =
            RemoteClientConfigStore::new(&server.addr.to_string(), false, trusting(&pki)).unwrap();
        assert!(store.base_url().starts_with("https://"));
        let e = store.get_client_config().await.unwrap_err();
        let Error::Config { message } = &e else {
            panic!("expected a configuration error for {field}, got {e:?}");
        };
        assert!(message.contains(field), "{message}");
        let shown = format!("http://{}/oauth2/x", host_port(&plain));
        assert!(message.contains(&shown), "{message}");
        assert!(
            !message.contains("pw") && !message.contains("leak"),
            "{message}"
        );
    }
}

/// A Flyte server on verified TLS announcing `token_endpoint` (and https everything else),
/// and a context for it with `overrides`.
fn tls_context(
    pki: &support::TestPki,
    token_endpoint: &str,
    overrides: flyte_auth_oauth::Overrides,
) -> (support::TlsServer, flyte_auth_oauth::ClientContext) {
    let server = tls_flyte(
        pki,
        serde_json::json!({
            "token_endpoint": token_endpoint,
            "authorization_endpoint": "http://idp.internal/authorize",
            "client_id": "flytectl",
            "scopes": ["all"],
        })
        .to_string(),
    );
    let ctx = flyte_auth_oauth::ClientContext::builder(
        Endpoint::parse(&server.addr.to_string()).unwrap(),
    )
    .http_client(trusting(pki))
    .overrides(overrides)
    .build()
    .unwrap();
    (server, ctx)
}

/// The check applies to the endpoints a flow uses as the server announced them: a
/// configured `tokenUrl` replaces a plain-HTTP announced one (which is then never used), and
/// an announced endpoint the flow does not use (here the authorization endpoint) is no
/// reason to fail.
#[tokio::test]
async fn a_configured_token_url_replacing_a_plain_http_announced_one_is_used() {
    use flyte_auth_oauth::{Field, Overrides};
    let pki = support::TestPki::generate();
    let (_server, ctx) = tls_context(
        &pki,
        "http://idp.internal/token",
        Overrides::new().token_endpoint("https://idp.example.org/token"),
    );
    let cfg = ctx
        .resolve(&[Field::TokenEndpoint, Field::Scopes])
        .await
        .unwrap();
    assert_eq!(cfg.token_endpoint, "https://idp.example.org/token");
    assert_eq!(cfg.scopes, ["all"], "the server was asked");
}

/// An announced plain-HTTP endpoint the flow uses, not replaced by the configuration, is still
/// refused, with the message naming the field and what skips discovery.
#[tokio::test]
async fn an_announced_plain_http_token_endpoint_the_flow_uses_is_still_refused() {
    use flyte_auth_oauth::{Field, Overrides};
    let pki = support::TestPki::generate();
    let (_server, ctx) = tls_context(&pki, "http://idp.internal/token", Overrides::new());
    let e = ctx
        .resolve(&[Field::TokenEndpoint, Field::Scopes])
        .await
        .unwrap_err();
    let Error::Config { message } = &e else {
        panic!("expected a configuration error, got {e:?}");
    };
    assert!(
        message.contains("announces token_endpoint http://idp.internal/token"),
        "{message}"
    );
    assert!(message.contains("set tokenUrl"), "{message}");
    // The same for an authorization endpoint the browser login would use.
    let (_server, ctx) = tls_context(&pki, "https://idp.example.org/token", Overrides::new());
    let e = ctx
        .resolve(&[Field::AuthorizationEndpoint, Field::TokenEndpoint])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("authorization_endpoint"), "{e}");
}

/// The local sandbox: a Flyte endpoint on plain HTTP (insecure, or written `http://`) may
/// announce plain-HTTP endpoints, since its own discovery already travels in clear text.
#[tokio::test]
async fn a_plain_http_server_may_announce_plain_http_endpoints() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": format!("{base}/oauth2/token"),
            "authorization_endpoint": "http://localhost:30080/oauth2/authorize",
            "device_authorization_endpoint": "http://sandbox.internal/oauth2/device",
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "client_id": "flytectl"
        })))
        .mount(&server)
        .await;
    for written in [host_port(&server), base.clone()] {
        let store = RemoteClientConfigStore::new(&written, true, client()).unwrap();
        let cfg = store.get_client_config().await.unwrap();
        assert_eq!(cfg.token_endpoint, format!("{base}/oauth2/token"));
    }
}

/// A configured `tokenUrl` on plain HTTP is the user's choice: it is used as written, even
/// with a Flyte endpoint on TLS.
#[tokio::test]
async fn a_configured_plain_http_token_url_is_kept() {
    let pki = support::TestPki::generate();
    let server = tls_flyte(
        &pki,
        serde_json::json!({
            "token_endpoint": "https://idp.example.org/token",
            "client_id": "flytectl",
            "scopes": ["all"],
        })
        .to_string(),
    );
    let ctx = flyte_auth_oauth::ClientContext::builder(
        Endpoint::parse(&server.addr.to_string()).unwrap(),
    )
    .http_client(trusting(&pki))
    .overrides(flyte_auth_oauth::Overrides::new().token_endpoint("http://idp.internal/token"))
    .build()
    .unwrap();
    let cfg = ctx
        .resolve(&[
            flyte_auth_oauth::Field::TokenEndpoint,
            flyte_auth_oauth::Field::Scopes,
        ])
        .await
        .unwrap();
    assert_eq!(cfg.token_endpoint, "http://idp.internal/token");
    assert_eq!(cfg.scopes, ["all"], "the server was asked");
}

/// RFC 9207: the metadata's `authorization_response_iss_parameter_supported` makes the
/// discovered issuer the one every browser login's callback must name; without it, or for
/// an authorization endpoint the configuration replaces, nothing is required.
#[tokio::test]
async fn the_iss_announcement_names_the_issuer_callbacks_must_carry() {
    for announced in [true, false] {
        let server = MockServer::start().await;
        let base = server.uri();
        Mock::given(method("GET"))
            .and(path("/.well-known/oauth-authorization-server"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "issuer": format!("{base}/oauth2"),
                "authorization_endpoint": format!("{base}/oauth2/authorize"),
                "token_endpoint": format!("{base}/oauth2/token"),
                "authorization_response_iss_parameter_supported": announced,
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/config/v1/flyte_client"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"client_id": "flytectl"})),
            )
            .mount(&server)
            .await;
        let store = RemoteClientConfigStore::from_base_url(base.clone(), client());
        let discovery = store.discover().await.unwrap();
        assert_eq!(
            discovery
                .metadata
                .authorization_response_iss_parameter_supported,
            announced
        );
        let cfg = store.get_client_config().await.unwrap();
        let expected = announced.then(|| format!("{base}/oauth2"));
        assert_eq!(cfg.authorization_response_issuer, expected);

        let replaced = flyte_auth_oauth::ClientContext::builder(Endpoint::parse(&base).unwrap())
            .discovery(std::sync::Arc::new(store))
            .overrides(
                flyte_auth_oauth::Overrides::new()
                    .authorization_endpoint("https://other-idp.example.org/authorize"),
            )
            .build()
            .unwrap();
        let cfg = replaced
            .resolve(&[
                flyte_auth_oauth::Field::AuthorizationEndpoint,
                flyte_auth_oauth::Field::TokenEndpoint,
            ])
            .await
            .unwrap();
        assert_eq!(cfg.authorization_response_issuer, None);
    }
}

/// Discovery answers kept in memory, as `flyte-auth-store`'s hint files keep them on disk.
#[derive(Debug, Default)]
struct MemoryHints(std::sync::Mutex<Option<flyte_auth_core::DiscoveryAnswer>>);

impl flyte_auth_core::DiscoveryHints for MemoryHints {
    fn recall(&self, _: &str) -> Option<flyte_auth_oauth::DiscoveryFlavour> {
        self.0.lock().unwrap().as_ref().map(|a| a.flavour)
    }
    fn remember(
        &self,
        _: &str,
        _: flyte_auth_oauth::DiscoveryFlavour,
    ) -> Result<(), flyte_auth_core::StoreError> {
        Ok(())
    }
    fn recall_answer(&self, _: &str) -> Option<flyte_auth_core::DiscoveryAnswer> {
        self.0.lock().unwrap().clone()
    }
    fn remember_answer(
        &self,
        _: &str,
        answer: &flyte_auth_core::DiscoveryAnswer,
    ) -> Result<(), flyte_auth_core::StoreError> {
        *self.0.lock().unwrap() = Some(answer.clone());
        Ok(())
    }
}

/// A kept answer whose token endpoint is now served under another name (its certificate is
/// not valid for the one kept) is explained by a stale answer: the server is asked again and
/// the request goes where it says now. No request was sent to the wrong server.
#[tokio::test]
async fn a_certificate_for_another_name_at_a_kept_endpoint_discovers_again() {
    use flyte_auth_oauth::{ClientAuth, ClientContext, Field, TokenRequest};
    let pki = support::TestPki::generate_for(&["other.example.org"]);
    let moved = support::TlsServer::start(
        &pki,
        r#"{"access_token":"wrong-server","token_type":"Bearer"}"#,
    );
    let flyte = MockServer::start().await;
    let base = flyte.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": format!("{base}/oauth2/token"),
        })))
        .expect(1)
        .mount(&flyte)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"client_id": "flytectl"})),
        )
        .expect(1)
        .mount(&flyte)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "right-server", "token_type": "Bearer"
        })))
        .expect(1)
        .mount(&flyte)
        .await;
    let hints = std::sync::Arc::new(MemoryHints::default());
    *hints.0.lock().unwrap() = Some(flyte_auth_core::DiscoveryAnswer::new(
        flyte_auth_oauth::DiscoveryFlavour::FlyteAdmin,
        flyte_auth_core::ClientConfig::new(moved.url("/oauth2/token"), "flytectl"),
        std::time::SystemTime::now(),
    ));
    let ctx = ClientContext::builder(Endpoint::parse(&base).unwrap())
        .http_client(
            OAuthClient::new(
                HttpSettings::new()
                    .system_proxy(false)
                    .ca_cert_pem(pki.ca_pem.as_bytes())
                    .retry(RetryPolicy::new().max_retries(0)),
            )
            .unwrap(),
        )
        .discovery_hints(hints.clone())
        .build()
        .unwrap();
    let token = ctx
        .with_config(&[Field::TokenEndpoint], |cfg| {
            let http = ctx.http().clone();
            async move {
                let request = TokenRequest::client_credentials(
                    cfg.token_endpoint,
                    ClientAuth::confidential("app", "secret"),
                );
                http.token(&request).await
            }
        })
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "right-server");
    assert_eq!(
        moved.handshakes(),
        0,
        "nothing was sent to the wrong server"
    );
    let kept = hints.0.lock().unwrap().clone().unwrap();
    assert_eq!(kept.config.token_endpoint, format!("{base}/oauth2/token"));
}
