//! The command line: subcommands, and the options every subcommand takes.

use std::{path::PathBuf, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use flyte_auth::{AuthMode, config::parse_duration};
use flyte_auth_store::StoreKind;

/// Shown after the options in `--help`.
const AFTER_HELP: &str = "\
Settings come from the Flyte config file (--config, else $FLYTECTL_CONFIG, else
~/.flyte/config.yaml, section `admin`), overridden by the FLYTE_* environment variables
(FLYTE_PLATFORM_URL, FLYTE_CREDENTIALS_AUTH_MODE, ...), overridden by the flags above.

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

/// `flyte-auth`: obtain, cache and refresh the access token for a Flyte server.
#[derive(Debug, Parser)]
#[command(
    name = "flyte-auth",
    version,
    about = "Print a Flyte access token; log in, log out and show the login state",
    long_about = "Print a Flyte access token, logging in the way the configuration says \
                  (browser login with PKCE, device code, client credentials or an external \
                  command), and keep the login in the OS keyring or a file so that the next \
                  call is served from the cache. Standard output carries only what was asked \
                  for; prompts, progress and logs go to standard error.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,

    /// The options every subcommand takes.
    #[command(flatten)]
    pub(crate) options: Options,

    /// More log output on standard error: -v info, -vv debug, -vvv trace (default: warnings;
    /// without -v, RUST_LOG is honoured).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Command {
    /// Print a valid access token on standard output, and nothing else.
    ///
    /// The stored token while it is valid; else a refreshed one; else one from a new login.
    /// For `curl -H "Authorization: Bearer $(flyte-auth token)"`, or as the `command` of a
    /// tool that runs a program to get a token.
    Token,
    /// Log in again: remove the stored credentials for the endpoint, then obtain new ones.
    Login,
    /// Remove the stored credentials for the endpoint.
    Logout,
    /// Show the endpoint, auth mode, token store, expiry and scopes (never a token or a
    /// secret). Reads the store only: never logs in.
    Status {
        /// Print one JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Find out why authentication does not work: check the config, the endpoint, the
    /// server's discovery, the token store, the stored login, the clock and the proxy, step by
    /// step, with the fix for each failure. Never logs in; shows no token or secret.
    Doctor {
        /// Print one JSON object, for bug reports.
        #[arg(long)]
        json: bool,
    },
}

/// Where to connect, how to authenticate and where to keep tokens.
///
/// Options not given here come from the environment and the config file.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Options {
    /// The Flyte config file to read [default: $FLYTECTL_CONFIG, else ~/.flyte/config.yaml].
    #[arg(long, value_name = "FILE", global = true, help_heading = "Connection")]
    pub(crate) config: Option<PathBuf>,

    /// The Flyte server: `host:port` or `dns:///host:port` (admin.endpoint,
    /// FLYTE_PLATFORM_URL).
    #[arg(
        long,
        value_name = "HOST:PORT",
        global = true,
        help_heading = "Connection"
    )]
    pub(crate) endpoint: Option<String>,

    /// Plain HTTP to the server instead of TLS (admin.insecure); `--insecure=false` overrides
    /// a config file that says true.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        global = true,
        help_heading = "Connection"
    )]
    pub(crate) insecure: Option<bool>,

    /// Trust this PEM bundle in addition to the system's roots (admin.caCertFilePath).
    #[arg(long, value_name = "FILE", global = true, help_heading = "Connection")]
    pub(crate) ca_cert: Option<PathBuf>,

    /// Do not verify the server's TLS certificate (admin.insecureSkipVerify). Unsafe.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        global = true,
        help_heading = "Connection"
    )]
    pub(crate) insecure_skip_verify: Option<bool>,

    /// Send the OAuth requests through this proxy (admin.httpProxyURL).
    #[arg(long, value_name = "URL", global = true, help_heading = "Connection")]
    pub(crate) http_proxy: Option<String>,

    /// Give up on each HTTP request after this long: seconds, or `30s`, `2m`.
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_timeout,
        global = true,
        help_heading = "Connection"
    )]
    pub(crate) timeout: Option<Duration>,

    /// How to log in (admin.authType, FLYTE_CREDENTIALS_AUTH_MODE): Pkce (browser),
    /// DeviceFlow, ClientSecret or ExternalCommand; flytekit's names (standard, basic,
    /// client_credentials, external_process) work too.
    #[arg(
        long,
        value_name = "MODE",
        value_parser = parse_auth_mode,
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) auth_mode: Option<AuthMode>,

    /// The OAuth client id (admin.clientId, FLYTE_CREDENTIALS_CLIENT_ID).
    #[arg(
        long,
        value_name = "ID",
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) client_id: Option<String>,

    /// Read the client secret from this environment variable (admin.clientSecretEnvVar).
    #[arg(
        long,
        value_name = "VAR",
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) client_secret_env: Option<String>,

    /// Read the client secret from this file (admin.clientSecretLocation).
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) client_secret_file: Option<PathBuf>,

    /// Scopes to ask for, comma-separated (admin.scopes, FLYTE_CREDENTIALS_SCOPES).
    #[arg(
        long,
        value_name = "SCOPES",
        value_delimiter = ',',
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) scopes: Option<Vec<String>>,

    /// The `audience` parameter some identity providers need (admin.audience).
    #[arg(
        long,
        value_name = "AUDIENCE",
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) audience: Option<String>,

    /// A Flyte 2 API key (what FLYTE_API_KEY holds, which is safer: a flag shows in the
    /// process list). It selects client credentials with its client id and secret and names
    /// the endpoint, unless --endpoint names one.
    #[arg(
        long,
        value_name = "KEY",
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) api_key: Option<String>,

    /// Browser login: only print the URL, do not open a browser.
    #[arg(long, global = true, help_heading = "Authentication")]
    pub(crate) no_browser: bool,

    /// Device login: also draw the login URL as a QR code, for a phone to scan.
    #[arg(long, global = true, help_heading = "Authentication")]
    pub(crate) qr: bool,

    /// ExternalCommand: give the token command this long (admin.commandTimeout; default
    /// 30s): seconds, or `30s`, `2m`.
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_timeout,
        global = true,
        help_heading = "Authentication"
    )]
    pub(crate) command_timeout: Option<Duration>,

    /// Where tokens are kept: `auto` (the OS keyring when it answers, else a file), `keyring`,
    /// `file` (0600 files in the cache directory) or `memory` (this process only).
    #[arg(
        long,
        value_name = "STORE",
        value_enum,
        env = "FLYTE_AUTH_STORE",
        default_value = "auto",
        global = true,
        help_heading = "Token store"
    )]
    pub(crate) store: StoreChoice,

    /// Keyring: write the login to every Flyte tool's entries (pyflyte, the Flyte 2 SDK,
    /// flytectl), also where none held one, so one `flyte-auth login` logs them all in
    /// (also `admin.writeAllLayouts: true` in the config file).
    #[arg(
        long,
        env = "FLYTE_AUTH_ALL_LAYOUTS",
        global = true,
        help_heading = "Token store"
    )]
    pub(crate) all_layouts: bool,

    /// The directory of the file store and of lock files [default: $FLYTE_AUTH_CACHE_DIR, else
    /// ~/.cache/flyte-auth].
    #[arg(long, value_name = "DIR", global = true, help_heading = "Token store")]
    pub(crate) cache_dir: Option<PathBuf>,
}

