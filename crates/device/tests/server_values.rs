//! What a device authorization server may send that no honest one does: numbers out of any
//! range (`interval`, `expires_in` of `1e30`), and terminal control sequences in what is shown
//! to the user. The login neither panics nor shows a control character.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, ClientConfig, Credentials, Endpoint, Error,
    MAX_TOKEN_LIFETIME, StaticClientConfigStore,
};
use flyte_auth_device::{DeviceCodeAuthenticator, DeviceCodeFlow, DevicePrompt, PollTimer};
use flyte_auth_oauth::{ClientContext, MAX_DEVICE_POLL_INTERVAL};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const NO_HANG: Duration = Duration::from_secs(30);

/// Virtual time: sleeping advances it and returns at once.
#[derive(Debug)]
struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
}

impl PollTimer for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        *self.offset.lock().unwrap() += duration;
        self.sleeps.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

struct World {
    server: MockServer,
    clock: Arc<ManualClock>,
    prompts: Arc<Mutex<Vec<DevicePrompt>>>,
}

impl World {
    async fn start(device_answer: serde_json::Value, token_answer: serde_json::Value) -> Self {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/device"))
            .respond_with(ResponseTemplate::new(200).set_body_json(device_answer))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_answer))
            .mount(&server)
            .await;
        Self {
            server,
            clock: Arc::new(ManualClock {
                start: Instant::now(),
                offset: Mutex::new(Duration::ZERO),
                sleeps: Mutex::new(Vec::new()),
            }),
            prompts: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn authenticator(&self, timeout: Option<Duration>) -> DeviceCodeAuthenticator {
        let config = ClientConfig::new(format!("{}/token", self.server.uri()), "flytectl")
            .with_device_authorization_endpoint(format!("{}/device", self.server.uri()));
        let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org").unwrap())
            .discovery(Arc::new(StaticClientConfigStore::new(config)))
            .build()
            .unwrap();
        let prompts = Arc::clone(&self.prompts);
        let mut flow = DeviceCodeFlow::builder(ctx)
            .poll_timer(Arc::clone(&self.clock) as Arc<dyn PollTimer>)
            .prompt(move |p| prompts.lock().unwrap().push(p.clone()));
        if let Some(timeout) = timeout {
            flow = flow.timeout(timeout);
        }
        CachingAuthenticator::builder(flow.build().unwrap()).build()
    }

    async fn login(&self, timeout: Option<Duration>) -> Result<Arc<Credentials>, Error> {
        let auth = self.authenticator(timeout);
        tokio::time::timeout(NO_HANG, auth.get_credentials())
            .await
            .expect("the login must not hang")
    }
}

fn device_answer(user_code: &str, uri: &str, complete: Option<&str>) -> serde_json::Value {
    let mut answer = json!({
        "device_code": "dev-code",
        "user_code": user_code,
        "verification_uri": uri,
        "expires_in": 600,
        "interval": 5,
    });
    if let Some(complete) = complete {
        answer["verification_uri_complete"] = json!(complete);
    }
    answer
}

/// Base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A JWT (unsigned) whose `exp` claim is written as `exp`.
fn jwt_with_exp(exp: &str) -> String {
    format!(
        "{}.{}.sig",
        base64url(br#"{"alg":"none"}"#),
        base64url(format!(r#"{{"exp":{exp}}}"#).as_bytes())
    )
}

fn assert_sane_expiry(credentials: &Credentials) {
    let at = credentials.expires_at().expect("an expiry");
    let latest = SystemTime::now() + MAX_TOKEN_LIFETIME + Duration::from_secs(5);
    assert!(at <= latest, "{at:?}");
    assert!(at > SystemTime::now());
}

#[tokio::test]
async fn an_interval_and_lifetimes_of_1e30_neither_panic_nor_stall_the_login() {
    let device = json!({
        "device_code": "dev-code",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://idp.example.org/activate",
        "expires_in": 1e30,
        "interval": 1e30,
    });
    let token = json!({"access_token": "opaque", "token_type": "Bearer", "expires_in": 1e30});
    let world = World::start(device, token).await;
    let credentials = world.login(None).await.unwrap();
    assert_sane_expiry(&credentials);
    let sleeps = world.clock.sleeps.lock().unwrap().clone();
    assert_eq!(
        sleeps,
        [MAX_DEVICE_POLL_INTERVAL],
        "one poll, after the longest wait"
    );
    let prompt = world.prompts.lock().unwrap()[0].clone();
    let valid_for = prompt.expires_in.expect("the server said");
    assert!(
        valid_for <= Duration::from_secs(24 * 60 * 60),
        "{valid_for:?}"
    );
}

#[tokio::test]
async fn a_jwt_exp_of_1e30_and_a_login_timeout_of_forever_do_not_panic() {
    let device = json!({
        "device_code": "dev-code",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://idp.example.org/activate",
        "interval": "1e30",
    });
    let token = json!({"access_token": jwt_with_exp("1e30"), "token_type": "Bearer"});
    let world = World::start(device, token).await;
    let credentials = world.login(Some(Duration::MAX)).await.unwrap();
    assert_sane_expiry(&credentials);
}

#[tokio::test]
async fn control_characters_from_the_server_never_reach_the_prompt() {
    let forged = "https://idp.example.org/activate\x1b[2K\rhttps://evil.example/activate";
    let osc8 = "\x1b]8;;https://evil.example\x07https://idp.example.org/activate?c=1\x1b]8;;\x07";
    for (user_code, uri, complete) in [
        (
            "WDJB\x1b[8mHIDDEN\x1b[0m",
            "https://idp.example.org/activate",
            None,
        ),
        ("WDJB-MJHT", forged, None),
        ("WDJB-MJHT", "https://idp.example.org/activate", Some(osc8)),
        (
            "\u{9b}2K\x7f",
            "https://idp.example.org/a\u{202e}",
            Some("\x07\x08"),
        ),
    ] {
        let token = json!({"access_token": "a", "expires_in": 3600});
        let world = World::start(device_answer(user_code, uri, complete), token).await;
        world.login(None).await.unwrap();
        let prompt = world.prompts.lock().unwrap()[0].clone();
        let shown = prompt.to_string();
        for text in [
            shown.as_str(),
            prompt.url(),
            prompt.user_code.as_str(),
            prompt.verification_uri.as_str(),
        ] {
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "a control character reaches the terminal: {text:?}"
            );
            assert!(!text.contains('\u{202e}'), "{text:?}");
        }
        // Escaped, not dropped: nothing the server sent is hidden.
        assert!(
            shown.contains("\\u{1b}") || shown.contains("\\u{9b}"),
            "{shown}"
        );
    }
}

#[test]
fn a_prompt_built_by_hand_shows_no_control_character_either() {
    let mut prompt = DevicePrompt::new(
        "flyte.example.org",
        "https://idp.example.org/activate\x1b[1A",
        None,
        "AB\x1bCD",
        None,
    );
    prompt.user_code = "\x1b]0;title\x07".to_owned();
    let shown = prompt.to_string();
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown}"
    );
    assert!(shown.contains("\\u{1b}]0;title\\u{7}"), "{shown}");
}
