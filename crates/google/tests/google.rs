#![allow(clippy::unwrap_used, reason = "tests")]
//! Google ID tokens from each source, against a metadata server and a token endpoint on
//! loopback and a throwaway RSA key (`tests/data/`).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use flyte_auth_core::{Authenticator, CachingAuthenticator, Clock, Error, unix_now};
use flyte_auth_google::{
    ADC_FILE_NAME, DEFAULT_METADATA_HOST, GoogleIdTokenFlow, JWT_BEARER_GRANT_TYPE, Source, Sources,
};
use flyte_auth_oauth::{HttpSettings, OAuthClient};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

const AUDIENCE: &str = "123-iap.apps.googleusercontent.com";
const SA_EMAIL: &str = "flyte-runner@my-project.iam.gserviceaccount.com";
const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";
const REFRESH_TOKEN: &str = "1//user-refresh-token-XYZ";
const CLIENT_SECRET: &str = "gcloud-client-secret-XYZ";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A JWT as Google would issue it (the signature is not checked by the client), with `exp`.
fn id_token(tag: &str, exp: u64) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT"})),
        part(json!({"aud": AUDIENCE, "sub": tag, "exp": exp, "iat": exp - 3600})),
        URL_SAFE_NO_PAD.encode(b"signature")
    )
}

fn http() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap()
}

fn flow(sources: Sources) -> GoogleIdTokenFlow {
    GoogleIdTokenFlow::builder(AUDIENCE)
        .http_client(http())
        .sources(sources)
        .metadata_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// A service-account key file for the test key, whose token endpoint is `server`'s.
fn key_file(dir: &Path, server: &MockServer) -> PathBuf {
    key_file_with(dir, server, "test-key.pem")
}

/// A service-account key file holding the PEM file `pem` of `tests/data`.
fn key_file_with(dir: &Path, server: &MockServer, pem: &str) -> PathBuf {
    let key = json!({
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "test-key-1",
        "private_key": std::fs::read_to_string(data(pem)).unwrap(),
        "client_email": SA_EMAIL,
        "client_id": "1234567890",
        "token_uri": format!("{}/token", server.uri()),
    });
    let file = dir.join(format!("sa-{pem}.json"));
    std::fs::write(&file, key.to_string()).unwrap();
    file
}

/// gcloud's configuration directory holding application-default user credentials.
fn gcloud_dir(dir: &Path) -> PathBuf {
    let gcloud = dir.join("gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    let creds = json!({
        "type": "authorized_user",
        "client_id": "764086051850-gcloud.apps.googleusercontent.com",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "quota_project_id": "my-project",
    });
    let file = gcloud.join(ADC_FILE_NAME);
    std::fs::write(&file, creds.to_string()).unwrap();
    // As gcloud writes it: a file others may write to is not used.
    #[cfg(unix)]
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    gcloud
}

/// The metadata server's `host:port` on loopback.
fn host_of(server: &MockServer) -> String {
    server.address().to_string()
}

/// Mounts the metadata server's identity document for `AUDIENCE`, answering `token`.
async fn mount_metadata(server: &MockServer, token: &str, expect: u64) {
    Mock::given(method("GET"))
        .and(path(IDENTITY_PATH))
        .and(header("metadata-flavor", "Google"))
        .and(query_param("audience", AUDIENCE))
        .and(query_param("format", "full"))
        .respond_with(ResponseTemplate::new(200).set_body_string(token))
        .expect(expect)
        .mount(server)
        .await;
}

/// Mounts the token endpoint's answer to a signed assertion.
async fn mount_assertion_grant(server: &MockServer, token: &str, expect: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
        ))
        .and(body_string_contains("assertion="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id_token": token })))
        .expect(expect)
        .mount(server)
        .await;
}

/// Mounts the token endpoint's answer to the refresh of gcloud's user credentials.
async fn mount_user_refresh(server: &MockServer, token: &str, expect: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(
            "refresh_token=1%2F%2Fuser-refresh-token-XYZ",
        ))
        .and(body_string_contains(
            "client_secret=gcloud-client-secret-XYZ",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.user-access-token",
            "token_type": "Bearer",
            "expires_in": 3599,
            "id_token": token,
        })))
        .expect(expect)
        .mount(server)
        .await;
}

