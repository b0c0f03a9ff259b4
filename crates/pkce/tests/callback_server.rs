//! The browser login of `AuthorizationClient` against a mock token endpoint, with the test
//! playing the browser: what is sent, what the browser sees, and how every way of ending
//! the login behaves.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::Duration;

use flyte_auth_core::{Error, OAuthErrorCode};
use flyte_auth_oauth::pkce::s256_challenge;
use flyte_auth_pkce::{
    AuthorizationClient, AuthorizationClientBuilder, BrowserOpener, EndpointMetadata,
};
use serde_json::json;
use support::*;
use tokio::io::AsyncWriteExt as _;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn client(server: &MockServer, redirect_uri: &str) -> AuthorizationClientBuilder {
    AuthorizationClient::builder(
        "flyte.example.org",
        format!("{}/authorize", server.uri()),
        format!("{}/token", server.uri()),
        "flytectl",
        redirect_uri,
    )
    .prompt(RecordedPrompt::default().prompt())
    .timeout(NO_HANG)
}

async fn run(client: &AuthorizationClient) -> Result<flyte_auth_core::Credentials, Error> {
    tokio::time::timeout(NO_HANG * 2, client.get_creds_from_remote())
        .await
        .expect("the login does not hang")
}

#[tokio::test]
async fn a_full_login_sends_flytekits_parameters_and_exchanges_the_code_with_the_verifier() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(
        &idp,
        "the-code",
        json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
               "refresh_token": "rt-1", "id_token": "id-1", "scope": "openid offline_access"}),
    )
    .await;
    let browser = ScriptedBrowser::new();
    let client = client(&idp, "http://localhost:0/callback")
        .scopes(["openid", "offline_access"])
        .audience("flyte-api")
        .request_access_token_params([("resource", "flyte")])
        .add_request_auth_code_params_to_request_access_token_params(true)
        .browser(browser.approving("the-code"))
        .build()
        .unwrap();

    let creds = run(&client).await.unwrap();
    browser.finished().await;

    assert_eq!(creds.access_token.expose_secret(), "at-1");
    assert_eq!(
        creds.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-1"
    );
    assert_eq!(creds.id_token.as_ref().unwrap().expose_secret(), "id-1");
    assert_eq!(creds.for_endpoint, "flyte.example.org");
    assert_eq!(creds.client_id.as_deref(), Some("flytectl"));
    assert!(creds.expires_at().is_some());

    // The authorization request.
    let url = browser.last_url();
    assert_eq!(url.path(), "/authorize");
    let p = |n| param(&url, n);
    assert_eq!(p("client_id").as_deref(), Some("flytectl"));
    assert_eq!(p("response_type").as_deref(), Some("code"));
    assert_eq!(p("scope").as_deref(), Some("openid offline_access"));
    assert_eq!(p("audience").as_deref(), Some("flyte-api"));
    assert_eq!(p("code_challenge_method").as_deref(), Some("S256"));
    let redirect = p("redirect_uri").unwrap();
    assert!(redirect.starts_with("http://localhost:") && redirect.ends_with("/callback"));
    assert_ne!(
        redirect, "http://localhost:0/callback",
        "the bound port is sent"
    );
    let state = p("state").unwrap();
    assert!(state.len() >= 43, "at least 256 bits of state: {state}");

    // The browser saw the favicon's 404 first, and the login went on to a success page.
    let pages = browser.pages();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(pages[0].status, 404);
    assert_eq!(pages[1].status, 200);
    assert!(
        pages[1].body.contains("Login successful"),
        "{}",
        pages[1].body
    );
    assert!(pages[1].body.contains("flyte.example.org"));
    assert_eq!(
        pages[1].headers.get("referrer-policy").unwrap(),
        "no-referrer",
        "the code in the URL must not leak through Referer"
    );

    // The code exchange: flytekit's parameters, the verifier matching the challenge.
    let forms = token_requests(&idp).await;
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    let v = |n| form_value(form, n);
    assert_eq!(v("grant_type"), Some("authorization_code"));
    assert_eq!(v("code"), Some("the-code"));
    assert_eq!(v("client_id"), Some("flytectl"));
    assert_eq!(v("redirect_uri"), Some(redirect.as_str()));
    assert_eq!(v("state"), Some(state.as_str()));
    assert_eq!(v("scope"), Some("openid offline_access"));
    assert_eq!(v("audience"), Some("flyte-api"));
    assert_eq!(v("resource"), Some("flyte"));
    let verifier = v("code_verifier").unwrap();
    assert_eq!(s256_challenge(verifier), p("code_challenge").unwrap());
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "each parameter once: {names:?}");
}

