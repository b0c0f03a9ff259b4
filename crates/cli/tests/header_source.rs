//! `flyte-auth status` names the header the token is sent in and where that name came from:
//! the configured `authorizationHeader`, the server's `authorization_metadata_key` (a scripted
//! discovery answer), or the default; for a browser login and for `ExternalCommand` alike.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use serde_json::Value;
use support::User;

/// A Flyte server whose discovery announces `key` as `authorization_metadata_key` (none when
/// `None`); asked at least once (an answer may be kept for the next run) when `asked`, else
/// never.
fn flyte_server(key: Option<&str>, asked: bool) -> (mockito::ServerGuard, Vec<mockito::Mock>) {
    let mut server = mockito::Server::new();
    let url = server.url();
    let metadata = serde_json::json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/oauth2/authorize"),
        "token_endpoint": format!("{url}/oauth2/token"),
    });
    let mut client = serde_json::json!({
        "client_id": "flytectl",
        "redirect_uri": "http://localhost:53593/callback",
        "scopes": ["all"],
    });
    if let Some(key) = key {
        client["authorization_metadata_key"] = key.into();
    }
    let mocks = vec![
        server
            .mock("GET", "/.well-known/oauth-authorization-server")
            .with_header("content-type", "application/json")
            .with_body(metadata.to_string())
            .expect_at_most(usize::from(asked) * 10)
            .create(),
        server
            .mock("GET", "/config/v1/flyte_client")
            .with_header("content-type", "application/json")
            .with_body(client.to_string())
            .expect_at_least(usize::from(asked))
            .expect_at_most(usize::from(asked) * 10)
            .create(),
    ];
    (server, mocks)
}

/// A user whose config file (in its home) holds `admin` with `lines`, for `server`.
fn user_with_config(server: &mockito::ServerGuard, lines: &str) -> User {
    let user = User::new();
    let config = user.home().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "admin:\n  endpoint: dns:///{}\n  insecure: true\n{lines}",
            server.host_with_port()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    user.args(["--config", &config])
}

/// `status --json`'s `token_header`, and the text line of `status`.
fn token_header(user: &User) -> (Value, String) {
    let json = user.run(&["status", "--json"]);
    assert!(json.status.success(), "{json:?}");
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    let text = user.run(&["status"]);
    assert!(text.status.success(), "{text:?}");
    let line = text
        .stdout
        .lines()
        .find(|line| line.starts_with("token header:"))
        .unwrap_or_else(|| panic!("no token header line: {text:?}"))
        .to_owned();
    (json["token_header"].clone(), line)
}

#[test]
fn a_browser_login_shows_the_header_the_server_announces() {
    let (server, mocks) = flyte_server(Some("flyte-authorization"), true);
    let user = user_with_config(&server, "  authType: Pkce\n");

    let (json, line) = token_header(&user);
    assert_eq!(json["name"], "flyte-authorization", "{json}");
    assert_eq!(json["source"], "server", "{json}");
    assert_eq!(
        line,
        "token header:  flyte-authorization (the server's authorization_metadata_key)"
    );
    for mock in &mocks {
        mock.assert();
    }
    assert!(user.cached_files().is_empty(), "status stored something");
}

#[test]
fn an_external_command_shows_the_servers_header_without_running_the_command() {
    let (server, mocks) = flyte_server(Some("x-flyte-token"), true);
    let user = User::new();
    let marker = user.home().join("command-ran");
    let user = {
        let lines = format!(
            "  authType: ExternalCommand\n  command: [sh, -c, 'touch {}; echo t']\n",
            marker.display()
        );
        let config = user.home().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "admin:\n  endpoint: dns:///{}\n  insecure: true\n{lines}",
                server.host_with_port()
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        user.args(["--config", &config])
    };

    let (json, line) = token_header(&user);
    assert_eq!(json["name"], "x-flyte-token", "{json}");
    assert_eq!(json["source"], "server", "{json}");
    assert_eq!(
        line,
        "token header:  x-flyte-token (the server's authorization_metadata_key)"
    );
    for mock in &mocks {
        mock.assert();
    }
    assert!(!marker.exists(), "status ran the token command");
}

#[test]
fn a_configured_header_wins_and_no_server_is_asked() {
    let (server, mocks) = flyte_server(Some("flyte-authorization"), false);
    for mode in ["Pkce", "ExternalCommand"] {
        let user = user_with_config(
            &server,
            &format!(
                "  authType: {mode}\n  command: [echo, t]\n  authorizationHeader: x-my-auth\n"
            ),
        );
        let (json, line) = token_header(&user);
        assert_eq!(json["name"], "x-my-auth", "{mode}: {json}");
        assert_eq!(json["source"], "configured", "{mode}: {json}");
        assert_eq!(
            line,
            "token header:  x-my-auth (configured: authorizationHeader)"
        );
    }
    for mock in &mocks {
        mock.assert();
    }
}

#[test]
fn a_server_naming_no_header_means_the_default() {
    let (server, _mocks) = flyte_server(None, true);
    let user = user_with_config(
        &server,
        "  authType: ExternalCommand\n  command: [echo, t]\n",
    );
    let (json, line) = token_header(&user);
    assert_eq!(json["name"], "authorization", "{json}");
    assert_eq!(json["source"], "default", "{json}");
    assert_eq!(
        line,
        "token header:  authorization (the default: the server names no other, or could not \
         be asked)"
    );
}

#[test]
fn an_unreachable_server_means_the_default_header_and_status_still_answers() {
    // A port nothing listens on: discovery fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let user = User::new().args([
        "--endpoint",
        &format!("dns:///127.0.0.1:{port}"),
        "--insecure",
        "--auth-mode",
        "DeviceFlow",
        "--timeout",
        "20s",
    ]);
    let out = user.run(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["token_header"]["name"], "authorization", "{json}");
    assert_eq!(json["token_header"]["source"], "default", "{json}");
    assert!(out.elapsed < std::time::Duration::from_secs(20), "{out:?}");
}

/// `doctor --json`'s discovery step.
fn doctor_discovery(user: &User) -> Value {
    let out = user.run(&["doctor", "--json"]);
    let json: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == "discovery")
        .unwrap_or_else(|| panic!("no discovery step: {json}"))
        .clone()
}

#[test]
fn doctor_shows_the_header_and_its_source_too() {
    let (server, _mocks) = flyte_server(Some("flyte-authorization"), true);
    let user = user_with_config(
        &server,
        "  authType: ExternalCommand\n  command: [echo, t]\n",
    );
    let discovery = doctor_discovery(&user);
    assert_eq!(
        discovery["facts"]["token_header"], "flyte-authorization",
        "{discovery}"
    );
    assert_eq!(
        discovery["facts"]["token_header_source"], "server",
        "{discovery}"
    );
    assert!(
        discovery["detail"]
            .as_str()
            .unwrap()
            .contains("token header flyte-authorization (the server's authorization_metadata_key)"),
        "{discovery}"
    );

    let user = user_with_config(
        &server,
        "  authType: Pkce\n  authorizationHeader: x-my-auth\n",
    );
    let discovery = doctor_discovery(&user);
    assert_eq!(
        discovery["facts"]["token_header"], "x-my-auth",
        "{discovery}"
    );
    assert_eq!(
        discovery["facts"]["token_header_source"], "configured",
        "{discovery}"
    );
}