/// The form of the first request `server` received.
async fn first_form(server: &MockServer) -> Vec<(String, String)> {
    let requests = server.received_requests().await.unwrap();
    url::form_urlencoded::parse(&requests[0].body)
        .into_owned()
        .collect()
}

fn decode_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Checks the assertion `server` received: signed by the test key (verified with its public
/// half), with the claims Google wants.
async fn verify_assertion(server: &MockServer) {
    let form = first_form(server).await;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(field("grant_type"), JWT_BEARER_GRANT_TYPE);
    let assertion = field("assertion");
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let public_key = std::fs::read(data("test-key.pub.der")).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_key)
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .expect("the assertion is signed by the key file's key");

    let header = decode_json(parts[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "test-key-1");
    let claims = decode_json(parts[1]);
    assert_eq!(claims["iss"], SA_EMAIL);
    assert_eq!(claims["sub"], SA_EMAIL);
    assert_eq!(claims["aud"], format!("{}/token", server.uri()));
    assert_eq!(claims["target_audience"], AUDIENCE);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(unix_now()) < 60, "iat is now: {iat}");
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);
}

#[tokio::test]
async fn a_service_account_key_signs_an_assertion_the_public_key_verifies() {
    let server = MockServer::start().await;
    let exp = unix_now() + 3600;
    let token = id_token("sa", exp);
    mount_assertion_grant(&server, &token, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let flow = flow(Sources::none().key_file(key_file(dir.path(), &server)));
    let auth = CachingAuthenticator::builder(flow).build();

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), token);
    assert_eq!(creds.expires_at_unix, Some(exp), "expiry from the JWT exp");
    assert_eq!(auth.flow().source(), Some(Source::KeyFile));

    verify_assertion(&server).await;
}

#[tokio::test]
async fn a_pkcs1_key_signs_too() {
    let server = MockServer::start().await;
    mount_assertion_grant(&server, &id_token("sa", unix_now() + 3600), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = key_file_with(dir.path(), &server, "test-key.pkcs1.pem");
    flow(Sources::none().key_file(file))
        .login_for_test()
        .await
        .unwrap();
    verify_assertion(&server).await;
}

#[tokio::test]
async fn a_credentials_file_of_another_type_is_refused_naming_the_types_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("external.json");
    std::fs::write(&file, r#"{"type": "external_account", "audience": "x"}"#).unwrap();
    let err = flow(Sources::none().key_file(&file))
        .login_for_test()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`external_account`"), "{err}");
    assert!(err.contains("service_account"), "{err}");
}

#[tokio::test]
async fn a_credentials_file_naming_a_plain_http_token_uri_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("user.json");
    std::fs::write(
        &file,
        r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s3cret-value",
            "refresh_token": "r3fresh-value", "token_uri": "http://attacker.example.org/token"}"#,
    )
    .unwrap();
    let err = flow(Sources::none().key_file(&file))
        .login_for_test()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an https:// URL"), "{err}");
    assert!(
        !err.contains("s3cret-value") && !err.contains("r3fresh-value"),
        "{err}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_as_the_key_file_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = Instant::now();
    let err = flow(Sources::none().key_file(&fifo))
        .login_for_test()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn the_metadata_server_is_asked_with_its_header_audience_and_full_format() {
    let server = MockServer::start().await;
    let token = id_token("gce", unix_now() + 3600);
    mount_metadata(&server, &token, 1).await;
    let flow = GoogleIdTokenFlow::builder(AUDIENCE)
        .http_client(http())
        .sources(Sources::none().metadata_host(host_of(&server)))
        .header_key("proxy-authorization")
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(flow).build();

    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "proxy-authorization");
    assert_eq!(header.value().to_str().unwrap(), format!("Bearer {token}"));
    assert_eq!(auth.flow().source(), Some(Source::MetadataServer));
}

