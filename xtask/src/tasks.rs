//! The checks: one function per `cargo xtask <task>`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::{capture, cargo, run, show};
use crate::workspace::{self, Node};

/// What a task returns: `Ok` with an optional note for the summary, or `Err` saying what failed.
pub(crate) type Outcome = Result<Option<String>, String>;

const MINUTE: Duration = Duration::from_secs(60);

/// `cargo fmt --all -- --check`
pub(crate) fn fmt() -> Outcome {
    run(&mut cargo(["fmt", "--all", "--", "--check"]), 5 * MINUTE)?;
    Ok(None)
}

/// `cargo clippy --workspace --all-targets --all-features -- -D warnings`
pub(crate) fn clippy() -> Outcome {
    run(
        &mut cargo([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
        40 * MINUTE,
    )?;
    Ok(None)
}

/// `cargo test --workspace --all-features`: the whole test suite, in one command.
pub(crate) fn test() -> Outcome {
    run(
        &mut cargo(["test", "--workspace", "--all-features"]),
        60 * MINUTE,
    )?;
    Ok(None)
}

/// `RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features`
pub(crate) fn doc() -> Outcome {
    let mut cmd = cargo(["doc", "--workspace", "--no-deps", "--all-features"]);
    cmd.env("RUSTDOCFLAGS", "-D warnings");
    run(&mut cmd, 30 * MINUTE)?;
    Ok(None)
}

/// `cargo deny check bans licenses sources`, plus `advisories` when a RustSec database is
/// on this machine (see the comment at the top of `deny.toml`).
pub(crate) fn deny() -> Outcome {
    if capture(&mut cargo(["deny", "--version"]), MINUTE).is_err() {
        return Err("cargo-deny is not installed: cargo install --locked cargo-deny@0.20.2".into());
    }
    run(
        &mut cargo(["deny", "check", "bans", "licenses", "sources"]),
        10 * MINUTE,
    )?;

    let Some(db) = advisory_db() else {
        let root = advisory_db_root();
        println!();
        println!("!!! ADVISORY CHECK NOT RUN: no RustSec advisory database in");
        println!("!!!   {}", root.display());
        println!("!!! Known vulnerabilities in dependencies were NOT checked. The database");
        println!("!!! is a git repository on GitHub; where GitHub is reachable,");
        println!("!!! `cargo deny fetch db` gets it, and later runs check against it.");
        println!();
        return Ok(Some("advisories NOT checked: no advisory database".into()));
    };
    println!("advisory database: {}", db.display());
    // With CARGO_NET_OFFLINE=true use the database as it is, without updating it.
    let offline = std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true");
    let mut cmd = cargo(["deny"]);
    if offline {
        cmd.arg("--offline");
    }
    cmd.args(["check", "advisories"]);
    run(&mut cmd, 10 * MINUTE)?;
    Ok(None)
}

/// Where cargo-deny keeps advisory databases by default: `$CARGO_HOME/advisory-dbs`.
fn advisory_db_root() -> PathBuf {
    cargo_home().join("advisory-dbs")
}

/// `$CARGO_HOME`, else `~/.cargo`.
pub(crate) fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// A cloned RustSec database (`advisory-db-<hash>/.git`) under [`advisory_db_root`].
fn advisory_db() -> Option<PathBuf> {
    std::fs::read_dir(advisory_db_root())
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("advisory-db-"))
                && path.join(".git").exists()
        })
}

/// The feature sets each library crate must build with on its own.
///
/// Default features; no features (when it has any); and each feature alone. For `flyte-auth`
/// that is each flow (`command`, `pkce`, `device`, `clientcreds`) and each store (`keyring`,
/// `file`) alone, whatever features its manifest declares at the time.
fn feature_sets(package: &workspace::Package) -> Vec<Vec<String>> {
    let mut sets = vec![vec![]];
    if package.features.iter().any(|f| f != "default") {
        sets.push(vec!["--no-default-features".to_owned()]);
    }
    for feature in package.user_features() {
        sets.push(vec![
            "--no-default-features".to_owned(),
            "--features".to_owned(),
            feature.to_owned(),
        ]);
    }
    sets
}

