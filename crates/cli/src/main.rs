//! `flyte-auth`: prints a Flyte access token (for `curl`, scripts, and tools that run a
//! command to get one), logs in and out, and shows the login state.
//!
//! Standard output carries only what was asked for (the token, the status); prompts,
//! progress, logs and errors go to standard error. See `flyte-auth --help` and the README.

mod args;
mod commands;
mod connect;
mod doctor;
mod exit;
mod guard;
mod prompt;
mod settings;
mod status;

use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::args::Cli;

fn main() -> ExitCode {
    // Before any thread exists: the token command this process may start is one level deeper.
    guard::mark_children();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flyte-auth: cannot start the async runtime: {e}");
            return exit::Failure::Other.into();
        }
    };
    match runtime.block_on(commands::run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::debug!(error = ?error, "failed");
            eprintln!("{}", exit::message(&error));
            exit::classify(&error).into()
        }
    }
}

/// Logs go to standard error: warnings by default, more with `-v`, or as `RUST_LOG` says
/// when no `-v` is given. `-v` raises the level of this project's crates only.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        1 => EnvFilter::new("warn,flyte_auth=info"),
        2 => EnvFilter::new("warn,flyte_auth=debug"),
        _ => EnvFilter::new("warn,flyte_auth=trace"),
    };
    let stderr = std::io::stderr();
    let ansi = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A second initialisation cannot happen here; ignore the error rather than panic.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
