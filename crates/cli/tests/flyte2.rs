//! The `flyte-auth` binary against a Flyte 2 backend (the local provider's Flyte 2 mode):
//! device and browser logins discovered over Connect (and, from the second login on, only
//! over Connect), client credentials, `FLYTE_API_KEY` and `--api-key`, malformed keys, and
//! what `status` says about the key, the config file and the variables.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use flyte_auth_tests::{
    API_KEY_CLIENT, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE, Idp,
};
use serde_json::Value;
use support::{RecordingBrowser, User, device_login, free_redirect_uri};

const GET_CLIENT: &str = "GetPublicClientConfig";
const GET_METADATA: &str = "GetOAuth2Metadata";

/// The discovery requests the provider received, in order (the paths).
async fn discovery_requests(idp: &Idp) -> Vec<String> {
    idp.stats()
        .await
        .requests
        .into_iter()
        .map(|r| r.path)
        .filter(|p| {
            p == "/.well-known/oauth-authorization-server"
                || p == "/config/v1/flyte_client"
                || p.contains("AuthMetadataService")
        })
        .collect()
}

/// What a cold start that knows the server is a Flyte 2 backend sends: the two Connect
/// calls, and no flyteadmin request.
async fn assert_discovery_was_connect_only(idp: &Idp) {
    let mut paths = discovery_requests(idp).await;
    paths.sort();
    assert_eq!(
        paths,
        [
            format!("/flyteidl2.auth.AuthMetadataService/{GET_METADATA}"),
            format!("/flyteidl2.auth.AuthMetadataService/{GET_CLIENT}"),
        ],
        "a second login asked more than the Connect calls"
    );
}

/// The discovery hint files in the user's token cache.
#[tokio::test]
async fn device_login_to_a_flyte_2_backend_discovers_over_connect_and_remembers_it() {
    let idp = Idp::builder()
        .flyte2()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);

    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "login printed something: {out:?}");
    assert!(out.stderr.contains("Logged in to"), "{out:?}");
    let token = user.run(&["token"]).token();
    let stats = idp.stats().await;
    assert_eq!(stats.device_authorization_requests, 1);
    assert_eq!(stats.token_requests(GRANT_DEVICE_CODE), 1, "{stats:?}");
    // Nothing known yet: the public client config came from Connect (the fixture serves no
    // `/config/v1/flyte_client`, so the GET sent alongside cannot have answered).
    assert_eq!(stats.connect_requests(GET_CLIENT), 1, "{stats:?}");
    assert_eq!(
        flyte_auth_tests::file_names_ending_with(user.cache_dir(), ".discovery").len(),
        1,
        "no discovery hint was kept"
    );

    // The next process uses the discovery answer the first one kept: its device login asks
    // no discovery at all.
    assert!(user.run(&["logout"]).status.success());
    idp.reset_stats().await;
    let out = device_login(&idp, &user, &["token"]).await;
    assert_ne!(out.token(), token);
    assert_eq!(discovery_requests(&idp).await, Vec::<String>::new());
}

#[tokio::test]
async fn browser_login_to_a_flyte_2_backend_through_browser_discovers_over_connect() {
    let idp = Idp::builder()
        .flyte2()
        .redirect_uri(free_redirect_uri())
        .start()
        .await;
    let user = User::of(&idp).args(["--auth-mode", "Pkce"]);
    let browser = RecordingBrowser::new(user.home());
    let user = user.env("BROWSER", browser.path());

    let token = browser.login(&idp, &user, &["token"]).await.token();
    let stats = idp.stats().await;
    assert_eq!(
        stats.token_requests(GRANT_AUTHORIZATION_CODE),
        1,
        "{stats:?}"
    );
    assert_eq!(stats.connect_requests(GET_CLIENT), 1, "{stats:?}");
    assert_eq!(
        user.run(&["token"]).token(),
        token,
        "not served from the store"
    );

    // `login` logs in again (a valid token is stored): discovery asks Connect only now.
    idp.reset_stats().await;
    let out = browser.login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "login printed something: {out:?}");
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 1);
    assert_discovery_was_connect_only(&idp).await;
    assert_ne!(user.run(&["token"]).token(), token);
    assert_eq!(browser.opened().len(), 2);
}

