//! What each fuzz target checks, one function per target, so that the ordinary test suite
//! (`tests/tests/fuzz_regressions.rs`, which includes this crate's `lib.rs` as a module)
//! replays every input under `regressions/<target>/` with exactly the checks the fuzzer
//! runs. Each function panics on a violated check, and returns otherwise.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, ClientConfig, Credentials, Endpoint, Error,
    MAX_TOKEN_LIFETIME, StaticClientConfigStore, TokenFlow,
};
use flyte_auth_device::{DeviceCodeFlow, DevicePrompt, PollTimer};
use flyte_auth_oauth::{
    ClientAuth, ClientContext, DeviceAuthorizationRequest, MAX_DEVICE_CODE_LIFETIME,
    MAX_DEVICE_POLL_INTERVAL, OAuthClient, TokenResponse,
};
use flyte_auth_store::{FileStore, RawEntries, TokenStore, credentials_from_entries};

// `super`, not `crate`: the test suite includes this crate's `lib.rs` as a module.
use super::{
    Answer, CLIENT_ID, SECRETS, StubServer, assert_no_secret, oauth_client, runtime, secret_forms,
};

/// The endpoint every target's credentials are for.
const ENDPOINT: &str = "flyte.example.org:443";

/// [`ENDPOINT`], parsed.
fn endpoint() -> &'static Endpoint {
    static PARSED: OnceLock<Endpoint> = OnceLock::new();
    PARSED.get_or_init(|| match Endpoint::parse(ENDPOINT) {
        Ok(endpoint) => endpoint,
        Err(e) => panic!("the endpoint parses: {e}"),
    })
}

