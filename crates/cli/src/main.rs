//! `flyte-auth`: prints a Flyte access token (for `curl`, scripts, and tools that run a
//! command to get one), logs in and out, and shows the login state.
//!
//! Standard output carries only what was asked for (the token, the status); prompts,
//! progress, logs and errors go to standard error. See `flyte-auth --help` and the README.

mod args;
mod commands;
mod doctor;
mod exit;
mod guard;
mod options;
mod prompt;
mod status;

use std::{
    io::{IsTerminal as _, Write as _},
    process::ExitCode,
};

use tracing::Level;
use tracing_subscriber::{
    filter::Targets, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

use crate::args::Parsed;

fn main() -> ExitCode {
    // Before any thread exists: the token command this process may start is one level deeper.
    guard::mark_children();
    let cli = match args::parse(std::env::args_os(), &|name| std::env::var_os(name)) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Print(text)) => {
            let mut stdout = std::io::stdout().lock();
            return match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => exit::Failure::Other.into(),
            };
        }
        Err(error) => {
            eprintln!(
                "{name}: usage error: {error}\nRun `{name} --help` for the subcommands and options.",
                name = args::NAME
            );
            return exit::Failure::Config.into();
        }
    };
    init_logging(cli.verbose);
    // Synchronous: a command starts the async runtime only when it may reach the network.
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::debug!(error = ?error, "failed");
            eprintln!("{}", exit::message(&error));
            exit::classify(&error).into()
        }
    }
}

/// Logs go to standard error: warnings by default, more with `-v`, or as `RUST_LOG` says
/// when no `-v` is given (`target=level` directives such as `warn,flyte_auth=debug`). `-v`
/// raises the level of this project's crates only.
fn init_logging(verbose: u8) {
    let project = |level| {
        Targets::new()
            .with_default(Level::WARN)
            .with_target("flyte_auth", level)
    };
    let filter = match verbose {
        0 => std::env::var("RUST_LOG")
            .ok()
            .and_then(|directives| directives.parse::<Targets>().ok())
            .unwrap_or_else(|| Targets::new().with_default(Level::WARN)),
        1 => project(Level::INFO),
        2 => project(Level::DEBUG),
        _ => project(Level::TRACE),
    };
    let stderr = std::io::stderr();
    let ansi = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A second initialisation cannot happen here; ignore the error rather than panic.
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi),
        )
        .with(filter)
        .try_init();
}
