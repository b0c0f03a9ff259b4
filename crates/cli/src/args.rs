//! The command line: subcommands, and the options every subcommand takes.
//!
//! Each option is declared once, as one row of [`OPTIONS`]: its name, the value it takes, its
//! help and what it sets: a setting of the [`PlatformConfigBuilder`] (the flags are the
//! explicit layer over the config file and the `FLYTE_*` environment) or a field of
//! [`Options`]. The parser and `--help` both read that table; `lexopt` splits the arguments
//! (`--name value`, `--name=value`, `-vv`, `--`).
//!
//! A table rather than clap: `flyte-auth token` is what other tools run before each of their
//! calls, and building clap's command tree (the options copied into every subcommand) was
//! half of the instructions of a token served from the cache, and about 100 KB of heap.

use std::{ffi::OsString, fmt, path::PathBuf, time::Duration};

use flyte_auth::{
    AuthMode, PlatformConfig, SecretString,
    config::{
        PlatformConfigBuilder,
        env::{parse_bool_word, split_list},
        parse_duration,
    },
};

use flyte_auth_store::ParseStoreKindError;

use crate::options::Options;

/// The program's name, in help and messages.
pub(crate) const NAME: &str = "flyte-auth";

/// The variable `--store` falls back to.
const STORE_ENV: &str = "FLYTE_AUTH_STORE";
/// The variable `--all-layouts` falls back to.
const ALL_LAYOUTS_ENV: &str = "FLYTE_AUTH_ALL_LAYOUTS";

/// What `flyte-auth` does, shown first in `--help`.
const ABOUT: &str = "Print a Flyte access token, logging in the way the configuration says \
                     (browser login with PKCE, device code, client credentials or an external \
                     command), and keep the login in the OS keyring or a file so that the next \
                     call is served from the cache. Standard output carries only what was asked \
                     for; prompts, progress and logs go to standard error.";

/// Shown after the options in `--help`.
const AFTER_HELP: &str = "\
Settings come from the Flyte config file (--config, else the first found of the search above;
section `admin`), overridden by the FLYTE_* environment variables (FLYTE_PLATFORM_URL,
FLYTE_CREDENTIALS_AUTH_MODE, ...) and FLYTE_API_KEY, overridden by the flags above.

Exit status:
  0  success
  1  anything else (the token store failed, the server answered something unexpected)
  2  configuration or usage error (no endpoint, unreadable config file, unknown option)
  3  authentication refused or failed (wrong client secret, login denied or expired,
     the token command failed)
  4  network error or time-out (server unreachable, TLS or proxy trouble, 5xx answers)

Examples:
  curl -H \"Authorization: Bearer $(flyte-auth token)\" https://flyte.example.org/api/v1/projects
  flyte-auth --endpoint dns:///flyte.example.org:443 --auth-mode DeviceFlow login
  flyte-auth status --json";

/// A parsed command line: what to do, with which options.
#[derive(Debug)]
pub(crate) struct Cli {
    /// What to do.
    pub(crate) command: Command,
    /// The config to load: the flags that name a setting are set on it, over the config file
    /// (`--config` when given, which must then exist) and the environment.
    pub(crate) config: PlatformConfigBuilder,
    /// The other options.
    pub(crate) options: Options,
    /// `-v` given this many times: 1 info, 2 debug, 3 trace (0: warnings, or `RUST_LOG`).
    pub(crate) verbose: u8,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Print a valid access token on standard output, and nothing else.
    Token,
    /// Log in again.
    Login,
    /// Remove the stored credentials.
    Logout,
    /// Show the login state; `--json` for one JSON object.
    Status {
        /// Print one JSON object.
        json: bool,
    },
    /// Diagnose; `--json` for one JSON object.
    Doctor {
        /// Print one JSON object.
        json: bool,
    },
}

/// What a command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Run a subcommand.
    Run(Box<Cli>),
    /// Print this text on standard output and succeed (`--help`, `--version`, `help`).
    Print(String),
}

/// A command line that cannot be run (exit status 2); the message names the argument.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<lexopt::Error> for UsageError {
    fn from(error: lexopt::Error) -> Self {
        match error {
            // Without the value: it may be a secret given to the wrong flag.
            lexopt::Error::UnexpectedValue { option, .. } => {
                Self(format!("{option} takes no value"))
            }
            other => Self(other.to_string()),
        }
    }
}

/// The help sections the options are listed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heading {
    Connection,
    Authentication,
    TokenStore,
}

impl Heading {
    const ALL: [Self; 3] = [Self::Connection, Self::Authentication, Self::TokenStore];

    fn title(self) -> &'static str {
        match self {
            Self::Connection => "Connection",
            Self::Authentication => "Authentication",
            Self::TokenStore => "Token store",
        }
    }
}

/// What an option takes after its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// Nothing: `--qr`.
    Nothing,
    /// A value, as `--name VALUE` or `--name=VALUE`; the name shown in help.
    Value(&'static str),
    /// A boolean only after an equals sign: `--insecure` is true, `--insecure=false` false.
    OptionalBool,
}

/// Sets an option's setting or field from its value (`None` for [`Takes::Nothing`], and for
/// [`Takes::OptionalBool`] without `=`); the error says what is wrong with the value.
type Setter = fn(&mut PlatformConfigBuilder, &mut Options, Option<OsString>) -> Result<(), String>;

/// One option every subcommand takes.
struct Opt {
    /// The name after `--`.
    long: &'static str,
    takes: Takes,
    heading: Heading,
    help: &'static str,
    set: Setter,
}

