//! What the workspace holds, read from `cargo metadata` and `cargo tree` at run time, so that
//! xtask keeps working as crates and features come and go.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::cmd::{capture, cargo};

const METADATA_LIMIT: Duration = Duration::from_secs(300);
const TREE_LIMIT: Duration = Duration::from_secs(300);

/// One workspace package, as far as xtask cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    /// Declared features (`[features]` plus implicit ones of optional dependencies), sorted.
    pub(crate) features: Vec<String>,
    /// `publish = false` is not set.
    pub(crate) publishable: bool,
    /// Has a `lib` (or proc-macro) target.
    pub(crate) has_lib: bool,
    /// The directory of its `Cargo.toml`.
    pub(crate) dir: PathBuf,
}

impl Package {
    /// A published library: what users depend on, so what must build alone.
    pub(crate) fn is_library(&self) -> bool {
        self.publishable && self.has_lib
    }

    /// Features a user can ask for: not `default`, not internal ones starting with `_`.
    pub(crate) fn user_features(&self) -> impl Iterator<Item = &str> {
        self.features
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "default" && !f.starts_with('_'))
    }
}

/// All workspace members, sorted by name.
pub(crate) fn packages() -> Result<Vec<Package>, String> {
    let json = capture(
        &mut cargo(["metadata", "--format-version", "1", "--no-deps"]),
        METADATA_LIMIT,
    )?;
    parse_metadata(&json)
}

/// The published library crates, sorted by name.
pub(crate) fn libraries() -> Result<Vec<Package>, String> {
    Ok(packages()?
        .into_iter()
        .filter(Package::is_library)
        .collect())
}

/// Finds a package by name, with an error naming what is missing.
pub(crate) fn find<'a>(packages: &'a [Package], name: &str) -> Result<&'a Package, String> {
    packages
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("package `{name}` is not in the workspace"))
}

fn parse_metadata(json: &str) -> Result<Vec<Package>, String> {
    let root: Value =
        serde_json::from_str(json).map_err(|err| format!("cargo metadata: bad JSON: {err}"))?;
    let list = root["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages` array")?;
    let mut packages = Vec::new();
    for p in list {
        let name = p["name"]
            .as_str()
            .ok_or("cargo metadata: package without a name")?
            .to_owned();
        let mut features: Vec<String> = p["features"]
            .as_object()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        features.sort();
        // `publish` is null when publishing anywhere is allowed, `[]` for `publish = false`.
        let publishable = match &p["publish"] {
            Value::Array(registries) => !registries.is_empty(),
            _ => true,
        };
        let has_lib = p["targets"].as_array().is_some_and(|targets| {
            targets.iter().any(|t| {
                t["kind"].as_array().is_some_and(|kinds| {
                    kinds
                        .iter()
                        .any(|k| matches!(k.as_str(), Some("lib" | "rlib" | "proc-macro")))
                })
            })
        });
        let dir = p["manifest_path"]
            .as_str()
            .map(PathBuf::from)
            .and_then(|manifest| manifest.parent().map(PathBuf::from))
            .unwrap_or_default();
        packages.push(Package {
            name,
            features,
            publishable,
            has_lib,
            dir,
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// One node of `cargo tree`: a package and the features enabled on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) features: BTreeSet<String>,
}

/// The normal (not dev, not build) dependencies of `package` built with `feature_args`,
/// deduplicated, the package itself first.
///
/// `all_targets` resolves for every platform instead of only this machine's.
pub(crate) fn tree(
    package: &str,
    feature_args: &[String],
    all_targets: bool,
) -> Result<Vec<Node>, String> {
    let mut cmd = cargo(["tree", "-p", package, "-e", "normal", "--prefix", "none"]);
    cmd.args(["--format", "{p}|{f}"]).args(feature_args);
    if all_targets {
        cmd.args(["--target", "all"]);
    }
    Ok(parse_tree(&capture(&mut cmd, TREE_LIMIT)?))
}

fn parse_tree(text: &str) -> Vec<Node> {
    let mut seen = BTreeSet::new();
    let mut nodes = Vec::new();
    for line in text.lines() {
        let line = line.trim_end().trim_end_matches(" (*)");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        let mut words = package.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        let node = Node {
            name: name.to_owned(),
            version: version.trim_start_matches('v').to_owned(),
            features: features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        if seen.insert((node.name.clone(), node.version.clone())) {
            nodes.push(node);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_tells_libraries_from_unpublished_and_binary_packages() {
        let json = r#"{"packages": [
            {"name": "lib-b", "publish": null, "features": {"default": ["x"], "x": []},
             "targets": [{"kind": ["lib"]}]},
            {"name": "tool", "publish": [], "features": {}, "targets": [{"kind": ["lib"]}]},
            {"name": "cli", "publish": null, "features": {}, "targets": [{"kind": ["bin"]}]},
            {"name": "lib-a", "publish": null, "features": {"_internal": [], "z": [], "a": []},
             "targets": [{"kind": ["lib"]}, {"kind": ["test"]}]}
        ]}"#;
        let packages = parse_metadata(json).expect("valid metadata");
        let names: Vec<_> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["cli", "lib-a", "lib-b", "tool"]);

        let libraries: Vec<_> = packages
            .iter()
            .filter(|p| p.is_library())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(libraries, ["lib-a", "lib-b"]);

        let lib_a = find(&packages, "lib-a").expect("lib-a is there");
        assert_eq!(lib_a.user_features().collect::<Vec<_>>(), ["a", "z"]);
        let lib_b = find(&packages, "lib-b").expect("lib-b is there");
        assert_eq!(lib_b.user_features().collect::<Vec<_>>(), ["x"]);
        assert!(find(&packages, "nope").is_err());
    }

    #[test]
    fn tree_output_is_deduplicated_with_features_per_package() {
        let text = "\
b v0.1.0 (/w/b)|
tokio v1.54.1|libc,mio,net,sync
tokio-macros v2.7.2 (proc-macro)|
libc v0.2.191|default,std
libc v0.2.191|default,std (*)
tokio v1.54.1|libc,mio,net,sync (*)
";
        let nodes = parse_tree(text);
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b", "tokio", "tokio-macros", "libc"]);
        assert_eq!(nodes[1].version, "1.54.1");
        assert!(nodes[1].features.contains("net"));
        assert!(nodes[0].features.is_empty());
    }
}
