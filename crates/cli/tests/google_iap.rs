//! `flyte-auth` behind Google Cloud's identity-aware proxy, without a `proxyCommand`
//! shell-out: `--proxy-google-audience` puts a Google ID token from the metadata server in
//! `proxy-authorization` on the requests to the Flyte server, and `--auth-mode GoogleIdToken`
//! makes the ID token the token itself. Both are kept in the token store, so a second process
//! asks the metadata server nothing.
//!
//! The metadata server (`GCE_METADATA_HOST`) and the Flyte server are scripted with mockito on
//! loopback.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use flyte_auth::{Credentials, Endpoint};
use flyte_auth_store::{FileStore, TokenStore};
use mockito::{Matcher, Mock, Server};
use support::User;

const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";
const IAP_AUDIENCE: &str = "123-iap.apps.googleusercontent.com";

/// A Google ID token for `audience`, valid for an hour (unsigned: nothing here checks the
/// signature, as IAP would).
fn id_token(audience: &str, tag: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"https://accounts.google.com","aud":"{audience}","sub":"{tag}","exp":{exp}}}"#
    ));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

/// The metadata server's identity document for `audience`, answered once with `token`, and
/// only to a request carrying `Metadata-Flavor: Google`.
fn metadata_identity(server: &mut Server, audience: &str, token: &str) -> Mock {
    server
        .mock("GET", IDENTITY_PATH)
        .match_query(Matcher::AllOf(vec![
            Matcher::UrlEncoded("audience".into(), audience.into()),
            Matcher::UrlEncoded("format".into(), "full".into()),
        ]))
        .match_header("metadata-flavor", "Google")
        .with_body(token)
        .expect(1)
        .create()
}

#[test]
fn the_proxy_token_goes_in_proxy_authorization_and_a_second_process_reuses_it() {
    let mut metadata = Server::new();
    let proxy_token = id_token(IAP_AUDIENCE, "proxy");
    let identity = metadata_identity(&mut metadata, IAP_AUDIENCE, &proxy_token);

    // Flyte's token endpoint behind the proxy: a grant with the proxy's ID token in
    // `proxy-authorization` and the login's own client credentials in `authorization`
    // answers a Flyte token that expires at once (so the second process asks again); one
    // without the proxy's token is refused, as IAP refuses it.
    let mut flyte = Server::new();
    let granted = flyte
        .mock("POST", "/oauth2/token")
        .match_header(
            "proxy-authorization",
            format!("Bearer {proxy_token}").as_str(),
        )
        .match_header(
            "authorization",
            format!("Basic {}", STANDARD.encode("svc:s3cr3t-value")).as_str(),
        )
        .with_header("content-type", "application/json")
        .with_body(
            r#"{"access_token": "flyte-access-token", "token_type": "Bearer", "expires_in": 2}"#,
        )
        .expect(2)
        .create();
    let refused = flyte
        .mock("POST", "/oauth2/token")
        .match_header("proxy-authorization", Matcher::Missing)
        .with_status(401)
        .with_body("Invalid IAP credentials: empty token")
        .expect(0)
        .create();

    let user = User::new()
        .env("GCE_METADATA_HOST", metadata.host_with_port())
        .env("SVC_SECRET", "s3cr3t-value");
    let file = user.home().join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "admin:\n  endpoint: {url}\n  authType: ClientSecret\n  clientId: svc\n  \
             clientSecretEnvVar: SVC_SECRET\n  scopes: [all]\n  authorizationHeader: authorization\n  \
             tokenUrl: {url}/oauth2/token\n",
            url = flyte.url()
        ),
    )
    .unwrap();
    let user = user.args([
        "--config",
        file.to_str().unwrap(),
        "--proxy-google-audience",
        IAP_AUDIENCE,
    ]);

    let first = user.run(&["token"]);
    assert_eq!(first.token(), "flyte-access-token");
    // The Flyte token is stale by now: the second process makes a new grant, through the
    // proxy, with the proxy token the first one stored.
    std::thread::sleep(Duration::from_millis(2500));
    let second = user.run(&["token"]);
    assert_eq!(second.token(), "flyte-access-token");

    identity.assert();
    granted.assert();
    refused.assert();
    for out in [&first, &second] {
        assert!(!out.stderr.contains(&proxy_token), "{out:?}");
    }
    // Each token is filed under its own key: the ID token under the proxy's entry, the
    // Flyte token under the endpoint.
    let store = FileStore::in_dir(user.cache_dir());
    let stored = |entry: &Endpoint| {
        let credentials = store.retrieve(entry).unwrap().unwrap();
        credentials.access_token.expose_secret().to_owned()
    };
    let proxy_entry = flyte_auth::google_proxy_entry(IAP_AUDIENCE).unwrap();
    let login_entry = Endpoint::parse(&flyte.url()).unwrap();
    assert_ne!(proxy_entry.key(), login_entry.key());
    assert_eq!(stored(&proxy_entry), proxy_token);
    assert_eq!(stored(&login_entry), "flyte-access-token");
}

