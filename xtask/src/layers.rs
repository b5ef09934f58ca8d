//! `cargo xtask check-layers`: workspace crates may only depend downwards.
//!
//! The layering is rust-postgres's shape (STYLE.md #1):
//!
//! ```text
//! kafkit-protocol  <-  kafkit-conn  <-  {kafkit-reader, kafkit-writer, kafkit-admin}  <-  kafkit-stream  <-  {kafkit, kafkit-cli}
//! ```
//!
//! `kafkit-otel` (a hook, on kafkit-conn alone) sits in kafkit-stream's
//! layer, so that the facade can re-export it.
//!
//! A crate may depend on any crate in a *lower* layer, never on one in its
//! own layer or above. The table is data: crates that do not exist yet are
//! simply absent from `cargo metadata`, so the check works as they arrive. A
//! workspace crate that is neither layered nor exempt is an error, so a new
//! crate cannot slip past the check unnoticed.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Each layered crate and its layer; dependencies must point to a lower number.
const LAYERS: &[(&str, u32)] = &[
    ("kafkit-protocol", 0),
    ("kafkit-conn", 1),
    ("kafkit-reader", 2),
    ("kafkit-writer", 2),
    ("kafkit-admin", 2),
    ("kafkit-stream", 3),
    ("kafkit-otel", 3),
    ("kafkit", 4),
    ("kafkit-cli", 4),
];

/// Tooling and test crates outside the layering: they may depend on anything,
/// and layered crates may use them only as dev-dependencies.
const EXEMPT: &[&str] = &[
    "xtask",
    "kafkit-tests",
    "kafkit-protocol-fuzz",
    "kafkit-fuzz",
];

/// `cargo xtask check-layers`.
pub fn run_command(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask check-layers");
    }
    let output = crate::util::cargo(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")?;
    let checked = check(&metadata)?;
    println!("layering ok: {}", checked.join(", "));
    Ok(())
}

/// Checks the layering in `cargo metadata` output; returns the crates checked.
fn check(metadata: &Value) -> Result<Vec<String>> {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no `packages`")?;
    let members: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();

    let mut violations = Vec::new();
    let mut checked = Vec::new();
    for package in packages {
        let name = package["name"].as_str().context("package without a name")?;
        let Some(&layer) = layers.get(name) else {
            if !EXEMPT.contains(&name) {
                violations.push(format!(
                    "{name} is a workspace crate that is neither layered nor exempt: \
                     add it to LAYERS or EXEMPT in xtask/src/layers.rs"
                ));
            }
            continue;
        };
        checked.push(format!("{name} (layer {layer})"));
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            // Only dependencies on other workspace crates matter here.
            if !members.contains(&dep_name) {
                continue;
            }
            let kind = dep["kind"].as_str().unwrap_or("normal");
            match layers.get(dep_name) {
                Some(&dep_layer) if dep_layer < layer => {}
                Some(&dep_layer) => violations.push(format!(
                    "{name} (layer {layer}) depends on {dep_name} (layer {dep_layer}) as a {kind} \
                     dependency: dependencies must point to a lower layer"
                )),
                None if kind == "dev" => {}
                None => violations.push(format!(
                    "{name} depends on the tooling crate {dep_name} as a {kind} dependency: \
                     only dev-dependencies may use it"
                )),
            }
        }
    }
    if violations.is_empty() {
        Ok(checked)
    } else {
        bail!("layering violations:\n  {}", violations.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
        let deps: Vec<Value> = deps
            .iter()
            .map(|(n, kind)| json!({ "name": n, "kind": kind }))
            .collect();
        json!({ "name": name, "dependencies": deps })
    }

    #[test]
    fn downward_dependencies_pass() {
        let metadata = json!({ "packages": [
            package("kafkit-protocol", &[("bytes", None)]),
            package("kafkit-conn", &[("kafkit-protocol", None)]),
            package("kafkit", &[("kafkit-conn", None), ("kafkit-protocol", None)]),
            package("kafkit-tests", &[("kafkit", None)]),
            package("kafkit-reader", &[("kafkit-conn", None), ("kafkit-tests", Some("dev"))]),
        ]});
        assert_eq!(check(&metadata).unwrap().len(), 4);
    }

    #[test]
    fn the_stream_crate_sits_between_reader_writer_and_the_facade() {
        let metadata = json!({ "packages": [
            package("kafkit-reader", &[]),
            package("kafkit-writer", &[]),
            package("kafkit-stream", &[("kafkit-reader", None), ("kafkit-writer", None)]),
            package("kafkit", &[("kafkit-stream", None), ("kafkit-reader", None)]),
        ]});
        assert_eq!(check(&metadata).unwrap().len(), 4);
        let metadata = json!({ "packages": [
            package("kafkit-reader", &[("kafkit-stream", None)]),
            package("kafkit-stream", &[]),
        ]});
        let err = check(&metadata).unwrap_err().to_string();
        assert!(
            err.contains("kafkit-reader (layer 2) depends on kafkit-stream (layer 3)"),
            "{err}"
        );
    }

    #[test]
    fn the_otel_crate_sits_below_the_facade() {
        let metadata = json!({ "packages": [
            package("kafkit-conn", &[]),
            package("kafkit-otel", &[("kafkit-conn", None)]),
            package("kafkit", &[("kafkit-otel", None), ("kafkit-conn", None)]),
        ]});
        assert_eq!(check(&metadata).unwrap().len(), 3);
        let metadata = json!({ "packages": [
            package("kafkit-conn", &[("kafkit-otel", None)]),
            package("kafkit-otel", &[]),
            package("kafkit-stream", &[("kafkit-otel", None)]),
        ]});
        let err = check(&metadata).unwrap_err().to_string();
        assert!(
            err.contains("kafkit-conn (layer 1) depends on kafkit-otel (layer 3)"),
            "{err}"
        );
        assert!(
            err.contains("kafkit-stream (layer 3) depends on kafkit-otel (layer 3)"),
            "{err}"
        );
    }

    #[test]
    fn upward_and_sideways_dependencies_fail() {
        let metadata = json!({ "packages": [
            package("kafkit-protocol", &[("kafkit-conn", Some("dev"))]),
            package("kafkit-conn", &[]),
            package("kafkit-reader", &[("kafkit-writer", None)]),
            package("kafkit-writer", &[]),
        ]});
        let err = check(&metadata).unwrap_err().to_string();
        assert!(
            err.contains("kafkit-protocol (layer 0) depends on kafkit-conn"),
            "{err}"
        );
        assert!(
            err.contains("kafkit-reader (layer 2) depends on kafkit-writer"),
            "{err}"
        );
    }

    #[test]
    fn unknown_crates_and_tooling_dependencies_fail() {
        let metadata = json!({ "packages": [
            package("kafkit-protocol", &[("kafkit-tests", None)]),
            package("kafkit-tests", &[]),
            package("kafkit-extra", &[]),
        ]});
        let err = check(&metadata).unwrap_err().to_string();
        assert!(err.contains("tooling crate kafkit-tests"), "{err}");
        assert!(err.contains("kafkit-extra is a workspace crate"), "{err}");
    }

    #[test]
    fn dependencies_outside_the_workspace_are_ignored() {
        // `kafkit` on crates.io would be a different crate from ours only if
        // it were not a workspace member; here it is not listed as one.
        let metadata = json!({ "packages": [package("kafkit-protocol", &[("kafkit", None)])]});
        check(&metadata).unwrap();
    }
}
