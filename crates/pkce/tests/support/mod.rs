//! Test support: a browser played by the test (through an injected opener), a mock token
//! endpoint, and helpers to read what was sent.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the support module"
)]

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use flyte_auth_pkce::{BrowserOpener, LoginEvent, LoginPrompt};
use url::Url;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

/// A generous bound proving that something does not hang.
pub(crate) const NO_HANG: Duration = Duration::from_secs(60);

/// An HTTP client acting as the browser: no proxy, no redirects, bounded in time.
pub(crate) fn browser_http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("test HTTP client")
}

/// What the browser saw.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) headers: reqwest::header::HeaderMap,
}

/// GETs `url` like a browser.
pub(crate) async fn visit(url: &str) -> Page {
    let response = browser_http()
        .get(url)
        .send()
        .await
        .expect("the callback server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a readable page");
    Page {
        status,
        body,
        headers,
    }
}

/// A query parameter of the authorization URL.
pub(crate) fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The callback URL the identity provider would send the browser to, with `query`.
pub(crate) fn callback(url: &Url, query: &str) -> String {
    let redirect = param(url, "redirect_uri").expect("redirect_uri in the authorization URL");
    format!("{redirect}?{query}")
}

/// The approving callback: `code` and the right `state`.
pub(crate) fn approve(url: &Url, code: &str) -> String {
    let state = param(url, "state").expect("state in the authorization URL");
    callback(url, &format!("code={code}&state={state}"))
}

/// A browser played by the test: every time the login opens it, `script` runs (spawned) with
/// the authorization URL; the pages it saw are collected.
#[derive(Clone, Default)]
pub(crate) struct ScriptedBrowser {
    pub(crate) opened: Arc<AtomicUsize>,
    pub(crate) urls: Arc<Mutex<Vec<Url>>>,
    pub(crate) pages: Arc<Mutex<Vec<Page>>>,
    scripts: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl ScriptedBrowser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An opener running `script(url, browser)` on a new task.
    pub(crate) fn opener<F, Fut>(&self, script: F) -> BrowserOpener
    where
        F: Fn(Url, ScriptedBrowser) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let this = self.clone();
        BrowserOpener::new(move |url| {
            let url = Url::parse(url).expect("authorization URL");
            this.opened.fetch_add(1, Ordering::SeqCst);
            this.urls.lock().expect("urls lock").push(url.clone());
            let handle = tokio::spawn(script(url.clone(), this.clone()));
            this.scripts.lock().expect("scripts lock").push(handle);
            Ok(())
        })
    }

    /// An opener that approves the login with `code` (after asking for the favicon first,
    /// as browsers do).
    pub(crate) fn approving(&self, code: &'static str) -> BrowserOpener {
        self.opener(move |url, browser| async move {
            let favicon = url::Url::parse(&approve(&url, code))
                .expect("callback URL")
                .join("/favicon.ico")
                .expect("favicon URL");
            browser.visit(favicon.as_str()).await;
            browser.visit(&approve(&url, code)).await;
        })
    }

    /// Visits `url` and records the page.
    pub(crate) async fn visit(&self, url: &str) -> Page {
        let page = visit(url).await;
        self.pages.lock().expect("pages lock").push(page.clone());
        page
    }

    /// Waits for every script started so far; a script's panic (a failed assertion in it)
    /// fails the test here.
    pub(crate) async fn finished(&self) {
        let handles: Vec<_> = self
            .scripts
            .lock()
            .expect("scripts lock")
            .drain(..)
            .collect();
        for handle in handles {
            tokio::time::timeout(NO_HANG, handle)
                .await
                .expect("the browser script does not hang")
                .expect("the browser script succeeds");
        }
    }

    pub(crate) fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    pub(crate) fn last_url(&self) -> Url {
        self.urls
            .lock()
            .expect("urls lock")
            .last()
            .cloned()
            .expect("the browser was opened")
    }

    /// The pages seen so far (call [`finished`](Self::finished) first).
    pub(crate) fn pages(&self) -> Vec<Page> {
        self.pages.lock().expect("pages lock").clone()
    }
}

/// A prompt that records what the user would have been told.
#[derive(Clone, Default)]
pub(crate) struct RecordedPrompt {
    pub(crate) events: Arc<Mutex<Vec<String>>>,
}

impl RecordedPrompt {
    pub(crate) fn prompt(&self) -> LoginPrompt {
        let events = Arc::clone(&self.events);
        LoginPrompt::new(move |event| {
            let line = match event {
                LoginEvent::Started {
                    url,
                    browser_opened,
                    ..
                } => format!("started browser={browser_opened} {url}"),
                LoginEvent::BrowserFailed { reason, .. } => format!("browser failed: {reason}"),
                _ => "other".to_owned(),
            };
            events.lock().expect("events lock").push(line);
        })
    }

    pub(crate) fn events(&self) -> Vec<String> {
        self.events.lock().expect("events lock").clone()
    }
}

/// A token endpoint answering the code exchange for `code` with `body`.
pub(crate) async fn token_endpoint_for_code(
    server: &MockServer,
    code: &str,
    body: serde_json::Value,
) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(format!("code={code}&")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// The form bodies the token endpoint received, decoded.
pub(crate) async fn token_requests(server: &MockServer) -> Vec<Vec<(String, String)>> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/token")
        .map(|r| {
            url::form_urlencoded::parse(&r.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .collect()
}

/// The value of `name` in a decoded form.
pub(crate) fn form_value<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Whether nothing listens on 127.0.0.1:`port` any more (it can be bound again).
pub(crate) fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