fn client() -> &'static OAuthClient {
    static CLIENT: OnceLock<OAuthClient> = OnceLock::new();
    CLIENT.get_or_init(oauth_client)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Panics when `text` contains a character a terminal would act on (see
/// `flyte_auth_core::text::printable`); `\n` is allowed where `lines` says so.
pub fn assert_printable(what: &str, text: &str, lines: bool) {
    let bad = text.chars().find(|&c| {
        (c.is_control() && !(lines && c == '\n'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    if let Some(c) = bad {
        panic!("{what} contains the control character {c:?}: {text:?}");
    }
}

/// Panics unless `credentials` have an expiry that arithmetic can use: no later than
/// [`MAX_TOKEN_LIFETIME`] from now, and usable with any leeway.
pub fn assert_sane_expiry(credentials: &Credentials) {
    let latest = unix_now() + MAX_TOKEN_LIFETIME.as_secs() + 2;
    if let Some(at) = credentials.expires_at_unix {
        assert!(at <= latest, "an expiry beyond the longest lifetime: {at}");
    }
    if let Some(secs) = credentials.expires_in {
        assert!(
            secs <= MAX_TOKEN_LIFETIME.as_secs(),
            "a lifetime beyond the longest: {secs}"
        );
    }
    let _ = credentials.expires_at();
    let _ = credentials.lifetime();
    for leeway in [Duration::ZERO, Duration::from_secs(300), Duration::MAX] {
        let _ = credentials.is_expired_within(leeway);
    }
}

// ---------------------------------------------------------------------------------------------
// token_response

/// The request sent both secrets (one in a Basic header, one in a form body, say).
fn token_forms() -> &'static [String] {
    static FORMS: OnceLock<Vec<String>> = OnceLock::new();
    FORMS.get_or_init(|| secret_forms(&SECRETS, None))
}

/// `token_response`: a token endpoint answer (see the crate docs for the format) through
/// `TokenResponse::from_http`. No panic; no error quotes a secret the request sent; an OAuth
/// error shows no control character; a token becomes credentials with a sane expiry.
pub fn token_response(input: &[u8]) {
    let answer = Answer::parse(input);
    match TokenResponse::from_http(
        answer.status,
        answer.content_type.as_deref(),
        &answer.body,
        &SECRETS,
    ) {
        Ok(token) => {
            assert!(!token.access_token.expose_secret().is_empty());
            let credentials = token.into_credentials(ENDPOINT);
            assert!(credentials.expires_at().is_some() || credentials.expires_in.is_none());
            assert_sane_expiry(&credentials);
            let _ = format!("{credentials:?}");
        }
        Err(error) => {
            assert_no_secret("the error's Display", &error.to_string(), token_forms());
            assert_no_secret("the error's Debug", &format!("{error:?}"), token_forms());
            if let Error::OAuth(_) = &error {
                assert_printable("an OAuth error's Display", &error.to_string(), false);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// device_authorization

/// The request sends `SECRETS[0]` in an HTTP Basic header as `CLIENT_ID`.
fn device_forms() -> &'static [String] {
    static FORMS: OnceLock<Vec<String>> = OnceLock::new();
    FORMS.get_or_init(|| secret_forms(&SECRETS[..1], Some(CLIENT_ID)))
}

/// `device_authorization`: a device authorization answer (see the crate docs for the format)
/// from a loopback server, through `OAuthClient::device_authorization`. No panic, no hang; no
/// error quotes the client secret; an accepted answer has a user code and a URL to show, a
/// poll interval and a lifetime within their maxima, and a prompt without control characters.
pub fn device_authorization(input: &[u8]) {
    let server = StubServer::get();
    server.set("/device/auth", Answer::parse(input));
    let request = DeviceAuthorizationRequest::new(
        format!("{}/device/auth", server.base_url()),
        ClientAuth::confidential(CLIENT_ID, SECRETS[0]),
    )
    .with_scopes(["all"]);
    match runtime().block_on(client().device_authorization(&request)) {
        Ok(answer) => {
            assert!(!answer.user_code.trim().is_empty());
            assert!(!answer.url_for_user().trim().is_empty());
            assert!(answer.poll_interval() <= MAX_DEVICE_POLL_INTERVAL);
            assert!(
                answer
                    .lifetime()
                    .is_none_or(|l| l <= MAX_DEVICE_CODE_LIFETIME)
            );
            let prompt = DevicePrompt::new(
                ENDPOINT,
                answer.verification_uri.clone(),
                answer.verification_uri_complete.clone(),
                answer.user_code.clone(),
                answer.lifetime(),
            );
            assert_printable("the device prompt", &prompt.to_string(), true);
            let _ = format!("{answer:?}");
        }
        Err(error) => {
            assert_no_secret("the error's Display", &error.to_string(), device_forms());
            assert_no_secret("the error's Debug", &format!("{error:?}"), device_forms());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// expiry_arithmetic

/// The numbers (and the user code) a server states, each as raw JSON text.
#[derive(Debug, Default)]
struct ServerValues {
    expires_in: Option<String>,
    exp: Option<String>,
    interval: Option<String>,
    code_expires_in: Option<String>,
    user_code: Option<String>,
    timeout: Option<u64>,
}

impl ServerValues {
    /// `name=value` lines; unknown names and other lines are ignored.
    fn parse(text: &str) -> Self {
        let mut values = Self::default();
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let value = Some(value.to_owned());
            match name.trim() {
                "expires_in" => values.expires_in = value,
                "exp" => values.exp = value,
                "interval" => values.interval = value,
                "code_expires_in" => values.code_expires_in = value,
                "user_code" => values.user_code = value,
                "timeout" => values.timeout = value.and_then(|v| v.trim().parse().ok()),
                _ => {}
            }
        }
        values
    }

    /// The token endpoint's answer: an access token (a JWT when `exp` is given) and
    /// `expires_in` when given.
    fn token_body(&self) -> String {
        let access = match &self.exp {
            Some(exp) => format!("\"{}\"", jwt(&format!(r#"{{"exp":{exp}}}"#))),
            None => "\"opaque-access-token\"".to_owned(),
        };
        let mut body = format!(r#"{{"access_token":{access},"token_type":"Bearer""#);
        if let Some(e) = &self.expires_in {
            body.push_str(&format!(r#","expires_in":{e}"#));
        }
        body.push('}');
        body
    }

    /// The device authorization endpoint's answer.
    fn device_body(&self) -> String {
        let user_code = self.user_code.as_deref().unwrap_or("\"WDJB-MJHT\"");
        let mut body = format!(
            r#"{{"device_code":"dev-code","user_code":{user_code},"verification_uri":"https://idp.example.org/activate""#
        );
        if let Some(i) = &self.interval {
            body.push_str(&format!(r#","interval":{i}"#));
        }
        if let Some(e) = &self.code_expires_in {
            body.push_str(&format!(r#","expires_in":{e}"#));
        }
        body.push('}');
        body
    }
}

/// An unsigned JWT with `payload` as its claims.
fn jwt(payload: &str) -> String {
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        enc.encode(br#"{"alg":"none"}"#),
        enc.encode(payload)
    )
}

/// Virtual time for the device flow: sleeping advances it and returns at once.
#[derive(Debug)]
struct VirtualClock {
    start: Instant,
    sleeps: Mutex<Vec<Duration>>,
}

impl PollTimer for VirtualClock {
    fn now(&self) -> Instant {
        let slept = self
            .sleeps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .fold(Duration::ZERO, |total, d| total.saturating_add(*d));
        self.start.checked_add(slept).unwrap_or(self.start)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleeps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(duration);
        Box::pin(async {})
    }
}

/// A flow that hands out fixed credentials, so the cache's own expiry arithmetic runs on them.
#[derive(Debug)]
struct Fixed(Credentials);

impl TokenFlow for Fixed {
    fn endpoint(&self) -> &Endpoint {
        endpoint()
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        let credentials = self.0.clone();
        Box::pin(async move { Ok(credentials) })
    }
}

/// `expiry_arithmetic`: the numbers a server states, through the real constructors and the
/// device login's poll timing.
///
/// Input: `name=value` lines, each value raw JSON text put in the server's answer as it is:
/// `expires_in` and `exp` (the access token's JWT claim) of the token answer, `interval`,
/// `code_expires_in` and `user_code` of the device authorization answer; `timeout` is the
/// login timeout in seconds.
///
/// Checked: no panic, no hang; credentials from the token answer (directly and through the
/// cache) have an expiry within [`MAX_TOKEN_LIFETIME`]; the device login never waits longer
/// than [`MAX_DEVICE_POLL_INTERVAL`] at once; its prompt has no control character.
pub fn expiry_arithmetic(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let values = ServerValues::parse(text);
    let token_body = values.token_body();

    // The token answer, as every grant reads it, then through the cache.
    if let Ok(token) =
        TokenResponse::from_http(200, Some("application/json"), token_body.as_bytes(), &[])
    {
        let credentials = token.into_credentials(ENDPOINT);
        assert_sane_expiry(&credentials);
        let auth = CachingAuthenticator::builder(Fixed(credentials)).build();
        if let Ok(cached) = runtime().block_on(auth.get_credentials()) {
            assert_sane_expiry(&cached);
        }
        let _ = auth.fetch_grpc_call_auth_metadata();
    }

    // A device login against a loopback server answering with these numbers.
    let server = StubServer::get();
    server.set(
        "/arith/device",
        Answer::parse(values.device_body().as_bytes()),
    );
    let token_answer = format!("200 application/json\n{token_body}");
    server.set("/arith/token", Answer::parse(token_answer.as_bytes()));
    let config = ClientConfig::new(format!("{}/arith/token", server.base_url()), "flytectl")
        .with_device_authorization_endpoint(format!("{}/arith/device", server.base_url()));
    let Ok(ctx) = ClientContext::builder(endpoint().clone())
        .discovery(Arc::new(StaticClientConfigStore::new(config)))
        .http_client(client().clone())
        .build()
    else {
        panic!("a context over a static configuration builds");
    };
    let clock = Arc::new(VirtualClock {
        start: Instant::now(),
        sleeps: Mutex::new(Vec::new()),
    });
    let prompts: Arc<Mutex<Vec<String>>> = Arc::default();
    let shown = Arc::clone(&prompts);
    let mut flow = DeviceCodeFlow::builder(ctx)
        .poll_timer(Arc::clone(&clock) as Arc<dyn PollTimer>)
        .prompt(move |p| {
            shown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(p.to_string());
        });
    if let Some(seconds) = values.timeout {
        flow = flow.timeout(Duration::from_secs(seconds));
    }
    let Ok(flow) = flow.build() else {
        return;
    };
    let auth = CachingAuthenticator::builder(flow).build();
    let result = runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(20), auth.get_credentials()).await
    });
    let Ok(result) = result else {
        panic!("the device login hangs");
    };
    if let Ok(credentials) = result {
        assert_sane_expiry(&credentials);
    }
    for wait in clock
        .sleeps
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        assert!(
            *wait <= MAX_DEVICE_POLL_INTERVAL,
            "the device login waited {wait:?} at once"
        );
    }
    for prompt in prompts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        assert_printable("the device prompt", prompt, true);
    }
}

// ---------------------------------------------------------------------------------------------
// stored_entry

/// `stored_entry`: the keyring entries of one endpoint's login as other tools (or other
/// versions, or a person) may have left them, read as `KeyringStore::retrieve` reads them.
///
/// Input: sections, each a line `=== <entry>` then the entry's text up to the next such
/// line, where `<entry>` is `access_token`, `refresh_token`, `id_token` (flytekit's),
/// `metadata` (flyte-auth's), `flyte2` (the Flyte 2 SDK's JSON) or `flytectl` (Go's
/// `oauth2.Token` JSON). A final line break of an entry is not part of it.
///
/// Checked: no panic; a login read has an expiry within [`MAX_TOKEN_LIFETIME`], and survives
/// a round trip through its stored JSON unchanged.
pub fn stored_entry(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let mut entries = RawEntries::default();
    let mut current: Option<&mut Option<String>> = None;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("=== ") {
            current = match name.trim() {
                "access_token" => Some(&mut entries.access_token),
                "refresh_token" => Some(&mut entries.refresh_token),
                "id_token" => Some(&mut entries.id_token),
                "metadata" => Some(&mut entries.metadata),
                "flyte2" => Some(&mut entries.flyte2),
                "flytectl" => Some(&mut entries.flytectl),
                _ => None,
            };
            continue;
        }
        if let Some(entry) = current.as_deref_mut() {
            entry.get_or_insert_with(String::new).push_str(line);
        }
    }
    for entry in [
        &mut entries.access_token,
        &mut entries.refresh_token,
        &mut entries.id_token,
        &mut entries.metadata,
        &mut entries.flyte2,
        &mut entries.flytectl,
    ] {
        if let Some(text) = entry
            && text.ends_with('\n')
        {
            text.pop();
        }
    }
    let Some(credentials) = credentials_from_entries(&entries, ENDPOINT, unix_now()) else {
        return;
    };
    assert_sane_expiry(&credentials);
    let Ok(json) = serde_json::to_string(&credentials) else {
        panic!("credentials read from the keyring serialize");
    };
    let Ok(back) = serde_json::from_str::<Credentials>(&json) else {
        panic!("credentials read from the keyring deserialize from their own JSON");
    };
    // `stale_copies` is what the reading found, never stored.
    let mut expected = credentials;
    expected.set_stale_copies(false);
    assert_eq!(
        back, expected,
        "the credentials changed in a round trip through their JSON"
    );
}

// ---------------------------------------------------------------------------------------------
// token_file

fn file_store() -> &'static FileStore {
    static STORE: OnceLock<FileStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("flyte-auth-fuzz-token-file-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        FileStore::in_dir(dir)
    })
}

/// `token_file`: `FileStore`'s token file in any state, through `retrieve`.
///
/// Input: the file's bytes.
/// Checked: no panic; reading never fails (an unusable file is "no credentials"); what is
/// read is for the endpoint asked for, has an expiry within [`MAX_TOKEN_LIFETIME`], and
/// survives a store-and-retrieve round trip.
pub fn token_file(input: &[u8]) {
    let store = file_store();
    if let Err(e) = std::fs::write(store.path_for(endpoint()), input) {
        panic!("the temporary directory is not writable: {e}");
    }
    let read = match store.retrieve(endpoint()) {
        Ok(read) => read,
        Err(e) => panic!("a token file that cannot be used is no credentials, not an error: {e}"),
    };
    if let Some(credentials) = read {
        assert_eq!(credentials.for_endpoint, endpoint().key());
        assert_sane_expiry(&credentials);
        if let Err(e) = store.store(endpoint(), &credentials) {
            panic!("what was read cannot be stored: {e}");
        }
        let again = match store.retrieve(endpoint()) {
            Ok(Some(again)) => again,
            other => panic!("the file just written is not read back: {other:?}"),
        };
        assert_eq!(
            again, credentials,
            "the credentials changed in a round trip"
        );
    }
}

/// The check of each target whose regressions the ordinary test suite replays, by name.
pub fn check_for(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "token_response" => token_response,
        "device_authorization" => device_authorization,
        "expiry_arithmetic" => expiry_arithmetic,
        "stored_entry" => stored_entry,
        "token_file" => token_file,
        _ => return None,
    })
}