#[tokio::test]
async fn every_login_has_a_new_state_and_verifier() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let client = client(&idp, "http://127.0.0.1:0/callback")
        .browser(browser.approving("c"))
        .build()
        .unwrap();
    run(&client).await.unwrap();
    let first = browser.last_url();
    run(&client).await.unwrap();
    let second = browser.last_url();
    assert_ne!(param(&first, "state"), param(&second, "state"));
    assert_ne!(
        param(&first, "code_challenge"),
        param(&second, "code_challenge")
    );
    let forms = token_requests(&idp).await;
    assert_ne!(
        form_value(&forms[0], "code_verifier"),
        form_value(&forms[1], "code_verifier")
    );
    // Without the flytekit flag, the exchange carries no authorization-request parameters.
    assert_eq!(form_value(&forms[0], "state"), None);
    assert_eq!(form_value(&forms[0], "response_type"), None);
}

#[tokio::test]
async fn a_callback_with_a_wrong_state_is_refused_and_the_real_one_still_completes_the_login() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "good", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let opener = browser.opener(|url, browser| async move {
        browser
            .visit(&callback(&url, "code=forged&state=not-the-state"))
            .await;
        browser.visit(&callback(&url, "code=forged")).await;
        browser.visit(&approve(&url, "good")).await;
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .build()
        .unwrap();

    let creds = run(&client).await.unwrap();
    browser.finished().await;

    assert_eq!(creds.access_token.expose_secret(), "a");
    let pages = browser.pages();
    assert_eq!(pages.len(), 3);
    for refused in &pages[..2] {
        assert_eq!(refused.status, 400);
        assert!(
            refused
                .body
                .contains("does not belong to the login in progress"),
            "{}",
            refused.body
        );
    }
    assert_eq!(pages[2].status, 200);
    let forms = token_requests(&idp).await;
    assert_eq!(forms.len(), 1, "the forged code was never exchanged");
    assert_eq!(form_value(&forms[0], "code"), Some("good"));
}

#[tokio::test]
async fn access_denied_ends_the_login_with_the_servers_code_and_description_and_tells_the_browser()
{
    let idp = MockServer::start().await;
    let browser = ScriptedBrowser::new();
    let opener = browser.opener(|url, browser| async move {
        let state = param(&url, "state").unwrap();
        browser
            .visit(&callback(
                &url,
                &format!(
                    "error=access_denied&error_description=The+user+said+%3Cb%3Eno%3C%2Fb%3E&state={state}"
                ),
            ))
            .await;
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .build()
        .unwrap();

    let err = run(&client).await.unwrap_err();
    browser.finished().await;

    let oauth = err.oauth().expect("an OAuth error");
    assert_eq!(oauth.code, OAuthErrorCode::AccessDenied);
    assert_eq!(
        oauth.description.as_deref(),
        Some("The user said <b>no</b>")
    );
    assert!(err.to_string().contains("access_denied"), "{err}");
    let page = &browser.pages()[0];
    assert_eq!(page.status, 400);
    assert!(page.body.contains("access_denied"), "{}", page.body);
    assert!(
        page.body.contains("The user said &lt;b&gt;no&lt;/b&gt;"),
        "escaped: {}",
        page.body
    );
    assert!(!page.body.contains("<b>no</b>"));
    assert!(token_requests(&idp).await.is_empty());
}

#[tokio::test]
async fn a_callback_without_code_or_error_ends_the_login_with_an_error_page() {
    let idp = MockServer::start().await;
    let browser = ScriptedBrowser::new();
    let opener = browser.opener(|url, browser| async move {
        let state = param(&url, "state").unwrap();
        browser
            .visit(&callback(&url, &format!("state={state}")))
            .await;
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .build()
        .unwrap();

    let err = run(&client).await.unwrap_err();
    browser.finished().await;

    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(
        err.to_string().contains("without an authorization code"),
        "{err}"
    );
    let page = &browser.pages()[0];
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Login failed"), "{}", page.body);
}

#[tokio::test]
async fn a_busy_port_is_reported_with_the_port_and_redirect_uri_before_any_browser_opens() {
    let idp = MockServer::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for redirect in [
        format!("http://127.0.0.1:{port}/callback"),
        format!("http://localhost:{port}/callback"),
    ] {
        let browser = ScriptedBrowser::new();
        let prompt = RecordedPrompt::default();
        let client = client(&idp, &redirect)
            .browser(browser.approving("c"))
            .prompt(prompt.prompt())
            .build()
            .unwrap();

        let err = run(&client).await.unwrap_err();

        let msg = err.to_string();
        assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
        assert!(
            msg.contains(&format!("port {port} is already in use")),
            "{msg}"
        );
        assert!(msg.contains(&redirect), "{msg}");
        assert_eq!(
            browser.opened(),
            0,
            "nothing is opened when the port is busy"
        );
        assert!(prompt.events().is_empty());
    }
    drop(taken);
}

#[tokio::test]
async fn the_login_times_out_naming_the_redirect_uri_and_frees_the_port() {
    let idp = MockServer::start().await;
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let browser = ScriptedBrowser::new();
    let client = client(&idp, &redirect)
        .browser(browser.opener(|_, _| async {}))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();

    let err = run(&client).await.unwrap_err();
    browser.finished().await;

    assert!(matches!(err, Error::LoginTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&redirect), "{err}");
    assert_eq!(browser.opened(), 1);
    assert!(port_is_free(port), "the callback server is gone");
}

#[tokio::test]
async fn the_callback_port_is_free_again_after_a_successful_login() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let port = free_port();
    let browser = ScriptedBrowser::new();
    let client = client(&idp, &format!("http://localhost:{port}/callback"))
        .browser(browser.approving("c"))
        .build()
        .unwrap();

    run(&client).await.unwrap();

    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "nothing answers on the callback port any more"
    );
    assert!(port_is_free(port));
    // And the same port can serve the next login.
    run(&client).await.unwrap();
    assert!(port_is_free(port));
}

#[tokio::test]
async fn an_html_502_from_the_token_endpoint_is_an_invalid_response_with_the_status() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(502)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><body><h1>502 Bad Gateway</h1></body></html>"),
        )
        .mount(&idp)
        .await;
    let browser = ScriptedBrowser::new();
    let client = client(&idp, "http://localhost:0/callback")
        .browser(browser.approving("c"))
        .build()
        .unwrap();

    let err = run(&client).await.unwrap_err();
    browser.finished().await;

    assert!(
        matches!(
            err,
            Error::InvalidResponse {
                status: Some(502),
                ..
            }
        ),
        "{err:?}"
    );
    let page = browser.pages().pop().unwrap();
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Login failed"), "{}", page.body);
    assert!(
        page.body.contains("502"),
        "the browser says why: {}",
        page.body
    );
}

#[tokio::test]
async fn a_rejected_code_is_an_oauth_error_and_the_browser_is_told() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "PKCE verification failed"}),
        ))
        .mount(&idp)
        .await;
    let browser = ScriptedBrowser::new();
    let client = client(&idp, "http://localhost:0/callback")
        .browser(browser.approving("c"))
        .endpoint_metadata(
            EndpointMetadata::new("flyte.example.org").with_failure_html("<p>custom failure</p>"),
        )
        .build()
        .unwrap();

    let err = run(&client).await.unwrap_err();
    browser.finished().await;

    assert_eq!(err.oauth().unwrap().code, OAuthErrorCode::InvalidGrant);
    let page = browser.pages().pop().unwrap();
    assert_eq!(page.body, "<p>custom failure</p>");
}

