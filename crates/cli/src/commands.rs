//! The subcommands: `token`, `login`, `logout`, `status`, `doctor`.

use std::{
    future::Future,
    io::Write as _,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use flyte_auth::{
    AuthMode, Credentials, Error, FactoryOptions, Logout, PlatformConfig, Revocation, TokenStore,
    config::PlatformConfigBuilder, logout_with, revoke_stored_login,
};
use flyte_auth_store::{FileStore, StoreKind};

use crate::{
    args::{Cli, Command},
    doctor, guard,
    options::Options,
    status::{GoogleProxy, Status, TOKEN_HEADER_LIMIT, TokenHeader, human, rfc3339},
};

/// Runs the subcommand `cli` names.
pub(crate) fn run(cli: Cli) -> Result<(), Error> {
    // `--timeout` counts from here: reading the config and the store is part of the command.
    let started = Instant::now();
    let options = &cli.options;
    if let Command::Doctor { json } = cli.command {
        return block_on(|| run_doctor(cli.config, options, json));
    }
    let cfg = cli.config.build()?;
    tracing::debug!(
        endpoint = %cfg.endpoint(),
        auth_mode = %cfg.auth_mode(),
        config_file = ?cfg.config_file(),
        "configuration loaded"
    );
    match &cli.command {
        Command::Token | Command::Login => {
            guard::check(&cfg, guard::depth())?;
            guard::mark_config(&cfg);
            let limit = TimeLimit::new(&cfg, options, started);
            match cli.command {
                Command::Token => token(&cfg, options, limit),
                _ => block_on(|| limit.bound("logging in", login(&cfg, options))),
            }
            .map_err(|e| guard::explain(&cfg, e))
        }
        Command::Logout => block_on(|| logout(&cfg, options)),
        Command::Status { json } => status(&cfg, options, *json),
        Command::Doctor { .. } => Ok(()),
    }
}

/// Runs the future `make` returns to completion on a current-thread async runtime with I/O
/// and timers. Only what may reach the network starts one: a token served from the store
/// needs none.
///
/// The future is made in here, in a call never inlined, so that its state (over 100 KB for a
/// login) lives in this call's stack frame: a cached token does not touch, and fault in, those
/// stack pages (about 0.1 ms of a 1.1 ms run).
#[inline(never)]
fn block_on<T, F: Future<Output = Result<T, Error>>>(make: impl FnOnce() -> F) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::other(CommandError::Runtime(e)))?
        .block_on(make())
}

/// How long `token` and `login` may run in all (`--timeout`): everything the command does on
/// the network (discovery, refresh, token requests, their retries and waits) ends within it.
///
/// Waiting for a person or a program is not network time, and has its own limit: a browser
/// or device login adds the time it gives the user (`admin.pkceConfig.timeout`,
/// `admin.deviceFlowConfig.timeout`), `ExternalCommand` the token command's time-out
/// (`--command-timeout`, `admin.commandTimeout`; the command is stopped by its own limit, with
/// its process group, rather than left running when this process ends).
#[derive(Debug, Clone, Copy)]
struct TimeLimit {
    /// When the command started.
    started: Instant,
    /// `--timeout`, or `None`: no limit.
    network: Option<Duration>,
    /// What the auth mode adds to it, and why.
    allowance: Option<(Duration, &'static str)>,
}

impl TimeLimit {
    fn new(cfg: &PlatformConfig, options: &Options, started: Instant) -> Self {
        let command = cfg
            .command_timeout()
            .unwrap_or(flyte_auth::command::DEFAULT_TIMEOUT);
        let allowance = match cfg.auth_mode_ref() {
            AuthMode::Pkce => Some((
                cfg.pkce_timeout()
                    .unwrap_or(flyte_auth::pkce::DEFAULT_LOGIN_TIMEOUT),
                "the browser login",
            )),
            AuthMode::DeviceFlow => Some((
                cfg.device_flow_timeout()
                    .unwrap_or(flyte_auth::device::DEFAULT_LOGIN_TIMEOUT),
                "the device login",
            )),
            AuthMode::ExternalCommand => Some((command, "the token command")),
            _ => None,
        };
        // A `proxyCommand` runs before the first request, with the same limit as a token
        // command: its time is added too, so it is stopped by its own limit, with its process
        // group, before this process ends.
        let allowance = if cfg.proxy_command().is_empty() {
            allowance
        } else {
            Some(match allowance {
                Some((extra, _)) => (
                    extra.saturating_add(command),
                    "the login and the proxy command",
                ),
                None => (command, "the proxy command"),
            })
        };
        Self {
            started,
            network: options.timeout,
            allowance,
        }
    }

