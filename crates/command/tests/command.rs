//! The command authenticator against real child processes (`sh`, `printf`, `sleep`).
#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use flyte_auth_command::{
    CommandAuthenticator, CommandFlow, CommandFlowBuilder, MAX_OUTPUT, exit_code,
};
use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, ClientConfig, ClientConfigStore, Endpoint,
    Error, MemoryStore, TokenFlow, TokenStore,
};

/// The authenticator of `flow`, as the factory makes it.
fn cached(flow: Result<CommandFlow, Error>) -> Result<CommandAuthenticator, Error> {
    flow.map(|flow| CachingAuthenticator::builder(flow).build())
}

/// `CommandFlow::new` in a cache.
fn new<I: IntoIterator<Item = S>, S: Into<String>>(
    command: I,
) -> Result<CommandAuthenticator, Error> {
    cached(CommandFlow::new(command))
}

/// A finished builder in a cache.
trait BuildCached {
    fn build_cached(self) -> Result<CommandAuthenticator, Error>;
}

impl BuildCached for CommandFlowBuilder {
    fn build_cached(self) -> Result<CommandAuthenticator, Error> {
        cached(self.build())
    }
}

/// Far above what any of these commands needs, far below the `sleep 30` they would hang on.
const NO_HANG: Duration = Duration::from_secs(10);

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// `sh -c script sh arg`: the script sees `arg` as `$1`.
fn sh_with(script: &str, arg: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        arg.display().to_string(),
    ]
}

/// A directory of its own for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("flyte-auth-command-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped: killed, not running).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

async fn wait_until_dead(pid: u32) -> bool {
    for _ in 0..100 {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn get_err(auth: &CommandAuthenticator) -> Error {
    auth.get_credentials().await.unwrap_err()
}

#[tokio::test]
async fn the_trimmed_output_is_the_bearer_token() {
    let auth = new(sh("printf '  tok-123.abc_DEF \\n\\n'")).unwrap();
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "tok-123.abc_DEF");
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer tok-123.abc_DEF");
}

#[tokio::test]
async fn arguments_reach_the_program_without_a_shell() {
    // One argument with spaces and shell syntax: a shell would split and expand it.
    let auth = new(["printf", "%s", "a$HOME;b"]).unwrap();
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "a$HOME;b");
}

#[tokio::test]
async fn the_proxy_authenticator_sends_proxy_authorization() {
    let auth = cached(CommandFlow::proxy(["printf", "proxy-tok"])).unwrap();
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "proxy-authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer proxy-tok");

    let custom = CommandFlow::builder()
        .command(["printf", "t"])
        .header_key("Flyte-Authorization")
        .build_cached()
        .unwrap();
    let header = custom.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
}

#[tokio::test]
async fn a_failing_command_shows_its_status_and_stderr_but_not_its_stdout() {
    let auth = new(sh(
        "printf 'partial-SECRET-stdout'; echo 'you are not logged in; run `login`' >&2; \
         echo 'got partial-SECRET-stdout back' >&2; exit 3",
    ))
    .unwrap();
    let err = get_err(&auth).await;
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Command { program, .. } if program == "sh"),
        "{err:?}"
    );
    assert!(msg.contains("exit status 3"), "{msg}");
    assert_eq!(exit_code(&err), Some(3));
    assert!(msg.contains("you are not logged in; run `login`"), "{msg}");
    assert!(msg.contains("got [redacted] back"), "{msg}");
    assert!(!msg.contains("SECRET"), "{msg}");
    assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());
}

#[tokio::test]
async fn a_command_killed_by_a_signal_says_so() {
    let auth = new(sh("kill -9 $$")).unwrap();
    let err = get_err(&auth).await;
    assert!(err.to_string().contains("killed by signal 9"), "{err}");
    assert_eq!(exit_code(&err), None);
}

