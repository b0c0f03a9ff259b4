//! Every input the fuzzers ever found failing (`fuzz/regressions/<target>/`), and the seed
//! corpus of the same targets, replayed with the fuzz targets' own checks on every
//! `cargo test`: the fuzz crate is not a member of the workspace, so without this a fixed
//! finding could come back unnoticed until the next fuzzing run.
//!
//! The checks are the fuzz crate's `checks.rs`, included here through its `lib.rs`, which
//! uses nothing of libFuzzer.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

#[allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "the fuzz crate's helpers, not all of which the replay uses"
)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz_support;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly in `dir`, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs `target`'s check on every file of `dir`; the failures, with their message.
fn replay(target: &str, dir: &Path) -> (usize, Vec<String>) {
    let check = fuzz_support::checks::check_for(target)
        .unwrap_or_else(|| panic!("no check for the fuzz target {target}"));
    let mut failures = Vec::new();
    let files = files_in(dir);
    for file in &files {
        let input = std::fs::read(file).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    (files.len(), failures)
}

/// The targets whose regressions and seeds are replayed here.
const REPLAYED: [&str; 5] = [
    "token_response",
    "device_authorization",
    "expiry_arithmetic",
    "stored_entry",
    "token_file",
];

#[test]
fn every_regression_input_passes_the_check_it_once_failed() {
    let mut failures = Vec::new();
    for dir in std::fs::read_dir(fuzz_dir().join("regressions")).unwrap() {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            REPLAYED.contains(&target.as_str()),
            "fuzz/regressions/{target} has no replay: add its check to fuzz/src/checks.rs"
        );
        let (count, failed) = replay(&target, &dir);
        assert!(count > 0, "fuzz/regressions/{target} is empty");
        failures.extend(failed);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_replayed_targets_seed_corpus_passes_its_checks() {
    let mut failures = Vec::new();
    for target in REPLAYED {
        let (_, failed) = replay(target, &fuzz_dir().join("corpus").join(target));
        failures.extend(failed);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
