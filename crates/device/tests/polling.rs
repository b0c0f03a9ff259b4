//! The device login against a mock authorization server, in virtual time: the poll schedule
//! (interval, `slow_down`, back-off), the answers that end it, expiry, timeout, cancellation,
//! the prompt, and the refresh grant tried before a new login.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, ClientConfig, ClientConfigStore, Credentials,
    Endpoint, Error, MemoryStore, OAuthErrorCode, StaticClientConfigStore, TokenStore,
};
use flyte_auth_device::{
    CancelHandle, DeviceCodeAuthenticator, DeviceCodeFlow, DevicePrompt, PollTimer,
};
use flyte_auth_oauth::ClientContext;
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

const DEVICE_GRANT: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";
const REFRESH_GRANT: &str = "grant_type=refresh_token";
const ENDPOINT: &str = "flyte.example.org";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));
/// Bounds every test that waits on a real socket, so that a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(30);

/// Virtual time: sleeping advances it and returns at once, so a ten-minute login runs in
/// milliseconds and poll instants are exact.
#[derive(Debug)]
struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }

    fn elapsed(&self) -> Duration {
        *self.offset.lock().unwrap()
    }
}

impl PollTimer for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        *self.offset.lock().unwrap() += duration;
        Box::pin(async {})
    }
}

type Hook = Box<dyn Fn(usize) + Send + Sync>;

/// Answers the device-code polls from a script (then repeats `then`) and records the virtual
/// instant of each poll.
#[derive(Clone)]
struct Script {
    inner: Arc<ScriptInner>,
}

struct ScriptInner {
    clock: Arc<ManualClock>,
    replies: Mutex<VecDeque<ResponseTemplate>>,
    then: ResponseTemplate,
    polls: Mutex<Vec<Duration>>,
    on_poll: Mutex<Option<Hook>>,
}

impl Script {
    fn new(
        clock: &Arc<ManualClock>,
        replies: Vec<ResponseTemplate>,
        then: ResponseTemplate,
    ) -> Self {
        Self {
            inner: Arc::new(ScriptInner {
                clock: Arc::clone(clock),
                replies: Mutex::new(replies.into()),
                then,
                polls: Mutex::new(Vec::new()),
                on_poll: Mutex::new(None),
            }),
        }
    }

    /// Runs `hook(n)` when poll number `n` (1-based) arrives.
    fn on_poll(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
        *self.inner.on_poll.lock().unwrap() = Some(Box::new(hook));
    }

    /// The virtual instants of the polls, in whole seconds.
    fn poll_times(&self) -> Vec<u64> {
        self.inner
            .polls
            .lock()
            .unwrap()
            .iter()
            .map(Duration::as_secs)
            .collect()
    }

    fn polls(&self) -> usize {
        self.inner.polls.lock().unwrap().len()
    }
}

impl Respond for Script {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let n = {
            let mut polls = self.inner.polls.lock().unwrap();
            polls.push(self.inner.clock.elapsed());
            polls.len()
        };
        if let Some(hook) = self.inner.on_poll.lock().unwrap().as_ref() {
            hook(n);
        }
        self.inner
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.inner.then.clone())
    }
}

fn oauth_error(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "error": code }))
}

fn pending() -> ResponseTemplate {
    oauth_error("authorization_pending")
}

fn slow_down() -> ResponseTemplate {
    oauth_error("slow_down")
}

fn token(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh,
    }))
}

fn bad_gateway() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_raw(
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
        "text/html",
    )
}

/// What the device authorization endpoint answers.
fn device_answer(interval: Option<u64>, expires_in: u64, complete: bool) -> serde_json::Value {
    let mut answer = json!({
        "device_code": "dev-code-SECRET",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://idp.example.org/activate",
        "expires_in": expires_in,
    });
    if let Some(interval) = interval {
        answer["interval"] = json!(interval);
    }
    if complete {
        answer["verification_uri_complete"] =
            json!("https://idp.example.org/activate?user_code=WDJB-MJHT");
    }
    answer
}

struct World {
    server: MockServer,
    clock: Arc<ManualClock>,
    prompts: Arc<Mutex<Vec<DevicePrompt>>>,
}

