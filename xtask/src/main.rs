//! Project automation for flyte-auth, run as `cargo xtask <task>` from anywhere in the
//! workspace (the alias lives in `.cargo/config.toml`).
//!
//! `cargo xtask ci` runs every check CI runs, in order, and ends with a summary table;
//! each check also runs alone (`cargo xtask clippy`). `cargo xtask --help` lists them.
//! To add a task, write a function returning [`tasks::Outcome`] and add a line to [`TASKS`].
#![allow(
    clippy::print_stdout,
    reason = "xtask reports to the person or CI log running it"
)]

mod bench;
mod cmd;
mod demo;
mod fuzz;
mod metadata;
mod provider;
mod publish;
mod tasks;
mod workspace;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Arg, ArgAction, ArgMatches, value_parser};
use tasks::Outcome;

/// One `cargo xtask <name>` subcommand.
struct Task {
    name: &'static str,
    about: &'static str,
    /// Part of `cargo xtask ci`.
    in_ci: bool,
    /// The task's own options (`cargo xtask bench --with-peers`).
    args: fn() -> Vec<Arg>,
    run: fn(&ArgMatches) -> Outcome,
}

/// No options.
fn no_args() -> Vec<Arg> {
    Vec::new()
}

/// Every task, in the order `ci` runs them.
const TASKS: &[Task] = &[
    Task {
        name: "fmt",
        about: "formatting: cargo fmt --all -- --check",
        in_ci: true,
        args: no_args,
        run: |_| tasks::fmt(),
    },
    Task {
        name: "clippy",
        about: "lints: cargo clippy --workspace --all-targets --all-features -- -D warnings",
        in_ci: true,
        args: no_args,
        run: |_| tasks::clippy(),
    },
    Task {
        name: "test",
        about: "the test suite: cargo test --workspace --all-features",
        in_ci: true,
        args: no_args,
        run: |_| tasks::test(),
    },
    Task {
        name: "doc",
        about: "docs: RUSTDOCFLAGS='-D warnings' cargo doc --workspace --no-deps --all-features",
        in_ci: true,
        args: no_args,
        run: |_| tasks::doc(),
    },
    Task {
        name: "deny",
        about: "cargo deny check bans licenses sources (+ advisories when a database is present)",
        in_ci: true,
        args: no_args,
        run: |_| tasks::deny(),
    },
    Task {
        name: "isolation",
        about: "cargo check -p <crate> for each library crate alone, per feature set; cargo test of the tests that exist only without a feature",
        in_ci: true,
        args: no_args,
        run: |_| tasks::isolation(),
    },
    Task {
        name: "footprint",
        about: "dependency count per library crate; core and command stay free of HTTP/TLS/runtime",
        in_ci: true,
        args: no_args,
        run: |_| tasks::footprint(),
    },
    Task {
        name: "package",
        about: "cargo package -p <each library crate>: packed and built as crates.io would",
        in_ci: true,
        args: no_args,
        run: |_| publish::package(),
    },
    Task {
        name: "newest",
        about: "the library crates built and unit-tested with -D warnings after cargo update (target/newest/)",
        in_ci: true,
        args: no_args,
        run: |_| publish::newest(),
    },
    Task {
        name: "demo",
        about: "every login through the flyte-auth binary against a local OpenID provider",
        in_ci: false,
        args: no_args,
        run: |_| demo::demo(),
    },
    Task {
        name: "bench",
        about: "criterion benches, then flyte-auth processes against curl and /bin/true (target/bench/)",
        in_ci: false,
        args: || {
            vec![
                Arg::new("with-peers").long("with-peers").action(ArgAction::SetTrue).help(
                    "also install flytekit 1.16 and the Flyte 2 SDK into target/bench/peers and time them",
                ),
                Arg::new("cli")
                    .long("cli")
                    .value_name("PATH")
                    .value_parser(value_parser!(std::path::PathBuf))
                    .help("time this flyte-auth binary (another build of the source) instead of the release build"),
                Arg::new("latency")
                    .long("latency")
                    .value_name("MS")
                    .value_parser(value_parser!(u64))
                    .help("only the cold token, through a loopback proxy delaying MS milliseconds each way (target/bench/latency.*)"),
                Arg::new("tls")
                    .long("tls")
                    .action(ArgAction::SetTrue)
                    .requires("latency")
                    .help("with --latency: TLS terminated behind the delay, by a throwaway CA (target/bench/latency-tls.*)"),
            ]
        },
        run: |args| {
            let cli = args
                .get_one::<std::path::PathBuf>("cli")
                .map(|p| p.as_path());
            match args.get_one::<u64>("latency") {
                Some(ms) => {
                    bench::latency(*ms, cli, args.get_flag("tls"), args.get_flag("with-peers"))
                }
                None => bench::bench(args.get_flag("with-peers"), cli),
            }
        },
    },
    Task {
        name: "fuzz",
        about: "replay fuzz/regressions, then each cargo-fuzz target for --seconds N (60) s",
        in_ci: false,
        args: || {
            vec![
                Arg::new("seconds")
                    .long("seconds")
                    .value_name("N")
                    .env(fuzz::SECONDS_ENV)
                    .default_value("60")
                    .value_parser(value_parser!(u64).range(1..))
                    .help("how long each target runs"),
            ]
        },
        run: |args| {
            fuzz::fuzz(
                args.get_one::<u64>("seconds")
                    .copied()
                    .unwrap_or(fuzz::DEFAULT_SECONDS),
            )
        },
    },
];

