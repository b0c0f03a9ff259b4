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
mod provider;
mod tasks;
mod workspace;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use tasks::Outcome;

/// One `cargo xtask <name>` subcommand.
struct Task {
    name: &'static str,
    about: &'static str,
    /// Part of `cargo xtask ci`.
    in_ci: bool,
    run: fn() -> Outcome,
}

/// Every task, in the order `ci` runs them.
const TASKS: &[Task] = &[
    Task {
        name: "fmt",
        about: "formatting: cargo fmt --all -- --check",
        in_ci: true,
        run: tasks::fmt,
    },
    Task {
        name: "clippy",
        about: "lints: cargo clippy --workspace --all-targets --all-features -- -D warnings",
        in_ci: true,
        run: tasks::clippy,
    },
    Task {
        name: "test",
        about: "the test suite: cargo test --workspace --all-features",
        in_ci: true,
        run: tasks::test,
    },
    Task {
        name: "doc",
        about: "docs: RUSTDOCFLAGS='-D warnings' cargo doc --workspace --no-deps --all-features",
        in_ci: true,
        run: tasks::doc,
    },
    Task {
        name: "deny",
        about: "cargo deny check bans licenses sources (+ advisories when a database is present)",
        in_ci: true,
        run: tasks::deny,
    },
    Task {
        name: "isolation",
        about: "cargo check -p <crate> for each library crate alone, per feature set",
        in_ci: true,
        run: tasks::isolation,
    },
    Task {
        name: "footprint",
        about: "dependency count per library crate; core and command stay free of HTTP/TLS/runtime",
        in_ci: true,
        run: tasks::footprint,
    },
    Task {
        name: "demo",
        about: "every login through the flyte-auth binary against a local OpenID provider",
        in_ci: false,
        run: demo::demo,
    },
    Task {
        name: "bench",
        about: "criterion benches, then flyte-auth processes against curl and /bin/true (target/bench/)",
        in_ci: false,
        run: bench::bench,
    },
    Task {
        name: "fuzz",
        about: "replay fuzz/regressions, then each cargo-fuzz target for --seconds N (60) s",
        in_ci: false,
        run: fuzz::fuzz,
    },
];

/// The workspace root: xtask's own manifest sits one folder below it.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a folder of the workspace root")
}

fn help() -> String {
    let mut text = String::from("Usage: cargo xtask <task>\n\nTasks:\n");
    text.push_str("  ci           run every task marked [ci] below, then print a summary\n");
    for task in TASKS {
        let mark = if task.in_ci { "[ci] " } else { "" };
        text.push_str(&format!("  {:<12} {mark}{}\n", task.name, task.about));
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = match args.as_slice() {
        [name] => name.as_str(),
        // `fuzz` reads its own options (`--seconds N`); no other task takes any.
        [name, ..] if name == "fuzz" => name.as_str(),
        [] => {
            eprint!("{}", help());
            return ExitCode::from(2);
        }
        _ => {
            eprintln!(
                "error: expected exactly one task, got: {}\n",
                args.join(" ")
            );
            eprint!("{}", help());
            return ExitCode::from(2);
        }
    };
    if matches!(name, "-h" | "--help" | "help") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    if name == "ci" {
        let selected: Vec<&Task> = TASKS.iter().filter(|t| t.in_ci).collect();
        return ci(&selected);
    }
    let Some(task) = TASKS.iter().find(|t| t.name == name) else {
        eprintln!("error: unknown task `{name}`\n");
        eprint!("{}", help());
        return ExitCode::from(2);
    };
    match (task.run)() {
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
fn ci(selected: &[&Task]) -> ExitCode {
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
        let outcome = (task.run)();
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
        let help = help();
        for (i, task) in TASKS.iter().enumerate() {
            assert!(
                TASKS[i + 1..].iter().all(|t| t.name != task.name),
                "duplicate task {}",
                task.name
            );
            assert!(help.contains(task.name), "{} missing from help", task.name);
        }
        assert!(help.contains("  ci "));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("the workspace root has a Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }
}