/// `cargo check -p <crate>` for each library crate alone, with each of its feature sets; and
/// `cargo test` of the tests that only exist without a feature.
///
/// Cargo resolves features for the selected package only, so this catches a crate that
/// compiles inside the workspace only thanks to features another crate turns on.
///
/// The test suite runs with `--all-features`, where a test under `#[cfg(not(feature = "x"))]`
/// is not even compiled. So every such test (found in the crate's `tests/*.rs` and `src/`) is
/// run here, with every feature of its crate but the ones its gates name, and must be reported
/// as passed; a test gated any other way that names a feature's absence fails this step.
pub(crate) fn isolation() -> Outcome {
    let mut failed = Vec::new();
    let mut count = 0;
    for package in workspace::libraries()? {
        for set in feature_sets(&package) {
            count += 1;
            let mut cmd = cargo(["check", "--quiet", "-p", &package.name]);
            cmd.args(&set);
            if let Err(err) = run(&mut cmd, 20 * MINUTE) {
                println!("FAILED: {err}");
                failed.push(show(&cmd));
            }
        }
    }
    let mut gated_runs = 0;
    for package in workspace::libraries()? {
        for (target, tests) in gated_targets(&package)? {
            gated_runs += 1;
            if let Err(err) = run_gated(&package, &target, &tests) {
                println!("FAILED: {err}");
                failed.push(err);
            }
        }
    }
    if failed.is_empty() {
        Ok(Some(format!(
            "{count} crate/feature builds, {gated_runs} runs of tests that exist without a feature"
        )))
    } else {
        Err(format!(
            "{} of {count} builds failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        ))
    }
}

/// A test compiled only without a feature: `#[cfg(not(feature = "<feature>"))]` on it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GatedTest {
    name: String,
    feature: String,
}

/// The tests of `text` (a Rust source file) that are compiled only without a feature. A test
/// under another gate that is false with every feature on (`not(...)` or `all(...)` naming a
/// feature's absence: `all(unix, not(feature = "x"))`) is an error: this step could not tell
/// which build runs it. (`any(not(feature = "x"), unix)` may be true with every feature on,
/// and is left to the suite.)
fn gated_tests(text: &str) -> Result<Vec<GatedTest>, String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(predicate) = line
            .strip_prefix("#[cfg(")
            .and_then(|rest| rest.strip_suffix(")]"))
        else {
            continue;
        };
        let false_with_all_features = (predicate.starts_with("not(")
            && predicate.contains("feature"))
            || (predicate.starts_with("all(")
                && (predicate.contains("not(feature") || predicate.contains("not(any(feature")));
        if !false_with_all_features {
            continue;
        }
        // The attributes and comments after the gate, up to the item it applies to.
        let mut is_test = false;
        let mut name = None;
        for next in &lines[i + 1..] {
            if next.starts_with("#[") {
                is_test |=
                    *next == "#[test]" || next.contains("::test]") || next.contains("::test(");
            } else if !(next.is_empty() || next.starts_with("//")) {
                name = next
                    .strip_prefix("async fn ")
                    .or_else(|| next.strip_prefix("fn "))
                    .and_then(|rest| rest.split(['(', '<']).next())
                    .map(str::to_owned);
                break;
            }
        }
        if !is_test {
            continue;
        }
        let feature = line
            .strip_prefix("#[cfg(not(feature = \"")
            .and_then(|rest| rest.strip_suffix("\"))]"));
        match (feature, name) {
            (Some(feature), Some(name)) if !feature.contains('"') => found.push(GatedTest {
                name,
                feature: feature.to_owned(),
            }),
            _ => {
                return Err(format!(
                    "line {}: a test under `{line}`: gate it with exactly one \
                     `#[cfg(not(feature = \"x\"))]` on a `fn`, so that `cargo xtask isolation` \
                     knows which build runs it",
                    i + 1
                ));
            }
        }
    }
    Ok(found)
}

/// A test target (`--test <name>` or `--lib`) and its gated tests.
type GatedTarget = (Vec<String>, Vec<GatedTest>);

/// The `.rs` files under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The test targets of `package` that hold gated tests: `--test <name>` for each file of
/// `tests/`, `--lib` for `src/`; with their gated tests.
fn gated_targets(package: &workspace::Package) -> Result<Vec<GatedTarget>, String> {
    let mut targets = Vec::new();
    let mut in_files = |files: Vec<PathBuf>, target: Vec<String>| -> Result<(), String> {
        let mut tests = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            tests.extend(gated_tests(&text).map_err(|e| format!("{}: {e}", file.display()))?);
        }
        if !tests.is_empty() {
            targets.push((target, tests));
        }
        Ok(())
    };
    // Each file directly in `tests/` is a test target; its modules are in subdirectories.
    for file in rust_files(&package.dir.join("tests")) {
        if file.parent() == Some(package.dir.join("tests").as_path())
            && let Some(stem) = file.file_stem().and_then(|s| s.to_str())
        {
            in_files(
                vec![file.clone()],
                vec!["--test".to_owned(), stem.to_owned()],
            )?;
        }
    }
    in_files(
        rust_files(&package.dir.join("src")),
        vec!["--lib".to_owned()],
    )?;
    Ok(targets)
}

