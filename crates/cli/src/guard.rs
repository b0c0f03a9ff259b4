//! The recursion guard. `command: [flyte-auth, token]` in `~/.flyte/config.yaml` and nothing
//! else (an easy mistake when wiring pyflyte to flyte-auth) makes flyte-auth run its own
//! `command`, which is flyte-auth reading the same config, which runs it again, without end.
//! Each flyte-auth tells the processes it starts how deep they are (`FLYTE_AUTH_DEPTH`) and
//! which configurations the flyte-auth processes above them run with (`FLYTE_AUTH_CALLERS`,
//! fingerprints, never the settings themselves). One started by a flyte-auth that would start
//! flyte-auth again, or that runs with a configuration a flyte-auth above it runs with (the
//! `command` is a script or `sh -c` that runs flyte-auth), refuses with a configuration error
//! at once, before any network request. The flyte-auth above it recognises the refusal in
//! its command's error and reports it as its own configuration error, so the message is
//! printed once, and the exit status is 2 at every level.

use std::{path::Path, sync::OnceLock};

use flyte_auth::{AuthMode, Error, PlatformConfig};

/// How many flyte-auth processes run above this one.
pub(crate) const DEPTH_VAR: &str = "FLYTE_AUTH_DEPTH";

/// The fingerprints of the configurations of the flyte-auth processes above this one,
/// separated by `,`.
pub(crate) const CALLERS_VAR: &str = "FLYTE_AUTH_CALLERS";

/// Refused from this depth on, whatever the command: no sane setup nests this deep.
const MAX_DEPTH: u32 = 4;

/// How a refusal begins: what a flyte-auth above recognises in its command's error.
const REFUSAL: &str = "flyte-auth would run itself without end";

/// The depth this process was started with, read before [`mark_children`] changed it.
static DEPTH: OnceLock<u32> = OnceLock::new();

