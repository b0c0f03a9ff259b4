#![allow(clippy::unwrap_used, reason = "tests")]
//! Flyte server discovery against a mock flyteadmin.

use flyte_auth_core::{ClientConfigStore, Error};
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