/// The `cargo test` arguments for `tests` of `package`: every feature but the ones the gates
/// name, which must be features of the package.
fn gated_features(
    package: &workspace::Package,
    tests: &[GatedTest],
) -> Result<Vec<String>, String> {
    let off: BTreeSet<&str> = tests.iter().map(|t| t.feature.as_str()).collect();
    if let Some(unknown) = off
        .iter()
        .find(|f| !package.user_features().any(|u| u == **f))
    {
        return Err(format!(
            "{}: a test is gated on the absence of `{unknown}`, which is not one of its features",
            package.name
        ));
    }
    let on: Vec<&str> = package
        .user_features()
        .filter(|f| !off.contains(f))
        .collect();
    let mut args = vec!["--no-default-features".to_owned()];
    if !on.is_empty() {
        args.extend(["--features".to_owned(), on.join(",")]);
    }
    Ok(args)
}

/// Runs the gated `tests` of `target` and checks that each was run and passed.
fn run_gated(
    package: &workspace::Package,
    target: &[String],
    tests: &[GatedTest],
) -> Result<(), String> {
    let mut cmd = cargo(["test", "-p", &package.name]);
    cmd.args(gated_features(package, tests)?)
        .args(target)
        .arg("--");
    cmd.args(tests.iter().map(|t| &t.name));
    println!("$ {}", show(&cmd));
    let out = capture(&mut cmd, 20 * MINUTE)?;
    print!("{out}");
    let missing: Vec<&str> = tests
        .iter()
        .map(|t| t.name.as_str())
        .filter(|name| {
            !out.lines().any(|l| {
                l.starts_with("test ")
                    && l.ends_with(" ... ok")
                    && l.trim_end_matches(" ... ok").ends_with(name)
            })
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "`{}` did not run {}: a feature the others turn on may need the one its gate turns off",
            show(&cmd),
            missing.join(", ")
        ))
    }
}

/// Crates that mean an HTTP stack, a TLS stack or an async executor.
const NETWORK_CRATES: &[&str] = &[
    "reqwest",
    "hyper",
    "hyper-util",
    "h2",
    "h3",
    "rustls",
    "tokio-rustls",
    "native-tls",
    "tokio-native-tls",
    "openssl",
    "openssl-sys",
    "ring",
    "aws-lc-rs",
    "aws-lc-sys",
    "ureq",
    "curl",
    "isahc",
    "async-std",
    "async-executor",
    "async-global-executor",
    "smol",
];

/// Crates of the platform config's reading (flyte-auth's feature `config`): a YAML parser,
/// the home directory lookup.
const CONFIG_CRATES: &[&str] = &[
    "serde-saphyr",
    "granit-parser",
    "saphyr-parser",
    "serde_yaml",
    "serde_yml",
    "yaml-rust",
    "yaml-rust2",
    "dirs",
    "dirs-sys",
];

/// A promise about what a build must not pull in.
struct Rule {
    package: &'static str,
    /// Build with `--no-default-features --features <these, comma-separated>` instead of
    /// default features.
    only_feature: Option<&'static str>,
    /// tokio features that must stay off.
    tokio_forbidden: &'static [&'static str],
    /// Crates that must stay out, besides [`NETWORK_CRATES`] when `no_network`.
    also_forbidden: &'static [&'static str],
    /// Whether [`NETWORK_CRATES`] are forbidden.
    no_network: bool,
}

/// Core has no network and no runtime; the command flow, alone or through the umbrella, has
/// no HTTP or TLS stack and brings no executor; the umbrella without its feature `config`
/// builds no YAML parser and no `dirs`.
const RULES: &[Rule] = &[
    Rule {
        package: "flyte-auth-core",
        only_feature: None,
        tokio_forbidden: &["rt", "rt-multi-thread", "net", "time"],
        also_forbidden: &[],
        no_network: true,
    },
    Rule {
        package: "flyte-auth-command",
        only_feature: None,
        tokio_forbidden: &["rt", "rt-multi-thread", "net"],
        also_forbidden: &[],
        no_network: true,
    },
    Rule {
        package: "flyte-auth",
        only_feature: Some("command"),
        tokio_forbidden: &["rt", "rt-multi-thread", "net"],
        also_forbidden: CONFIG_CRATES,
        no_network: true,
    },
    // A controller's client-credentials authenticator on a gRPC channel pays for no config
    // reading: no YAML parser, no home directory lookup.
    Rule {
        package: "flyte-auth",
        only_feature: Some("clientcreds,tower"),
        tokio_forbidden: &[],
        also_forbidden: CONFIG_CRATES,
        no_network: false,
    },
];

