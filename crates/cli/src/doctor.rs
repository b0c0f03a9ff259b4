//! `flyte-auth doctor`: why authentication does not work, step by step, with the fix for each
//! failed step. Never logs in, never shows a token or a secret (URLs are redacted, variables
//! are named, not shown).
//!
//! The whole diagnosis ends within `--timeout`: what may block (reading files, the keyring)
//! runs on a thread of its own, so that the limit ends a step that hangs; that step is shown
//! as not finished, and the steps after it as not run.

use std::{
    fmt::Write as _,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime},
};

use flyte_auth::{
    AuthMode, Credentials, DiscoveryFlavour, DiscoveryHints as _, Endpoint, Error, PlatformConfig,
    StoreError, TokenStore,
    config::PlatformConfigBuilder,
    oauth::{OAuthClient, RemoteClientConfigStore},
    redact_url,
    text::printable,
};
use flyte_auth_store::DiscoveryHintFiles;
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    guard,
    options::Options,
    status::{GoogleProxy, TOKEN_HEADER_LIMIT, TokenHeader, rfc3339},
};

/// A clock further off the server's than this makes tokens look expired or not yet valid.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);

/// Where the probe write of the store goes (an endpoint no server has).
const PROBE_ENDPOINT: &str = "flyte-auth-doctor.invalid";

/// Every step, in the order they run.
const STEPS: [&str; 8] = [
    "config",
    "endpoint",
    "auth",
    "discovery",
    "clock",
    "token store",
    "login",
    "proxy",
];

/// How often a step running on a thread of its own is looked at.
const THREAD_POLL: Duration = Duration::from_millis(5);

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// Fine.
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// Broken: authentication fails because of it.
    Fail,
    /// Not checked (an earlier step failed, or not used with this auth mode).
    Skip,
}

/// One step of the diagnosis.
#[derive(Debug, Serialize)]
pub(crate) struct Step {
    name: &'static str,
    outcome: Outcome,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    /// Facts for a bug report (names, URLs without secrets, times).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    facts: serde_json::Map<String, serde_json::Value>,
}

impl Step {
    fn new(name: &'static str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome,
            detail: detail.into(),
            fix: None,
            facts: serde_json::Map::new(),
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    fn fact(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.facts.insert(name.to_owned(), value.into());
        self
    }
}

/// The whole diagnosis.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Whether no step failed.
    pub(crate) ok: bool,
    steps: Vec<Step>,
}

impl Report {
    /// One JSON object.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The text for people: one line per step, the fix under a failed one. What a server
    /// sent (discovery values, error messages) is in the details: control characters are
    /// escaped, never passed to the terminal.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let mark = match step.outcome {
                Outcome::Ok => "ok  ",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let _ = writeln!(
                out,
                "[{mark}] {:<12} {}",
                step.name,
                printable(&step.detail)
            );
            if let Some(fix) = &step.fix {
                let _ = writeln!(out, "       {:<12} fix: {}", "", printable(fix));
            }
        }
        out.push_str(if self.ok {
            "No problem found.\n"
        } else {
            "Authentication will fail until the steps marked FAIL are fixed.\n"
        });
        out
    }
}