#[test]
fn the_google_id_token_as_the_auth_type_is_served_from_the_store_the_second_time() {
    const AUDIENCE: &str = "456-flyte.apps.googleusercontent.com";
    let mut metadata = Server::new();
    let token = id_token(AUDIENCE, "login");
    let identity = metadata_identity(&mut metadata, AUDIENCE, &token);
    let user = User::new()
        .env("GCE_METADATA_HOST", metadata.host_with_port())
        .args([
            "--endpoint",
            "dns:///flyte.example.org:443",
            "--auth-mode",
            "GoogleIdToken",
            "--google-audience",
            AUDIENCE,
        ]);
    assert_eq!(user.run(&["token"]).token(), token);
    assert_eq!(user.run(&["token"]).token(), token);
    identity.assert();
}

#[test]
fn a_proxy_command_and_the_google_proxy_together_are_a_config_error() {
    let user = User::new()
        .env("FLYTE_ADMIN_PROXYCOMMAND", "iap-token")
        .args([
            "--endpoint",
            "flyte.example.org:443",
            "--proxy-google-audience",
            IAP_AUDIENCE,
        ]);
    let line = user.run(&["token"]).error(2);
    assert!(line.contains("FLYTE_ADMIN_PROXYCOMMAND"), "{line}");
    assert!(line.contains("proxy_google_audience"), "{line}");
}

/// `status` (text and JSON) and `doctor` name the Google proxy's audience and whether an ID
/// token is stored for it, never the token; `logout` removes that token too and says that an
/// ID token cannot be revoked.
#[test]
fn status_doctor_and_logout_name_the_google_proxy_and_never_show_its_token() {
    let user = User::new().args([
        "--endpoint",
        &format!("127.0.0.1:{}", support::closed_port()),
        "--insecure",
        "--proxy-google-audience",
        IAP_AUDIENCE,
        "--timeout",
        "5",
    ]);
    let token = id_token(IAP_AUDIENCE, "stored-proxy");
    let entry = flyte_auth::google_proxy_entry(IAP_AUDIENCE).unwrap();
    FileStore::in_dir(user.cache_dir())
        .store(&entry, &Credentials::new(token.as_str(), entry.key()))
        .unwrap();

    let text = user.run(&["status"]);
    assert!(
        text.stdout.contains(&format!(
            "google proxy:  {IAP_AUDIENCE} (an ID token is stored)"
        )),
        "{text:?}"
    );
    let json = user.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(status["google_proxy"]["audience"], IAP_AUDIENCE, "{status}");
    assert_eq!(status["google_proxy"]["token_stored"], true, "{status}");

    let doctor = user.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let proxy = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "proxy")
        .unwrap_or_else(|| panic!("no proxy step: {report}"));
    assert_eq!(
        proxy["facts"]["google_proxy_audience"], IAP_AUDIENCE,
        "{proxy}"
    );
    assert_eq!(proxy["facts"]["google_proxy_token_stored"], true, "{proxy}");
    let detail = proxy["detail"].as_str().unwrap();
    assert!(
        detail.contains(IAP_AUDIENCE) && detail.contains("is stored"),
        "{detail}"
    );
    let doctor_text = user.run(&["doctor"]);

    let logout = user.run(&["logout"]);
    assert!(logout.status.success(), "{logout:?}");
    assert!(
        logout.stderr.contains(&format!(
            "the Google proxy's ID token for {IAP_AUDIENCE} was removed"
        )) && logout.stderr.contains("cannot be revoked"),
        "{logout:?}"
    );
    assert!(user.cached_files().is_empty(), "{:?}", user.cached_files());
    for out in [&text, &json, &doctor, &doctor_text, &logout] {
        assert!(!out.stdout.contains(&token), "{out:?}");
        assert!(!out.stderr.contains(&token), "{out:?}");
    }

    let after = user.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&after.stdout).unwrap();
    assert_eq!(status["google_proxy"]["token_stored"], false, "{status}");
}