/// The options every subcommand takes, in the order `--help` lists them.
#[rustfmt::skip]
const OPTIONS: &[Opt] = &[
    Opt { long: "config", takes: Takes::Value("FILE"), heading: Heading::Connection,
        help: "The Flyte config file to read [default: the first that exists of ./config.yaml, \
               ./.flyte/config.yaml, <git root>/.flyte/config.yaml, $UCTL_CONFIG, \
               $FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.flyte/config.yaml, then flytekit's \
               ./flytekit.config and ~/.flyte/config].",
        set: |c, _, v| set(c, PlatformConfigBuilder::config_file, path(v)) },
    Opt { long: "endpoint", takes: Takes::Value("HOST:PORT"), heading: Heading::Connection,
        help: "The Flyte server: `host:port` or `dns:///host:port` (admin.endpoint, \
               FLYTE_PLATFORM_URL).",
        set: |c, _, v| set(c, PlatformConfigBuilder::endpoint, text(v)?) },
    Opt { long: "insecure", takes: Takes::OptionalBool, heading: Heading::Connection,
        help: "Plain HTTP to the server instead of TLS (admin.insecure); `--insecure=false` \
               overrides a config file that says true.",
        set: |c, _, v| set(c, PlatformConfigBuilder::insecure, optional_bool(v)?) },
    Opt { long: "ca-cert", takes: Takes::Value("FILE"), heading: Heading::Connection,
        help: "Trust this PEM bundle in addition to the system's roots (admin.caCertFilePath).",
        set: |c, _, v| set(c, PlatformConfigBuilder::ca_cert_file_path, path(v)) },
    Opt { long: "insecure-skip-verify", takes: Takes::OptionalBool, heading: Heading::Connection,
        help: "Do not verify the server's TLS certificate (admin.insecureSkipVerify). Unsafe.",
        set: |c, _, v| set(c, PlatformConfigBuilder::insecure_skip_verify, optional_bool(v)?) },
    Opt { long: "http-proxy", takes: Takes::Value("URL"), heading: Heading::Connection,
        help: "Send the OAuth requests through this proxy (admin.httpProxyURL).",
        set: |c, _, v| set(c, PlatformConfigBuilder::http_proxy_url, text(v)?) },
    Opt { long: "timeout", takes: Takes::Value("SECONDS"), heading: Heading::Connection,
        help: "Give up after this long: the whole command, every request, retry and wait \
               included, ends within it (exit status 4): seconds, or `30s`, `2m`. A browser or \
               device login adds the time it gives you to log in (admin.pkceConfig.timeout, \
               2m; admin.deviceFlowConfig.timeout, 10m), and ExternalCommand the time of the \
               token command (--command-timeout).",
        set: |_, o, v| { o.timeout = Some(timeout(v)?); Ok(()) } },
    Opt { long: "per-retry-timeout", takes: Takes::Value("SECONDS"), heading: Heading::Connection,
        help: "Give each attempt of a request that is retried (discovery, client credentials, \
               refresh) this long before trying again (admin.perRetryTimeout; default 15s): \
               seconds, or `30s`, `2m`.",
        set: |c, _, v| set(c, PlatformConfigBuilder::per_retry_timeout, timeout(v)?) },
    Opt { long: "auth-mode", takes: Takes::Value("MODE"), heading: Heading::Authentication,
        help: "How to log in (admin.authType, FLYTE_CREDENTIALS_AUTH_MODE): Pkce (browser), \
               DeviceFlow, ClientSecret, ExternalCommand or GoogleIdToken (a Google ID token \
               for --google-audience is the token); flytekit's names (standard, basic, \
               client_credentials, external_process) work too.",
        set: |c, _, v| set(c, PlatformConfigBuilder::auth_mode, parsed::<AuthMode>(v)?) },
    Opt { long: "client-id", takes: Takes::Value("ID"), heading: Heading::Authentication,
        help: "The OAuth client id (admin.clientId, FLYTE_CREDENTIALS_CLIENT_ID).",
        set: |c, _, v| set(c, PlatformConfigBuilder::client_id, text(v)?) },
    Opt { long: "client-secret-env", takes: Takes::Value("VAR"), heading: Heading::Authentication,
        help: "Read the client secret from this environment variable \
               (admin.clientSecretEnvVar).",
        set: |c, _, v| set(c, PlatformConfigBuilder::client_secret_env_var, text(v)?) },
    Opt { long: "client-secret-file", takes: Takes::Value("FILE"), heading: Heading::Authentication,
        help: "Read the client secret from this file (admin.clientSecretLocation).",
        set: |c, _, v| set(c, PlatformConfigBuilder::client_secret_location, path(v)) },
    Opt { long: "scopes", takes: Takes::Value("SCOPES"), heading: Heading::Authentication,
        help: "Scopes to ask for, comma-separated (admin.scopes, FLYTE_CREDENTIALS_SCOPES).",
        set: |c, _, v| set(c, PlatformConfigBuilder::scopes, split_list(&text(v)?)) },
    Opt { long: "audience", takes: Takes::Value("AUDIENCE"), heading: Heading::Authentication,
        help: "The `audience` parameter some identity providers need (admin.audience).",
        set: |c, _, v| set(c, PlatformConfigBuilder::audience, text(v)?) },
    Opt { long: "google-audience", takes: Takes::Value("AUDIENCE"),
        heading: Heading::Authentication,
        help: "GoogleIdToken: the audience of the Google ID token, the OAuth client id of the \
               identity-aware proxy (admin.googleAudience, FLYTE_ADMIN_GOOGLEAUDIENCE). The \
               token comes from GOOGLE_APPLICATION_CREDENTIALS, the metadata server or \
               gcloud's application-default login.",
        set: |c, _, v| set(c, PlatformConfigBuilder::google_audience, text(v)?) },
    Opt { long: "proxy-google-audience", takes: Takes::Value("AUDIENCE"),
        heading: Heading::Authentication,
        help: "Send a Google ID token for this audience (the OAuth client id of Google \
               Cloud's identity-aware proxy in front of Flyte) in proxy-authorization on every \
               request to the Flyte server, kept in the token store until near its expiry \
               (admin.proxyGoogleAudience, FLYTE_ADMIN_PROXYGOOGLEAUDIENCE); instead of a \
               proxyCommand.",
        set: |c, _, v| set(c, PlatformConfigBuilder::proxy_google_audience, text(v)?) },
    Opt { long: "api-key", takes: Takes::Value("KEY"), heading: Heading::Authentication,
        help: "A Flyte 2 API key (what FLYTE_API_KEY holds, which is safer: a flag shows in the \
               process list). It selects client credentials with its client id and secret and \
               names the endpoint; an --endpoint on another host is refused (the key's secret \
               goes only to the host it names).",
        set: |c, _, v| set(c, PlatformConfigBuilder::api_key, SecretString::from(text(v)?)) },
    Opt { long: "no-browser", takes: Takes::Nothing, heading: Heading::Authentication,
        help: "Browser login: only print the URL, do not open a browser.",
        set: |_, o, _| { o.no_browser = true; Ok(()) } },
    Opt { long: "qr", takes: Takes::Nothing, heading: Heading::Authentication,
        help: "Device login: also draw the login URL as a QR code, for a phone to scan.",
        set: |_, o, _| { o.qr = true; Ok(()) } },
    Opt { long: "command-timeout", takes: Takes::Value("SECONDS"), heading: Heading::Authentication,
        help: "ExternalCommand: give the token command this long (admin.commandTimeout; \
               default 30s): seconds, or `30s`, `2m`.",
        set: |c, _, v| set(c, PlatformConfigBuilder::command_timeout, timeout(v)?) },
    Opt { long: "store", takes: Takes::Value("STORE"), heading: Heading::TokenStore,
        help: "Where tokens are kept: `auto` (the OS keyring when it answers, else a file), \
               `keyring`, `file` (0600 files in the cache directory) or `memory` (this process \
               only) [default: $FLYTE_AUTH_STORE, else auto].",
        set: |_, o, v| { o.store = parsed(v)?; Ok(()) } },
    Opt { long: "all-layouts", takes: Takes::Nothing, heading: Heading::TokenStore,
        help: "Keyring: write the login to every Flyte tool's entries (pyflyte, the Flyte 2 \
               SDK, flytectl), also where none held one, so one `flyte-auth login` logs them all \
               in (also $FLYTE_AUTH_ALL_LAYOUTS=true, or `admin.writeAllLayouts: true` in the \
               config file).",
        set: |_, o, _| { o.all_layouts = true; Ok(()) } },
    Opt { long: "cache-dir", takes: Takes::Value("DIR"), heading: Heading::TokenStore,
        help: "The directory of the file store and of lock files [default: \
               $FLYTE_AUTH_CACHE_DIR, else ~/.cache/flyte-auth].",
        set: |_, o, v| { o.cache_dir = Some(path(v)); Ok(()) } },
];

