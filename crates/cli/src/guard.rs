//! The recursion guard. `command: [flyte-auth, token]` in `~/.flyte/config.yaml` and nothing
//! else (an easy mistake when wiring pyflyte to flyte-auth) makes flyte-auth run its own
//! `command`, which is flyte-auth reading the same config, which runs it again, without end.
//! Each flyte-auth tells the processes it starts how deep they are (`FLYTE_AUTH_DEPTH`); one
//! started by a flyte-auth that would start flyte-auth again refuses with a configuration
//! error instead.

use std::{path::Path, sync::OnceLock};

use flyte_auth::{AuthMode, Error, PlatformConfig};

/// How many flyte-auth processes run above this one.
pub(crate) const DEPTH_VAR: &str = "FLYTE_AUTH_DEPTH";

/// Refused from this depth on, whatever the command: no sane setup nests this deep.
const MAX_DEPTH: u32 = 4;

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
    let depth = depth();
    #[allow(
        unsafe_code,
        reason = "setting a variable is only unsound while another thread reads the environment"
    )]
    // SAFETY: `main` calls this before it starts the runtime or any thread, so no other
    // thread can read or write the environment at the same time.
    unsafe {
        std::env::set_var(DEPTH_VAR, depth.saturating_add(1).to_string());
    }
}

/// Fails when this flyte-auth would start itself without end: its `command` is flyte-auth
/// without a flag that changes its configuration (`--config`, `--auth-mode`), so the child
/// reads the same configuration; or it was started by flyte-auth and would start flyte-auth
/// again; or it runs [`MAX_DEPTH`] deep.
pub(crate) fn check(cfg: &PlatformConfig, depth: u32) -> Result<(), Error> {
    let command = cfg.command();
    let runs_flyte_auth = cfg.auth_mode() == AuthMode::ExternalCommand
        && command.first().is_some_and(|p| is_flyte_auth(p));
    let same_config = !command
        .iter()
        .skip(1)
        .any(|a| a.starts_with("--config") || a.starts_with("--auth-mode"));
    let refused = (runs_flyte_auth && (same_config || depth >= 1)) || depth >= MAX_DEPTH;
    if !refused {
        return Ok(());
    }
    let from = cfg
        .config_file()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default();
    Err(Error::config(format!(
        "flyte-auth would run itself without end: its `command` (admin.command{from}) starts \
         flyte-auth with the same configuration ({DEPTH_VAR}={depth}). Give flyte-auth a configuration without `command`: its own file \
         (`flyte-auth --config FILE token` as the command) or flags (`flyte-auth --endpoint \
         ... --auth-mode DeviceFlow token`), or set admin.authType to the flow you use"
    )))
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
}