#[tokio::test]
async fn gcloud_user_credentials_are_refreshed_for_their_id_token() {
    let server = MockServer::start().await;
    let exp = unix_now() + 3600;
    let token = id_token("user", exp);
    mount_user_refresh(&server, &token, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources::none()
        .gcloud_config_dir(gcloud_dir(dir.path()))
        .user_token_uri(format!("{}/token", server.uri()));
    let auth = CachingAuthenticator::builder(flow(sources)).build();

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(
        creds.access_token.expose_secret(),
        token,
        "the id token, not ya29"
    );
    assert_eq!(creds.expires_at_unix, Some(exp));
    assert!(creds.refresh_token.is_none());
    assert_eq!(auth.flow().source(), Some(Source::GcloudUser));
}

#[tokio::test]
async fn a_refused_gcloud_login_says_to_log_in_again_without_the_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": format!("Token has been expired or revoked: {REFRESH_TOKEN}"),
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources::none()
        .gcloud_config_dir(gcloud_dir(dir.path()))
        .user_token_uri(format!("{}/token", server.uri()));
    let err = flow(sources)
        .login_for_test()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gcloud auth application-default login"),
        "{err}"
    );
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(!err.contains(REFRESH_TOKEN), "{err}");
    assert!(!err.contains(CLIENT_SECRET), "{err}");
}

#[tokio::test]
async fn the_key_file_comes_first_then_the_metadata_server_then_gcloud() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let all = Sources::none()
        .key_file(key_file(dir.path(), &server))
        .metadata_host(host_of(&server))
        .gcloud_config_dir(gcloud_dir(dir.path()))
        .user_token_uri(format!("{}/token", server.uri()));

    // All three set up: the key file.
    mount_assertion_grant(&server, &id_token("sa", unix_now() + 3600), 1).await;
    mount_metadata(&server, &id_token("gce", unix_now() + 3600), 1).await;
    mount_user_refresh(&server, &id_token("user", unix_now() + 3600), 1).await;
    let first = flow(all.clone());
    first.login_for_test().await.unwrap();
    assert_eq!(first.source(), Some(Source::KeyFile));

    // No key file: the metadata server, even though gcloud has a login.
    let mut no_key = all.clone();
    no_key.key_file = None;
    let second = flow(no_key.clone());
    second.login_for_test().await.unwrap();
    assert_eq!(second.source(), Some(Source::MetadataServer));

    // No key file, no metadata server: gcloud's login.
    let mut only_gcloud = no_key;
    only_gcloud.metadata_host = None;
    let third = flow(only_gcloud);
    third.login_for_test().await.unwrap();
    assert_eq!(third.source(), Some(Source::GcloudUser));
    // Each source was asked exactly once (the mocks' `expect(1)`, checked on drop).
}

#[tokio::test]
async fn a_key_file_that_cannot_be_used_is_an_error_not_a_fall_through() {
    let server = MockServer::start().await;
    mount_metadata(&server, &id_token("gce", unix_now() + 3600), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"type": "service_account", "client_email": "x@y"}"#,
    )
    .unwrap();
    let sources = Sources::none()
        .key_file(&broken)
        .metadata_host(host_of(&server));
    let err = flow(sources).login_for_test().await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("has no private_key"), "{err}");
}

