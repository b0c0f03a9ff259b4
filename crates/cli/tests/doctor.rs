//! `flyte-auth doctor` as a whole: it ends within `--timeout` whatever a step waits for, and
//! it shows the discovery flavour the hints next to the token store remember.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::time::Duration;

use flyte_auth::{DiscoveryFlavour, DiscoveryHints as _, Endpoint};
use flyte_auth_store::DiscoveryHintFiles;
use serde_json::Value;
use support::User;

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

/// The steps after `name`, each with its outcome.
fn after<'a>(json: &'a Value, name: &str) -> Vec<(&'a str, &'a str)> {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .skip_while(|(n, _)| *n != name)
        .skip(1)
        .collect()
}

#[test]
fn a_step_that_blocks_is_ended_by_the_timeout_and_named() {
    // A config file that is a pipe nobody writes to: reading it would wait five seconds.
    let user = User::new();
    let fifo = user.home().join("config.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (out, json) = doctor_json(
        &user,
        &["--config", fifo.to_str().unwrap(), "--timeout", "1"],
    );
    assert!(out.elapsed < Duration::from_secs(4), "{out:?}");
    assert_eq!(out.code(), Some(1), "{out:?}");
    let config = step(&json, "config");
    assert_eq!(config["outcome"], "fail", "{config}");
    assert!(
        config["detail"]
            .as_str()
            .unwrap()
            .contains("did not finish within --timeout (1s)"),
        "{config}"
    );
    let rest = after(&json, "config");
    assert_eq!(rest.len(), 7, "{json}");
    assert!(rest.iter().all(|(_, outcome)| *outcome == "skip"), "{json}");
    assert!(
        step(&json, "proxy")["detail"]
            .as_str()
            .unwrap()
            .contains("--timeout"),
        "{json}"
    );

    let text = user.run(&[
        "doctor",
        "--config",
        fifo.to_str().unwrap(),
        "--timeout",
        "1",
    ]);
    assert!(
        text.stdout
            .contains("[FAIL] config       did not finish within --timeout (1s)"),
        "{text:?}"
    );
}

#[test]
fn the_whole_diagnosis_ends_within_the_timeout_not_each_request() {
    // A server that takes connections and never answers: the server's date and its
    // discovery would each take the whole limit.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = silent.local_addr().unwrap().to_string();
    let user = User::new().args(["--endpoint", &endpoint, "--insecure", "--timeout", "2"]);
    let (out, json) = doctor_json(&user, &[]);
    assert!(out.elapsed < Duration::from_millis(3500), "{out:?}");
    let discovery = step(&json, "discovery");
    assert_eq!(discovery["outcome"], "fail", "{discovery}");
    assert!(
        discovery["detail"]
            .as_str()
            .unwrap()
            .contains("did not finish within --timeout (2s)"),
        "{discovery}"
    );
    assert!(
        after(&json, "discovery")
            .iter()
            .all(|(_, outcome)| *outcome == "skip"),
        "{json}"
    );
    drop(silent);
}

#[test]
fn the_flavour_the_last_discovery_answered_in_is_shown() {
    let user = User::new().args(["--endpoint", "127.0.0.1:9", "--insecure", "--timeout", "5"]);
    let (_, json) = doctor_json(&user, &[]);
    let discovery = step(&json, "discovery");
    assert!(
        discovery["facts"].get("remembered_flavour").is_none(),
        "{discovery}"
    );

    let key = Endpoint::parse("127.0.0.1:9").unwrap().key().to_owned();
    DiscoveryHintFiles::in_dir(user.cache_dir())
        .remember(&key, DiscoveryFlavour::Flyte2)
        .unwrap();
    let (out, json) = doctor_json(&user, &[]);
    let discovery = step(&json, "discovery");
    assert_eq!(
        discovery["facts"]["remembered_flavour"], "flyte2",
        "{out:?}"
    );
    assert!(
        discovery["detail"]
            .as_str()
            .unwrap()
            .contains("remembered from the last discovery: Flyte 2"),
        "{discovery}"
    );

    DiscoveryHintFiles::in_dir(user.cache_dir())
        .remember(&key, DiscoveryFlavour::FlyteAdmin)
        .unwrap();
    let text = user.run(&["doctor"]);
    assert!(
        text.stdout
            .contains("remembered from the last discovery: Flyte 1 (flyteadmin)"),
        "{text:?}"
    );
}