fn key(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A key for the fixture's `flyte-api-key` client; the SDK's format cannot hold the port, so
/// the key names `localhost` and `--endpoint` (which wins) the fixture.
fn api_key() -> String {
    key(&format!(
        "localhost:{}:{}:acme",
        API_KEY_CLIENT.id(),
        API_KEY_CLIENT.secret()
    ))
}

#[tokio::test]
async fn a_secret_file_with_white_space_logs_in_to_a_flyte_2_backend() {
    let idp = Idp::builder().flyte2().start().await;
    let user = User::of(&idp);
    let secret_file = user.home().join("client-secret");
    std::fs::write(&secret_file, format!("  {} \n", API_KEY_CLIENT.secret())).unwrap();
    let user = user.args([
        "--client-id",
        API_KEY_CLIENT.id(),
        "--client-secret-file",
        secret_file.to_str().unwrap(),
    ]);
    user.run(&["token"]).token();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
}

#[tokio::test]
async fn flyte_api_key_logs_in_and_status_names_the_key_but_never_its_secret() {
    let idp = Idp::builder().flyte2().start().await;
    let user = User::of(&idp).env("FLYTE_API_KEY", api_key());
    let token = user.run(&["token"]).token();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);

    let out = user.run(&["status"]);
    assert!(out.status.success(), "{out:?}");
    let want = format!(
        "API key in use for {}, client id {}",
        idp.host_port(),
        API_KEY_CLIENT.id()
    );
    assert!(out.stdout.contains(&want), "{out:?}");
    assert!(
        out.stdout.contains("variables:     FLYTE_API_KEY"),
        "{out:?}"
    );
    let json: Value = serde_json::from_str(&user.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["api_key"]["client_id"], API_KEY_CLIENT.id());
    assert_eq!(json["api_key"]["endpoint"], "localhost");
    assert_eq!(json["auth_mode"], "ClientSecret");
    assert_eq!(json["variables"][0], "FLYTE_API_KEY");
    for shown in [&out.stdout, &out.stderr] {
        assert!(!shown.contains(API_KEY_CLIENT.secret()), "{out:?}");
        assert!(!shown.contains(&api_key()), "{out:?}");
        assert!(!shown.contains(&token), "{out:?}");
    }
}

#[tokio::test]
async fn the_api_key_flag_works_like_the_variable() {
    let idp = Idp::builder().flyte2().start().await;
    let user = User::of(&idp).args(["--api-key", &api_key()]);
    user.run(&["token"]).token();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
}

#[test]
fn malformed_api_keys_are_one_line_errors_with_exit_2() {
    for (bad, want) in [
        ("not base64!".to_owned(), "is not base64"),
        (key("h:svc:s3cret"), "has 3 `:`-separated parts, not 4"),
        (key("h:svc::org"), "has an empty client secret"),
        (key("h:8080:svc:s3cret:org"), "would split wrongly"),
    ] {
        let user = User::new().env("FLYTE_API_KEY", &bad);
        let line = user.run(&["token"]).error(2);
        assert!(
            line.contains("FLYTE_API_KEY") && line.contains(want),
            "{line}"
        );
        assert!(!line.contains("s3cret") && !line.contains(&bad), "{line}");
    }
}

#[test]
fn status_names_the_config_file_and_how_it_was_found() {
    let user = User::new();
    let flyte = user.home().join(".flyte");
    std::fs::create_dir_all(&flyte).unwrap();
    std::fs::write(
        flyte.join("config.yaml"),
        "admin:\n  endpoint: dns:///flyte.example.org\n",
    )
    .unwrap();
    let user = user.env("FLYTE_ADMIN_CLIENTID", "svc");
    let out = user.run(&["status"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("(found as ~/.flyte/config.yaml)"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("variables:     FLYTE_ADMIN_CLIENTID"),
        "{out:?}"
    );
}
