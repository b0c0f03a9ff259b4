//! The default opener (`BrowserOpener::system`) honours `$BROWSER`.
//!
//! Setting an environment variable inside a running test process is unsound with other
//! threads around, so the test runs itself again as a child process with `$BROWSER` pointing
//! to a script that writes the URL it was given to a file; the child then plays the user who
//! completes the login in that "browser".
#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use flyte_auth_pkce::{AuthorizationClient, BrowserOpener};
use serde_json::json;
use support::*;
use wiremock::MockServer;

const CHILD_MARKER: &str = "FLYTE_AUTH_PKCE_SYSTEM_BROWSER_CHILD";
const URL_FILE: &str = "FLYTE_AUTH_PKCE_SYSTEM_BROWSER_URL_FILE";
const TEST_NAME: &str = "the_system_opener_runs_the_browser_named_by_the_browser_variable";

#[test]
fn the_system_opener_runs_the_browser_named_by_the_browser_variable() {
    if std::env::var_os(CHILD_MARKER).is_some() {
        child();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fake-browser");
    let url_file = dir.path().join("url");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s' \"$1\" > \"$FLYTE_AUTH_PKCE_SYSTEM_BROWSER_URL_FILE\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env(URL_FILE, &url_file)
        .env("BROWSER", &script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child test hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the scenario:\n{stdout}"
    );
    // The default prompt wrote the URL to standard error, too.
    assert!(
        stderr.contains("Opening the browser to log in to flyte.example.org"),
        "{stderr}"
    );
    assert!(stderr.contains("/authorize?client_id=flytectl"), "{stderr}");
}

/// The scenario, in the child process where `$BROWSER` is the fake browser.
fn child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let idp = MockServer::start().await;
        token_endpoint_for_code(&idp, "c", json!({"access_token": "from-system-browser"})).await;
        let url_file = std::env::var_os(URL_FILE).unwrap();
        let user = tokio::spawn(async move {
            let url = wait_for_file(Path::new(&url_file)).await;
            visit(&approve(&url::Url::parse(&url).unwrap(), "c")).await
        });
        let client = AuthorizationClient::builder(
            "flyte.example.org",
            format!("{}/authorize", idp.uri()),
            format!("{}/token", idp.uri()),
            "flytectl",
            "http://localhost:0/callback",
        )
        .browser(BrowserOpener::system())
        .timeout(NO_HANG)
        .build()
        .unwrap();

        let creds = tokio::time::timeout(NO_HANG, client.get_creds_from_remote())
            .await
            .unwrap()
            .unwrap();

        assert_eq!(creds.access_token.expose_secret(), "from-system-browser");
        assert_eq!(user.await.unwrap().status, 200);
    });
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..1200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the fake browser was never started");
}
