//! `flyte-auth` as another tool's `command` and as the first thing a user runs when auth does
//! not work: the prompt on the controlling terminal when stderr is captured, the QR code, the
//! recursion guard, `status` naming what `token` would fail on, hints that match the failure,
//! the token command's timeout, and `doctor` against the local OpenID provider, an unreachable
//! endpoint and a server whose clock is off.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use flyte_auth_tests::{BASIC_CLIENT, Idp};
use serde_json::Value;
use support::{RUN_LIMIT, User, binary, script, user_code};

/// `sh -c` quoting of one argument.
fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

fn device_user(idp: &Idp) -> User {
    User::of(idp).args(["--auth-mode", "DeviceFlow"])
}

async fn device_idp() -> Idp {
    Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await
}

/// Reads `path` until `find` finds something in it, for at most `limit`.
fn wait_in_file<T>(path: &std::path::Path, limit: Duration, find: impl Fn(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(found) = text.lines().find_map(&find) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "not found in {}: {text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn with_stderr_captured_the_device_prompt_also_reaches_the_controlling_terminal() {
    let idp = device_idp().await;
    let user = device_user(&idp);
    let stderr_file = user.home().join("captured-stderr");
    let tty_file = user.home().join("terminal");
    // `script` gives flyte-auth a terminal (its stdin and stdout); stderr goes to a file, as
    // when pyflyte captures it.
    let argv: Vec<String> = std::iter::once(binary().display().to_string())
        .chain(["token".to_owned()])
        .chain(user.options())
        .map(|a| quote(&a))
        .collect();
    let shell = format!(
        "{} 2>{}",
        argv.join(" "),
        quote(stderr_file.to_str().unwrap())
    );
    let mut child = Command::new("script")
        .args(["-qefc", &shell])
        .arg(&tty_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", user.home())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let code = wait_in_file(&tty_file, Duration::from_secs(60), user_code);
    idp.approve_device_code(&code).await.unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < RUN_LIMIT, "flyte-auth did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(child.wait().unwrap().success());
    let captured = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        captured.contains(&code),
        "stderr keeps the prompt too: {captured}"
    );
    let terminal = std::fs::read_to_string(&tty_file).unwrap();
    assert!(
        terminal.contains(idp.verification_uri().as_str()),
        "{terminal}"
    );
}

#[tokio::test]
async fn without_a_controlling_terminal_the_prompt_is_on_stderr_with_the_qr_code() {
    let idp = device_idp().await;
    let user = device_user(&idp);
    // `setsid`: a new session, no controlling terminal to write to.
    let mut command = user.command(&["token", "--qr"]);
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let envs: Vec<_> = command
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
        .collect();
    let mut setsid = Command::new("setsid");
    setsid
        .arg("-w")
        .arg(program)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        if let Some(v) = v {
            setsid.env(k, v);
        }
    }
    command = setsid;
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        let mut code = None;
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if code.is_none() {
                code = text.lines().find_map(user_code);
                if let Some(code) = &code {
                    return (text, code.clone(), stderr);
                }
            }
        }
        panic!("no device code on stderr: {text}");
    });
    let (text, code, _stderr) = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    idp.approve_device_code(&code).await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("scan this code"), "{text}");
    assert!(
        text.contains('\u{2580}') || text.contains('\u{2584}'),
        "no QR blocks: {text}"
    );
}

#[test]
fn a_config_whose_command_is_flyte_auth_itself_is_refused_at_once() {
    let user = User::new();
    let flyte = user.home().join(".flyte");
    std::fs::create_dir_all(&flyte).unwrap();
    std::fs::write(
        flyte.join("config.yaml"),
        format!(
            "admin:\n  endpoint: dns:///flyte.example.org\n  authType: ExternalCommand\n  command: [{}, token]\n",
            binary().display()
        ),
    )
    .unwrap();
    let out = user.run(&["token"]);
    let line = out.error(2);
    assert!(line.contains("run itself"), "{line}");
    assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
    let status = user.run(&["status", "--json"]);
    let json: Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(
        json["config_error"]
            .as_str()
            .unwrap()
            .contains("run itself"),
        "{json}"
    );
}