impl World {
    async fn start() -> Self {
        Self {
            server: MockServer::start().await,
            clock: ManualClock::new(),
            prompts: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn config(&self) -> ClientConfig {
        ClientConfig::new(format!("{}/token", self.server.uri()), "flytectl")
            .with_device_authorization_endpoint(format!("{}/device", self.server.uri()))
            .with_scopes(["all", "offline"])
            .with_audience("https://flyte.example.org")
    }

    async fn device_endpoint_answers(&self, answer: serde_json::Value) {
        Mock::given(method("POST"))
            .and(path("/device"))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&self.server)
            .await;
    }

    /// Answers device-code polls with `replies`, then `then` forever.
    async fn polls_answer(&self, replies: Vec<ResponseTemplate>, then: ResponseTemplate) -> Script {
        let script = Script::new(&self.clock, replies, then);
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(DEVICE_GRANT))
            .respond_with(script.clone())
            .mount(&self.server)
            .await;
        script
    }

    fn builder(&self) -> Assembly {
        Assembly {
            cfg_store: Arc::new(StaticClientConfigStore::new(self.config())),
            store: None,
            poll_interval: None,
            timeout: None,
            clock: Some(Arc::clone(&self.clock) as Arc<dyn PollTimer>),
            prompts: Arc::clone(&self.prompts),
        }
    }

    fn authenticator(&self) -> DeviceCodeAuthenticator {
        self.builder().build().unwrap()
    }

    fn prompts(&self) -> Vec<DevicePrompt> {
        self.prompts.lock().unwrap().clone()
    }

    /// The form bodies of the requests to `path` that contain `marker`.
    async fn forms(&self, path: &str, marker: &str) -> Vec<Vec<(String, String)>> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == path)
            .filter(|r| String::from_utf8_lossy(&r.body).contains(marker))
            .map(|r| {
                url::form_urlencoded::parse(&r.body)
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The authenticator under test, put together as the factory does it: a context over the
/// client config store, the flow, core's cache.
struct Assembly {
    cfg_store: Arc<dyn ClientConfigStore>,
    store: Option<Arc<dyn TokenStore>>,
    poll_interval: Option<Duration>,
    timeout: Option<Duration>,
    clock: Option<Arc<dyn PollTimer>>,
    prompts: Arc<Mutex<Vec<DevicePrompt>>>,
}

impl Assembly {
    fn cfg_store(mut self, cfg_store: Arc<dyn ClientConfigStore>) -> Self {
        self.cfg_store = cfg_store;
        self
    }

    fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn real_time(mut self) -> Self {
        self.clock = None;
        self
    }

    fn build(self) -> Result<DeviceCodeAuthenticator, Error> {
        let ctx = ClientContext::builder(Endpoint::parse(ENDPOINT)?)
            .discovery(self.cfg_store)
            .build()?;
        let prompts = self.prompts;
        let mut flow =
            DeviceCodeFlow::builder(ctx).prompt(move |p| prompts.lock().unwrap().push(p.clone()));
        if let Some(clock) = self.clock {
            flow = flow.poll_timer(clock);
        }
        if let Some(interval) = self.poll_interval {
            flow = flow.poll_interval(interval);
        }
        if let Some(timeout) = self.timeout {
            flow = flow.timeout(timeout);
        }
        Ok(CachingAuthenticator::builder(flow.build()?)
            .maybe_store(self.store)
            .build())
    }
}

async fn login(auth: &DeviceCodeAuthenticator) -> Result<Arc<Credentials>, Error> {
    tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .expect("the login must not hang")
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn slow_down_adds_five_seconds_to_this_and_every_later_poll() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world
        .polls_answer(
            vec![pending(), slow_down(), pending(), slow_down()],
            token("at-1", "rt-1"),
        )
        .await;

    let credentials = login(&world.authenticator()).await.unwrap();

    assert_eq!(credentials.access_token.expose_secret(), "at-1");
    // 5: pending; 10: slow_down (interval 10); 20: pending; 30: slow_down (interval 15); 45: token.
    assert_eq!(script.poll_times(), [5, 10, 20, 30, 45]);
}

#[tokio::test]
async fn the_configured_poll_interval_is_used_only_when_the_server_names_none() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(None, 600, true))
        .await;
    let script = world
        .polls_answer(vec![pending()], token("at-1", "rt-1"))
        .await;
    let auth = world
        .builder()
        .poll_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    login(&auth).await.unwrap();
    assert_eq!(script.poll_times(), [2, 4]);

    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(7), 600, true))
        .await;
    let script = world
        .polls_answer(vec![pending()], token("at-1", "rt-1"))
        .await;
    let auth = world
        .builder()
        .poll_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    login(&auth).await.unwrap();
    assert_eq!(script.poll_times(), [7, 14], "the server's interval wins");
}

#[tokio::test]
async fn without_any_interval_polling_waits_five_seconds() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(None, 600, false))
        .await;
    let script = world
        .polls_answer(vec![pending(), pending()], token("at-1", "rt-1"))
        .await;
    login(&world.authenticator()).await.unwrap();
    assert_eq!(script.poll_times(), [5, 10, 15]);
}