#[tokio::test]
async fn a_slow_command_is_killed_at_the_timeout() {
    let auth = CommandFlow::builder()
        .command(["sleep", "30"])
        .timeout(Duration::from_secs(1))
        .build_cached()
        .unwrap();
    let started = Instant::now();
    let err = get_err(&auth).await;
    assert!(started.elapsed() < NO_HANG, "{:?}", started.elapsed());
    match &err {
        Error::Timeout { operation, after } => {
            assert_eq!(operation, "command `sleep`");
            assert_eq!(*after, Duration::from_secs(1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_timeout_kills_what_the_command_started_too() {
    let dir = Scratch::new("grandchild");
    let pid_file = dir.join("pid");
    // The shell waits for a background `sleep` that holds stdout and stderr open.
    let auth = CommandFlow::builder()
        .command(sh_with(
            "sleep 30 & echo $! > \"$1\"; echo tok; wait",
            &pid_file,
        ))
        .timeout(Duration::from_secs(1))
        .build_cached()
        .unwrap();
    let started = Instant::now();
    let err = get_err(&auth).await;
    assert!(started.elapsed() < NO_HANG, "{:?}", started.elapsed());
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let grandchild = read_pid(&pid_file);
    assert!(
        wait_until_dead(grandchild).await,
        "the background sleep {grandchild} still runs"
    );
}

#[tokio::test]
async fn a_background_process_holding_the_output_does_not_keep_us_waiting() {
    let dir = Scratch::new("daemon");
    let pid_file = dir.join("pid");
    // The command prints its token and exits, leaving a process with our pipes open.
    let auth = new(sh_with(
        "sleep 30 & echo $! > \"$1\"; echo bg-tok",
        &pid_file,
    ))
    .unwrap();
    let started = Instant::now();
    let creds = auth.get_credentials().await.unwrap();
    assert!(started.elapsed() < NO_HANG, "{:?}", started.elapsed());
    assert_eq!(creds.access_token.expose_secret(), "bg-tok");
    // A process left behind by a command that succeeded is not ours to kill.
    let left = read_pid(&pid_file);
    assert!(!is_dead(left));
    let _ = std::process::Command::new("kill")
        .arg(left.to_string())
        .status();
}

#[tokio::test]
async fn empty_output_is_an_error() {
    for script in ["true", "printf ' \\n\\t\\n'"] {
        let auth = new(sh(script)).unwrap();
        let msg = get_err(&auth).await.to_string();
        assert!(msg.contains("printed nothing"), "{script}: {msg}");
    }
}

#[tokio::test]
async fn output_that_is_not_utf8_is_an_error() {
    let auth = new(["printf", "tok\\377\\376"]).unwrap();
    let msg = get_err(&auth).await.to_string();
    assert!(msg.contains("not UTF-8"), "{msg}");
}

#[tokio::test]
async fn output_that_is_not_one_token_is_an_error_without_the_output() {
    let auth = new(["printf", "WARNING: update available\\nsecret-tok"]).unwrap();
    let msg = get_err(&auth).await.to_string();
    assert!(msg.contains("not one token"), "{msg}");
    assert!(
        !msg.contains("secret-tok") && !msg.contains("WARNING"),
        "{msg}"
    );
}

#[tokio::test]
async fn endless_output_is_cut_off_and_the_command_stopped() {
    // `yes` never ends by itself: only stopping it at the size limit ends this test in time.
    let auth = CommandFlow::builder()
        .command(["yes", "abcdefgh"])
        .timeout(Duration::from_secs(60))
        .build_cached()
        .unwrap();
    let started = Instant::now();
    let err = get_err(&auth).await;
    assert!(started.elapsed() < NO_HANG, "{:?}", started.elapsed());
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("more than {} KiB", MAX_OUTPUT / 1024)),
        "{msg}"
    );
    assert!(!msg.contains("abcdefgh"), "{msg}");
}

#[tokio::test]
async fn output_just_under_the_limit_is_accepted() {
    let auth = new(sh(&format!(
        "head -c {} /dev/zero | tr '\\0' a",
        MAX_OUTPUT
    )))
    .unwrap();
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret().len(), MAX_OUTPUT);
}

#[tokio::test]
async fn only_the_end_of_a_long_stderr_is_shown() {
    let auth = new(sh(
        "i=0; while [ $i -lt 3000 ]; do echo \"stderr line $i\" >&2; i=$((i+1)); done; exit 1",
    ))
    .unwrap();
    let msg = get_err(&auth).await.to_string();
    assert!(msg.contains("stderr line 2999"), "{msg}");
    assert!(!msg.contains("stderr line 0\n"), "{msg}");
    assert!(msg.len() < 5 * 1024, "{}", msg.len());
}

#[tokio::test]
async fn a_missing_program_is_named_in_the_error() {
    for program in [
        "/nonexistent/flyte-token-helper",
        "flyte-auth-no-such-helper",
    ] {
        let auth = new([program, "--secret-arg=hunter2"]).unwrap();
        let err = get_err(&auth).await;
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{program}`")), "{msg}");
        assert!(msg.contains("could not start"), "{msg}");
        assert!(msg.contains("PATH"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}

#[tokio::test]
async fn a_program_that_is_not_executable_gets_a_hint() {
    let dir = Scratch::new("noexec");
    let script = dir.join("helper");
    std::fs::write(&script, "#!/bin/sh\necho tok\n").unwrap();
    let auth = new([script.display().to_string()]).unwrap();
    let msg = get_err(&auth).await.to_string();
    assert!(msg.contains("executable"), "{msg}");
}

#[tokio::test]
async fn neither_arguments_nor_tokens_show_in_debug_or_errors() {
    let auth = new(sh(
        "printf 'tok-printed-XYZ'; [ \"$0\" = sh ] || true # arg-secret-ABC",
    ))
    .unwrap();
    assert!(!format!("{auth:?}").contains("ABC"), "{auth:?}");
    auth.get_credentials().await.unwrap();
    let printed = format!("{auth:?} {:?}", auth.fetch_grpc_call_auth_metadata());
    assert!(printed.contains("\"sh\""), "{printed}");
    assert!(
        !printed.contains("ABC") && !printed.contains("XYZ"),
        "{printed}"
    );

    // GNU sleep repeats the bad argument on stderr; the error must not.
    let echoing = new(["sleep", "--token=arg-secret-ABC"]).unwrap();
    let err = get_err(&echoing).await;
    let printed = format!("{err} {err:?} {echoing:?}");
    assert!(printed.contains("[redacted]"), "{printed}");
    assert!(!printed.contains("ABC"), "{printed}");

    let slow = CommandFlow::builder()
        .command(sh("sleep 30 # arg-secret-ABC"))
        .timeout(Duration::from_millis(200))
        .build_cached()
        .unwrap();
    let err = get_err(&slow).await;
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let printed = format!("{err} {err:?} {slow:?}");
    assert!(!printed.contains("ABC"), "{printed}");
}

#[tokio::test]
async fn dropping_a_run_kills_the_command() {
    let dir = Scratch::new("dropped");
    let pid_file = dir.join("pid");
    let flow = CommandFlow::builder()
        .command(sh_with("echo $$ > \"$1\"; exec sleep 30", &pid_file))
        .build()
        .unwrap();
    let login = flow.login();
    // Give up on it after a moment, like a caller whose own deadline passed.
    let outcome = tokio::time::timeout(Duration::from_millis(500), login).await;
    assert!(outcome.is_err(), "sleep 30 finished early");
    let mut pid = None;
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(p) = text.trim().parse()
        {
            pid = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = pid.expect("the command started");
    assert!(wait_until_dead(pid).await, "the command {pid} still runs");
}

#[tokio::test]
async fn a_store_keeps_the_token_under_the_endpoint() {
    let store = Arc::new(MemoryStore::new());
    let endpoint = Endpoint::parse("dns:///flyte.example.org:443").unwrap();
    let auth = CommandFlow::builder()
        .command(["printf", "stored-tok"])
        .endpoint(endpoint.clone())
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(auth)
        .store(store.clone())
        .build();
    auth.get_credentials().await.unwrap();
    let stored = store.retrieve(&endpoint).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "stored-tok");
    assert_eq!(stored.for_endpoint, "flyte.example.org");
}

#[test]
fn bad_configuration_is_refused_when_built() {
    let empty = new(Vec::<String>::new()).unwrap_err();
    assert!(matches!(empty, Error::Config { .. }), "{empty:?}");
    assert!(
        empty.to_string().contains("the command is empty"),
        "{empty}"
    );

    let blank = new([""]).unwrap_err();
    assert!(matches!(blank, Error::Config { .. }), "{blank:?}");

    let header = CommandFlow::builder()
        .command(["printf", "t"])
        .header_key("bad header")
        .build_cached()
        .unwrap_err();
    assert!(header.to_string().contains("`bad header`"), "{header}");

    let zero = CommandFlow::builder()
        .command(["printf", "t"])
        .timeout(Duration::ZERO)
        .build_cached()
        .unwrap_err();
    assert!(matches!(zero, Error::Config { .. }), "{zero:?}");
}

/// A client config store naming a header, counting how often it is asked.
#[derive(Debug, Default)]
struct HeaderStore {
    header: &'static str,
    fail: bool,
    calls: std::sync::atomic::AtomicUsize,
}

impl ClientConfigStore for HeaderStore {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = if self.fail {
            Err(Error::config("discovery is not served here"))
        } else {
            Ok(ClientConfig::new("https://idp/token", "flytectl").with_header_key(self.header))
        };
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn without_a_configured_header_the_servers_is_asked_for_once() {
    let store = Arc::new(HeaderStore {
        header: "flyte-authorization",
        ..HeaderStore::default()
    });
    let auth = CommandFlow::builder()
        .command(["printf", "t"])
        .header_from(store.clone())
        .build_cached()
        .unwrap();
    assert_eq!(store.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
    auth.refresh_credentials().await.unwrap();
    assert_eq!(store.calls.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A configured header wins and nothing is asked.
    let unasked = Arc::new(HeaderStore::default());
    let auth = CommandFlow::builder()
        .command(["printf", "t"])
        .header_key("X-Token")
        .header_from(unasked.clone())
        .build_cached()
        .unwrap();
    assert_eq!(auth.auth_header().await.unwrap().name().as_str(), "x-token");
    assert_eq!(unasked.calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    // A server that cannot say leaves `authorization`; the token is still served.
    let failing = Arc::new(HeaderStore {
        fail: true,
        ..HeaderStore::default()
    });
    let auth = CommandFlow::builder()
        .command(["printf", "t"])
        .header_from(failing)
        .build_cached()
        .unwrap();
    assert_eq!(
        auth.auth_header().await.unwrap().name().as_str(),
        "authorization"
    );
}