#[test]
fn a_flyte_auth_started_by_flyte_auth_that_would_start_it_again_stops() {
    // The outer config names another file; that file makes the inner one run flyte-auth again.
    let user = User::new();
    let inner = user.home().join("inner.yaml");
    std::fs::write(
        &inner,
        format!(
            "admin:\n  endpoint: dns:///flyte.example.org\n  authType: ExternalCommand\n  command: [{0}, --config, {1}, token]\n",
            binary().display(),
            inner.display()
        ),
    )
    .unwrap();
    let out = user.run(&["--config", inner.to_str().unwrap(), "token"]);
    assert!(out.stderr.contains("run itself"), "{out:?}");
    assert!(!out.status.success());
    assert!(out.elapsed < Duration::from_secs(20), "{out:?}");
}

/// `~/.flyte/config.yaml` whose `command` runs `flyte-auth token` through a shell (so the
/// first flyte-auth cannot see that it is itself): the flyte-auth it starts reads the same
/// configuration and refuses at once; the first reports it as a configuration error, once,
/// without asking the (unreachable) server anything first.
#[test]
fn a_command_that_runs_flyte_auth_through_a_shell_is_refused_at_the_first_nested_run() {
    let user = User::new();
    let flyte = user.home().join(".flyte");
    std::fs::create_dir_all(&flyte).unwrap();
    std::fs::write(
        flyte.join("config.yaml"),
        format!(
            "admin:\n  endpoint: http://127.0.0.1:{}\n  authType: ExternalCommand\n  \
             command: [sh, -c, \"exec {} token\"]\n",
            support::closed_port(),
            binary().display()
        ),
    )
    .unwrap();
    let out = user.run(&["token"]);
    let line = out.error(2);
    assert!(line.contains("run itself"), "{line}");
    assert_eq!(
        out.stderr.matches("run itself").count(),
        1,
        "the hint is repeated: {out:?}"
    );
    assert!(out.elapsed < Duration::from_secs(2), "{out:?}");
}

#[test]
fn status_names_the_configuration_error_token_fails_on() {
    let user = User::new().args([
        "--endpoint",
        "flyte.example.org:443",
        "--auth-mode",
        "ClientSecret",
    ]);
    let token = user.run(&["token"]);
    let line = token.error(2);
    let status = user.run(&["status", "--json"]);
    assert!(status.status.success(), "{status:?}");
    let json: Value = serde_json::from_str(&status.stdout).unwrap();
    let error = json["config_error"].as_str().unwrap();
    assert!(error.contains("client id"), "{error}");
    assert!(line.contains("client id"), "{line}");
}

#[test]
fn a_token_with_control_characters_is_an_invalid_answer_not_a_network_error() {
    // A token endpoint (scripted with mockito: no async runtime here) whose token cannot go
    // in a header.
    let mut server = mockito::Server::new();
    let _token = server
        .mock("POST", "/token")
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(
            r#"{"access_token": "abc\u0001def", "token_type": "Bearer", "expires_in": 3600}"#,
        )
        .create();
    let user = User::new().env("SVC_SECRET", "s3cr3t-value");
    let file = user.home().join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "admin:\n  endpoint: dns:///flyte.example.org\n  authType: ClientSecret\n  clientId: svc\n  \
             clientSecretEnvVar: SVC_SECRET\n  scopes: [all]\n  authorizationHeader: authorization\n  \
             tokenUrl: {}/token\n",
            server.url()
        ),
    )
    .unwrap();
    let out = user.run(&["token", "--config", file.to_str().unwrap()]);
    let line = out.error(1);
    assert!(line.contains("not allowed in a header"), "{line}");
    assert!(!line.contains("reachable"), "a network hint: {line}");
    assert!(line.contains("not what a Flyte server"), "{line}");
}

#[test]
fn the_token_commands_timeout_is_a_flag_and_a_config_key() {
    let user = User::new();
    let command = script(user.home(), "slow-token", "sleep 20; echo late");
    let user = user
        .env("FLYTE_CREDENTIALS_COMMAND", command.to_str().unwrap())
        .args([
            "--endpoint",
            "flyte.example.org:443",
            "--auth-mode",
            "ExternalCommand",
        ]);
    let out = user.run(&["token", "--command-timeout", "1"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("timed out after 1s"), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(15), "{out:?}");

    let file = user.home().join("timeout.yaml");
    std::fs::write(&file, "admin:\n  commandTimeout: 2s\n").unwrap();
    let out = user.run(&["token", "--config", file.to_str().unwrap()]);
    assert!(out.stderr.contains("timed out after 2s"), "{out:?}");
}

// --- doctor --------------------------------------------------------------------------------

fn doctor_json(user: &User, args: &[&str]) -> (support::Output, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend(args);
    let out = user.run(&all);
    let json =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    (out, json)
}

fn step<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {json}"))
}