#[tokio::test]
async fn access_denied_stops_polling_at_once_with_its_own_error() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world
        .polls_answer(vec![pending()], oauth_error("access_denied"))
        .await;

    let error = login(&world.authenticator()).await.unwrap_err();

    let oauth = error.oauth().expect("an OAuth error");
    assert_eq!(oauth.code, OAuthErrorCode::AccessDenied);
    assert!(error.to_string().contains("refused"), "{error}");
    assert_eq!(script.poll_times(), [5, 10], "no poll after access_denied");
    assert_eq!(world.clock.elapsed(), Duration::from_secs(10));
}

#[tokio::test]
async fn expired_token_from_the_server_stops_polling_at_once_with_its_own_error() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world
        .polls_answer(vec![], oauth_error("expired_token"))
        .await;

    let error = login(&world.authenticator()).await.unwrap_err();

    assert_eq!(error.oauth().unwrap().code, OAuthErrorCode::ExpiredToken);
    assert!(error.to_string().contains("expired"), "{error}");
    assert_eq!(script.polls(), 1);
}

#[tokio::test]
async fn polling_ends_when_the_code_expires_without_an_answer() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 20, true))
        .await;
    let script = world.polls_answer(vec![], pending()).await;

    let error = login(&world.authenticator()).await.unwrap_err();

    match &error {
        Error::LoginTimeout { operation, after } => {
            assert_eq!(*after, Duration::from_secs(20));
            assert!(operation.contains("code expired"), "{error}");
            assert!(operation.contains(ENDPOINT), "{error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(script.poll_times(), [5, 10, 15]);
    assert_eq!(world.clock.elapsed(), Duration::from_secs(20));
    let text = error.to_string();
    assert!(!text.contains("dev-code-SECRET"), "{text}");
}

#[tokio::test]
async fn the_configured_timeout_ends_polling_before_the_code_expires() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world.polls_answer(vec![], pending()).await;
    let auth = world
        .builder()
        .timeout(Duration::from_secs(12))
        .build()
        .unwrap();

    let error = login(&auth).await.unwrap_err();

    match &error {
        Error::LoginTimeout { operation, after } => {
            assert_eq!(*after, Duration::from_secs(12));
            assert!(operation.contains("deviceFlowConfig.timeout"), "{error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(script.poll_times(), [5, 10]);
    assert_eq!(world.clock.elapsed(), Duration::from_secs(12));
}

#[tokio::test]
async fn an_html_502_while_polling_backs_off_and_polling_goes_on() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world
        .polls_answer(
            vec![pending(), bad_gateway(), bad_gateway(), pending()],
            token("at-1", "rt-1"),
        )
        .await;

    let credentials = login(&world.authenticator()).await.unwrap();

    assert_eq!(credentials.access_token.expose_secret(), "at-1");
    // 5: pending; 10: 502 (wait 10); 20: 502 (wait 20); 40: pending (back to 5); 45: token.
    assert_eq!(script.poll_times(), [5, 10, 20, 40, 45]);
}

#[tokio::test]
async fn failures_until_the_code_expires_end_with_the_last_failure_named() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 60, true))
        .await;
    let script = world.polls_answer(vec![], bad_gateway()).await;

    let error = login(&world.authenticator()).await.unwrap_err();

    assert!(matches!(error, Error::LoginTimeout { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("code expired"), "{text}");
    assert!(text.contains("HTTP 502"), "{text}");
    // Waits double from the interval: 5, 10, 20, then 40 would pass the expiry at 60.
    assert_eq!(script.poll_times(), [5, 15, 35]);
    assert_eq!(world.clock.elapsed(), Duration::from_secs(60));
}

#[tokio::test]
async fn the_back_off_is_bounded() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 900, true))
        .await;
    let script = world.polls_answer(vec![], bad_gateway()).await;

    login(&world.authenticator()).await.unwrap_err();

    let times = script.poll_times();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(&gaps[..4], [10, 20, 40, 60]);
    assert!(gaps[4..].iter().all(|&g| g == 60), "{gaps:?}");
}

#[tokio::test]
async fn a_client_error_that_is_not_oauth_stops_polling_and_shows_the_body() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world
        .polls_answer(
            vec![],
            ResponseTemplate::new(400).set_body_raw("Bad Request: unknown client", "text/plain"),
        )
        .await;

    let error = login(&world.authenticator()).await.unwrap_err();

    match &error {
        Error::InvalidResponse { status, message } => {
            assert_eq!(*status, Some(400));
            assert!(message.contains("unknown client"), "{message}");
        }
        other => panic!("expected an invalid response, got {other:?}"),
    }
    assert_eq!(script.polls(), 1);
}