/// One subcommand.
struct Sub {
    name: &'static str,
    /// The line in the command list.
    about: &'static str,
    /// The paragraph of its own `--help`.
    long_about: &'static str,
    /// Whether it takes `--json`.
    json: bool,
}

/// The subcommands, in the order `--help` lists them.
const COMMANDS: &[Sub] = &[
    Sub {
        name: "token",
        about: "Print a valid access token on standard output, and nothing else",
        long_about: "Print a valid access token on standard output, and nothing else: the \
                     stored token while it is valid; else a refreshed one; else one from a new \
                     login. For `curl -H \"Authorization: Bearer $(flyte-auth token)\"`, or as \
                     the `command` of a tool that runs a program to get a token.",
        json: false,
    },
    Sub {
        name: "login",
        about: "Log in again: remove the stored credentials for the endpoint, then obtain new \
                ones",
        long_about: "Log in again: remove the stored credentials for the endpoint, then obtain \
                     new ones.",
        json: false,
    },
    Sub {
        name: "logout",
        about: "Remove the stored credentials for the endpoint",
        long_about: "Remove the stored credentials for the endpoint.",
        json: false,
    },
    Sub {
        name: "status",
        about: "Show the endpoint, auth mode, token store, expiry and scopes",
        long_about: "Show the endpoint, auth mode, token store, expiry and scopes (never a token \
                     or a secret). Reads the store only: never logs in.",
        json: true,
    },
    Sub {
        name: "doctor",
        about: "Find out why authentication does not work, step by step",
        long_about: "Find out why authentication does not work: check the config, the endpoint, \
                     the server's discovery, the token store, the stored login, the clock and \
                     the proxy, step by step, with the fix for each failure. Never logs in; \
                     shows no token or secret.",
        json: true,
    },
];

