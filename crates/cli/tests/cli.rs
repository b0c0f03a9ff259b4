//! The `flyte-auth` binary as a process: each auth mode against the local OpenID provider of
//! `flyte-auth-tests` (`npm ci --prefix tests/idp` once), configuration errors, unreachable
//! servers and refused secrets, with what lands on stdout, stderr and in the exit status.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::time::Duration;

use flyte_auth_tests::{
    BASIC_CLIENT, Fault, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE,
    GRANT_REFRESH_TOKEN, Idp,
};
use serde_json::Value;
use support::{
    PROMPT_LIMIT, RecordingBrowser, User, browser_login, closed_port, device_login,
    free_redirect_uri, script, user_code,
};

fn status_json(user: &User) -> Value {
    let out = user.run(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

// --- Configuration -------------------------------------------------------------------------

#[test]
fn no_endpoint_anywhere_is_a_configuration_error() {
    let out = User::new().run(&["token"]);
    let line = out.error(2);
    assert!(line.contains("no Flyte endpoint is configured"), "{line}");
    assert!(line.contains("--endpoint"), "{line}");
}

#[test]
fn a_config_file_that_is_not_yaml_is_a_configuration_error_naming_the_file() {
    let user = User::new();
    let path = user.home().join("broken-config.yaml");
    std::fs::write(
        &path,
        "admin:\n  endpoint: [dns:///unclosed\n  insecure: true\n",
    )
    .unwrap();
    let out = user.run(&["token", "--config", path.to_str().unwrap()]);
    let line = out.error(2);
    assert!(line.contains("broken-config.yaml"), "{line}");
}

#[test]
fn a_config_file_named_but_missing_is_a_configuration_error() {
    let user = User::new();
    let out = user.run(&["status", "--config", "/nonexistent/flyte/config.yaml"]);
    let line = out.error(2);
    assert!(line.contains("/nonexistent/flyte/config.yaml"), "{line}");
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    let out = User::new().run(&["token", "--no-such-option"]);
    let line = out.error(2);
    assert!(
        line.contains("usage error: unknown option `--no-such-option`"),
        "{line}"
    );
    assert!(out.stderr.contains("flyte-auth --help"), "{out:?}");
    // A near miss names what was meant, before anything is read or sent.
    let line = User::new().run(&["token", "--endpoit", "h:1"]).error(2);
    assert!(line.contains("did you mean `--endpoint`?"), "{line}");
}

#[test]
fn help_and_version_go_to_standard_output_and_succeed() {
    let user = User::new();
    let out = user.run(&["--help"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Usage: flyte-auth [OPTIONS] <COMMAND>"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Exit status:"), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let out = user.run(&["status", "--help"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("      --json"), "{out:?}");
    let out = user.run(&["--version"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("flyte-auth {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_auth_mode_is_a_configuration_error_listing_the_accepted_ones() {
    let out = User::new().run(&[
        "token",
        "--endpoint",
        "flyte.example.org:443",
        "--auth-mode",
        "Pkse",
    ]);
    let line = out.error(2);
    assert!(line.contains("unknown auth type `Pkse`"), "{line}");
    assert!(line.contains("DeviceFlow"), "{line}");
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_config_file() {
    let user = User::new();
    let flyte = user.home().join(".flyte");
    std::fs::create_dir_all(&flyte).unwrap();
    std::fs::write(
        flyte.join("config.yaml"),
        "admin:\n  endpoint: dns:///from-file.example.org:443\n  authType: DeviceFlow\n  \
         clientId: file-client\n  scopes: [all, offline]\n",
    )
    .unwrap();

    let json = status_json(&user);
    assert_eq!(json["endpoint"], "from-file.example.org");
    assert_eq!(json["auth_mode"], "DeviceFlow");
    assert_eq!(json["client_id"], "file-client");
    assert!(
        json["config_file"]
            .as_str()
            .unwrap()
            .ends_with("config.yaml")
    );

    let user = user
        .env("FLYTE_PLATFORM_URL", "from-env.example.org:443")
        .env("FLYTE_CREDENTIALS_AUTH_MODE", "Pkce");
    let json = status_json(&user);
    assert_eq!(json["endpoint"], "from-env.example.org");
    assert_eq!(json["auth_mode"], "Pkce");
    assert_eq!(json["client_id"], "file-client");

    let user = user.args([
        "--endpoint",
        "dns:///from-flag.example.org:8443",
        "--auth-mode",
        "basic",
        "--client-id",
        "flag-client",
        "--scopes",
        "all",
    ]);
    let json = status_json(&user);
    assert_eq!(json["endpoint"], "from-flag.example.org:8443");
    assert_eq!(json["auth_mode"], "ClientSecret");
    assert_eq!(json["client_id"], "flag-client");
    assert_eq!(json["configured_scopes"], serde_json::json!(["all"]));
    // Client credentials without a secret: status says so, and token refuses to start.
    assert!(
        json["config_error"]
            .as_str()
            .unwrap()
            .contains("needs a client secret"),
        "{json}"
    );
    let line = user.run(&["token"]).error(2);
    assert!(line.contains("needs a client secret"), "{line}");
}

// --- Network ---------------------------------------------------------------------------------

#[test]
fn an_unreachable_server_is_a_network_error_within_a_bounded_time() {
    let port = closed_port();
    let out = User::new().env("SVC_SECRET", "some-secret-value").run(&[
        "token",
        "--endpoint",
        &format!("127.0.0.1:{port}"),
        "--insecure",
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        "svc",
        "--client-secret-env",
        "SVC_SECRET",
        "--timeout",
        "5",
    ]);
    let line = out.error(4);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("--timeout"), "the hint is missing: {line}");
    assert!(!out.stderr.contains("some-secret-value"), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(60), "{out:?}");
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_a_network_error() {
    let idp = Idp::start().await;
    // Every attempt is slow: the first and the four retries of the default policy.
    idp.inject_fault(Fault::token(503).delay(Duration::from_secs(60)).times(5))
        .await;
    let user = service_user(&idp, BASIC_CLIENT.secret());
    let out = user.run(&["token", "--timeout", "2"]);
    let line = out.error(4);
    assert!(line.contains("timed out"), "{line}");
    assert!(
        out.elapsed < Duration::from_secs(45),
        "--timeout was not applied: {out:?}"
    );
}

// --- External command ---------------------------------------------------------------------

#[test]
fn external_command_mode_prints_what_the_command_prints() {
    let out = User::new()
        .env("FLYTE_CREDENTIALS_COMMAND", "printf,tok123")
        .run(&[
            "token",
            "--endpoint",
            "flyte.example.org:443",
            "--auth-mode",
            "ExternalCommand",
        ]);
    assert_eq!(out.token(), "tok123");
    assert_eq!(out.stdout, "tok123\n");
}

#[test]
fn a_failing_token_command_is_an_authentication_failure_showing_its_stderr() {
    let user = User::new();
    let command = script(
        user.home(),
        "get-token",
        "echo 'not logged in: run sso-login first' >&2; exit 7",
    );
    let out = user
        .env("FLYTE_CREDENTIALS_COMMAND", command.to_str().unwrap())
        .run(&[
            "token",
            "--endpoint",
            "flyte.example.org:443",
            "--auth-mode",
            "external_process",
        ]);
    let line = out.error(3);
    assert!(line.contains("get-token"), "{line}");
    assert!(
        line.contains("not logged in: run sso-login first"),
        "{line}"
    );
}

// --- Client credentials ---------------------------------------------------------------------

fn service_user(idp: &Idp, secret: &str) -> User {
    User::of(idp).env("SVC_SECRET", secret).args([
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        BASIC_CLIENT.id(),
        "--client-secret-env",
        "SVC_SECRET",
    ])
}

#[tokio::test]
async fn client_credentials_token_is_cached_dropped_on_logout_and_obtained_again() {
    let idp = Idp::start().await;
    let user = service_user(&idp, BASIC_CLIENT.secret());

    let first = user.run(&["token"]).token();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    assert_eq!(user.cached_files().len(), 1, "the token was not stored");

    let second = user.run(&["token"]).token();
    assert_eq!(second, first);
    assert_eq!(
        idp.token_requests(GRANT_CLIENT_CREDENTIALS).await,
        1,
        "the second call did not come from the cache"
    );

    let status = user.run(&["status", "--json"]);
    assert!(!status.stdout.contains(&first), "status shows the token");
    assert!(!status.stdout.contains(BASIC_CLIENT.secret()));
    let json: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["logged_in"], true);
    assert_eq!(json["auth_mode"], "ClientSecret");
    assert_eq!(json["store"], "file");
    assert_eq!(json["client_secret"], "set");
    assert_eq!(json["credentials"]["expired"], false);
    assert!(json["credentials"]["expires_in_seconds"].as_i64().unwrap() > 3000);

    let out = user.run(&["logout"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("Logged out of"), "{out:?}");
    assert_eq!(status_json(&user)["logged_in"], false);

    // At trace level too, neither the token nor the secret reaches the log.
    let traced = user.run(&["token", "-vvv"]);
    let third = traced.token();
    assert!(
        traced.stderr.contains("TRACE") || traced.stderr.contains("DEBUG"),
        "{traced:?}"
    );
    assert!(!traced.stderr.contains(BASIC_CLIENT.secret()), "{traced:?}");
    assert_ne!(third, first);
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 2);

    // `login` gets a new token even though a valid one is stored, and prints no token.
    let out = user.run(&["login"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("Logged in to"), "{out:?}");
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 3);
    let fourth = user.run(&["token"]).token();
    assert_ne!(fourth, third);
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 3);
}

#[tokio::test]
async fn a_secret_from_a_file_selects_client_credentials() {
    let idp = Idp::start().await;
    let user = User::of(&idp);
    let secret_file = user.home().join("client-secret");
    std::fs::write(&secret_file, format!("{}\n", BASIC_CLIENT.secret())).unwrap();
    let user = user.args([
        "--client-id",
        BASIC_CLIENT.id(),
        "--client-secret-file",
        secret_file.to_str().unwrap(),
    ]);
    // No --auth-mode: a secret from clientSecretLocation selects client credentials, as in
    // flytekit; the trailing newline of the file is not part of the secret.
    user.run(&["token"]).token();
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    assert_eq!(status_json(&user)["auth_mode"], "ClientSecret");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_naming_invalid_client_without_showing_the_secret() {
    let idp = Idp::start().await;
    let wrong = "not-the-secret-8d1f";
    let user = service_user(&idp, wrong);
    let out = user.run(&["token"]);
    let line = out.error(3);
    assert!(line.contains("invalid_client"), "{line}");
    assert!(line.contains("check the client id and secret"), "{line}");
    assert!(
        !out.stderr.contains(wrong),
        "the secret was printed: {out:?}"
    );
    assert!(user.cached_files().is_empty(), "something was stored");

    let verbose = user.run(&["token", "-vvv"]);
    verbose.error(3);
    assert!(
        !verbose.stderr.contains(wrong),
        "the secret was logged: {verbose:?}"
    );
}

// --- Device flow ------------------------------------------------------------------------------

#[tokio::test]
async fn device_flow_prompts_on_stderr_caches_and_logs_in_again_after_logout() {
    let idp = Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);

    let out = device_login(&idp, &user, &["token"]).await;
    let first = out.token();
    assert!(
        out.stderr.contains(idp.verification_uri().as_str()),
        "the verification URL is not shown: {out:?}"
    );
    assert!(
        out.stderr.contains("valid for"),
        "how long the code is valid is not shown: {out:?}"
    );
    let stats = idp.stats().await;
    assert_eq!(stats.device_authorization_requests, 1);

    let second = user.run(&["token"]).token();
    assert_eq!(second, first);
    assert_eq!(
        idp.stats().await,
        stats,
        "the second call reached the server"
    );

    let json = status_json(&user);
    assert_eq!(json["logged_in"], true);
    assert_eq!(json["credentials"]["refresh_token"], true);

    assert!(user.run(&["logout"]).status.success());
    let out = device_login(&idp, &user, &["token"]).await;
    assert_ne!(out.token(), first);
    assert_eq!(idp.stats().await.device_authorization_requests, 2);
}

#[tokio::test]
async fn a_denied_device_login_is_refused() {
    let idp = Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let mut running = user.spawn(&["token"]);
    let code = running.wait_for_stderr(PROMPT_LIMIT, user_code);
    idp.deny_device_code(&code).await.unwrap();
    let out = running.finish();
    let line = out.error(3);
    assert!(line.contains("access_denied"), "{line}");
}

// --- Browser login (PKCE) -----------------------------------------------------------------

async fn browser_idp(access_token_ttl: Duration) -> Idp {
    Idp::builder()
        .redirect_uri(free_redirect_uri())
        .access_token_ttl(access_token_ttl)
        .start()
        .await
}

#[tokio::test]
async fn browser_login_opens_the_browser_named_by_browser_and_prints_the_url() {
    let idp = browser_idp(Duration::from_secs(3600)).await;
    let user = User::of(&idp).args(["--auth-mode", "Pkce"]);
    let browser = RecordingBrowser::new(user.home());
    let user = user.env("BROWSER", browser.path());

    let first = browser.login(&idp, &user, &["token"]).await.token();
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 1);

    let second = user.run(&["token"]).token();
    assert_eq!(second, first);
    assert_eq!(idp.stats().await.authorization_requests, 1);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 1);

    // After logout, `--no-browser` only prints the URL: the browser is not started again.
    assert!(user.run(&["logout"]).status.success());
    let out = browser_login(&idp, &user, &["token", "--no-browser"]).await;
    assert_ne!(out.token(), first);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 2);
    assert_eq!(browser.opened().len(), 1, "the browser was started again");
}

#[tokio::test]
async fn an_expired_browser_login_token_is_refreshed_without_a_new_login() {
    let idp = browser_idp(Duration::from_secs(2)).await;
    let user = User::of(&idp).args(["--auth-mode", "Pkce"]);
    let first = browser_login(&idp, &user, &["token", "--no-browser"])
        .await
        .token();
    // Wait until the token has expired for sure.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let out = user.run(&["token", "--no-browser"]);
    let second = out.token();
    assert_ne!(second, first);
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 1);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 1);
    assert_eq!(idp.stats().await.authorization_requests, 1, "{out:?}");

    let status = user.run(&["status", "--json"]);
    assert!(!status.stdout.contains(&second), "status shows the token");
    let json: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["auth_mode"], "Pkce");
    assert_eq!(json["credentials"]["refresh_token"], true);
}