/// What in `nodes` breaks `rule`, one line per offence.
fn offences(rule: &Rule, nodes: &[Node]) -> Vec<String> {
    let mut found = Vec::new();
    for node in nodes.iter().skip(1) {
        let name = node.name.as_str();
        if (rule.no_network && NETWORK_CRATES.contains(&name))
            || rule.also_forbidden.contains(&name)
        {
            found.push(format!("{} {}", node.name, node.version));
        }
        if node.name == "tokio" {
            for feature in rule.tokio_forbidden {
                if node.features.contains(*feature) {
                    found.push(format!("tokio feature \"{feature}\""));
                }
            }
        }
    }
    found
}

/// Prints each library crate's dependency count and enforces [`RULES`].
///
/// The count is the distinct packages in `cargo tree -p X -e normal` (default features, this
/// machine's target), without the crate itself. The rules look at every target platform.
pub(crate) fn footprint() -> Outcome {
    let packages = workspace::packages()?;
    println!("Normal dependencies (default features, this machine's target), distinct packages:");
    println!("{:<28} {:>6} {:>16}", "crate", "deps", "from workspace");
    for package in packages.iter().filter(|p| p.is_library()) {
        let nodes = workspace::tree(&package.name, &[], false)?;
        let deps = &nodes[1.min(nodes.len())..];
        let internal = deps
            .iter()
            .filter(|n| packages.iter().any(|p| p.name == n.name))
            .count();
        println!("{:<28} {:>6} {:>16}", package.name, deps.len(), internal);
    }
    println!();

    let mut broken = Vec::new();
    for rule in RULES {
        if let Err(err) = check_rule(rule, &packages) {
            println!("FAILED: {err}");
            broken.push(err);
        }
    }
    if broken.is_empty() {
        Ok(None)
    } else {
        Err(broken.join("\n"))
    }
}