/// Reads a command line (`args`, the program's name first). `env` looks up the variables that
/// `--store` and `--all-layouts` fall back to.
pub(crate) fn parse<I>(
    args: I,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Parsed, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_iter(args);
    let mut config = PlatformConfig::builder();
    let mut options = Options::default();
    let mut given = [false; OPTIONS.len()];
    let mut sub: Option<&'static Sub> = None;
    let mut json = false;
    let mut verbose = 0u8;
    let mut help_for: Option<Option<&'static Sub>> = None;
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Short('v') | lexopt::Arg::Long("verbose") => {
                verbose = verbose.saturating_add(1);
            }
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => {
                return Ok(Parsed::Print(help(sub)));
            }
            lexopt::Arg::Short('V') | lexopt::Arg::Long("version") => {
                return Ok(Parsed::Print(format!(
                    "{NAME} {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            lexopt::Arg::Long("json") => json = true,
            lexopt::Arg::Long(name) => {
                let Some(index) = OPTIONS.iter().position(|o| o.long == name) else {
                    return Err(unknown_option(name));
                };
                let opt = &OPTIONS[index];
                if std::mem::replace(&mut given[index], true) {
                    return Err(UsageError(format!(
                        "--{} is given more than once",
                        opt.long
                    )));
                }
                let value = match opt.takes {
                    Takes::Nothing => None,
                    Takes::Value(_) => Some(parser.value()?),
                    Takes::OptionalBool => parser.optional_value(),
                };
                (opt.set)(&mut config, &mut options, value)
                    .map_err(|message| UsageError(format!("--{}: {message}", opt.long)))?;
            }
            lexopt::Arg::Short(short) => return Err(unknown_option(&format!("-{short}"))),
            lexopt::Arg::Value(value) => {
                let word = value.to_string_lossy();
                match (&help_for, sub) {
                    (None, None) if word == "help" => help_for = Some(None),
                    (None, None) => sub = Some(subcommand(&word)?),
                    (Some(None), _) => help_for = Some(Some(subcommand(&word)?)),
                    _ => {
                        return Err(UsageError(format!("unexpected argument `{word}`")));
                    }
                }
            }
        }
    }
    if let Some(topic) = help_for {
        return Ok(Parsed::Print(help(topic)));
    }
    let Some(sub) = sub else {
        return Err(UsageError(
            "no subcommand: say token, login, logout, status or doctor".to_owned(),
        ));
    };
    if json && !sub.json {
        return Err(UsageError(format!(
            "--json is an option of `status` and `doctor`, not of `{}`",
            sub.name
        )));
    }
    fall_back_to_env(&mut options, &given, env)?;
    let command = match sub.name {
        "token" => Command::Token,
        "login" => Command::Login,
        "logout" => Command::Logout,
        "status" => Command::Status { json },
        _ => Command::Doctor { json },
    };
    Ok(Parsed::Run(Box::new(Cli {
        command,
        config,
        options,
        verbose,
    })))
}

/// `--store` and `--all-layouts`, when not given, from their variables (empty counts as unset).
fn fall_back_to_env(
    options: &mut Options,
    given: &[bool],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(), UsageError> {
    let var = |name: &str| {
        env(name)
            .map(|v| v.to_string_lossy().trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let given = |long: &str| {
        OPTIONS
            .iter()
            .zip(given)
            .any(|(opt, given)| opt.long == long && *given)
    };
    if !given("store")
        && let Some(value) = var(STORE_ENV)
    {
        options.store = value
            .parse()
            .map_err(|e: ParseStoreKindError| UsageError(format!("{STORE_ENV}: {e}")))?;
    }
    if !given("all-layouts")
        && let Some(value) = var(ALL_LAYOUTS_ENV)
    {
        options.all_layouts =
            bool_word(&value).map_err(|e| UsageError(format!("{ALL_LAYOUTS_ENV}: {e}")))?;
    }
    Ok(())
}

fn subcommand(word: &str) -> Result<&'static Sub, UsageError> {
    COMMANDS.iter().find(|s| s.name == word).ok_or_else(|| {
        let mut message = format!("`{word}` is not a subcommand");
        match closest(word, COMMANDS.iter().map(|s| s.name)) {
            Some(name) => message.push_str(&format!(" (did you mean `{name}`?)")),
            None => message.push_str("; say token, login, logout, status or doctor"),
        }
        UsageError(message)
    })
}

fn unknown_option(name: &str) -> UsageError {
    let shown = if name.starts_with('-') {
        name.to_owned()
    } else {
        format!("--{name}")
    };
    let mut message = format!("unknown option `{shown}`");
    let names = OPTIONS
        .iter()
        .map(|o| o.long)
        .chain(["verbose", "help", "version", "json"]);
    if let Some(long) = closest(name.trim_start_matches('-'), names) {
        message.push_str(&format!(" (did you mean `--{long}`?)"));
    }
    UsageError(message)
}

/// The candidate a mistyped `word` most likely meant: the closest within two edits.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Sets a setting on the config builder: `method` is the builder's method of that name.
fn set<T>(
    config: &mut PlatformConfigBuilder,
    method: fn(PlatformConfigBuilder, T) -> PlatformConfigBuilder,
    value: T,
) -> Result<(), String> {
    *config = method(std::mem::replace(config, PlatformConfig::builder()), value);
    Ok(())
}

/// The value of an option that takes one (`lexopt` always supplies it).
fn value(v: Option<OsString>) -> OsString {
    v.unwrap_or_default()
}

fn path(v: Option<OsString>) -> PathBuf {
    PathBuf::from(value(v))
}

/// The value as text. The error does not repeat it: it may be a secret (`--api-key`).
fn text(v: Option<OsString>) -> Result<String, String> {
    value(v)
        .into_string()
        .map_err(|_| "the value is not valid UTF-8".to_owned())
}

/// The value parsed; the error is the parser's.
fn parsed<T: std::str::FromStr<Err: fmt::Display>>(v: Option<OsString>) -> Result<T, String> {
    text(v)?.parse().map_err(|e: T::Err| e.to_string())
}

/// `--insecure` is true; `--insecure=BOOL` says which.
fn optional_bool(v: Option<OsString>) -> Result<bool, String> {
    v.map_or(Ok(true), |v| bool_word(&v.to_string_lossy()))
}

fn bool_word(v: &str) -> Result<bool, String> {
    parse_bool_word(v).ok_or_else(|| format!("`{v}` is not a boolean; say true or false"))
}

fn timeout(v: Option<OsString>) -> Result<Duration, String> {
    let timeout = parse_duration(&text(v)?).map_err(|e| e.to_string())?;
    if timeout.is_zero() {
        return Err("the time-out must be longer than zero".to_owned());
    }
    Ok(timeout)
}

/// The width `--help` wraps its text to.
const WIDTH: usize = 100;

/// `--help` of `flyte-auth` (no subcommand) or of one subcommand.
fn help(sub: Option<&Sub>) -> String {
    let mut out = String::new();
    match sub {
        None => {
            wrap(&mut out, ABOUT, 0);
            out.push_str(&format!(
                "\nUsage: {NAME} [OPTIONS] <COMMAND>\n\nCommands:\n"
            ));
            let width = COMMANDS.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for sub in COMMANDS {
                out.push_str(&format!("  {:width$}  {}\n", sub.name, sub.about));
            }
            out.push_str(&format!(
                "  {:width$}  Print this help, or a subcommand's\n",
                "help"
            ));
        }
        Some(sub) => {
            wrap(&mut out, sub.long_about, 0);
            out.push_str(&format!("\nUsage: {NAME} {} [OPTIONS]\n", sub.name));
        }
    }
    out.push_str("\nOptions:\n");
    if sub.is_some_and(|s| s.json) {
        option(
            &mut out,
            "      --json",
            "Print one JSON object, for scripts and bug reports.",
        );
    }
    option(
        &mut out,
        "  -v, --verbose...",
        "More log output on standard error: -v info, -vv debug, -vvv trace (default: warnings; \
         without -v, RUST_LOG is honoured).",
    );
    option(&mut out, "  -h, --help", "Print help.");
    option(&mut out, "  -V, --version", "Print the version.");
    for heading in Heading::ALL {
        out.push_str(&format!("\n{}:\n", heading.title()));
        for opt in OPTIONS.iter().filter(|o| o.heading == heading) {
            let name = match opt.takes {
                Takes::Nothing => format!("      --{}", opt.long),
                Takes::Value(value) => format!("      --{} <{value}>", opt.long),
                Takes::OptionalBool => format!("      --{}[=<BOOL>]", opt.long),
            };
            option(&mut out, &name, opt.help);
        }
    }
    out.push('\n');
    out.push_str(AFTER_HELP);
    out.push('\n');
    out
}

/// One option in `--help`: its name line, then its help indented below.
fn option(out: &mut String, name: &str, help: &str) {
    out.push_str(name);
    out.push('\n');
    wrap(out, help, 10);
}

/// Appends `text` as lines of at most [`WIDTH`] characters, each indented by `indent`.
fn wrap(out: &mut String, text: &str, indent: usize) {
    let mut column = 0;
    for word in text.split_whitespace() {
        if column > 0 && column + 1 + word.len() > WIDTH {
            out.push('\n');
            column = 0;
        }
        if column == 0 {
            out.extend(std::iter::repeat_n(' ', indent));
            column = indent;
        } else {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
    out.push('\n');
}

/// The command line `flyte-auth <args>` parses to, for tests.
#[cfg(test)]
pub(crate) fn cli(args: &[&str]) -> Cli {
    match parse(std::iter::once(NAME).chain(args.iter().copied()), &|_| None) {
        Ok(Parsed::Run(cli)) => *cli,
        other => panic!("{args:?} did not parse to a command: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::{BTreeSet, HashMap},
        path::Path,
    };

    use flyte_auth_store::StoreKind;

    use super::*;

    fn parse_with(args: &[&str], vars: &[(&str, &str)]) -> Result<Parsed, UsageError> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        parse(std::iter::once(NAME).chain(args.iter().copied()), &env)
    }

    fn error(args: &[&str]) -> String {
        match parse_with(args, &[]) {
            Err(e) => e.to_string(),
            Ok(parsed) => panic!("{args:?} parsed: {parsed:?}"),
        }
    }

    fn printed(args: &[&str]) -> String {
        match parse_with(args, &[]) {
            Ok(Parsed::Print(text)) => text,
            other => panic!("{args:?} printed nothing: {other:?}"),
        }
    }

    /// The config builder of `flyte-auth <args> status`, reading no file and no environment
    /// but `vars`.
    fn config(args: &[&str], vars: &[(&str, &str)]) -> PlatformConfigBuilder {
        let args: Vec<&str> = args.iter().copied().chain(["status"]).collect();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        cli(&args).config.env(move |name| vars.get(name).cloned())
    }

    /// The config of `flyte-auth <args> status`, from the flags alone.
    fn built(args: &[&str]) -> PlatformConfig {
        config(args, &[]).no_config_file().build().unwrap()
    }

    /// The error building the config of `flyte-auth <args> status` fails with.
    fn built_err(args: &[&str]) -> String {
        match config(args, &[]).no_config_file().build() {
            Ok(cfg) => panic!("{args:?} built {cfg:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn every_option_in_the_table_is_read_and_sets_its_own_setting_or_field() {
        let mut names: Vec<&str> = OPTIONS.iter().map(|o| o.long).collect();
        names.extend(["verbose", "help", "version", "json"]);
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "an option name is declared twice"
        );
        // What a command line sets: the config it builds (or its error), and the options.
        let effect = |args: &[&str]| {
            let args: Vec<&str> = args.iter().copied().chain(["status"]).collect();
            let cli = cli(&args);
            let cfg = match cli.config.no_env().build() {
                Ok(cfg) => format!("{cfg:?}"),
                Err(e) => e.to_string(),
            };
            format!("{cfg} {:?}", cli.options)
        };
        let defaults = effect(&["--endpoint", "h:1"]);
        let mut seen: Vec<(&str, String)> = Vec::new();
        for opt in OPTIONS {
            let sample = match opt.long {
                "auth-mode" => "DeviceFlow",
                "store" => "memory",
                "timeout" | "command-timeout" | "per-retry-timeout" => "5s",
                _ => "x",
            };
            let flag = format!("--{}", opt.long);
            let mut args = match opt.long {
                "endpoint" => vec![],
                _ => vec!["--endpoint", "h:1"],
            };
            args.push(&flag);
            if let Takes::Value(_) = opt.takes {
                args.push(sample);
            }
            let parsed = effect(&args);
            assert_ne!(parsed, defaults, "{flag} changed nothing");
            // Its own setting or field: no two rows set the same one.
            if let Some((other, _)) = seen.iter().find(|(_, o)| *o == parsed) {
                panic!("{flag} sets what --{other} sets");
            }
            // The `=` spelling means the same.
            if let Takes::Value(_) = opt.takes {
                let joined = format!("{flag}={sample}");
                args.truncate(args.len() - 2);
                args.push(&joined);
                assert_eq!(effect(&args), parsed, "{joined}");
            }
            seen.push((opt.long, parsed));
        }
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let (_dir, path) = config_file(
            "admin:\n  endpoint: dns:///file.example.org:443\n  authType: Pkce\n  \
             clientId: from-file\n  scopes: [file]\n  insecure: true\n",
        );
        let path = path.to_str().unwrap().to_owned();
        let environment = [
            ("FLYTE_PLATFORM_URL", "env.example.org:443"),
            ("FLYTE_CREDENTIALS_AUTH_MODE", "DeviceFlow"),
            ("FLYTE_CREDENTIALS_CLIENT_ID", "from-env"),
        ];

        let cfg = config(&["--config", &path], &[]).build().unwrap();
        assert_eq!(cfg.endpoint().key(), "file.example.org:443");
        assert_eq!(cfg.auth_mode(), AuthMode::Pkce);
        assert_eq!(cfg.client_id(), Some("from-file"));
        assert!(cfg.insecure());

        let cfg = config(&["--config", &path], &environment).build().unwrap();
        assert_eq!(cfg.endpoint().key(), "env.example.org:443");
        assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
        assert_eq!(cfg.client_id(), Some("from-env"));
        assert_eq!(cfg.scopes(), ["file"]);

        let flags = [
            "--config",
            &path,
            "--endpoint",
            "dns:///flag.example.org:8443",
            "--auth-mode",
            "ExternalCommand",
            "--client-id",
            "from-flag",
            "--scopes",
            "all, offline",
            "--insecure=false",
            "--audience",
            "https://aud",
        ];
        let cfg = config(&flags, &environment[..2]).build().unwrap();
        assert_eq!(cfg.endpoint().key(), "flag.example.org:8443");
        assert_eq!(cfg.auth_mode(), AuthMode::ExternalCommand);
        assert_eq!(cfg.client_id(), Some("from-flag"));
        assert_eq!(cfg.scopes(), ["all", "offline"]);
        assert!(!cfg.insecure());
        assert_eq!(cfg.audience(), Some("https://aud"));
        assert_eq!(cfg.config_file(), Some(Path::new(&path)));
    }

    #[test]
    fn the_google_flags_set_the_audiences_over_the_environment() {
        let environment = [
            ("FLYTE_ADMIN_PROXYGOOGLEAUDIENCE", "env-proxy"),
            ("FLYTE_ADMIN_GOOGLEAUDIENCE", "env-token"),
        ];
        let flags = [
            "--endpoint",
            "h:1",
            "--auth-mode",
            "GoogleIdToken",
            "--google-audience",
            "123-token.apps.googleusercontent.com",
            "--proxy-google-audience",
            "123-iap.apps.googleusercontent.com",
        ];
        let cfg = config(&flags, &environment)
            .no_config_file()
            .build()
            .unwrap();
        assert_eq!(cfg.auth_mode(), AuthMode::GoogleIdToken);
        assert_eq!(
            cfg.google_audience(),
            Some("123-token.apps.googleusercontent.com")
        );
        assert_eq!(
            cfg.proxy_google_audience(),
            Some("123-iap.apps.googleusercontent.com")
        );
        cfg.validate().unwrap();
        // With a proxy command from the environment: both name where they were set.
        let err = config(
            &["--endpoint", "h:1", "--proxy-google-audience", "aud"],
            &[("FLYTE_ADMIN_PROXYCOMMAND", "iap-token")],
        )
        .no_config_file()
        .build()
        .unwrap_err()
        .to_string();
        assert!(err.contains("FLYTE_ADMIN_PROXYCOMMAND"), "{err}");
        assert!(err.contains("proxy_google_audience"), "{err}");
    }

    #[test]
    fn a_client_secret_from_an_environment_variable_or_a_file_is_read_but_never_shown() {
        let flags = [
            "--endpoint",
            "h:1",
            "--client-id",
            "svc",
            "--client-secret-env",
            "MY_SECRET",
        ];
        let cfg = config(&flags, &[("MY_SECRET", "hunter2-secret")])
            .no_config_file()
            .build()
            .unwrap();
        // A secret found through the variable selects client credentials, as in flytekit.
        assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
        assert_eq!(
            cfg.client_secret().unwrap().expose_secret(),
            "hunter2-secret"
        );
        assert!(!format!("{cfg:?}").contains("hunter2"));
        cfg.validate().unwrap();

        let (_dir, path) = config_file("file-secret\n");
        let cfg = built(&[
            "--endpoint",
            "h:1",
            "--client-id",
            "svc",
            "--client-secret-file",
            path.to_str().unwrap(),
        ]);
        assert_eq!(cfg.client_secret().unwrap().expose_secret(), "file-secret");
    }

    #[test]
    fn transport_flags_reach_the_config() {
        let cfg = built(&[
            "--endpoint",
            "h:1",
            "--ca-cert",
            "/etc/ca.pem",
            "--insecure-skip-verify",
            "--http-proxy",
            "http://proxy:3128",
        ]);
        assert_eq!(cfg.ca_cert_file_path(), Some(Path::new("/etc/ca.pem")));
        assert!(cfg.insecure_skip_verify());
        assert_eq!(cfg.http_proxy_url(), Some("http://proxy:3128"));
        // Unset: the browser login keeps its own default.
        assert_eq!(cfg.pkce_timeout(), None);
    }

    #[test]
    fn no_endpoint_anywhere_is_a_configuration_error() {
        let err = config(&[], &[]).no_config_file().build().unwrap_err();
        assert!(matches!(err, flyte_auth::Error::Config { .. }), "{err:?}");
    }

    #[test]
    fn options_go_before_or_after_the_subcommand() {
        let before = cli(&["--endpoint", "h:1", "--insecure", "token"]);
        let after = cli(&["token", "--endpoint", "h:1", "--insecure"]);
        for cli in [before, after] {
            assert_eq!(cli.command, Command::Token);
            let cfg = cli.config.no_config_file().no_env().build().unwrap();
            assert_eq!(cfg.endpoint().as_written(), "h:1");
            assert!(cfg.insecure());
        }
    }

    #[test]
    fn boolean_options_take_an_optional_value_after_an_equals_sign() {
        let cfg = built(&[
            "--endpoint",
            "h:1",
            "--insecure=false",
            "--insecure-skip-verify",
        ]);
        assert!(!cfg.insecure());
        assert!(cfg.insecure_skip_verify());
        // `--insecure=false` wins over the environment's true.
        let environment = [("FLYTE_PLATFORM_INSECURE", "true")];
        let insecure = |args: &[&str]| {
            let cfg = config(args, &environment).no_config_file().build();
            cfg.unwrap().insecure()
        };
        assert!(insecure(&["--endpoint", "h:1"]));
        assert!(!insecure(&["--endpoint", "h:1", "--insecure=false"]));
        // Without `=`, the next word is not its value but the subcommand.
        assert_eq!(
            cli(&["--insecure", "status"]).command,
            Command::Status { json: false }
        );
        assert!(error(&["--insecure=maybe", "status"]).contains("`maybe` is not a boolean"));
        // A flag takes no value, and the error does not repeat it.
        assert_eq!(error(&["--qr=sekrit", "token"]), "--qr takes no value");
    }

    #[test]
    fn auth_modes_are_read_with_flytekit_names() {
        let cfg = built(&["--endpoint", "h:1", "--auth-mode", "client_credentials"]);
        assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
        // Not a name any mode or registered authenticator can have.
        let message = error(&["--auth-mode", "two words", "token"]);
        assert!(message.starts_with("--auth-mode: "), "{message}");
        assert!(message.contains("two words"), "{message}");
    }

    #[test]
    fn scopes_are_comma_separated_and_timeouts_are_durations() {
        let parsed = cli(&["--scopes", "all, offline,", "--timeout", "2m", "token"]);
        assert_eq!(parsed.options.timeout, Some(Duration::from_secs(120)));
        // As FLYTE_CREDENTIALS_SCOPES is read: items trimmed, empty ones dropped.
        let cfg = built(&["--endpoint", "h:1", "--scopes", "all, offline,"]);
        assert_eq!(cfg.scopes(), ["all", "offline"]);
        assert_eq!(
            cli(&["--timeout", "5", "token"]).options.timeout,
            Some(Duration::from_secs(5))
        );
        assert!(error(&["--timeout", "0", "token"]).contains("longer than zero"));
        assert!(error(&["--timeout", "soon", "token"]).starts_with("--timeout: "));
        assert!(error(&["token", "--timeout"]).contains("--timeout"));
        let cfg = built(&["--endpoint", "h:1", "--per-retry-timeout", "2s"]);
        assert_eq!(cfg.per_retry_timeout(), Some(Duration::from_secs(2)));
        let cfg = built(&["--endpoint", "h:1", "--command-timeout", "7"]);
        assert_eq!(cfg.command_timeout(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn status_takes_json_and_verbosity_counts() {
        let parsed = cli(&["-vv", "status", "--json", "--verbose"]);
        assert_eq!(parsed.command, Command::Status { json: true });
        assert_eq!(parsed.verbose, 3);
        assert_eq!(
            cli(&["doctor", "--json"]).command,
            Command::Doctor { json: true }
        );
        assert!(error(&["token", "--json"]).contains("--json is an option of `status`"));
    }

    #[test]
    fn mistakes_are_named_with_what_was_meant() {
        let message = error(&["token", "--endpiont", "h:1"]);
        assert!(message.contains("unknown option `--endpiont`"), "{message}");
        assert!(message.contains("did you mean `--endpoint`?"), "{message}");
        assert_eq!(
            error(&["token", "--zzzzzzzz"]),
            "unknown option `--zzzzzzzz`"
        );
        assert!(error(&["-x", "token"]).contains("unknown option `-x`"));
        let message = error(&["tokn"]);
        assert!(message.contains("did you mean `token`?"), "{message}");
        assert!(error(&["token", "extra"]).contains("unexpected argument `extra`"));
        assert!(
            error(&["--endpoint", "a:1", "--endpoint", "b:2", "token"]).contains("more than once")
        );
        assert!(error(&[]).contains("no subcommand"));
        assert!(
            error(&["--store", "disk", "token"])
                .contains("expected one of: auto, keyring, file, memory")
        );
    }

    #[test]
    fn an_api_key_or_proxy_password_on_the_command_line_is_not_in_debug_or_errors() {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .encode("flyte.example.org:svc:sekrit-secret:org");
        let args = [
            "--api-key",
            &key,
            "--http-proxy",
            "http://user:sekrit-pw@proxy:3128",
        ];
        let parsed = config(&args, &[]);
        assert!(!format!("{parsed:?}").contains("sekrit"), "{parsed:?}");
        let cfg = parsed.no_config_file().build().unwrap();
        assert_eq!(cfg.endpoint().key(), "flyte.example.org");
        assert_eq!(
            cfg.client_secret().map(|s| s.expose_secret()),
            Some("sekrit-secret")
        );
        assert!(!format!("{cfg:?}").contains("sekrit"), "{cfg:?}");
        assert!(format!("{cfg:?}").contains("http://proxy:3128"), "{cfg:?}");
        // A key that does not decode: the error does not repeat it.
        let err = built_err(&["--api-key", "sekrit:key"]);
        assert!(!err.contains("sekrit"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let key = OsString::from_vec(b"sekrit-\xff-key".to_vec());
            let args = [
                OsString::from(NAME),
                "--api-key".into(),
                key,
                "token".into(),
            ];
            let message = parse(args, &|_| None).unwrap_err().to_string();
            assert_eq!(message, "--api-key: the value is not valid UTF-8");
        }
    }

    #[test]
    fn the_store_and_all_layouts_fall_back_to_their_variables_and_flags_win() {
        let run = |args: &[&str], vars: &[(&str, &str)]| match parse_with(args, vars) {
            Ok(Parsed::Run(cli)) => cli.options,
            other => panic!("{other:?}"),
        };
        assert_eq!(run(&["token"], &[]).store, StoreKind::Auto);
        let env = [(STORE_ENV, "file"), (ALL_LAYOUTS_ENV, "yes")];
        let options = run(&["token"], &env);
        assert_eq!(options.store, StoreKind::File);
        assert!(options.all_layouts);
        assert_eq!(
            run(&["token", "--store", "memory"], &env).store,
            StoreKind::Memory
        );
        assert!(!run(&["token"], &[(ALL_LAYOUTS_ENV, "0"), (STORE_ENV, " ")]).all_layouts);
        let bad = parse_with(&["token"], &[(STORE_ENV, "disk")]).unwrap_err();
        assert!(bad.to_string().starts_with("FLYTE_AUTH_STORE: "), "{bad}");
        let bad = parse_with(&["token"], &[(ALL_LAYOUTS_ENV, "sure")]).unwrap_err();
        assert!(bad.to_string().contains("not a boolean"), "{bad}");
    }

    #[test]
    fn help_documents_every_option_exit_codes_and_precedence() {
        let help = printed(&["--help"]);
        for expected in [
            "Usage: flyte-auth [OPTIONS] <COMMAND>",
            "  token ",
            "  doctor ",
            "Exit status:",
            "  2  configuration",
            "  3  authentication",
            "  4  network",
            "overridden by the flags",
            "      --insecure[=<BOOL>]",
            "      --endpoint <HOST:PORT>",
            "  -v, --verbose...",
        ] {
            assert!(help.contains(expected), "{expected} missing from:\n{help}");
        }
        for opt in OPTIONS {
            assert!(
                help.contains(&format!("--{}", opt.long)),
                "--{} missing",
                opt.long
            );
        }
        for line in help.lines() {
            assert!(line.chars().count() <= WIDTH, "too long: {line}");
        }
        assert!(
            !help.contains("      --json\n"),
            "--json is listed only where it applies"
        );
        assert_eq!(printed(&["-h"]), help);
        assert_eq!(printed(&["help"]), help);
    }

    #[test]
    fn each_subcommand_has_its_help() {
        for sub in COMMANDS {
            let help = printed(&[sub.name, "--help"]);
            assert!(
                help.contains(&format!("Usage: flyte-auth {} [OPTIONS]", sub.name)),
                "{help}"
            );
            assert_eq!(help.contains("      --json\n"), sub.json, "{}", sub.name);
            assert!(help.contains("--endpoint <HOST:PORT>"), "{help}");
            assert_eq!(printed(&["help", sub.name]), help);
        }
        assert!(printed(&["token", "--help"]).starts_with("Print a valid access token"));
        assert!(error(&["help", "tokne"]).contains("did you mean `token`?"));
    }

    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(
            printed(&["--version"]),
            format!("flyte-auth {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(printed(&["token", "-V"]), printed(&["--version"]));
    }
}
