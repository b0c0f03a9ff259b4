//! The `flyte-auth` binary with a Union API key: a CI job that sets only `UNION_API_KEY` gets
//! a client-credentials token from it, with no browser, and `status` names the variable (never
//! the key or its secret).
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use base64::Engine as _;
use flyte_auth_tests::{API_KEY_CLIENT, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, Idp};
use serde_json::Value;
use support::User;

/// A key for the fixture's `flyte-api-key` client, as `union create api-key` writes one
/// without an organization; URL-safe and unpadded, as other encoders write it. The key's
/// format cannot hold the port, so it names `localhost` (the fixture's host: every loopback
/// name is this machine) and `--endpoint` the fixture.
fn union_key() -> String {
    key_for("localhost")
}

fn key_for(host: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{host}:{}:{}:None",
        API_KEY_CLIENT.id(),
        API_KEY_CLIENT.secret()
    ))
}

#[tokio::test]
async fn union_api_key_alone_gets_a_client_credentials_token_and_status_names_it() {
    let idp = Idp::builder().flyte2().start().await;
    let user = User::of(&idp).env("UNION_API_KEY", union_key());
    // The config file says browser login; the key means client credentials.
    std::fs::create_dir_all(user.home().join(".flyte")).unwrap();
    std::fs::write(
        user.home().join(".flyte/config.yaml"),
        "admin:\n  authType: Pkce\n",
    )
    .unwrap();

    let token = user.run(&["token"]).token();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 0);

    let out = user.run(&["status"]);
    assert!(out.status.success(), "{out:?}");
    let want = format!(
        "API key in use for {}, client id {}",
        idp.host_port(),
        API_KEY_CLIENT.id()
    );
    assert!(out.stdout.contains(&want), "{out:?}");
    assert!(out.stdout.contains("UNION_API_KEY"), "{out:?}");
    let json: Value = serde_json::from_str(&user.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["api_key"]["origin"], "UNION_API_KEY");
    assert_eq!(json["api_key"]["client_id"], API_KEY_CLIENT.id());
    assert_eq!(json["auth_mode"], "ClientSecret");
    assert!(
        json["variables"]
            .as_array()
            .unwrap()
            .contains(&Value::from("UNION_API_KEY")),
        "{json}"
    );
    for shown in [&out.stdout, &out.stderr] {
        assert!(!shown.contains(API_KEY_CLIENT.secret()), "{out:?}");
        assert!(!shown.contains(&union_key()), "{out:?}");
        assert!(!shown.contains(&token), "{out:?}");
    }
}

/// A key for another host than `--endpoint`'s is set aside, and `status` says which variable
/// and why (never the key or its secret).
#[tokio::test]
async fn a_union_api_key_for_another_host_is_set_aside_and_status_says_why() {
    let idp = Idp::builder().flyte2().start().await;
    let key = key_for("union.example.org");
    let user = User::of(&idp).env("UNION_API_KEY", &key);

    let out = user.run(&["status"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("the API key in UNION_API_KEY is not used")
            && out.stdout.contains("union.example.org"),
        "{out:?}"
    );
    let json: Value = serde_json::from_str(&user.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["api_key"], Value::Null, "{json}");
    assert_eq!(
        json["api_key_set_aside"]["variable"], "UNION_API_KEY",
        "{json}"
    );
    assert_eq!(json["client_id"], Value::Null, "{json}");
    for shown in [&out.stdout, &out.stderr, &json.to_string()] {
        assert!(!shown.contains(API_KEY_CLIENT.secret()), "{shown}");
        assert!(!shown.contains(&key), "{shown}");
    }
}
