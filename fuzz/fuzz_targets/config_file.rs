//! The Flyte config file (`~/.flyte/config.yaml`, the `admin` section) and the `FLYTE_*`
//! environment variables, through `PlatformConfig::load_from`.
//!
//! Input: the YAML text; optionally a line `=== env` followed by `NAME=value` lines, which are
//! the environment (otherwise empty). `FLYTE_CREDENTIALS_CLIENT_SECRET` is always set to a
//! known secret unless the input sets it.
//! Checked: no panic; neither the config's `Debug` nor an error shows that secret.
#![no_main]

use std::{collections::HashMap, path::PathBuf, sync::OnceLock};

use flyte_auth::PlatformConfig;
use flyte_auth::config::parse_duration;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-client-s3cr3t";
const SEPARATOR: &str = "\n=== env\n";

fn config_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("flyte-auth-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir.join("config.yaml")
    })
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let (yaml, env_text) = text.split_once(SEPARATOR).unwrap_or((text, ""));
    let mut env: HashMap<String, String> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.entry("FLYTE_CREDENTIALS_CLIENT_SECRET".into())
        .or_insert_with(|| SECRET.into());
    // Paths the config names are relative to this process's directory; keep them out of it.
    env.remove("FLYTECTL_CONFIG");

    let path = config_path();
    std::fs::write(path, yaml).expect("the temporary directory is writable");
    let secret_in_input = text.contains(SECRET);
    match PlatformConfig::load_from(|name| env.get(name).cloned(), Some(path)) {
        Ok(config) => {
            let _ = config.base_url();
            let checked = config.validate();
            if !secret_in_input {
                let debug = format!("{config:?}");
                assert!(
                    !debug.contains(SECRET),
                    "the config's Debug shows the secret: {debug}"
                );
                if let Err(e) = checked {
                    let shown = format!("{e} {e:?}");
                    assert!(
                        !shown.contains(SECRET),
                        "an error shows the secret: {shown}"
                    );
                }
            }
        }
        Err(e) => {
            if !secret_in_input {
                let shown = format!("{e} {e:?}");
                assert!(
                    !shown.contains(SECRET),
                    "an error shows the secret: {shown}"
                );
            }
        }
    }
    for line in yaml.lines().take(4) {
        let _ = parse_duration(line);
    }
});
