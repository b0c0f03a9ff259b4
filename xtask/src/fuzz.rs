//! `cargo xtask fuzz --seconds N`: replays every input that once failed, then runs each
//! cargo-fuzz target of `fuzz/` for N seconds (60 by default) and ends with a table of what
//! each found.
//!
//! - The targets are those `cargo fuzz list` names, so a new target is picked up by itself.
//! - cargo-fuzz builds with `-Zsanitizer=address` and other unstable flags. With the stable
//!   toolchain, `RUSTC_BOOTSTRAP=1` makes rustc accept them (AddressSanitizer's runtime ships
//!   with stable's `rust-std`); when that build fails, the targets are built with
//!   `--sanitizer none` instead and the summary says so. `CARGO_CACHE_RUSTC_INFO=0` keeps
//!   cargo from reusing a cached refusal of `-Z` flags from an earlier run without it.
//! - Each target runs in libFuzzer's fork mode with crashes, time-outs and out-of-memory
//!   ignored, so one finding does not end the run: every failing input is saved under
//!   `fuzz/artifacts/<target>/`, replayed once more to read its panic message, and the
//!   findings are grouped by that message. New corpus entries go to
//!   `fuzz/target/work/<target>/`; the committed seeds in `fuzz/corpus/<target>/` are only read.
//! - `fuzz/regressions/<target>/` holds inputs that once failed; each is replayed first and
//!   must now pass. `cargo test` replays them as well, without cargo-fuzz, through the
//!   targets' checks in `fuzz/src/checks.rs` (`tests/tests/fuzz_regressions.rs`).
//! - libFuzzer's output goes to `target/fuzz/<target>.log`; the targets' temporary files go to
//!   `fuzz/target/tmp/<target>/` (`TMPDIR`), removed after the run.
//!
//! The number of seconds is read from `--seconds N` after the task name, else from
//! `FLYTE_AUTH_FUZZ_SECONDS`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cmd::{capture, cargo, run, show};
use crate::tasks::Outcome;

const MINUTE: Duration = Duration::from_secs(60);
/// How long one input may run before libFuzzer calls it a time-out (the callback target runs
/// a whole login per input, which takes milliseconds).
const INPUT_TIMEOUT_SECONDS: u64 = 30;
/// The seconds per target when none are given.
pub(crate) const DEFAULT_SECONDS: u64 = 60;
/// The variable that gives the seconds when the command line does not.
pub(crate) const SECONDS_ENV: &str = "FLYTE_AUTH_FUZZ_SECONDS";

/// How the targets were built.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sanitizer {
    Address,
    None,
}

impl Sanitizer {
    fn name(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::None => "none",
        }
    }
}

/// What one target's run found.
struct Report {
    target: String,
    execs: Option<u64>,
    coverage: Option<u64>,
    corpus: Option<u64>,
    /// Panic message (first line) -> the failing inputs that showed it.
    findings: BTreeMap<String, Vec<PathBuf>>,
    regressions_passed: usize,
    /// Regression inputs that fail again, with their message.
    regressions_failed: Vec<(PathBuf, String)>,
}

/// `cargo xtask fuzz`.
/// `seconds` per target (`--seconds N`, else `$FLYTE_AUTH_FUZZ_SECONDS`, else 60).
pub(crate) fn fuzz(seconds: u64) -> Outcome {
    let root = crate::workspace_root();
    let fuzz_dir = root.join("fuzz");
    if capture(cargo(["fuzz", "--version"]).stderr(Stdio::null()), MINUTE).is_err() {
        return Err("cargo-fuzz is not installed: cargo install cargo-fuzz --locked".into());
    }
    let targets: Vec<String> = capture(&mut cargo(["fuzz", "list"]), 5 * MINUTE)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err("`cargo fuzz list` names no target".into());
    }
    let sanitizer = build()?;
    let log_dir = root.join("target").join("fuzz");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;

    let mut reports = Vec::new();
    for target in &targets {
        println!(
            "\n==> fuzz {target} for {seconds} s (sanitizer: {})",
            sanitizer.name()
        );
        reports.push(fuzz_one(&fuzz_dir, &log_dir, target, seconds, sanitizer)?);
    }
    summary(&reports, seconds, sanitizer);

    let found: usize = reports
        .iter()
        .map(|r| r.findings.values().map(Vec::len).sum::<usize>())
        .sum();
    let regressed: usize = reports.iter().map(|r| r.regressions_failed.len()).sum();
    let note = format!(
        "{} targets, {seconds} s each, sanitizer {}",
        targets.len(),
        sanitizer.name()
    );
    if found == 0 && regressed == 0 {
        Ok(Some(note))
    } else {
        Err(format!(
            "{note}: {found} new failing input(s) under fuzz/artifacts/, {regressed} regression \
             input(s) failing again (see the table above)"
        ))
    }
}