/// How many flyte-auth processes run above this one (0: started by a person or another tool).
pub(crate) fn depth() -> u32 {
    *DEPTH.get_or_init(|| {
        std::env::var(DEPTH_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Tells the processes this one starts (the token command) that they run one level deeper.
///
/// Call first thing in `main`, before the async runtime or any other thread exists.
pub(crate) fn mark_children() {
    set_var(DEPTH_VAR, &depth().saturating_add(1).to_string());
}

/// Tells the processes this one starts which configurations run above them: the inherited
/// [`CALLERS_VAR`] and this process's own.
///
/// Call once the configuration is loaded, before the async runtime starts: the only other
/// thread that may exist then is one left reading a config file that is a pipe, which does
/// not touch the environment.
pub(crate) fn mark_config(cfg: &PlatformConfig) {
    let mut callers = inherited_callers();
    callers.push(fingerprint(cfg));
    set_var(CALLERS_VAR, &callers.join(","));
}

/// Sets a variable of this process's environment, for the processes it starts. Only while
/// no other thread reads or writes the environment (as its callers say).
fn set_var(name: &str, value: &str) {
    #[allow(
        unsafe_code,
        reason = "setting a variable is only unsound while another thread reads the environment"
    )]
    // SAFETY: called by `mark_children` before the runtime or any thread starts, and by
    // `mark_config` while no other thread touches the environment (see each).
    unsafe {
        std::env::set_var(name, value);
    }
}

/// The fingerprints of the configurations above this process, as it was started.
fn inherited_callers() -> Vec<String> {
    static CALLERS: OnceLock<Vec<String>> = OnceLock::new();
    CALLERS
        .get_or_init(|| {
            std::env::var(CALLERS_VAR)
                .unwrap_or_default()
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .clone()
}

/// A stable fingerprint (FNV-1a, 64 bits, in hex) of what makes a flyte-auth run the same
/// commands: the config file, the endpoint, the auth mode and the commands. It shows nothing
/// of them (the arguments of a command may carry a secret).
fn fingerprint(cfg: &PlatformConfig) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |part: &[u8]| {
        for byte in part.iter().chain([&0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    add(cfg
        .config_file()
        .map(|p| p.as_os_str().as_encoded_bytes())
        .unwrap_or_default());
    add(cfg.endpoint().key().as_bytes());
    add(cfg.auth_mode().to_string().as_bytes());
    for arg in cfg.command() {
        add(arg.as_bytes());
    }
    add(b"proxy");
    for arg in cfg.proxy_command() {
        add(arg.as_bytes());
    }
    format!("{hash:016x}")
}

/// Fails when this flyte-auth would start itself without end: its `command` is flyte-auth
/// without a flag that changes its configuration (`--config`, `--auth-mode`), so the child
/// reads the same configuration; or it was started by flyte-auth and would start flyte-auth
/// again; or a flyte-auth above it runs with the same configuration (its command runs
/// flyte-auth through a script); or it runs [`MAX_DEPTH`] deep.
pub(crate) fn check(cfg: &PlatformConfig, depth: u32) -> Result<(), Error> {
    check_with(cfg, depth, &inherited_callers())
}

fn check_with(cfg: &PlatformConfig, depth: u32, callers: &[String]) -> Result<(), Error> {
    let command = cfg.command();
    let runs_flyte_auth = cfg.auth_mode() == AuthMode::ExternalCommand
        && command.first().is_some_and(|p| is_flyte_auth(p));
    let same_config = !command
        .iter()
        .skip(1)
        .any(|a| a.starts_with("--config") || a.starts_with("--auth-mode"));
    let started_by_itself = depth >= 1 && callers.contains(&fingerprint(cfg));
    let refused =
        (runs_flyte_auth && (same_config || depth >= 1)) || started_by_itself || depth >= MAX_DEPTH;
    if refused { Err(refusal(cfg)) } else { Ok(()) }
}

/// `error`, unless it says that the command this flyte-auth ran (or its proxy command) was
/// a flyte-auth that refused to run itself: then this flyte-auth's own refusal, a
/// configuration error, without repeating the one below.
pub(crate) fn explain(cfg: &PlatformConfig, error: Error) -> Error {
    match &error {
        // What a flyte-auth below prints when it refuses, and its exit status: not merely a
        // command's output that quotes the words.
        Error::Command { stderr, .. }
            if flyte_auth::command::exit_code(&error) == Some(2)
                && stderr
                    .lines()
                    .any(|line| line.starts_with("flyte-auth: ") && line.contains(REFUSAL)) =>
        {
            refusal(cfg)
        }
        _ => error,
    }
}

/// The configuration error of a flyte-auth that would run itself without end.
fn refusal(cfg: &PlatformConfig) -> Error {
    let from = cfg
        .config_file()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default();
    Error::config(format!(
        "{REFUSAL}: its `command` (admin.command{from}) starts flyte-auth with the same \
         configuration. Give flyte-auth a configuration without `command`: its own file \
         (`flyte-auth --config FILE token` as the command) or flags (`flyte-auth --endpoint \
         ... --auth-mode DeviceFlow token`), or set admin.authType to the flow you use"
    ))
}

/// Whether `program` names this binary (`flyte-auth`, or the name it was started as).
fn is_flyte_auth(program: &str) -> bool {
    let name = Path::new(program).file_name();
    let own = std::env::current_exe().ok();
    name.is_some_and(|n| n == "flyte-auth" || own.as_deref().and_then(Path::file_name) == Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(command: &[&str]) -> PlatformConfig {
        PlatformConfig::builder()
            .no_config_file()
            .no_env()
            .endpoint("flyte.example.org")
            .auth_mode(AuthMode::ExternalCommand)
            .command(command.iter().copied())
            .build()
            .unwrap()
    }

    #[test]
    fn only_a_flyte_auth_started_by_flyte_auth_that_would_start_it_again_is_refused() {
        let own = cfg(&["/usr/local/bin/flyte-auth", "token"]);
        let err = check(&own, 0).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("run itself"), "{err}");
        let other_config = cfg(&["flyte-auth", "--config", "/etc/flyte/device.yaml", "token"]);
        assert!(check(&other_config, 0).is_ok(), "a different config: fine");
        assert!(
            check(&other_config, 1).is_err(),
            "but not from a flyte-auth"
        );
        let other = cfg(&["gcloud", "auth", "print-identity-token"]);
        assert!(check(&other, 1).is_ok(), "flyte-auth running gcloud");
        assert!(check(&other, MAX_DEPTH).is_err(), "too deep whatever runs");
    }

    #[test]
    fn a_flyte_auth_below_one_with_the_same_configuration_is_refused() {
        let script = cfg(&["sh", "-c", "flyte-auth token"]);
        let other = cfg(&["sh", "-c", "flyte-auth --config other.yaml token"]);
        assert!(check_with(&script, 0, &[]).is_ok(), "a person runs it");
        let above = [fingerprint(&other), fingerprint(&script)];
        let err = check_with(&script, 1, &above).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(
            check_with(&script, 1, &above[..1]).is_ok(),
            "another config"
        );
        assert!(
            check_with(&script, 0, &above).is_ok(),
            "not below flyte-auth"
        );
        // The fingerprint tells the commands apart and shows none of them.
        assert_ne!(fingerprint(&script), fingerprint(&other));
        assert_eq!(fingerprint(&script).len(), 16);
    }

    #[test]
    fn the_refusal_of_the_flyte_auth_below_becomes_this_ones_configuration_error() {
        let script = cfg(&["sh", "-c", "flyte-auth token"]);
        let below = Error::Command {
            program: "sh".into(),
            status: "exit status 2".into(),
            stderr: format!("flyte-auth: configuration error: {}", refusal(&script)),
        };
        let err = explain(&script, below);
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert_eq!(err.to_string().matches(REFUSAL).count(), 1, "{err}");
        // The same words from a command that did not exit with 2 are its own failure.
        for status in ["exit status 1", "killed by signal 2", "exit status 22"] {
            let other = Error::Command {
                program: "sh".into(),
                status: status.into(),
                stderr: format!("flyte-auth: configuration error: {}", refusal(&script)),
            };
            assert!(
                matches!(explain(&script, other), Error::Command { .. }),
                "{status}"
            );
        }
        // A command that only quotes the words keeps its own error.
        let quoting = Error::Command {
            program: "sh".into(),
            status: "exit status 1".into(),
            stderr: format!("usage: see {REFUSAL}"),
        };
        assert!(matches!(explain(&script, quoting), Error::Command { .. }));
    }
}
