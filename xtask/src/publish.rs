//! What users get: the library crates as crates.io would receive them (`package`), and built
//! against the newest versions their manifests allow (`newest`), as a new project resolves them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cmd::{capture, cargo, run};
use crate::tasks::Outcome;
use crate::workspace;

const MINUTE: Duration = Duration::from_secs(60);

/// What the `newest` copy takes from the workspace: the manifest, the lint configuration and
/// every member's folder. Not `Cargo.lock` (the point is to resolve afresh), not `fuzz`
/// (outside the workspace).
const NEWEST_COPIES: &[&str] = &[
    "Cargo.toml",
    "clippy.toml",
    ".cargo",
    "crates",
    "xtask",
    "tests",
];

/// Never copied: build output and the test provider's npm packages.
const NEWEST_SKIPS: &[&str] = &["target", "node_modules"];

/// `cargo package -p <each library>`: each crate is packed and built from its `.crate` file
/// as crates.io would build it; the workspace's crates not yet on crates.io come from a local
/// overlay, so crates that depend on each other are checked together, in dependency order.
pub(crate) fn package() -> Outcome {
    let target = check_manifests()?;
    let libraries = workspace::libraries()?;
    let names: Vec<&str> = libraries.iter().map(|l| l.name.as_str()).collect();
    // The packed crates are built in a target directory of their own, cleared of them first.
    let verify = target.join("package-verify");
    forget_packed_builds(&names, &verify);
    let mut cmd = cargo(["package", "--allow-dirty", "--target-dir"]);
    cmd.arg(&verify);
    for library in &libraries {
        cmd.args(["-p", &library.name]);
    }
    run(&mut cmd, 40 * MINUTE)?;
    Ok(Some(format!("{} crates packaged", libraries.len())))
}

/// Forgets what earlier runs made of the crates `names`, which cargo takes for immutable
/// because they come from a registry (the local overlay of the crates packed together) with a
/// version that has not changed: their sources unpacked in `$CARGO_HOME/registry/src/-<hash>/`
/// and their build fingerprints in `verify`. Without this, a crate would be checked against
/// its dependencies as an earlier run packed them. crates.io's own sources are never touched.
fn forget_packed_builds(names: &[&str], verify: &Path) {
    let overlays = std::fs::read_dir(crate::tasks::cargo_home().join("registry/src"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|registry| registry.file_name().to_string_lossy().starts_with('-'))
        .map(|registry| registry.path());
    for dir in overlays.chain([verify.join("debug/.fingerprint")]) {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            // `<name>-<version>` (sources) or `<name>-<hash>` (fingerprints); no crate's name
            // is another's followed by `-` and a hex digit.
            let ours = names.iter().any(|name| {
                file_name
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_hexdigit()))
            });
            if ours && let Err(e) = std::fs::remove_dir_all(entry.path()) {
                eprintln!("package: could not remove {}: {e}", entry.path().display());
            }
        }
    }
}

/// Every library crate's manifest has what crates.io shows and docs.rs reads; returns the
/// workspace's target directory.
fn check_manifests() -> Result<std::path::PathBuf, String> {
    let json = capture(
        &mut cargo(["metadata", "--format-version", "1", "--no-deps"]),
        5 * MINUTE,
    )?;
    let metadata: Value =
        serde_json::from_str(&json).map_err(|e| format!("cargo metadata: bad JSON: {e}"))?;
    let libraries = workspace::libraries()?;
    let mut problems = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        if !libraries.iter().any(|library| library.name == name) {
            continue;
        }
        let missing = missing_metadata(package);
        if !missing.is_empty() {
            problems.push(format!("{name} lacks {}", missing.join(", ")));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    metadata["target_directory"]
        .as_str()
        .map(std::path::PathBuf::from)
        .ok_or_else(|| "cargo metadata names no target_directory".into())
}

/// The fields of one package of `cargo metadata` that a published crate needs and lacks.
fn missing_metadata(package: &Value) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for field in ["description", "license", "repository", "readme"] {
        if package[field].as_str().is_none_or(str::is_empty) {
            missing.push(field);
        }
    }
    for field in ["keywords", "categories"] {
        if package[field].as_array().is_none_or(Vec::is_empty) {
            missing.push(field);
        }
    }
    if package["metadata"]["docs"]["rs"]["all-features"] != Value::Bool(true) {
        missing.push("[package.metadata.docs.rs] all-features = true");
    }
    missing
}