/// `cargo fuzz <args>` with the environment that lets the stable toolchain build it.
fn cargo_fuzz<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = cargo(["fuzz"]);
    cmd.args(args)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_CACHE_RUSTC_INFO", "0");
    cmd
}

/// Builds every target with AddressSanitizer, else without a sanitizer.
fn build() -> Result<Sanitizer, String> {
    let asan = run(&mut cargo_fuzz(["build"]), 60 * MINUTE);
    match asan {
        Ok(()) => Ok(Sanitizer::Address),
        Err(err) => {
            println!("!!! the AddressSanitizer build failed ({err}); building without a sanitizer");
            run(
                &mut cargo_fuzz(["build", "--sanitizer", "none"]),
                60 * MINUTE,
            )?;
            Ok(Sanitizer::None)
        }
    }
}

/// The built executable of `target`.
fn executable(fuzz_dir: &Path, target: &str) -> PathBuf {
    fuzz_dir
        .join("target")
        .join(host_triple())
        .join("release")
        .join(target)
}

fn host_triple() -> &'static str {
    // cargo-fuzz builds for the host; xtask runs on it.
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        "x86_64-unknown-linux-gnu"
    } else if cfg!(all(target_arch = "aarch64", target_os = "linux")) {
        "aarch64-unknown-linux-gnu"
    } else if cfg!(all(target_arch = "aarch64", target_os = "macos")) {
        "aarch64-apple-darwin"
    } else if cfg!(all(target_arch = "x86_64", target_os = "macos")) {
        "x86_64-apple-darwin"
    } else {
        "unknown"
    }
}

/// The libFuzzer dictionary of `target`, if it has one.
fn dictionary(fuzz_dir: &Path, target: &str) -> Option<PathBuf> {
    let name = match target {
        "token_response" | "device_authorization" | "discovery" => "oauth",
        "expiry_arithmetic" => "expiry",
        "stored_entry" => "stored",
        "callback_query" => "callback",
        "config_file" => "config",
        _ => return None,
    };
    let path = fuzz_dir.join("dict").join(format!("{name}.dict"));
    path.is_file().then_some(path)
}

fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `target`'s executable on one input; `None` when it passes, else its panic message
/// (or the last line of its output).
fn replay(exe: &Path, input: &Path) -> Result<Option<String>, String> {
    let mut cmd = Command::new(exe);
    cmd.arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", show(&cmd)))?;
    let output = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for `{}`: {e}", show(&cmd)))?;
    if output.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().collect();
    let message = lines
        .iter()
        .position(|l| l.contains(" panicked at "))
        .and_then(|i| lines.get(i + 1))
        .map(|l| l.trim().to_owned())
        .or_else(|| {
            lines
                .iter()
                .find(|l| l.contains("ERROR: libFuzzer") || l.contains("ERROR: AddressSanitizer"))
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| format!("failed ({})", output.status));
    Ok(Some(message))
}

/// The kind of a finding: its panic message up to the first detail after a colon, shortened.
fn kind_of(message: &str) -> String {
    let head = match message.find("): ") {
        Some(i) => &message[..=i],
        None => message,
    };
    let mut kind: String = head.chars().take(140).collect();
    if kind.len() < head.len() {
        kind.push_str("...");
    }
    kind
}

fn fuzz_one(
    fuzz_dir: &Path,
    log_dir: &Path,
    target: &str,
    seconds: u64,
    sanitizer: Sanitizer,
) -> Result<Report, String> {
    let exe = executable(fuzz_dir, target);
    if !exe.is_file() {
        return Err(format!("the fuzz target was not built: {}", exe.display()));
    }
    let mut report = Report {
        target: target.to_owned(),
        execs: None,
        coverage: None,
        corpus: None,
        findings: BTreeMap::new(),
        regressions_passed: 0,
        regressions_failed: Vec::new(),
    };

    for input in files_in(&fuzz_dir.join("regressions").join(target)) {
        match replay(&exe, &input)? {
            None => report.regressions_passed += 1,
            Some(message) => {
                println!(
                    "regression input fails again: {}: {message}",
                    input.display()
                );
                report.regressions_failed.push((input, message));
            }
        }
    }

    let work = fuzz_dir.join("target").join("work").join(target);
    let seeds = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    for dir in [&work, &artifacts] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let before = files_in(&artifacts);
    let log_path = log_dir.join(format!("{target}.log"));
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    // The targets that write files (config, token file) do so under the temporary directory,
    // one per process; each job of the fork mode is a process, so give them one to fill.
    let tmp = fuzz_dir.join("target").join("tmp").join(target);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut cmd = cargo_fuzz(["run", "--sanitizer", sanitizer.name(), target]);
    cmd.env("TMPDIR", &tmp);
    cmd.arg(&work).arg(&seeds).arg("--").args([
        format!("-max_total_time={seconds}"),
        format!("-timeout={INPUT_TIMEOUT_SECONDS}"),
        "-fork=1".into(),
        "-ignore_crashes=1".into(),
        "-ignore_timeouts=1".into(),
        "-ignore_ooms=1".into(),
    ]);
    if let Some(dict) = dictionary(fuzz_dir, target) {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.stderr(Stdio::from(log));
    println!("(libFuzzer's output: {})", log_path.display());
    // libFuzzer exits non-zero when it saved failing inputs; they are read below instead.
    let limit = Duration::from_secs(seconds) + 30 * MINUTE;
    if let Err(err) = run(&mut cmd, limit) {
        println!("{err}");
    }
    let _ = std::fs::remove_dir_all(&tmp);

    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Some(status) = text
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains("cov:"))
    {
        let number = |key: &str| {
            status
                .split_whitespace()
                .skip_while(|w| *w != key)
                .nth(1)
                .and_then(|v| v.split('/').next()?.parse::<u64>().ok())
        };
        report.execs = status
            .trim_start_matches('#')
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok());
        report.coverage = number("cov:");
        report.corpus = number("corp:");
    }

    for input in files_in(&artifacts).difference(&before) {
        let message = replay(&exe, input)?
            .unwrap_or_else(|| "failed in the run, passes alone (flaky or a time-out)".into());
        report
            .findings
            .entry(kind_of(&message))
            .or_default()
            .push(input.clone());
    }
    for inputs in report.findings.values_mut() {
        inputs.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX));
    }
    Ok(report)
}

fn summary(reports: &[Report], seconds: u64, sanitizer: Sanitizer) {
    println!();
    println!(
        "==> fuzz summary ({seconds} s per target, sanitizer: {})",
        sanitizer.name()
    );
    println!(
        "{:<22} {:>10} {:>7} {:>7} {:>9} {:>12}",
        "target", "execs", "cov", "corpus", "failing", "regressions"
    );
    let show = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    for r in reports {
        let failing: usize = r.findings.values().map(Vec::len).sum();
        println!(
            "{:<22} {:>10} {:>7} {:>7} {:>9} {:>12}",
            r.target,
            show(r.execs),
            show(r.coverage),
            show(r.corpus),
            failing,
            format!(
                "{}/{} pass",
                r.regressions_passed,
                r.regressions_passed + r.regressions_failed.len()
            )
        );
    }
    for r in reports {
        for (kind, inputs) in &r.findings {
            println!(
                "\n{}: {} input(s): {kind}\n    smallest: {}",
                r.target,
                inputs.len(),
                inputs
                    .first()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        for (input, message) in &r.regressions_failed {
            println!(
                "\n{}: regression input fails: {}\n    {message}",
                r.target,
                input.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_grouped_by_the_head_of_their_message() {
        assert_eq!(
            kind_of(
                "the error's Display contains a secret (as \"s3cr3t\"): invalid response (HTTP 400): ..."
            ),
            "the error's Display contains a secret (as \"s3cr3t\")"
        );
        assert_eq!(kind_of("short"), "short");
        assert!(kind_of(&"x".repeat(300)).ends_with("..."));
    }
}
