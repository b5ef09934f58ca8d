//! `cargo xtask install-kafka`: puts Apache Kafka's broker at `.tools/kafka-4.3.1/`.
//!
//! No binary tarball can be fetched here, but Kafka's server is published as
//! jars (`org.apache.kafka:kafka_2.13`), and the jars are all a broker needs.
//! Maven resolves the pinned artifact and its runtime dependencies from a
//! throwaway `pom.xml`, and copies them to `libs/`. A log4j2 configuration
//! sends the broker's logs to a file that the test harness names, so they
//! stay out of the test output. A manifest of the jars marks the install as
//! complete: once it is there and every jar it lists exists, nothing is
//! fetched again, so the command is idempotent and works offline.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::deps;
use crate::util::{display, workspace_root};

/// The broker version the tests run against, and the message definitions'.
pub const VERSION: &str = "4.3.1";

/// The pinned artifacts: the broker, and an SLF4J 2 binding to log4j2 (the
/// broker's own POM brings SLF4J 1.7, which the log4j2 binding cannot use).
/// Maven's plugin is pinned too, so the resolution is the same everywhere.
const POM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by `cargo xtask install-kafka`: resolves Apache Kafka's broker jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kafkit.tools</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>@VERSION@</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>@VERSION@</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>2.0.17</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
"#;

/// Maven's dependency plugin, pinned (Maven 3.8 would otherwise pick 2.8).
const DEPENDENCY_PLUGIN: &str = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1";

/// Broker logs go to the file named by the `kafkit.log.file` system
/// property, which the harness sets for each node.
const LOG4J2: &str = r#"# Written by `cargo xtask install-kafka`: each broker logs to its own file.
Configuration:
  Appenders:
    File:
      name: file
      fileName: "${sys:kafkit.log.file}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
      - name: state.change.logger
        level: WARN
    Root:
      level: INFO
      AppenderRef:
        - ref: file
"#;

/// Names the test harness looks for (see `kafkit_tests::kafka`).
const MANIFEST: &str = "jars.txt";

/// `.tools/kafka-4.3.1`, where the harness looks by default.
pub fn home() -> PathBuf {
    workspace_root()
        .join(".tools")
        .join(format!("kafka-{VERSION}"))
}

/// `cargo xtask install-kafka [--force]`.
pub fn run_command(args: &[String]) -> Result<()> {
    let force = match args {
        [] => false,
        [flag] if flag == "--force" => true,
        _ => bail!("usage: cargo xtask install-kafka [--force]"),
    };
    install(force).map(|_| ())
}

/// Makes sure Kafka's jars and a Java runtime are there; returns the home.
pub fn ensure() -> Result<PathBuf> {
    install(false)
}

fn install(force: bool) -> Result<PathBuf> {
    let home = home();
    deps::ensure_java()?;
    if !force && is_installed(&home) {
        println!("Apache Kafka {VERSION} is installed at {}", home.display());
        write_config(&home)?;
        return Ok(home);
    }
    deps::ensure_maven()?;
    fs::create_dir_all(&home).with_context(|| format!("could not create {}", home.display()))?;
    // A stale manifest must not vouch for a half-copied libs/.
    let _ = fs::remove_file(home.join(MANIFEST));
    let libs = home.join("libs");
    if libs.exists() {
        fs::remove_dir_all(&libs).with_context(|| format!("could not clear {}", libs.display()))?;
    }
    let pom = home.join("pom.xml");
    fs::write(&pom, POM.replace("@VERSION@", VERSION))
        .with_context(|| format!("could not write {}", pom.display()))?;
    println!("fetching Apache Kafka {VERSION}'s broker jars with Maven");
    let mut mvn = Command::new("mvn");
    mvn.args(["-B", "-q", "-f"])
        .arg(&pom)
        .arg(format!("{DEPENDENCY_PLUGIN}:copy-dependencies"))
        .arg("-DincludeScope=runtime")
        .arg(format!("-DoutputDirectory={}", libs.display()));
    let shown = display(&mvn);
    println!("$ {shown}");
    let output = mvn
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        bail!(
            "Maven could not fetch Apache Kafka {VERSION} ({}): {}\n{text}",
            output.status,
            refused_artifacts(&text)
        );
    }
    let jars = list_jars(&libs)?;
    let broker_jar = format!("kafka_2.13-{VERSION}.jar");
    if !jars.contains(&broker_jar) {
        bail!(
            "Maven succeeded but {broker_jar} is missing from {}",
            libs.display()
        );
    }
    write_config(&home)?;
    fs::write(home.join(MANIFEST), jars.join("\n") + "\n")?;
    println!(
        "installed Apache Kafka {VERSION} at {} ({} jars)",
        home.display(),
        jars.len()
    );
    Ok(home)
}

/// True when the manifest is there and every jar it lists exists.
fn is_installed(home: &Path) -> bool {
    let Ok(manifest) = fs::read_to_string(home.join(MANIFEST)) else {
        return false;
    };
    let libs = home.join("libs");
    let mut names = manifest.lines().filter(|l| !l.is_empty()).peekable();
    names.peek().is_some() && names.all(|name| libs.join(name).is_file())
}

fn write_config(home: &Path) -> Result<()> {
    let config = home.join("config");
    fs::create_dir_all(&config)?;
    fs::write(config.join("log4j2.yaml"), LOG4J2)
        .with_context(|| format!("could not write {}", config.display()))
}

fn list_jars(libs: &Path) -> Result<Vec<String>> {
    let mut jars = Vec::new();
    for entry in fs::read_dir(libs).with_context(|| format!("no {}", libs.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".jar") {
            jars.push(name);
        }
    }
    jars.sort();
    Ok(jars)
}

/// The artifacts Maven names in its resolution errors, for the message.
fn refused_artifacts(output: &str) -> String {
    let named: Vec<&str> = output
        .lines()
        .filter(|l| {
            l.contains("Could not resolve")
                || l.contains("could not be resolved")
                || l.contains("Could not find artifact")
                || l.contains("Could not transfer artifact")
        })
        .map(str::trim)
        .collect();
    if named.is_empty() {
        "Maven named no artifact; its output follows".to_owned()
    } else {
        format!("refused: {}", named.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_refused_artifact() {
        let out = "[ERROR] Failed to execute goal on project kafka-broker: Could not resolve \
                   dependencies for project x: Could not find artifact org.apache.kafka:kafka_2.13:jar:9.9.9";
        assert!(refused_artifacts(out).contains("org.apache.kafka:kafka_2.13:jar:9.9.9"));
        assert!(refused_artifacts("BUILD FAILURE").contains("named no artifact"));
    }

    #[test]
    fn an_install_without_its_manifest_or_a_jar_is_incomplete() {
        let home = std::env::temp_dir().join(format!("xtask-kafka-{}", std::process::id()));
        fs::create_dir_all(home.join("libs")).unwrap();
        assert!(!is_installed(&home));
        fs::write(home.join(MANIFEST), "a.jar\n").unwrap();
        assert!(!is_installed(&home));
        fs::write(home.join("libs/a.jar"), b"").unwrap();
        assert!(is_installed(&home));
        fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn the_pom_pins_the_broker_version() {
        let pom = POM.replace("@VERSION@", VERSION);
        assert!(
            pom.contains("<artifactId>kafka_2.13</artifactId>\n      <version>4.3.1</version>")
        );
    }
}