/// The library crates built and unit-tested in `target/newest/` after `cargo update`, with
/// warnings (a deprecation) as errors, so a dependency's next release that breaks or
/// deprecates something shows up here before users see it.
pub(crate) fn newest() -> Outcome {
    let root = crate::workspace_root();
    let newest = root.join("target").join("newest");
    let copy = newest.join("workspace");
    if copy.exists() {
        std::fs::remove_dir_all(&copy)
            .map_err(|e| format!("cannot remove {}: {e}", copy.display()))?;
    }
    for name in NEWEST_COPIES {
        copy_tree(&root.join(name), &copy.join(name))?;
    }

    let in_copy = |args: &[&str]| {
        let mut cmd = cargo(args);
        cmd.current_dir(&copy)
            .env("CARGO_TARGET_DIR", newest.join("target"))
            .env("RUSTFLAGS", "-D warnings")
            // A one-off build: no incremental state and no debug info, for less time and disk.
            .env("CARGO_INCREMENTAL", "0")
            .env("CARGO_PROFILE_DEV_DEBUG", "false");
        cmd
    };
    // As a project without a `rust-version` resolves: the newest versions this toolchain
    // builds, not only those that declare support for the workspace's `rust-version`.
    let mut update = in_copy(&["update"]);
    update.env("CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS", "allow");
    run(&mut update, 10 * MINUTE)?;
    let libraries = workspace::libraries()?;
    let packages: Vec<&str> = libraries
        .iter()
        .flat_map(|library| ["-p", library.name.as_str()])
        .collect();
    let with_packages = |args: &[&str]| -> Command {
        let mut cmd = in_copy(args);
        cmd.args(&packages);
        cmd
    };
    run(
        &mut with_packages(&["build", "--all-features"]),
        40 * MINUTE,
    )?;
    run(
        &mut with_packages(&["test", "--all-features", "--lib"]),
        40 * MINUTE,
    )?;
    Ok(None)
}

/// Copies a file, or a folder and everything in it but [`NEWEST_SKIPS`].
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let fail =
        |e: std::io::Error| format!("cannot copy {} to {}: {e}", from.display(), to.display());
    if from.is_file() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        std::fs::copy(from, to).map_err(fail)?;
        return Ok(());
    }
    std::fs::create_dir_all(to).map_err(fail)?;
    for entry in std::fs::read_dir(from).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let name = entry.file_name();
        if NEWEST_SKIPS.iter().any(|skip| name == *skip) {
            continue;
        }
        copy_tree(&entry.path(), &to.join(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_without_docs_rs_metadata_or_a_description_is_named() {
        let complete = serde_json::json!({
            "description": "d", "license": "Apache-2.0", "repository": "https://x",
            "readme": "README.md", "keywords": ["k"], "categories": ["c"],
            "metadata": {"docs": {"rs": {"all-features": true}}}
        });
        assert!(missing_metadata(&complete).is_empty());
        let mut bare = complete.clone();
        bare["metadata"] = Value::Null;
        bare["description"] = Value::Null;
        bare["keywords"] = serde_json::json!([]);
        assert_eq!(
            missing_metadata(&bare),
            [
                "description",
                "keywords",
                "[package.metadata.docs.rs] all-features = true"
            ]
        );
    }

    #[test]
    fn this_workspaces_libraries_have_what_crates_io_and_docs_rs_need() {
        check_manifests().unwrap();
    }

    #[test]
    fn copy_tree_copies_sources_and_skips_build_output() {
        let dir = std::env::temp_dir().join(format!("xtask-copy-tree-{}", std::process::id()));
        let from = dir.join("from");
        std::fs::create_dir_all(from.join("src")).unwrap();
        std::fs::create_dir_all(from.join("target/debug")).unwrap();
        std::fs::create_dir_all(from.join("idp/node_modules/x")).unwrap();
        std::fs::write(from.join("src/lib.rs"), "// lib").unwrap();
        std::fs::write(from.join("target/debug/out"), "built").unwrap();
        std::fs::write(from.join("idp/node_modules/x/index.js"), "js").unwrap();

        copy_tree(&from, &dir.join("to")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("to/src/lib.rs")).unwrap(),
            "// lib"
        );
        assert!(!dir.join("to/target").exists());
        assert!(dir.join("to/idp").is_dir());
        assert!(!dir.join("to/idp/node_modules").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_copy_holds_every_workspace_member_and_no_lockfile() {
        let root = crate::workspace_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        for member in ["crates/*", "xtask", "xtask/floor", "tests"] {
            let top = member.split('/').next().unwrap();
            assert!(manifest.contains(&format!("\"{member}\"")), "{member}");
            assert!(NEWEST_COPIES.contains(&top), "{top}");
        }
        assert!(!NEWEST_COPIES.contains(&"Cargo.lock"));
    }
}