#[tokio::test]
async fn custom_success_page_is_shown() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let client = client(&idp, "http://localhost:0/callback")
        .browser(browser.approving("c"))
        .endpoint_metadata(EndpointMetadata::new("e").with_success_html("<p>welcome</p>"))
        .build()
        .unwrap();
    run(&client).await.unwrap();
    browser.finished().await;
    assert_eq!(browser.pages().pop().unwrap().body, "<p>welcome</p>");
}

#[tokio::test]
async fn without_a_browser_the_url_is_shown_and_the_login_completes_when_the_user_opens_it() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    // The "user" reads the URL from the prompt and opens it by hand.
    let prompt = flyte_auth_pkce::LoginPrompt::new(move |event| {
        if let flyte_auth_pkce::LoginEvent::Started {
            url,
            browser_opened,
            ..
        } = event
        {
            seen.lock().unwrap().push(*browser_opened);
            let target = approve(&url::Url::parse(url).unwrap(), "c");
            tokio::spawn(async move {
                visit(&target).await;
            });
        }
    });
    let client = client(&idp, "http://localhost:0/callback")
        .no_browser()
        .prompt(prompt)
        .build()
        .unwrap();

    let creds = run(&client).await.unwrap();

    assert_eq!(creds.access_token.expose_secret(), "a");
    assert_eq!(
        *events.lock().unwrap(),
        vec![false],
        "told that no browser opens"
    );
}