/// The values of `--store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreChoice {
    /// The OS keyring when it answers, else the file store.
    #[default]
    Auto,
    /// The OS keyring (shared with pyflyte).
    Keyring,
    /// A 0600 JSON file per endpoint in the cache directory.
    File,
    /// This process only: every run logs in again.
    Memory,
}

impl From<StoreChoice> for StoreKind {
    fn from(choice: StoreChoice) -> Self {
        match choice {
            StoreChoice::Auto => StoreKind::Auto,
            StoreChoice::Keyring => StoreKind::Keyring,
            StoreChoice::File => StoreKind::File,
            StoreChoice::Memory => StoreKind::Memory,
        }
    }
}

fn parse_auth_mode(value: &str) -> Result<AuthMode, String> {
    value.parse::<AuthMode>().map_err(|e| e.to_string())
}

fn parse_timeout(value: &str) -> Result<Duration, String> {
    let timeout = parse_duration(value).map_err(|e| e.to_string())?;
    if timeout.is_zero() {
        return Err("the time-out must be longer than zero".to_owned());
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flyte-auth").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_go_before_or_after_the_subcommand() {
        let before = parse(&["--endpoint", "h:1", "--insecure", "token"]).unwrap();
        let after = parse(&["token", "--endpoint", "h:1", "--insecure"]).unwrap();
        for cli in [before, after] {
            assert!(matches!(cli.command, Command::Token));
            assert_eq!(cli.options.endpoint.as_deref(), Some("h:1"));
            assert_eq!(cli.options.insecure, Some(true));
        }
    }

    #[test]
    fn boolean_options_take_an_optional_value_after_an_equals_sign() {
        let cli = parse(&["--insecure=false", "--insecure-skip-verify", "status"]).unwrap();
        assert_eq!(cli.options.insecure, Some(false));
        assert_eq!(cli.options.insecure_skip_verify, Some(true));
        assert_eq!(parse(&["status"]).unwrap().options.insecure, None);
    }

    #[test]
    fn auth_modes_are_read_with_flytekit_names() {
        let cli = parse(&["--auth-mode", "client_credentials", "token"]).unwrap();
        assert_eq!(cli.options.auth_mode, Some(AuthMode::ClientSecret));
        // Not a name any mode or registered authenticator can have.
        let err = parse(&["--auth-mode", "two words", "token"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("two words"), "{err}");
    }

    #[test]
    fn scopes_are_comma_separated_and_timeouts_are_durations() {
        let cli = parse(&["--scopes", "all,offline", "--timeout", "2m", "token"]).unwrap();
        assert_eq!(
            cli.options.scopes,
            Some(vec!["all".to_owned(), "offline".to_owned()])
        );
        assert_eq!(cli.options.timeout, Some(Duration::from_secs(120)));
        assert_eq!(
            parse(&["--timeout", "5", "token"]).unwrap().options.timeout,
            Some(Duration::from_secs(5))
        );
        assert!(parse(&["--timeout", "0", "token"]).is_err());
        assert!(parse(&["--timeout", "soon", "token"]).is_err());
    }

    #[test]
    fn status_takes_json_and_verbosity_counts() {
        let cli = parse(&["-vv", "status", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Status { json: true }));
        assert_eq!(cli.verbose, 2);
    }

    #[test]
    fn help_documents_exit_codes_and_precedence() {
        let help = Cli::command().render_long_help().to_string();
        for expected in [
            "Exit status:",
            "  2  configuration",
            "  3  authentication",
            "  4  network",
        ] {
            assert!(help.contains(expected), "{expected} missing from:\n{help}");
        }
        assert!(help.contains("overridden by the flags"), "{help}");
    }

    #[test]
    fn a_subcommand_is_required() {
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
    }
}