#[tokio::test]
async fn cancel_ends_the_login_and_the_next_call_starts_a_new_one() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    let script = world
        .polls_answer(vec![pending(), pending()], token("at-1", "rt-1"))
        .await;
    let auth = world.authenticator();
    let cancel: CancelHandle = auth.flow().cancel_handle();
    script.on_poll(move |n| {
        if n == 2 {
            cancel.cancel();
        }
    });

    let error = login(&auth).await.unwrap_err();

    assert!(matches!(error, Error::Cancelled), "{error:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(script.polls(), 2, "no poll after the cancel");

    let credentials = login(&auth).await.unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "at-1");
    assert_eq!(world.prompts().len(), 2, "a second device login ran");
}

#[tokio::test]
async fn cancel_interrupts_a_device_request_that_hangs() {
    let world = World::start().await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(device_answer(Some(5), 600, true))
                .set_delay(Duration::from_secs(25)),
        )
        .mount(&world.server)
        .await;
    let auth = world.authenticator();
    let cancel = auth.flow().cancel_handle();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });

    let started = Instant::now();
    let error = login(&auth).await.unwrap_err();

    assert!(matches!(error, Error::Cancelled), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the cancel did not interrupt the request"
    );
    assert!(world.prompts().is_empty());
}

#[tokio::test]
async fn dropping_the_future_stops_polling() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(None, 600, true))
        .await;
    let script = world.polls_answer(vec![], pending()).await;
    // Real time here, with a short interval: the login is abandoned while it waits.
    let auth = world
        .builder()
        .real_time()
        .poll_interval(Duration::from_millis(20))
        .build()
        .unwrap();

    let abandoned = tokio::time::timeout(Duration::from_millis(300), auth.get_credentials()).await;
    assert!(abandoned.is_err(), "the login cannot have finished");
    let polls_at_drop = script.polls();
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(polls_at_drop >= 1, "the login was polling");
    assert!(
        script.polls() <= polls_at_drop + 1,
        "polling went on after the future was dropped"
    );
}

#[tokio::test]
async fn the_prompt_shows_verification_uri_complete_when_the_server_sends_it() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    world.polls_answer(vec![], token("at-1", "rt-1")).await;

    login(&world.authenticator()).await.unwrap();

    let prompts = world.prompts();
    assert_eq!(prompts.len(), 1);
    let prompt = &prompts[0];
    assert_eq!(
        prompt.url(),
        "https://idp.example.org/activate?user_code=WDJB-MJHT"
    );
    assert_eq!(prompt.user_code, "WDJB-MJHT");
    assert_eq!(prompt.expires_in, Some(Duration::from_secs(600)));
    assert_eq!(prompt.endpoint, ENDPOINT);
    assert!(!format!("{prompt:?} {prompt}").contains("dev-code-SECRET"));
}

#[tokio::test]
async fn without_a_complete_uri_the_prompt_shows_the_page_and_the_code() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, false))
        .await;
    world.polls_answer(vec![], token("at-1", "rt-1")).await;

    login(&world.authenticator()).await.unwrap();

    let prompt = world.prompts().pop().unwrap();
    assert_eq!(prompt.url(), "https://idp.example.org/activate");
    assert!(prompt.to_string().contains("enter the code WDJB-MJHT"));
}

#[tokio::test]
async fn requests_carry_client_id_scope_and_audience_and_polls_the_device_code() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    world.polls_answer(vec![], token("at-1", "rt-1")).await;

    login(&world.authenticator()).await.unwrap();

    let device = world.forms("/device", "client_id").await;
    assert_eq!(device.len(), 1);
    assert_eq!(param(&device[0], "client_id"), Some("flytectl"));
    assert_eq!(param(&device[0], "scope"), Some("all offline"));
    assert_eq!(
        param(&device[0], "audience"),
        Some("https://flyte.example.org")
    );
    let polls = world.forms("/token", "device_code").await;
    assert_eq!(polls.len(), 1);
    assert_eq!(
        param(&polls[0], "grant_type"),
        Some("urn:ietf:params:oauth:grant-type:device_code")
    );
    assert_eq!(param(&polls[0], "device_code"), Some("dev-code-SECRET"));
    assert_eq!(param(&polls[0], "client_id"), Some("flytectl"));
}

fn expired_credentials(refresh: &str) -> Credentials {
    Credentials::new("at-old", ENDPOINT)
        .with_refresh_token(refresh)
        .with_client_id("flytectl")
        .with_expires_at(std::time::SystemTime::now() - Duration::from_secs(60))
}