#[tokio::test]
async fn doctor_against_the_local_provider_finds_nothing_wrong_and_shows_no_secret() {
    let idp = Idp::start().await;
    let secret = BASIC_CLIENT.secret();
    let user = User::of(&idp).env("SVC_SECRET", secret).args([
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        BASIC_CLIENT.id(),
        "--client-secret-env",
        "SVC_SECRET",
    ]);
    let token = user.run(&["token"]).token();

    let (out, json) = doctor_json(&user, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(step(&json, "discovery")["outcome"], "ok");
    assert_eq!(
        step(&json, "discovery")["facts"]["flavour"],
        "v1 HTTP (flyteadmin)"
    );
    assert_eq!(step(&json, "token store")["outcome"], "ok");
    assert_eq!(step(&json, "login")["facts"]["stored"], true);
    assert_eq!(step(&json, "clock")["outcome"], "ok");
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    assert!(!out.stdout.contains(&token), "the token is shown");

    let text = user.run(&["doctor"]);
    assert!(text.status.success(), "{text:?}");
    assert!(text.stdout.contains("No problem found."), "{text:?}");
}

#[test]
fn doctor_against_an_unreachable_endpoint_names_the_step_and_its_fix() {
    let user = User::new().args(["--endpoint", "127.0.0.1:9", "--insecure", "--timeout", "5"]);
    let (out, json) = doctor_json(&user, &[]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(json["ok"], false);
    let discovery = step(&json, "discovery");
    assert_eq!(discovery["outcome"], "fail");
    assert!(
        discovery["fix"].as_str().unwrap().contains("reachable"),
        "{discovery}"
    );
    let text = user.run(&["doctor"]);
    assert!(text.stdout.contains("[FAIL] discovery"), "{text:?}");
}

#[test]
fn doctor_reports_a_configuration_that_does_not_load() {
    let user = User::new();
    let file = user.home().join("broken.yaml");
    std::fs::write(&file, "admin: [not, a, mapping]\n").unwrap();
    let (out, json) = doctor_json(&user, &["--config", file.to_str().unwrap()]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(step(&json, "config")["outcome"], "fail");
    assert_eq!(step(&json, "discovery")["outcome"], "skip");
}

#[test]
fn doctor_shows_the_clock_offset_from_the_servers_date() {
    // A scripted server without an async runtime: mockito. Its clock is an hour ahead.
    let mut server = mockito::Server::new();
    let ahead = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let _any = server
        .mock("GET", mockito::Matcher::Any)
        .with_status(404)
        .with_header("date", &ahead)
        .create();
    let endpoint = server.host_with_port();
    let user = User::new().args(["--endpoint", &endpoint, "--insecure", "--timeout", "5"]);
    let (out, json) = doctor_json(&user, &[]);
    let clock = step(&json, "clock");
    assert_eq!(clock["outcome"], "fail", "{clock}");
    let offset = clock["facts"]["offset_seconds"].as_i64().unwrap();
    assert!((-3660..=-3540).contains(&offset), "{clock}");
    let discovery = step(&json, "discovery");
    assert!(
        discovery["fix"]
            .as_str()
            .unwrap()
            .contains("publishes no OAuth discovery"),
        "{discovery}"
    );
    assert_eq!(out.code(), Some(1));
}

#[tokio::test]
async fn doctor_names_the_flyte_2_flavour_of_a_flyte_2_backend() {
    let idp = Idp::builder().flyte2().start().await;
    let secret = BASIC_CLIENT.secret();
    let user = User::of(&idp).env("SVC_SECRET", secret).args([
        "--auth-mode",
        "ClientSecret",
        "--client-id",
        BASIC_CLIENT.id(),
        "--client-secret-env",
        "SVC_SECRET",
    ]);
    let (out, json) = doctor_json(&user, &[]);
    assert_eq!(step(&json, "discovery")["outcome"], "ok", "{out:?}");
    assert_eq!(
        step(&json, "discovery")["facts"]["flavour"],
        "Flyte 2 Connect"
    );
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}