#[tokio::test]
async fn a_browser_that_cannot_be_opened_is_reported_and_the_login_keeps_waiting() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let prompt = RecordedPrompt::default();
    let events = std::sync::Arc::clone(&prompt.events);
    let opener = BrowserOpener::new(move |url| {
        // The user copies the URL from the terminal once told the browser failed.
        let target = approve(&url::Url::parse(url).unwrap(), "c");
        let events = std::sync::Arc::clone(&events);
        tokio::spawn(async move {
            for _ in 0..200 {
                if events
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|e| e.starts_with("browser failed"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            visit(&target).await;
        });
        Err("no display".to_owned())
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .prompt(prompt.prompt())
        .build()
        .unwrap();

    run(&client).await.unwrap();

    let events = prompt.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[0].starts_with("started browser=true http://"),
        "{events:?}"
    );
    assert_eq!(events[1], "browser failed: no display");
}

#[tokio::test]
async fn an_idle_pre_connection_does_not_hold_up_other_requests() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let idle_was_open = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = std::sync::Arc::clone(&idle_was_open);
    let opener = browser.opener(move |url, browser| {
        let record = std::sync::Arc::clone(&record);
        async move {
            let redirect = url::Url::parse(&param(&url, "redirect_uri").unwrap()).unwrap();
            let addr = format!("127.0.0.1:{}", redirect.port().unwrap());
            // A browser's speculative connection: opened, nothing sent.
            let idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
            // A second connection with a head far over the cap.
            let mut huge = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!("GET /x HTTP/1.1\r\nCookie: {}\r\n\r\n", "a".repeat(64 * 1024));
            let _ = huge.write_all(head.as_bytes()).await;
            let favicon = browser.visit(redirect.join("/favicon.ico").unwrap().as_str()).await;
            assert_eq!(favicon.status, 404);
            // The favicon was answered while the idle connection is still open (not yet
            // timed out and closed by the server): connections are served concurrently.
            let mut buf = [0u8; 1];
            let still_open = matches!(idle.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            *record.lock().unwrap() = Some(still_open);
            browser.visit(&approve(&url, "c")).await;
            drop(idle);
        }
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .build()
        .unwrap();

    run(&client).await.unwrap();
    browser.finished().await;

    assert_eq!(*idle_was_open.lock().unwrap(), Some(true));
}

#[tokio::test]
async fn localhost_is_served_on_ipv4_and_on_ipv6_where_the_machine_has_it() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let browser = ScriptedBrowser::new();
    let opener = browser.opener(move |url, browser| async move {
        let port = url::Url::parse(&param(&url, "redirect_uri").unwrap())
            .unwrap()
            .port()
            .unwrap();
        let v4 = browser
            .visit(&format!("http://127.0.0.1:{port}/favicon.ico"))
            .await;
        assert_eq!(v4.status, 404);
        if ipv6 {
            let v6 = browser
                .visit(&format!("http://[::1]:{port}/favicon.ico"))
                .await;
            assert_eq!(v6.status, 404);
        }
        browser.visit(&approve(&url, "c")).await;
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .build()
        .unwrap();

    run(&client).await.unwrap();
    browser.finished().await;

    assert_eq!(browser.pages().len(), if ipv6 { 3 } else { 2 });
    assert!(
        browser
            .pages()
            .iter()
            .take(if ipv6 { 2 } else { 1 })
            .all(|p| p.status == 404)
    );
}

#[tokio::test]
async fn a_non_get_request_is_refused_without_ending_the_login() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&statuses);
    let opener = browser.opener(move |url, browser| {
        let record = std::sync::Arc::clone(&record);
        async move {
            let post = browser_http()
                .post(approve(&url, "c"))
                .send()
                .await
                .unwrap();
            record.lock().unwrap().push(post.status().as_u16());
            browser.visit(&approve(&url, "c")).await;
        }
    });
    let client = client(&idp, "http://localhost:0/callback")
        .browser(opener)
        .build()
        .unwrap();
    run(&client).await.unwrap();
    browser.finished().await;
    assert_eq!(*statuses.lock().unwrap(), vec![405]);
}

#[tokio::test]
async fn redirect_uris_that_cannot_work_are_refused_when_the_client_is_built() {
    let idp = MockServer::start().await;
    for (uri, expected) in [
        (
            "http://flyte.example.org:53593/callback",
            "does not point to this machine",
        ),
        ("http://localhost/callback", "has no port"),
        ("https://localhost:53593/callback", "http://"),
        ("localhost:53593", "http://"),
    ] {
        let err = client(&idp, uri).build().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{uri}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(uri) && msg.contains(expected), "{uri}: {msg}");
    }
}

#[tokio::test]
async fn a_cancelled_login_closes_the_callback_server() {
    let idp = MockServer::start().await;
    let port = free_port();
    let browser = ScriptedBrowser::new();
    let client = client(&idp, &format!("http://localhost:{port}/callback"))
        .browser(browser.opener(|_, _| async {}))
        .build()
        .unwrap();

    // The caller gives up (drops the login future) while the login waits for the browser.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(300), client.get_creds_from_remote()).await;

    assert!(gave_up.is_err(), "the login was still waiting");
    assert_eq!(browser.opened(), 1);
    assert!(
        port_is_free(port),
        "dropping the login closed its listeners"
    );
}

/// Connections that send nothing (a browser's speculative ones, or anything else on the
/// machine) cannot take every slot of the callback server: they are closed after a short
/// wait for their first byte, and the browser's callback, queued meanwhile, gets through.
#[tokio::test]
async fn idle_connections_filling_every_slot_do_not_block_the_callback() {
    const IDLE: usize = 80;
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let opener = browser.opener(move |url, _browser| async move {
        let redirect = url::Url::parse(&param(&url, "redirect_uri").unwrap()).unwrap();
        let addr = format!("127.0.0.1:{}", redirect.port().unwrap());
        let mut idle = Vec::new();
        for _ in 0..IDLE {
            idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        }
        // Let the server take in what it accepts before the real callback arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(8))
            .build()
            .unwrap();
        let response = http.get(approve(&url, "c")).send().await;
        let response = response.unwrap_or_else(|e| {
            panic!(
                "the callback went unanswered after {:?}: {e}",
                started.elapsed()
            )
        });
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        drop(idle);
    });
    let client = client(&idp, "http://127.0.0.1:0/callback")
        .browser(opener)
        .build()
        .unwrap();

    run(&client).await.unwrap();
    browser.finished().await;
}

/// RFC 9207: when the authorization server announces `iss` in its responses, a callback
/// naming another issuer, or none, comes from another authorization server (a mix-up): it
/// ends the login with a typed error and its code is never exchanged. The right one passes.
#[tokio::test]
async fn a_callback_from_another_issuer_is_refused_when_the_server_announces_iss() {
    const ISSUER: &str = "https://idp.example.org/oauth2";
    for (iss, accepted) in [
        (Some(ISSUER), true),
        (Some("https://attacker.example.org"), false),
        (Some("https://idp.example.org/oauth2/"), false),
        (Some("https://evil.example\u{1b}[2K\u{1b}]8;;x\u{7}"), false),
        (None, false),
    ] {
        let idp = MockServer::start().await;
        token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
        let browser = ScriptedBrowser::new();
        let opener = browser.opener(move |url, browser| async move {
            let mut back = approve(&url, "c");
            if let Some(iss) = iss {
                back = format!(
                    "{back}&iss={}",
                    url::form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>()
                );
            }
            browser.visit(&back).await;
        });
        let client = client(&idp, "http://127.0.0.1:0/callback")
            .authorization_response_issuer(ISSUER)
            .browser(opener)
            .build()
            .unwrap();

        let result = run(&client).await;
        browser.finished().await;
        let forms = token_requests(&idp).await;
        let pages = browser.pages();
        if accepted {
            result.unwrap();
            assert_eq!(forms.len(), 1);
            assert_eq!(pages[0].status, 200);
            continue;
        }
        let e = result.unwrap_err();
        let Error::Other(inner) = &e else {
            panic!("expected the issuer mismatch for {iss:?}, got {e:?}");
        };
        let mismatch = inner
            .downcast_ref::<flyte_auth_pkce::IssuerMismatch>()
            .unwrap_or_else(|| panic!("not an IssuerMismatch: {inner:?}"));
        assert_eq!(mismatch.expected, ISSUER);
        assert_eq!(
            mismatch.received.as_deref(),
            iss.map(|iss| flyte_auth_core::text::printable(iss))
                .as_deref()
        );
        assert!(e.to_string().contains(ISSUER), "{e}");
        assert!(!e.to_string().chars().any(char::is_control), "{e:?}");
        assert!(forms.is_empty(), "the code of {iss:?} was exchanged");
        assert_eq!(pages.len(), 1);
        assert_ne!(pages[0].status, 200, "{}", pages[0].body);
        assert!(
            pages[0].body.contains("another identity provider"),
            "{}",
            pages[0].body
        );
    }
}

/// Without the server's announcement there is nothing to compare: `iss` is not required.
#[tokio::test]
async fn without_the_announcement_a_callback_without_iss_is_accepted() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "a"})).await;
    let browser = ScriptedBrowser::new();
    let client = client(&idp, "http://127.0.0.1:0/callback")
        .authorization_response_issuer("")
        .browser(browser.approving("c"))
        .build()
        .unwrap();
    run(&client).await.unwrap();
    browser.finished().await;
}