/// Checks one [`Rule`]; on failure shows with `cargo tree -i` how the offenders come in.
fn check_rule(rule: &Rule, packages: &[workspace::Package]) -> Result<(), String> {
    let package = workspace::find(packages, rule.package)?;
    let mut args = Vec::new();
    if let Some(feature) = rule.only_feature {
        if let Some(missing) = feature
            .split(',')
            .find(|wanted| !package.features.iter().any(|f| f == wanted))
        {
            return Err(format!("{} has no feature `{missing}`", rule.package));
        }
        args = ["--no-default-features", "--features", feature]
            .map(String::from)
            .to_vec();
    }
    let label = format!("{} {}", rule.package, args.join(" "));
    let label = label.trim_end();
    let found = offences(rule, &workspace::tree(rule.package, &args, true)?);
    if found.is_empty() {
        let mut promise = Vec::new();
        if rule.no_network {
            promise.push("no HTTP/TLS stack and no async executor");
        }
        if !rule.also_forbidden.is_empty() {
            promise.push("no config reading (YAML, dirs)");
        }
        println!("ok: {label} has {}", promise.join(", "));
        return Ok(());
    }
    // Show how the first offenders come in: who enables tokio's features, who pulls the
    // first forbidden crate.
    let tokio = found
        .iter()
        .any(|f| f.starts_with("tokio feature"))
        .then_some(("tokio", &["-e", "normal,features", "--depth", "2"][..]));
    let first_crate = found
        .iter()
        .find(|f| !f.starts_with("tokio feature"))
        .and_then(|f| f.split(' ').next())
        .map(|name| (name, &["-e", "normal"][..]));
    for (name, view) in tokio.into_iter().chain(first_crate) {
        let mut why = cargo(["tree", "-p", rule.package]);
        why.args(view)
            .args(&args)
            .args(["--target", "all", "-i", name]);
        let _ = run(&mut why, 5 * MINUTE);
    }
    Err(format!("{label} pulls in {}", found.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn node(name: &str, features: &[&str]) -> Node {
        Node {
            name: name.into(),
            version: "1.0.0".into(),
            features: features
                .iter()
                .map(|f| f.to_string())
                .collect::<BTreeSet<_>>(),
        }
    }

    #[test]
    fn core_may_use_tokio_sync_but_not_a_runtime_or_http_client() {
        let core = &RULES[0];
        let clean = [node("flyte-auth-core", &[]), node("tokio", &["sync"])];
        assert!(offences(core, &clean).is_empty());

        let dirty = [
            node("flyte-auth-core", &[]),
            node("tokio", &["sync", "rt", "time"]),
            node("reqwest", &["json"]),
        ];
        assert_eq!(
            offences(core, &dirty),
            [
                "tokio feature \"rt\"",
                "tokio feature \"time\"",
                "reqwest 1.0.0"
            ]
        );
    }

    #[test]
    fn the_crate_under_test_is_not_its_own_offence() {
        let rule = Rule {
            package: "ring",
            only_feature: None,
            tokio_forbidden: &[],
            also_forbidden: &[],
            no_network: true,
        };
        assert!(offences(&rule, &[node("ring", &[])]).is_empty());
    }

    #[test]
    fn a_yaml_parser_or_dirs_breaks_the_rule_of_the_umbrella_without_config() {
        let rule = RULES
            .iter()
            .find(|r| r.only_feature == Some("clientcreds,tower"))
            .unwrap();
        let clean = [
            node("flyte-auth", &[]),
            node("reqwest", &[]),
            node("tokio", &["rt"]),
        ];
        assert!(offences(rule, &clean).is_empty());
        let dirty = [
            node("flyte-auth", &[]),
            node("serde-saphyr", &[]),
            node("dirs", &[]),
        ];
        assert_eq!(offences(rule, &dirty), ["serde-saphyr 1.0.0", "dirs 1.0.0"]);
        let command = RULES
            .iter()
            .find(|r| r.only_feature == Some("command"))
            .unwrap();
        assert_eq!(offences(command, &dirty).len(), 2);
    }

    #[test]
    fn each_feature_is_built_alone_and_without_defaults() {
        let umbrella = workspace::Package {
            name: "flyte-auth".into(),
            features: vec![
                "_private".into(),
                "command".into(),
                "default".into(),
                "pkce".into(),
            ],
            publishable: true,
            has_lib: true,
            dir: PathBuf::new(),
        };
        let sets: Vec<String> = feature_sets(&umbrella)
            .iter()
            .map(|s| s.join(" "))
            .collect();
        assert_eq!(
            sets,
            [
                "",
                "--no-default-features",
                "--no-default-features --features command",
                "--no-default-features --features pkce",
            ]
        );

        let plain = workspace::Package {
            features: vec![],
            ..umbrella
        };
        assert_eq!(feature_sets(&plain), [Vec::<String>::new()]);
    }

    #[test]
    fn tests_that_exist_only_without_a_feature_are_found_by_their_gate() {
        let text = r#"
#[cfg(not(feature = "device"))]
#[test]
fn without_device() {}

/// A doc comment between.
#[cfg(not(feature = "pkce"))]
#[tokio::test(flavor = "current_thread")]
async fn without_pkce() {}

#[cfg(not(feature = "command"))]
fn not_a_test() {}

#[cfg(feature = "device")]
#[test]
fn with_device() {}
"#;
        assert_eq!(
            gated_tests(text).unwrap(),
            [
                GatedTest {
                    name: "without_device".into(),
                    feature: "device".into()
                },
                GatedTest {
                    name: "without_pkce".into(),
                    feature: "pkce".into()
                },
            ]
        );
        let err = gated_tests("#[cfg(all(unix, not(feature = \"x\")))]\n#[test]\nfn t() {}\n")
            .unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn gated_tests_run_with_every_other_feature() {
        let package = workspace::Package {
            name: "flyte-auth".into(),
            features: vec![
                "command".into(),
                "default".into(),
                "device".into(),
                "pkce".into(),
            ],
            publishable: true,
            has_lib: true,
            dir: PathBuf::new(),
        };
        let gated = |feature: &str| GatedTest {
            name: "t".into(),
            feature: feature.into(),
        };
        assert_eq!(
            gated_features(&package, &[gated("device"), gated("pkce")]).unwrap(),
            ["--no-default-features", "--features", "command"]
        );
        assert!(gated_features(&package, &[gated("nope")]).is_err());
    }

    /// The tests of this workspace gated on a feature's absence are found, so the step runs
    /// them (the suite's `--all-features` never compiles them).
    #[test]
    fn this_workspaces_gated_tests_are_found() {
        let root = crate::workspace_root();
        let text = std::fs::read_to_string(root.join("crates/store/tests/select.rs")).unwrap();
        let names: Vec<String> = gated_tests(&text)
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(
            names.contains(&"a_kind_this_build_lacks_is_unavailable".to_owned()),
            "{names:?}"
        );
    }
}