/// Runs every step, all of them within `--timeout` when it is given.
pub(crate) async fn diagnose(config: PlatformConfigBuilder, options: &Options) -> Report {
    let mut run = Run::new(options.timeout);
    let Some(built) = run.step("config", blocking(move || config.build())).await else {
        return run.finish();
    };
    let cfg = match built {
        Some(Ok(cfg)) => Arc::new(cfg),
        failed => {
            let error = failed.and_then(Result::err);
            run.push(error.map_or_else(|| did_not_run("config"), |e| config_step(None, Some(&e))));
            return run.finish_skipping("the configuration did not load");
        }
    };
    run.push(config_step(Some(&cfg), None));
    run.push(
        Step::new(
            "endpoint",
            Outcome::Ok,
            format!("{} ({})", cfg.endpoint(), cfg.base_url()),
        )
        .fact("endpoint", cfg.endpoint().key())
        .fact("endpoint_as_written", cfg.endpoint().as_written())
        .fact("base_url", redact_url(&cfg.base_url()))
        .fact("insecure", cfg.insecure()),
    );
    let (c, o) = (Arc::clone(&cfg), options.clone());
    let Some(auth) = run.step("auth", blocking(move || auth_step(&c, &o))).await else {
        return run.finish();
    };
    run.push(auth.unwrap_or_else(|| did_not_run("auth")));

    let (c, o) = (Arc::clone(&cfg), options.clone());
    let remembered = run
        .quietly(blocking(move || remembered_flavour(&c, &o)))
        .await
        .flatten()
        .flatten();
    let client = client(&cfg, options);
    let Some((discovery, date)) = run
        .step(
            "discovery",
            discovery_steps(&cfg, client.as_ref(), remembered),
        )
        .await
    else {
        return run.finish();
    };
    // Asked again only of a server that answered (a configured header needs none).
    let header = if discovery.outcome == Outcome::Ok || cfg.authorization_header().is_some() {
        run.quietly(token_header(&cfg, options)).await.flatten()
    } else {
        None
    };
    run.push(with_token_header(discovery, header));
    run.push(clock_step(date));

    let (c, o) = (Arc::clone(&cfg), options.clone());
    let Some(store) = run
        .step("token store", blocking(move || store_step(&c, &o)))
        .await
    else {
        return run.finish();
    };
    let (store_step, store) = store.unwrap_or_else(|| (did_not_run("token store"), None));
    run.push(store_step);
    let c = Arc::clone(&cfg);
    let Some(login) = run
        .step(
            "login",
            blocking(move || {
                let google = store.as_deref().and_then(|s| GoogleProxy::of(&c, s));
                (login_step(&c, store.as_deref()), google)
            }),
        )
        .await
    else {
        return run.finish();
    };
    let (login, google) = login.unwrap_or_else(|| (did_not_run("login"), None));
    run.push(login);
    run.push(proxy_step(&cfg, google.as_ref()));
    run.finish()
}

/// The steps so far, and the limit they all run within.
struct Run {
    steps: Vec<Step>,
    /// `--timeout`, and when it ends (on tokio's clock, which its timers follow).
    limit: Option<(Duration, Instant)>,
}

impl Run {
    fn new(timeout: Option<Duration>) -> Self {
        let limit = timeout.and_then(|t| Some((t, Instant::now().checked_add(t)?)));
        Self {
            steps: Vec::new(),
            limit,
        }
    }

    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// `work`, the step `name`, ended at the limit: then the step is shown as not finished
    /// and `None` returned (the caller then [`finish`](Self::finish)es).
    async fn step<T>(&mut self, name: &'static str, work: impl Future<Output = T>) -> Option<T> {
        let Some((limit, end)) = self.limit else {
            return Some(work.await);
        };
        match tokio::time::timeout_at(end, work).await {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::debug!(step = name, "--timeout reached");
                let limit_text = humantime::format_duration(limit);
                let detail = format!("did not finish within --timeout ({limit_text})");
                self.push(
                    Step::new(name, Outcome::Fail, detail)
                        .fix(
                            "find what it waits for (a keyring that does not answer, a config or \
                         secret file that is a pipe nobody writes to, a slow network), or \
                         allow more time with --timeout",
                        )
                        .fact("timeout_seconds", limit.as_secs_f64()),
                );
                None
            }
        }
    }

    /// `work`, which is part of no step of its own, ended at the limit (`None`).
    async fn quietly<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        match self.limit {
            Some((_, end)) => tokio::time::timeout_at(end, work).await.ok(),
            None => Some(work.await),
        }
    }

    /// The report, the steps not run marked as such: because the limit was reached.
    fn finish(self) -> Report {
        self.finish_skipping("not run: --timeout was reached")
    }

    /// The report, the steps not run marked as such, for the reason `why`.
    fn finish_skipping(mut self, why: &str) -> Report {
        for name in STEPS {
            if !self.steps.iter().any(|s| s.name == name) {
                self.steps.push(Step::new(name, Outcome::Skip, why));
            }
        }
        Report {
            ok: self.steps.iter().all(|s| s.outcome != Outcome::Fail),
            steps: self.steps,
        }
    }
}

