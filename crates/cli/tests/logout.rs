//! `flyte-auth logout` with the automatic store removes the login from the keyring and from
//! the file store, so a login saved to a file while the keyring did not answer is not left
//! behind.
//!
//! Needs a Secret Service (as the keyring tests): `.ci/with-secret-service cargo test -p
//! flyte-auth-cli --test logout`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use flyte_auth_store::{Credentials, Endpoint, FileStore, TokenStore};

#[test]
fn logout_with_the_automatic_store_removes_a_login_the_file_store_kept() {
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    let written = format!(
        "dns:///logout-{}.flyte-auth-test.example.org",
        std::process::id()
    );
    let endpoint = Endpoint::parse(&written).unwrap();
    // What a run without a keyring left: its login in the file store.
    let files = FileStore::in_dir(&cache);
    files
        .store(&endpoint, &Credentials::new("file-token", endpoint.key()))
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_flyte-auth"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(std::env::var_os("DBUS_SESSION_BUS_ADDRESS").map(|a| ("DBUS_SESSION_BUS_ADDRESS", a)))
        .args(["logout", "--endpoint", &written, "--cache-dir"])
        .arg(&cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`flyte-auth logout` did not end within 90 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("keyring store"),
        "the automatic store did not choose the keyring; run as `.ci/with-secret-service cargo \
         test -p flyte-auth-cli --test logout`: {stderr}"
    );
    assert!(
        stderr.contains("removed from the file store"),
        "the store that held the login is not named: {stderr}"
    );
    assert_eq!(
        files.retrieve(&endpoint).unwrap(),
        None,
        "the login kept in the file store outlived the logout"
    );
}
