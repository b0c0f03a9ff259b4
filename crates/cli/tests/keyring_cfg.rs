//! The Flyte 2 SDK keeps its notebook keyring file, `keyring.cfg`, next to its config file
//! when that file sits in a `.flyte` folder (`flyte._keyring.file`), else in `~/.flyte`:
//! `flyte-auth` looks for the SDK's login where the SDK put it, for a config file the user
//! named; one the search found in a working tree does not choose where logins go.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::{
    io::Read as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};

/// `text` as Python's `base64.encodebytes` gives it (lines of 76 characters, each ended by a
/// newline), written as `configparser` writes a value of several lines.
fn ini_value(text: &str) -> String {
    let encoded = STANDARD.encode(text);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!("{}\n\t", lines.join("\n\t"))
}

/// Runs `flyte-auth status --json` in `cwd` with the automatic store as in a task pod (no
/// keyring is asked: the file store, with the SDK's keyring file beside it), `home` as
/// `$HOME`, and `--config` when given.
fn status(home: &Path, cache: &Path, config: Option<&Path>, cwd: &Path) -> serde_json::Value {
    let mut command = Command::new(support::binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .current_dir(cwd)
        .args(["status", "--json", "--timeout", "5", "--cache-dir"])
        .arg(cache);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > support::RUN_LIMIT {
            child.kill().unwrap();
            panic!("flyte-auth status did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn a_config_in_a_flyte_folder_has_the_sdks_keyring_file_beside_it() {
    let project = tempfile::tempdir().unwrap();
    // `$HOME` elsewhere: its `~/.flyte/keyring.cfg` does not exist.
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let endpoint = format!("127.0.0.1:{}", support::closed_port());
    let flyte = project.path().join(".flyte");
    std::fs::create_dir(&flyte).unwrap();
    let config = flyte.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "admin:\n  endpoint: dns:///{endpoint}\n  insecure: true\n  \
             authorizationHeader: authorization\n"
        ),
    )
    .unwrap();
    // The SDK's login for the endpoint (its section: the endpoint without its scheme).
    let tokens = r#"{"access_token": "sdk-access-token", "refresh_token": "sdk-refresh-token"}"#;
    std::fs::write(
        flyte.join("keyring.cfg"),
        format!("[{endpoint}]\ntokens = {}\n\n", ini_value(tokens)),
    )
    .unwrap();

    let found = status(home.path(), cache.path(), Some(&config), home.path());
    assert_eq!(found["logged_in"], true, "{found}");
    assert_eq!(found["credentials"]["refresh_token"], true, "{found}");
    assert!(!found.to_string().contains("sdk-access-token"), "{found}");

    // The same config outside a `.flyte` folder: the SDK would look in `~/.flyte`, and so
    // does flyte-auth.
    let elsewhere = project.path().join("config.yaml");
    std::fs::copy(&config, &elsewhere).unwrap();
    let found = status(home.path(), cache.path(), Some(&elsewhere), home.path());
    assert_eq!(found["logged_in"], false, "{found}");

    // The same `.flyte` folder found by the search from the working directory: the login
    // beside it is not read.
    std::fs::remove_file(&elsewhere).unwrap();
    let found = status(home.path(), cache.path(), None, project.path());
    assert_eq!(
        found["config_file"],
        config.display().to_string(),
        "{found}"
    );
    assert_eq!(found["logged_in"], false, "{found}");
}