/// The workspace root: xtask's own manifest sits one folder below it.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a folder of the workspace root")
}

/// The command line: one subcommand per task, and `ci`.
fn cli() -> clap::Command {
    let mut cli = clap::Command::new("cargo xtask")
        .bin_name("cargo xtask")
        .about("Project automation for flyte-auth")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            clap::Command::new("ci")
                .about("run every task marked [ci] below, then print a summary"),
        );
    for task in TASKS {
        let mark = if task.in_ci { "[ci] " } else { "" };
        cli = cli.subcommand(
            clap::Command::new(task.name)
                .about(format!("{mark}{}", task.about))
                .args((task.args)()),
        );
    }
    cli
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let Some((name, args)) = matches.subcommand() else {
        return ExitCode::from(2);
    };
    if name == "ci" {
        let selected: Vec<&Task> = TASKS.iter().filter(|t| t.in_ci).collect();
        return ci(&selected, args);
    }
    let Some(task) = TASKS.iter().find(|t| t.name == name) else {
        return ExitCode::from(2);
    };
    match (task.run)(args) {
        Ok(note) => {
            if let Some(note) = note {
                println!("{}: ok ({note})", task.name);
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}: FAILED: {err}", task.name);
            ExitCode::FAILURE
        }
    }
}

/// Runs `selected` in order, all of them even after a failure, then prints the summary.
fn ci(selected: &[&Task], args: &ArgMatches) -> ExitCode {
    let started = Instant::now();
    let mut rows = Vec::new();
    for (i, task) in selected.iter().enumerate() {
        println!();
        println!(
            "==> [{}/{}] {}: {}",
            i + 1,
            selected.len(),
            task.name,
            task.about
        );
        let step_started = Instant::now();
        let outcome = (task.run)(args);
        let seconds = step_started.elapsed().as_secs_f64();
        match &outcome {
            Ok(_) => println!("<== {}: ok ({seconds:.1} s)", task.name),
            Err(err) => println!("<== {}: FAILED ({seconds:.1} s): {err}", task.name),
        }
        rows.push((task.name, outcome, seconds));
    }

    println!();
    println!("==> summary");
    println!("{:<12} {:<8} {:>9}", "step", "result", "seconds");
    for (name, outcome, seconds) in &rows {
        let result = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!("{name:<12} {result:<8} {seconds:>9.1}");
    }
    for (name, outcome, _) in &rows {
        match outcome {
            Ok(Some(note)) => println!("note: {name}: {note}"),
            Ok(None) => {}
            Err(err) => println!("failed: {name}: {err}"),
        }
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, outcome, _)| outcome.is_err())
        .map(|(name, _, _)| *name)
        .collect();
    let total = started.elapsed().as_secs_f64();
    if failed.is_empty() {
        println!("ci: all {} steps ok in {total:.0} s", rows.len());
        ExitCode::SUCCESS
    } else {
        println!(
            "ci: FAILED step(s): {} (of {}, {total:.0} s)",
            failed.join(", "),
            rows.len()
        );
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_are_unique_and_listed_in_help() {
        cli().debug_assert();
        let help = cli().render_help().to_string();
        for (i, task) in TASKS.iter().enumerate() {
            assert!(
                TASKS[i + 1..].iter().all(|t| t.name != task.name),
                "duplicate task {}",
                task.name
            );
            assert!(help.contains(task.name), "{} missing from help", task.name);
        }
        assert!(help.contains("  ci "));
        let bench = cli()
            .try_get_matches_from(["cargo xtask", "bench", "--with-peers"])
            .unwrap();
        assert!(
            bench
                .subcommand_matches("bench")
                .unwrap()
                .get_flag("with-peers")
        );
        let given = cli()
            .try_get_matches_from(["cargo xtask", "bench", "--cli", "/tmp/flyte-auth"])
            .unwrap();
        assert_eq!(
            given
                .subcommand_matches("bench")
                .unwrap()
                .get_one::<std::path::PathBuf>("cli"),
            Some(&std::path::PathBuf::from("/tmp/flyte-auth"))
        );
        let tls = cli()
            .try_get_matches_from(["cargo xtask", "bench", "--latency", "25", "--tls"])
            .unwrap();
        assert!(tls.subcommand_matches("bench").unwrap().get_flag("tls"));
        assert!(
            cli()
                .try_get_matches_from(["cargo xtask", "bench", "--tls"])
                .is_err(),
            "--tls is a variant of --latency"
        );
        assert!(
            cli()
                .try_get_matches_from(["cargo xtask", "fmt", "--with-peers"])
                .is_err()
        );
        let fuzz = cli()
            .try_get_matches_from(["cargo xtask", "fuzz", "--seconds", "5"])
            .unwrap();
        let seconds = fuzz
            .subcommand_matches("fuzz")
            .unwrap()
            .get_one::<u64>("seconds");
        assert_eq!(seconds, Some(&5));
        assert!(
            cli()
                .try_get_matches_from(["cargo xtask", "fuzz", "--seconds", "0"])
                .is_err()
        );
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("the workspace root has a Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }
}