    /// The whole limit, when there is one.
    fn total(&self) -> Option<Duration> {
        let network = self.network?;
        Some(network.saturating_add(self.allowance.map_or(Duration::ZERO, |(extra, _)| extra)))
    }

    /// `future` (what `doing` does on the network), ended at the limit. A time-out of the
    /// future's own that ends at the limit is reported as the limit's too.
    async fn bound<T>(
        &self,
        doing: &str,
        future: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        // A limit past the clock's range is no limit.
        let Some((total, end)) = self
            .total()
            .and_then(|total| Some((total, self.started.checked_add(total)?)))
        else {
            return future.await;
        };
        match tokio::time::timeout_at(end.into(), future).await {
            Ok(Err(Error::Timeout { .. })) if Instant::now() >= end => {}
            Ok(result) => return result,
            Err(_) => {}
        }
        tracing::debug!(doing, limit_s = total.as_secs_f32(), "--timeout reached");
        let operation = match self.allowance {
            Some((extra, what)) => format!(
                "{doing} (--timeout, plus the {} {what} may take)",
                humantime::format_duration(extra)
            ),
            None => format!("{doing} (--timeout)"),
        };
        Err(Error::Timeout {
            operation,
            after: total,
        })
    }
}

/// Prints the diagnosis; fails (exit status 1) when a step failed.
async fn run_doctor(
    config: PlatformConfigBuilder,
    options: &Options,
    json: bool,
) -> Result<(), Error> {
    let report = doctor::diagnose(config, options).await;
    print(&if json {
        report.to_json() + "\n"
    } else {
        report.to_text()
    })?;
    if report.ok {
        Ok(())
    } else {
        Err(Error::other(CommandError::DoctorFound))
    }
}

/// Prints the access token, and nothing else, on standard output.
///
/// A fresh token in the store is printed at once; only a refresh or a login starts the async
/// runtime, and ends within `limit`.
fn token(cfg: &PlatformConfig, options: &Options, limit: TimeLimit) -> Result<(), Error> {
    let store = options.store(cfg)?;
    let authenticator = options.authenticator(cfg, store)?;
    let credentials = match authenticator.fresh_credentials() {
        Some(credentials) => credentials,
        None => block_on(|| limit.bound("getting a token", authenticator.get_credentials()))?,
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", credentials.access_token.expose_secret())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::other(CommandError::Stdout(e)))
}

/// Revokes the stored login's refresh token where the server offers it (as `logout` does),
/// removes what is stored for the endpoint, then logs in. A revocation that fails is a line
/// on stderr, not a failure.
async fn login(cfg: &PlatformConfig, options: &Options) -> Result<(), Error> {
    let store = options.store(cfg)?;
    // Built first, so that a config it refuses leaves the stored login alone.
    let authenticator = options.authenticator(cfg, Arc::clone(&store))?;
    let factory = FactoryOptions::new().http_settings(options.http_settings(cfg));
    let revocation = revoke_stored_login(cfg, &store, &factory).await;
    match &revocation {
        Revocation::Failed(_) | Revocation::Skipped { .. } => {
            eprintln!("Note: replacing the stored login: {revocation}.");
        }
        other => tracing::debug!(revocation = %other, "replacing the stored login"),
    }
    store.delete(cfg.endpoint())?;
    let credentials = authenticator.get_credentials().await?;
    eprintln!(
        "Logged in to {} ({}); the token {}. Kept in the {} store.",
        cfg.endpoint(),
        cfg.auth_mode(),
        expiry_phrase(&credentials),
        store.name()
    );
    Ok(())
}

/// Revokes the stored refresh token where the server offers it, and removes what is stored
/// for the endpoint, saying which store held it and what the server did.
///
/// With the automatic store, a login the file store kept while the keyring did not answer is
/// logged out too (the automatic store's delete removes it), and named as the file store's.
/// A revocation that fails is a line on stderr, not a failure: the login is gone here.
async fn logout(cfg: &PlatformConfig, options: &Options) -> Result<(), Error> {
    // `--timeout` bounds the discovery and the revocation each; a time-out ends the
    // revocation, never the deletion.
    let factory = FactoryOptions::new().http_settings(options.http_settings(cfg));
    let store = options.store(cfg)?;
    let file = match file_copy(cfg, options, &store) {
        Some(file) => Some(logout_with(cfg, file, &factory).await?),
        None => None,
    };
    let chosen = logout_with(cfg, Arc::clone(&store), &factory).await?;
    if let Some(file) = &file {
        let why = format!(
            ", where they were kept while the {} store did not answer",
            chosen.store
        );
        report(cfg, file, &why);
    }
    if chosen.stored {
        report(cfg, &chosen, "");
    } else if file.is_none() {
        eprintln!(
            "Nothing was stored for {} in the {} store.",
            cfg.endpoint(),
            chosen.store
        );
    }
    let proxy = [file.as_ref(), Some(&chosen)]
        .into_iter()
        .flatten()
        .filter_map(|outcome| outcome.google_proxy.as_ref())
        .find(|proxy| proxy.stored)
        .or(chosen.google_proxy.as_ref());
    if let Some(proxy) = proxy {
        eprintln!("Also: {proxy}.");
    }
    Ok(())
}

/// The lines on stderr that say what `outcome` did: which store held the login, and what
/// the server did with its refresh token when that is worth knowing.
fn report(cfg: &PlatformConfig, outcome: &Logout, why: &str) {
    let what = match &outcome.revocation {
        Revocation::Revoked => "the refresh token was revoked at the server and the",
        _ => "the",
    };
    eprintln!(
        "Logged out of {}: {what} stored credentials were removed from the {} store{why}.",
        cfg.endpoint(),
        outcome.store
    );
    if matches!(
        outcome.revocation,
        Revocation::Failed(_) | Revocation::NotOffered | Revocation::Skipped { .. }
    ) {
        eprintln!("Note: {}.", outcome.revocation);
    }
}

/// The file store, when the automatic store did not choose it and it holds a login for the
/// endpoint (saved while the keyring did not answer): the automatic store's delete removes
/// that copy too, so it is revoked and reported first.
fn file_copy(
    cfg: &PlatformConfig,
    options: &Options,
    store: &Arc<dyn TokenStore>,
) -> Option<Arc<dyn TokenStore>> {
    if options.store != StoreKind::Auto || cfg.disable_keyring() {
        return None;
    }
    // Reading the store makes the automatic store choose.
    let _ = store.retrieve(cfg.endpoint());
    if store.name() == "file" {
        return None;
    }
    let file = FileStore::open(options.cache_dir.clone()).ok()?;
    file.retrieve(cfg.endpoint()).ok().flatten()?;
    Some(Arc::new(file))
}

/// Prints what is configured and stored; logs in never.
fn status(cfg: &PlatformConfig, options: &Options, json: bool) -> Result<(), Error> {
    let store = options.store(cfg)?;
    let stored = store.retrieve(cfg.endpoint()).map_err(|e| e.to_string());
    // The error `token` would fail on before any network access, if any.
    let authenticator = options.authenticator(cfg, Arc::clone(&store));
    let config_error = guard::check(cfg, guard::depth())
        .err()
        .or_else(|| authenticator.as_ref().err().cloned());
    let mut status = Status::new(cfg, store.name(), stored, config_error);
    status.google_proxy = GoogleProxy::of(cfg, &*store);
    if let Ok(auth) = &authenticator {
        // The header may be the server's: discovery, bounded in time, never a login.
        let limit = options.timeout.unwrap_or(TOKEN_HEADER_LIMIT);
        let header = block_on(|| async { Ok(TokenHeader::of(cfg, &**auth, limit).await) })?;
        status.token_header = Some(header);
    }
    print(&if json {
        status.to_json() + "\n"
    } else {
        status.to_text()
    })
}

/// Writes `text` to standard output.
fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::other(CommandError::Stdout(e)))
}