#[tokio::test]
async fn a_valid_refresh_token_is_redeemed_without_a_device_login() {
    let world = World::start().await;
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired_credentials("rt-old")).unwrap();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(REFRESH_GRANT))
        .respond_with(token("at-new", "rt-rotated"))
        .expect(1)
        .mount(&world.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&world.server)
        .await;
    let auth = world
        .builder()
        .store(Arc::clone(&store) as Arc<dyn TokenStore>)
        .build()
        .unwrap();

    let credentials = login(&auth).await.unwrap();

    assert_eq!(credentials.access_token.expose_secret(), "at-new");
    assert!(world.prompts().is_empty(), "no device login");
    let refresh = world.forms("/token", REFRESH_GRANT).await;
    assert_eq!(param(&refresh[0], "refresh_token"), Some("rt-old"));
    assert_eq!(param(&refresh[0], "client_id"), Some("flytectl"));
    assert_eq!(param(&refresh[0], "scope"), Some("all offline"));
    assert_eq!(
        param(&refresh[0], "audience"),
        Some("https://flyte.example.org")
    );
}

/// A config store that counts how often it is asked.
#[derive(Debug)]
struct CountingStore {
    config: ClientConfig,
    calls: AtomicUsize,
}

impl ClientConfigStore for CountingStore {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let config = self.config.clone();
        Box::pin(async move { Ok(config) })
    }
}

#[tokio::test]
async fn no_device_endpoint_is_a_config_error_at_first_use_not_at_construction() {
    let world = World::start().await;
    let mut config = world.config();
    config.device_authorization_endpoint = None;
    let cfg_store = Arc::new(CountingStore {
        config,
        calls: AtomicUsize::new(0),
    });

    let auth = world
        .builder()
        .cfg_store(Arc::clone(&cfg_store) as Arc<dyn ClientConfigStore>)
        .build()
        .unwrap();
    assert_eq!(
        cfg_store.calls.load(Ordering::SeqCst),
        0,
        "construction is offline"
    );

    let checked = auth.flow().check_server().await.unwrap_err();
    let error = login(&auth).await.unwrap_err();

    for e in [&checked, &error] {
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(
            e.to_string().contains("device_authorization_endpoint"),
            "{e}"
        );
    }
    assert_eq!(
        cfg_store.calls.load(Ordering::SeqCst),
        1,
        "the client config is read once and kept"
    );
    assert!(world.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn check_server_passes_when_the_device_flow_is_offered() {
    let world = World::start().await;
    world.authenticator().flow().check_server().await.unwrap();
    assert!(world.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_servers_header_name_is_used() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 600, true))
        .await;
    world.polls_answer(vec![], token("at-1", "rt-1")).await;
    let config = world.config().with_header_key("flyte-authorization");
    let auth = world
        .builder()
        .cfg_store(Arc::new(StaticClientConfigStore::new(config)))
        .build()
        .unwrap();

    let header = tokio::time::timeout(NO_HANG, auth.auth_header())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(header.name().as_str(), "flyte-authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer at-1");
}

#[tokio::test]
async fn network_errors_while_polling_back_off_up_to_max_error_backoff_until_the_code_expires() {
    let world = World::start().await;
    world
        .device_endpoint_answers(device_answer(Some(5), 300, true))
        .await;
    // A token endpoint that accepts connections and closes them unanswered: a network error.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let times = Arc::new(Mutex::new(Vec::new()));
    let (seen, clock) = (Arc::clone(&times), Arc::clone(&world.clock));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.lock().unwrap().push(clock.elapsed().as_secs());
            drop(socket);
        }
    });
    let config = ClientConfig::new(format!("http://{addr}/token"), "flytectl")
        .with_device_authorization_endpoint(format!("{}/device", world.server.uri()));
    let auth = world
        .builder()
        .cfg_store(Arc::new(StaticClientConfigStore::new(config)))
        .build()
        .unwrap();

    let error = login(&auth).await.unwrap_err();

    assert!(matches!(error, Error::LoginTimeout { .. }), "{error:?}");
    assert!(!error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("the last poll failed"),
        "{error}"
    );
    assert_eq!(
        flyte_auth_device::MAX_ERROR_BACKOFF,
        Duration::from_secs(60)
    );
    // 5: fails (wait 10); 15 (wait 20); 35 (40); 75 (capped at 60); 135; 195; 255.
    let times = times.lock().unwrap().clone();
    assert_eq!(times[..7], [5, 15, 35, 75, 135, 195, 255], "{times:?}");
}