/// A step whose check could not run (its thread could not start, or it panicked).
fn did_not_run(name: &'static str) -> Step {
    Step::new(
        name,
        Outcome::Fail,
        "the check could not run (no thread for it)",
    )
}

/// Runs `work` on a thread of its own: what blocks (a file that is a pipe, a keyring that
/// does not answer) then blocks neither the runtime nor its timers, and a limit can end the
/// wait. A thread given up on is left behind; the process ends without waiting for it (a
/// runtime's blocking pool would wait for it when dropped). `None` when the thread could not
/// start or panicked.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let handle = std::thread::Builder::new()
        .name("flyte-auth-doctor".into())
        .spawn(work)
        .ok()?;
    while !handle.is_finished() {
        tokio::time::sleep(THREAD_POLL).await;
    }
    handle.join().ok()
}

/// Which file and which variables the configuration came from.
fn config_step(cfg: Option<&PlatformConfig>, error: Option<&Error>) -> Step {
    let mut variables: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("FLYTE") && name != guard::DEPTH_VAR)
        .collect();
    variables.sort();
    let file = cfg
        .and_then(|c| c.config_file())
        .map(|p| p.display().to_string());
    let detail = match (error, &file) {
        (Some(e), _) => e.to_string(),
        (None, Some(file)) => format!("read {file}"),
        (None, None) => "no config file (flags and environment only)".to_owned(),
    };
    let mut detail = if variables.is_empty() {
        detail
    } else {
        format!("{detail}; variables set: {}", variables.join(", "))
    };
    // Files the search found and did not use: another user could have written them.
    let skipped: Vec<String> = cfg
        .map(|c| {
            c.sources()
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    for file in &skipped {
        let _ = write!(detail, "; skipped {file}");
    }
    let step = match error {
        Some(_) => Step::new("config", Outcome::Fail, detail).fix(
            "fix the file or variable named above, or give the setting as a flag (--endpoint, \
             --auth-mode, --config FILE; see `flyte-auth --help`)",
        ),
        None if !skipped.is_empty() => Step::new("config", Outcome::Warn, detail).fix(
            "a config file found in this directory or above it was skipped: if it is yours, \
             make it and its directory yours and not writable by others (chown, chmod go-w), \
             or name it with --config FILE",
        ),
        None => Step::new("config", Outcome::Ok, detail),
    };
    step.fact("file", file)
        .fact("variables", variables)
        .fact("skipped", skipped)
}

/// Whether the auth mode's settings are complete (what `token` would refuse).
fn auth_step(cfg: &PlatformConfig, options: &Options) -> Step {
    let mode = cfg.auth_mode().to_string();
    let problem = guard::check(cfg, guard::depth()).err().or_else(|| {
        let store: std::sync::Arc<dyn TokenStore> =
            std::sync::Arc::new(flyte_auth::MemoryStore::new());
        options.authenticator(cfg, store).err()
    });
    match problem {
        Some(e) => Step::new("auth", Outcome::Fail, format!("{mode}: {e}")).fix(
            "complete the settings the message names (config file, FLYTE_* variables or flags)",
        ),
        None => Step::new("auth", Outcome::Ok, format!("{mode}, settings complete")),
    }
    .fact("auth_mode", mode)
}

/// The HTTP client the flows would use (the config's TLS, proxy and retry settings, with
/// `--timeout` as the deadline of each request and its retries).
fn client(cfg: &PlatformConfig, options: &Options) -> Option<OAuthClient> {
    OAuthClient::new(options.http_settings(cfg)).ok()
}

/// The flavour the last discovery for the endpoint answered in, as the discovery hints next to
/// the token store remember it (where the factory keeps them). Reads a file: run it off the
/// runtime ([`blocking`]).
fn remembered_flavour(cfg: &PlatformConfig, options: &Options) -> Option<DiscoveryFlavour> {
    let dir = options.store(cfg).ok()?.directory()?;
    DiscoveryHintFiles::in_dir(dir).recall(cfg.endpoint().key())
}

/// A discovery flavour as the remembered one is shown.
fn generation(flavour: DiscoveryFlavour) -> String {
    match flavour {
        DiscoveryFlavour::FlyteAdmin => "Flyte 1 (flyteadmin)".to_owned(),
        DiscoveryFlavour::Flyte2 => "Flyte 2".to_owned(),
        other => other.as_str().to_owned(),
    }
}

/// Whether the server's discovery answers, and in which flavour (with the one the last
/// discovery answered in, `remembered`, when the hints keep one); and the server's `Date`.
async fn discovery_steps(
    cfg: &PlatformConfig,
    client: Option<&OAuthClient>,
    remembered: Option<DiscoveryFlavour>,
) -> (Step, Option<SystemTime>) {
    let (step, date) = discovery_and_date(cfg, client).await;
    let Some(remembered) = remembered else {
        return (step, date);
    };
    let mut step = step.fact("remembered_flavour", remembered.as_str());
    let _ = write!(
        step.detail,
        "; remembered from the last discovery: {}",
        generation(remembered)
    );
    (step, date)
}

/// The header the token is sent in and where its name came from, as `status` shows it.
async fn token_header(cfg: &Arc<PlatformConfig>, options: &Options) -> Option<TokenHeader> {
    let (c, o) = (Arc::clone(cfg), options.clone());
    let auth = blocking(move || {
        let store: Arc<dyn TokenStore> = Arc::new(flyte_auth::MemoryStore::new());
        o.authenticator(&c, store).ok()
    })
    .await
    .flatten()?;
    let limit = options.timeout.unwrap_or(TOKEN_HEADER_LIMIT);
    Some(TokenHeader::of(cfg, &*auth, limit).await)
}

/// The discovery step, with the token's header and where its name came from.
fn with_token_header(step: Step, header: Option<TokenHeader>) -> Step {
    let Some(header) = header else {
        return step;
    };
    let mut step = step
        .fact("token_header", header.name.clone())
        .fact("token_header_source", header.source);
    let _ = write!(step.detail, "; token header {}", header.to_text());
    step
}

/// Whether the server's discovery answers, and in which flavour; and the server's `Date`.
async fn discovery_and_date(
    cfg: &PlatformConfig,
    client: Option<&OAuthClient>,
) -> (Step, Option<SystemTime>) {
    let Some(client) = client else {
        return (
            Step::new(
                "discovery",
                Outcome::Fail,
                "the HTTP client could not be built",
            )
            .fix("check caCertFilePath and httpProxyURL"),
            None,
        );
    };
    let needs = !matches!(cfg.auth_mode(), AuthMode::ExternalCommand) && cfg.token_url().is_none();
    // The server's clock, from any answer of the platform URL.
    let date = client
        .server_date(&cfg.base_url())
        .await
        .and_then(|date| httpdate::parse_http_date(&date).ok());
    let store = RemoteClientConfigStore::from_base_url(cfg.base_url(), client.clone());
    let step = match store.discover().await {
        Ok(found) => {
            let flavour = flavour(&found);
            let token = found
                .metadata
                .token_endpoint
                .as_deref()
                .map(redact_url)
                .unwrap_or_else(|| "none".to_owned());
            Step::new(
                "discovery",
                Outcome::Ok,
                format!("answers ({flavour}); token endpoint {token}"),
            )
            .fact("flavour", flavour)
            .fact("token_endpoint", token)
            .fact(
                "device_authorization_endpoint",
                found
                    .metadata
                    .device_authorization_endpoint
                    .as_deref()
                    .map(redact_url),
            )
            .fact("client_id", found.client.client_id.clone())
        }
        Err(e) => {
            let outcome = if needs { Outcome::Fail } else { Outcome::Warn };
            let fix = match &e {
                Error::InvalidResponse {
                    status: Some(404), ..
                } => "the server answers but publishes no OAuth discovery: auth may be off (a \
                      sandbox needs no login), or the endpoint is not the Flyte server"
                    .to_owned(),
                Error::Transport { .. } | Error::Timeout { .. } => format!(
                    "check that {} is reachable from here (--insecure for plain HTTP, \
                     --ca-cert, --http-proxy, --timeout)",
                    cfg.base_url()
                ),
                _ => "check the endpoint: it must be the Flyte server (admin.endpoint)".to_owned(),
            };
            let detail = if needs {
                e.to_string()
            } else {
                format!("{e} (not needed by this configuration)")
            };
            Step::new("discovery", outcome, detail).fix(fix)
        }
    };
    (step, date)
}

/// The discovery flavour the documents came in. Flyte 1 serves them over HTTP
/// (`/.well-known/oauth-authorization-server`, `/config/v1/flyte_client`).
fn flavour(found: &flyte_auth::oauth::Discovery) -> String {
    match found.flavour {
        flyte_auth::oauth::DiscoveryFlavour::FlyteAdmin => "v1 HTTP (flyteadmin)".to_owned(),
        flyte_auth::oauth::DiscoveryFlavour::Flyte2 => "Flyte 2 Connect".to_owned(),
        other => other.as_str().to_owned(),
    }
}

/// How far this machine's clock is from the server's.
fn clock_step(server: Option<SystemTime>) -> Step {
    let Some(server) = server else {
        return Step::new("clock", Outcome::Skip, "the server sent no Date header");
    };
    let now = SystemTime::now();
    let (offset, sign) = match now.duration_since(server) {
        Ok(ahead) => (ahead, 1),
        Err(e) => (e.duration(), -1),
    };
    let seconds = i64::try_from(offset.as_secs()).unwrap_or(i64::MAX) * sign;
    let detail = format!(
        "this machine is {}s {} the server (server time {})",
        offset.as_secs(),
        if sign > 0 { "ahead of" } else { "behind" },
        rfc3339(server)
    );
    let step = if offset > CLOCK_TOLERANCE {
        Step::new("clock", Outcome::Fail, detail)
            .fix("set the clock right (NTP): tokens look expired or not yet valid otherwise")
    } else {
        Step::new("clock", Outcome::Ok, detail)
    };
    step.fact("offset_seconds", seconds)
}

/// The token store: opens, reads, writes (a probe entry, removed again), not locked.
fn store_step(
    cfg: &PlatformConfig,
    options: &Options,
) -> (Step, Option<std::sync::Arc<dyn TokenStore>>) {
    let store = match options.store(cfg) {
        Ok(store) => store,
        Err(e) => {
            return (
                Step::new("token store", Outcome::Fail, e.to_string())
                    .fix("choose another store with --store file or --store memory"),
                None,
            );
        }
    };
    let name = store.name().to_owned();
    let endpoint = match Endpoint::parse(PROBE_ENDPOINT) {
        Ok(endpoint) => endpoint,
        Err(e) => return (Step::new("token store", Outcome::Fail, e.to_string()), None),
    };
    let probe = Credentials::new("flyte-auth-doctor-probe", endpoint.key());
    let check = store
        .retrieve(&endpoint)
        .and_then(|_| store.store(&endpoint, &probe))
        .and_then(|()| store.delete(&endpoint));
    let step = match check {
        Ok(()) => Step::new(
            "token store",
            Outcome::Ok,
            format!("{name}: readable and writable"),
        ),
        Err(e) => {
            let fix = match &e {
                StoreError::Denied { .. } => {
                    "unlock the keyring (log in to the desktop session, or `gnome-keyring-daemon \
                     --unlock`), or use --store file"
                }
                StoreError::Unavailable { .. } => {
                    "no keyring answers here (no D-Bus session?): use --store file"
                }
                _ => {
                    "check the permissions of the cache directory (--cache-dir), or use another --store"
                }
            };
            Step::new("token store", Outcome::Fail, format!("{name}: {e}")).fix(fix)
        }
    };
    (step.fact("store", name), Some(store))
}

/// Whether a login is stored for the endpoint, and until when it is good.
fn login_step(cfg: &PlatformConfig, store: Option<&dyn TokenStore>) -> Step {
    let Some(store) = store else {
        return Step::new("login", Outcome::Skip, "the token store is not usable");
    };
    match store.retrieve(cfg.endpoint()) {
        Ok(None) => Step::new(
            "login",
            Outcome::Ok,
            "none stored yet: the first `flyte-auth token` logs in",
        )
        .fact("stored", false),
        Ok(Some(c)) => {
            let now = SystemTime::now();
            let expires = c.expires_at();
            let expired = expires.is_some_and(|at| at <= now);
            let refresh = c.refresh_token.is_some();
            let when = expires
                .map(|at| format!("expires {}", rfc3339(at)))
                .unwrap_or_else(|| "no stated expiry".to_owned());
            let detail = format!(
                "stored; {when}{}; refresh token {}",
                if expired { " (expired)" } else { "" },
                if refresh { "stored" } else { "none" }
            );
            let step = if expired && !refresh {
                Step::new("login", Outcome::Warn, detail)
                    .fix("the next `flyte-auth token` logs in again")
            } else {
                Step::new("login", Outcome::Ok, detail)
            };
            step.fact("stored", true)
                .fact("expires_at", expires.map(rfc3339))
                .fact("refresh_token", refresh)
        }
        Err(e) => Step::new("login", Outcome::Fail, e.to_string()).fix("see the token store step"),
    }
}

/// The proxy settings the requests use, and the Google proxy's audience and whether a token
/// is stored for it (no credentials shown).
fn proxy_step(cfg: &PlatformConfig, google: Option<&GoogleProxy>) -> Step {
    let configured = cfg.http_proxy_url().map(redact_url);
    let variables: Vec<String> = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "NO_PROXY",
        "no_proxy",
    ]
    .into_iter()
    .filter_map(|name| {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
        let shown = match name {
            "NO_PROXY" | "no_proxy" => value,
            _ => redact_url(&value),
        };
        Some(format!("{name}={shown}"))
    })
    .collect();
    let proxy_command = !cfg.proxy_command().is_empty();
    let mut detail = match (&configured, variables.is_empty()) {
        (Some(url), _) => format!("admin.httpProxyURL {url}"),
        (None, false) => format!("from the environment: {}", variables.join(", ")),
        (None, true) => "none (direct connections)".to_owned(),
    };
    if proxy_command {
        detail.push_str("; proxyCommand set (proxy-authorization header)");
    }
    let audience = cfg.proxy_google_audience();
    let google_text = match (audience, google) {
        (_, Some(google)) => Some(google.to_text()),
        (audience, None) => audience.map(|a| format!("{a} (the token store was not read)")),
    };
    if let Some(text) = google_text {
        let _ = write!(
            detail,
            "; Google proxy (proxy-authorization header): audience {text}"
        );
    }
    Step::new("proxy", Outcome::Ok, detail)
        .fact("http_proxy_url", configured)
        .fact("environment", variables)
        .fact("proxy_command", proxy_command)
        .fact("google_proxy_audience", audience)
        .fact(
            "google_proxy_token_stored",
            google.map(|google| google.token_stored),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_escapes_control_characters_a_server_sent() {
        let report = Report {
            ok: false,
            steps: vec![
                Step::new(
                    "discovery",
                    Outcome::Ok,
                    "answers; token endpoint https://idp.example.org/token\x1b[2K\rhttps://evil",
                )
                .fix("see \x1b]8;;https://evil.example\x07here\x1b]8;;\x07"),
            ],
        };
        let text = report.to_text();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("token\\u{1b}[2K\\u{d}https://evil"), "{text}");
    }
}