/// `expires at 2024-05-01T13:00:00Z (in 59m 59s)`.
fn expiry_phrase(credentials: &Credentials) -> String {
    match credentials.expires_at() {
        Some(at) => {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            format!("expires at {} (in {})", rfc3339(at), human(left))
        }
        None => "has no stated expiry".to_owned(),
    }
}

/// What a command itself failed at (the library's errors are `flyte_auth::Error`s already).
#[derive(Debug, thiserror::Error)]
enum CommandError {
    /// Standard output could not be written (a closed pipe, a full disk).
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    /// The async runtime could not be started (no more threads or file descriptors).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `doctor` found a failing step (already shown on standard output).
    #[error("doctor found a problem (see the steps marked FAIL above)")]
    DoctorFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(args: &[&str]) -> TimeLimit {
        let args: Vec<&str> = ["--endpoint", "h:1"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["token"])
            .collect();
        let cli = crate::args::cli(&args);
        let cfg = cli.config.no_config_file().no_env().build().unwrap();
        TimeLimit::new(&cfg, &cli.options, Instant::now())
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn timeout_is_the_whole_limit_when_nobody_is_waited_for() {
        let secret = ["--auth-mode", "ClientSecret", "--client-id", "svc"];
        let with_timeout: Vec<&str> = secret.iter().copied().chain(["--timeout", "5"]).collect();
        assert_eq!(limit(&with_timeout).total(), Some(5 * SECOND));
        assert_eq!(limit(&secret).total(), None, "no --timeout, no limit");
    }

    #[test]
    fn a_login_adds_the_time_it_gives_the_user_and_a_token_command_its_own() {
        let total = |mode: &str, extra: &[&str]| {
            let args: Vec<&str> = ["--auth-mode", mode, "--timeout", "5"]
                .into_iter()
                .chain(extra.iter().copied())
                .collect();
            limit(&args).total()
        };
        assert_eq!(total("Pkce", &[]), Some(125 * SECOND));
        assert_eq!(total("DeviceFlow", &[]), Some(605 * SECOND));
        assert_eq!(
            total("ExternalCommand", &["--command-timeout", "7"]),
            Some(12 * SECOND)
        );
        assert_eq!(total("ExternalCommand", &[]), Some(35 * SECOND));
    }

    #[test]
    fn a_proxy_command_adds_its_own_limit() {
        let cli = crate::args::cli(&["--timeout", "5", "token"]);
        let with_proxy = |mode: &str| {
            let cfg = PlatformConfig::builder()
                .no_config_file()
                .no_env()
                .endpoint("h:1")
                .auth_mode(mode.parse::<AuthMode>().unwrap())
                .client_id("svc")
                .client_secret("s")
                .proxy_command(["print-token"])
                .command_timeout(Duration::from_secs(7))
                .build()
                .unwrap();
            TimeLimit::new(&cfg, &cli.options, Instant::now()).total()
        };
        assert_eq!(with_proxy("ClientSecret"), Some(12 * SECOND));
        assert_eq!(with_proxy("Pkce"), Some(132 * SECOND));
    }

    #[test]
    fn a_limit_of_any_size_is_not_a_panic() {
        let limit = TimeLimit {
            started: Instant::now(),
            network: Some(Duration::from_secs(u64::MAX)),
            allowance: Some((Duration::from_secs(u64::MAX), "the device login")),
        };
        assert_eq!(limit.total(), Some(Duration::MAX));
        block_on(|| limit.bound("getting a token", async { Ok(()) })).unwrap();
    }

    #[test]
    fn what_does_not_end_by_the_limit_is_a_time_out_naming_timeout() {
        let limit = TimeLimit {
            started: Instant::now(),
            network: Some(Duration::from_millis(200)),
            allowance: None,
        };
        let result: Result<(), Error> =
            block_on(|| limit.bound("getting a token", std::future::pending()));
        let err = result.unwrap_err();
        assert!(limit.started.elapsed() < SECOND, "{err}");
        assert!(
            matches!(err, Error::Timeout { after, .. } if after == Duration::from_millis(200)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "getting a token (--timeout) timed out after 0.2s"
        );

        // A time-out of its own is the limit's when it ends at (or after) the limit...
        let own = || async {
            Err::<(), _>(Error::Timeout {
                operation: "token request".into(),
                after: Duration::from_millis(300),
            })
        };
        let limit = TimeLimit {
            started: Instant::now() - Duration::from_millis(300),
            network: Some(Duration::from_millis(100)),
            allowance: Some((Duration::from_millis(100), "the token command")),
        };
        let err = block_on(|| limit.bound("getting a token", own())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "getting a token (--timeout, plus the 100ms the token command may take) timed out \
             after 0.2s"
        );
        // ...and its own before.
        let limit = TimeLimit {
            started: Instant::now(),
            ..limit
        };
        let err = block_on(|| limit.bound("getting a token", own())).unwrap_err();
        assert_eq!(err.to_string(), "token request timed out after 0.3s");
    }
}