#[tokio::test]
async fn status_never_logs_in() {
    let idp = Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let out = user.run(&["status"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("logged in:     no"), "{out:?}");
    let stats = idp.stats().await;
    assert_eq!(stats.device_authorization_requests, 0);
    assert_eq!(stats.token_requests(GRANT_DEVICE_CODE), 0);
}

// --- The overall deadline (--timeout) ------------------------------------------------------

/// A loopback server that accepts every connection and never answers: each request hangs
/// until the client gives up.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

#[test]
fn timeout_bounds_the_whole_command_retries_and_discovery_included() {
    let endpoint = silent_server();
    let user = User::new().env("SVC_SECRET", "some-secret-value").args([
        "--endpoint",
        &endpoint,
        "--insecure",
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        "svc",
        "--client-secret-env",
        "SVC_SECRET",
    ]);
    // Discovery and the token request both hang; each would be retried four times.
    let out = user.run(&["token", "--timeout", "2"]);
    let line = out.error(4);
    assert!(line.contains("(--timeout) timed out after 2s"), "{line}");
    assert!(out.elapsed < Duration::from_secs(3), "{out:?}");

    // Only the token endpoint hangs: discovery is not needed.
    let user = User::new()
        .env("SVC_SECRET", "some-secret-value")
        .env("FLYTE_ADMIN_TOKENURL", format!("http://{endpoint}/token"))
        .env("FLYTE_ADMIN_AUTHORIZATIONHEADER", "authorization")
        .args([
            "--endpoint",
            "flyte.invalid:443",
            "--auth-mode",
            "ClientSecret",
            "--client-id",
            "svc",
            "--client-secret-env",
            "SVC_SECRET",
            "--scopes",
            "all",
        ]);
    let out = user.run(&["token", "--timeout", "2"]);
    let line = out.error(4);
    assert!(line.contains("(--timeout) timed out after 2s"), "{line}");
    assert!(out.elapsed < Duration::from_secs(3), "{out:?}");
    assert!(!out.stderr.contains("some-secret-value"), "{out:?}");
}

// --- A config file planted by another user --------------------------------------------------

/// Runs `command` to its end, killing it after a minute.
#[cfg(unix)]
fn output_within_a_minute(mut command: std::process::Command) -> std::process::Output {
    let started = std::time::Instant::now();
    let mut child = command.spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("flyte-auth ran longer than a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Another user owns a directory above the working directory with `.git` and
/// `.flyte/config.yaml` (as in `/tmp`): a `proxyCommand`, the victim's file as the client
/// secret and a server of theirs. `flyte-auth token` below it runs nothing of theirs and
/// sends nothing to their server; stderr names the skipped file and how to use it anyway.
#[cfg(unix)]
#[test]
fn a_config_planted_above_the_working_directory_by_another_user_is_not_used() {
    fn give_to_nobody(path: &std::path::Path) {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap_or_else(|e| {
            panic!(
                "chown {} to nobody: {e} (the tests run as root)",
                path.display()
            )
        });
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                give_to_nobody(&entry.unwrap().path());
            }
        }
    }
    let mut server = mockito::Server::new();
    let requests: Vec<mockito::Mock> = ["GET", "POST"]
        .into_iter()
        .map(|method| {
            server
                .mock(method, mockito::Matcher::Any)
                .with_status(500)
                .expect(0)
                .create()
        })
        .collect();
    let user = User::new();
    let secret = user.home().join("victim-secret");
    std::fs::write(&secret, "the-victims-secret\n").unwrap();
    let marker = user.home().join("proxy-command-ran");

    let planted = tempfile::tempdir().unwrap();
    let root = planted.path().join("shared");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join(".flyte")).unwrap();
    std::fs::create_dir_all(root.join("project/src")).unwrap();
    let config = root.join(".flyte/config.yaml");
    std::fs::write(
        &config,
        format!(
            "admin:\n  endpoint: {url}\n  insecure: true\n  clientId: svc\n  \
             clientSecretLocation: {secret}\n  tokenUrl: {url}/token\n  \
             authorizationHeader: authorization\n  proxyCommand: [sh, -c, 'touch {marker}; echo t']\n",
            url = server.url(),
            secret = secret.display(),
            marker = marker.display(),
        ),
    )
    .unwrap();
    give_to_nobody(&root);

    let mut command = user.command(&["token"]);
    command.current_dir(root.join("project/src"));
    let out = output_within_a_minute(command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!marker.exists(), "the planted proxyCommand ran: {stderr}");
    for mock in &requests {
        mock.assert();
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(&config.display().to_string()),
        "the skipped file is not named: {stderr}"
    );
    assert!(stderr.contains("--config"), "{stderr}");
    assert!(stderr.contains("65534"), "{stderr}");
    assert!(!stderr.contains("the-victims-secret"), "{stderr}");

    // `status` shows it too.
    let mut command = user.command(&["status", "--json", "--endpoint", "flyte.example.org"]);
    command.current_dir(root.join("project/src"));
    let out = output_within_a_minute(command);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["skipped_config_files"][0]["path"],
        config.display().to_string(),
        "{json}"
    );
    assert_eq!(json["config_file"], Value::Null, "{json}");
    assert!(!marker.exists());
}