#[tokio::test]
async fn a_silent_metadata_server_is_given_up_within_its_timeout_and_gcloud_is_used() {
    // Accepts connections (the backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = MockServer::start().await;
    mount_user_refresh(&server, &id_token("user", unix_now() + 3600), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources::none()
        .metadata_host(silent.local_addr().unwrap().to_string())
        .gcloud_config_dir(gcloud_dir(dir.path()))
        .user_token_uri(format!("{}/token", server.uri()));
    let flow = GoogleIdTokenFlow::builder(AUDIENCE)
        .http_client(http())
        .sources(sources)
        .metadata_timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let started = Instant::now();
    flow.login_for_test().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(flow.source(), Some(Source::GcloudUser));
}

#[tokio::test]
async fn no_source_is_a_config_error_naming_what_to_set() {
    // A metadata server that refuses connections (nothing listens on the port).
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources::none()
        .metadata_host(closed.to_string())
        .gcloud_config_dir(dir.path());
    let err = flow(sources).login_for_test().await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{text}");
    assert!(
        text.contains("gcloud auth application-default login"),
        "{text}"
    );
}

#[tokio::test]
async fn a_metadata_host_that_is_not_a_host_is_refused() {
    let sources = Sources::none().metadata_host("evil.example/steal?x=");
    let err = flow(sources).login_for_test().await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("GCE_METADATA_HOST"), "{err}");
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct Manual(Mutex<SystemTime>);

impl Clock for Manual {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn the_token_is_reused_until_near_its_exp_then_fetched_again() {
    let server = MockServer::start().await;
    let exp = unix_now() + 3600;
    mount_metadata(&server, &id_token("gce", exp), 2).await;
    let clock = Arc::new(Manual(Mutex::new(SystemTime::now())));
    let auth = CachingAuthenticator::builder(flow(Sources::none().metadata_host(host_of(&server))))
        .clock(clock.clone())
        .build();

    let first = auth.get_credentials().await.unwrap();
    // 50 callers at once, and half an hour later: the same token, no request.
    let many = (0..50).map(|_| auth.get_credentials());
    for creds in futures_util::future::join_all(many).await {
        assert_eq!(creds.unwrap().access_token, first.access_token);
    }
    *clock.0.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(exp - 1800);
    auth.get_credentials().await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    // A minute before its exp: a new one.
    *clock.0.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(exp - 60);
    auth.get_credentials().await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn no_secret_is_in_debug_or_errors() {
    let server = MockServer::start().await;
    // The token endpoint refuses and echoes what it was sent.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(|request: &wiremock::Request| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_grant",
                "error_description": format!("bad request: {body}"),
            }))
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(dir.path(), &server);
    let flow = flow(Sources::none().key_file(&file));
    let err = flow.login_for_test().await.unwrap_err();

    let pem = std::fs::read_to_string(data("test-key.pem")).unwrap();
    let key_line = pem.lines().nth(1).unwrap();
    let shown = format!("{err} {err:?} {flow:?}");
    assert!(shown.contains("invalid_grant"), "{shown}");
    assert!(!shown.contains(key_line), "{shown}");
    assert!(!shown.contains("eyJ"), "no assertion: {shown}");

    // A key that is not a key: the error names the problem, not the content.
    let garbage = dir.path().join("garbage.json");
    std::fs::write(
        &garbage,
        json!({
            "type": "service_account",
            "client_email": SA_EMAIL,
            "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n",
        })
        .to_string(),
    )
    .unwrap();
    let err = GoogleIdTokenFlow::builder(AUDIENCE)
        .sources(Sources::none().key_file(&garbage))
        .build()
        .unwrap()
        .login_for_test()
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("private_key"), "{shown}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
}

#[test]
fn sources_from_the_environment_follow_googles_variables() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    };
    let sources = Sources::from_lookup(env(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", "/keys/sa.json"),
        ("GCE_METADATA_HOST", "127.0.0.1:8080"),
        ("CLOUDSDK_CONFIG", "/cfg/gcloud"),
        ("HOME", "/home/u"),
    ]));
    assert_eq!(
        sources.key_file.as_deref(),
        Some(Path::new("/keys/sa.json"))
    );
    assert_eq!(sources.metadata_host.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        sources.gcloud_config_dir.as_deref(),
        Some(Path::new("/cfg/gcloud"))
    );

    let defaults = Sources::from_lookup(env(&[("HOME", "/home/u")]));
    assert_eq!(defaults.key_file, None);
    assert_eq!(
        defaults.metadata_host.as_deref(),
        Some(DEFAULT_METADATA_HOST)
    );
    if cfg!(unix) {
        assert_eq!(
            defaults.gcloud_config_dir.as_deref(),
            Some(Path::new("/home/u/.config/gcloud"))
        );
    }
}

#[test]
fn an_empty_audience_or_a_bad_header_is_refused_when_built() {
    let err = GoogleIdTokenFlow::builder(" ").build().unwrap_err();
    assert!(err.to_string().contains("needs an audience"), "{err}");
    let err = GoogleIdTokenFlow::builder(AUDIENCE)
        .header_key("bad header")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

/// The flow's login, as the cache runs it.
trait LoginForTest {
    fn login_for_test(
        &self,
    ) -> flyte_auth_core::BoxFuture<'_, Result<flyte_auth_core::Credentials, Error>>;
}

impl LoginForTest for GoogleIdTokenFlow {
    fn login_for_test(
        &self,
    ) -> flyte_auth_core::BoxFuture<'_, Result<flyte_auth_core::Credentials, Error>> {
        flyte_auth_core::TokenFlow::login(self)
    }
}
