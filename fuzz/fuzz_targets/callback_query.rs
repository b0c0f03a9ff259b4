//! The browser login's callback: the request a browser (or anything else on this machine)
//! sends to the loopback callback server, whose request line and query (`code`, `state`,
//! `error`, `error_description`, `error_uri`) are read.
//!
//! Each input runs one real login of `AuthorizationClient` (the public API that reaches the
//! callback parser): the "browser" sends the input as a raw HTTP request to the callback server
//! with every `{state}` replaced by the login's real state, then a final
//! `?state=...&error=fuzz_end` callback that ends a login still waiting. A code is exchanged at
//! a closed loopback port, so it fails at once.
//!
//! Input: the raw request head, e.g. `GET /callback?code=abc&state={state} HTTP/1.1\r\n\r\n`.
//! Checked: no panic, no hang; without the real state, nothing ends the login but the final
//! callback (a wrong, missing, repeated or mangled `state` never gets through).
#![no_main]

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{Mutex, OnceLock},
    thread::JoinHandle,
    time::Duration,
};

use flyte_auth_core::Error;
use flyte_auth_fuzz::{oauth_client, runtime};
use flyte_auth_pkce::{AuthorizationClient, BrowserOpener, LoginPrompt};
use libfuzzer_sys::fuzz_target;

const END_CODE: &str = "fuzz_end";

static INPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static BROWSER: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `request` on a new connection, closes the sending side, reads the answer to its end.
fn send(addr: &str, request: &[u8]) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.take(1 << 20).read_to_end(&mut answer);
}

/// Plays the browser: the fuzzer's request, then the one that ends the login.
fn browse(url: &str) -> Result<(), String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let mut state = String::new();
    let mut redirect = String::new();
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "state" => state = value.into_owned(),
            "redirect_uri" => redirect = value.into_owned(),
            _ => {}
        }
    }
    let redirect = url::Url::parse(&redirect).map_err(|e| e.to_string())?;
    let addr = format!(
        "{}:{}",
        redirect.host_str().unwrap_or("127.0.0.1"),
        redirect.port().unwrap_or(80)
    );
    let path = redirect.path().to_owned();
    let input = lock(&INPUT).clone();
    let request = replace(&input, b"{state}", state.as_bytes());
    let handle = std::thread::spawn(move || {
        send(&addr, &request);
        let end =
            format!("GET {path}?state={state}&error={END_CODE} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        send(&addr, end.as_bytes());
    });
    *lock(&BROWSER) = Some(handle);
    Ok(())
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn client() -> &'static AuthorizationClient {
    static CLIENT: OnceLock<AuthorizationClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        AuthorizationClient::builder(
            "flyte.example.org:443",
            "http://127.0.0.1:1/authorize",
            // Nothing listens on port 1: a code exchange fails at once.
            "http://127.0.0.1:1/token",
            "flytectl",
            "http://127.0.0.1:0/callback",
        )
        .http_client(oauth_client())
        .browser(BrowserOpener::new(browse))
        .prompt(LoginPrompt::new(|_| {}))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a valid login configuration")
    })
}

fuzz_target!(|input: &[u8]| {
    *lock(&INPUT) = input.to_vec();
    let result = runtime().block_on(client().get_creds_from_remote());
    if let Some(browser) = lock(&BROWSER).take() {
        browser.join().expect("the browser thread does not panic");
    }
    let ended_by_final_callback =
        matches!(&result, Err(Error::OAuth(e)) if e.code.as_str() == END_CODE);
    if !input.windows(7).any(|w| w == b"{state}") {
        assert!(
            ended_by_final_callback,
            "a request without the login's state ended the login: {result:?}"
        );
    }
    assert!(
        result.is_err(),
        "no token endpoint answers, yet a login succeeded"
    );
});
