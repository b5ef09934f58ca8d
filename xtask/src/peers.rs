//! `cargo xtask build-peers [go|java] [--force]`: builds the interop peers
//! the integration tests drive (`kafkit_tests::go_java_peers`):
//!
//! - `.tools/peers/kafkit-peer-go`, from `tests/peers/go` (sarama,
//!   kafka-go, franz-go and confluent-kafka-go behind one JSON-lines
//!   contract): `GOFLAGS=-mod=readonly go build -trimpath`. Needs Go 1.26
//!   or newer and a C compiler (cgo, for confluent-kafka-go's bundled
//!   librdkafka). Debian's `golang` package is too old, so it is never
//!   installed for you.
//! - `.tools/peers/kafkit-peer-java.jar`, from `tests/peers/java` (the
//!   official Java client, kafka-clients 4.3.1): `mvn -q -B -DskipTests
//!   package`. Needs a JDK and Maven, installed with apt when running as
//!   root ([`deps::ensure_java`], [`deps::ensure_maven`]).
//!
//! Each output has a stamp next to it (`<output>.sha256`): the SHA-256 of
//! the peer's source files (paths and contents) and of the toolchain's
//! version. A peer whose stamp matches is not rebuilt, so the command takes
//! a moment when nothing changed. Every build is private to its process
//! (Go writes its own file, Maven builds in a copy of the sources) and its
//! output is renamed into place, so concurrent builds do not collide and a
//! test never runs a half-written peer.
//!
//! `cargo xtask test-kafka` calls [`ensure`] and passes the paths to the
//! tests as `KAFKIT_PEER_GO` and `KAFKIT_PEER_JAVA`. There a missing
//! toolchain is only a warning (the tests that need it skip, loudly),
//! unless `CI` is set: in CI it is an error, as it is for `build-peers`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::deps;
use crate::util::{display, run, workspace_root};

/// The oldest Go that builds `tests/peers/go` (its go.mod says `go 1.26.0`).
const GO_MINIMUM: (u32, u32) = (1, 26);

/// The peers' paths, `None` for one whose toolchain is missing (outside CI).
#[derive(Debug, Default)]
pub struct Peers {
    pub go: Option<PathBuf>,
    pub java: Option<PathBuf>,
}

impl Peers {
    /// Passes the built peers to the tests (`KAFKIT_PEER_GO`,
    /// `KAFKIT_PEER_JAVA`).
    pub fn apply(&self, cmd: &mut Command) {
        if let Some(go) = &self.go {
            cmd.env("KAFKIT_PEER_GO", go);
        }
        if let Some(java) = &self.java {
            cmd.env("KAFKIT_PEER_JAVA", java);
        }
    }
}

/// `cargo xtask build-peers [go|java] [--force]`: builds both peers (or
/// the one named), failing if a toolchain is missing.
pub fn run_command(args: &[String]) -> Result<()> {
    let (mut go, mut java, mut force) = (false, false, false);
    for arg in args {
        match arg.as_str() {
            "go" => go = true,
            "java" => java = true,
            "--force" => force = true,
            other => bail!("usage: cargo xtask build-peers [go|java] [--force] (not `{other}`)"),
        }
    }
    if !go && !java {
        (go, java) = (true, true);
    }
    if go {
        let path = build_go(force)?;
        println!("Go peer: {}", path.display());
    }
    if java {
        let path = build_java(force)?;
        println!("Java peer: {}", path.display());
    }
    Ok(())
}

/// Builds whatever is stale, for `test-kafka`. A missing toolchain fails
/// in CI (`CI` set) and is a warning elsewhere, leaving that peer out.
pub fn ensure() -> Result<Peers> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mut peers = Peers::default();
    match go_toolchain() {
        Ok(_) => peers.go = Some(build_go(false)?),
        Err(e) if !ci => println!("warning: {e:#}\n  The tests that need the Go peer will skip."),
        Err(e) => return Err(e),
    }
    match java_toolchain() {
        Ok(_) => peers.java = Some(build_java(false)?),
        Err(e) if !ci => println!("warning: {e:#}\n  The tests that need the Java peer will skip."),
        Err(e) => return Err(e),
    }
    Ok(peers)
}

/// `<workspace>/.tools/peers`.
fn out_dir() -> PathBuf {
    workspace_root().join(".tools/peers")
}

/// Go's version line (`go version go1.26.8 linux/amd64`), or why Go cannot
/// build the peer.
fn go_toolchain() -> Result<String> {
    let install = "Install Go 1.26 or newer from https://go.dev/dl/ and put its `bin` on PATH \
                   (Debian's `golang` package is too old); the Go peer also needs a C compiler \
                   (`gcc`) for confluent-kafka-go";
    let output = match Command::new("go").arg("version").output() {
        Ok(output) if output.status.success() => output,
        _ => bail!("`go` is not installed, so the Go interop peer cannot be built. {install}."),
    };
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match parse_go_version(&version) {
        Some(found) if found >= GO_MINIMUM => Ok(version),
        _ => bail!(
            "the Go interop peer needs Go {}.{} or newer, found `{version}`. {install}.",
            GO_MINIMUM.0,
            GO_MINIMUM.1
        ),
    }
}

/// `(1, 26)` from `go version go1.26.8 linux/amd64`.
fn parse_go_version(line: &str) -> Option<(u32, u32)> {
    let word = line.split_whitespace().find(|w| w.starts_with("go1."))?;
    let mut parts = word.trim_start_matches("go").split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// `java -version`'s text, after installing a JDK and Maven when root, or
/// why the Java peer cannot be built.
fn java_toolchain() -> Result<String> {
    deps::ensure_java()?;
    deps::ensure_maven()?;
    let java = Command::new("java").arg("-version").output();
    let Some(java) = java.ok().filter(|o| o.status.success()) else {
        bail!(
            "`java` is not installed, so the Java interop peer cannot be built or run. \
             Install a JDK 17+ (`apt-get install openjdk-17-jdk-headless`)."
        );
    };
    if !Command::new("mvn")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        bail!(
            "`mvn` is not installed, so the Java interop peer cannot be built. \
             Install Maven 3.8+ (`apt-get install maven`)."
        );
    }
    // `java -version` writes to stderr.
    Ok(String::from_utf8_lossy(&java.stderr).trim().to_owned())
}

/// Builds `.tools/peers/kafkit-peer-go` unless it is up to date. Go's
/// build cache is safe to share, and each build writes its own file, so
/// concurrent builds (two `test-kafka` runs) do not disturb each other.
fn build_go(force: bool) -> Result<PathBuf> {
    let version = go_toolchain()?;
    let dir = workspace_root().join("tests/peers/go");
    let sources = source_files(&dir, &|rel| {
        rel.extension().is_some_and(|e| e == "go")
            || rel == Path::new("go.mod")
            || rel == Path::new("go.sum")
    })?;
    let output = out_dir().join("kafkit-peer-go");
    let digest = digest(&dir, &sources, &version)?;
    build_if_stale(&output, &digest, force, |partial| {
        println!("building {} from {}", output.display(), dir.display());
        let mut cmd = Command::new("go");
        cmd.args(["build", "-trimpath", "-o"])
            .arg(partial)
            .arg(".")
            .current_dir(&dir)
            .env("GOFLAGS", "-mod=readonly")
            .env("CGO_ENABLED", "1");
        run(&mut cmd)
    })
}

/// Builds `.tools/peers/kafkit-peer-java.jar` unless it is up to date.
/// Maven builds in a private copy of the sources (`pom.xml`, `src/`), so
/// concurrent builds never share a `target/` (one would package the
/// classes the other is still compiling), and the source tree gets no
/// build output.
fn build_java(force: bool) -> Result<PathBuf> {
    let version = java_toolchain()?;
    let dir = workspace_root().join("tests/peers/java");
    let keep = |rel: &Path| rel == Path::new("pom.xml") || rel.starts_with("src");
    let output = out_dir().join("kafkit-peer-java.jar");
    let digest = digest(&dir, &source_files(&dir, &keep)?, &version)?;
    build_if_stale(&output, &digest, force, |partial| {
        println!("building {} from {}", output.display(), dir.display());
        // `.kafkit-peer-java.jar.partial-<pid>.src`: this process's own.
        let mut copy = partial.as_os_str().to_owned();
        copy.push(".src");
        let copy = PathBuf::from(copy);
        let built = copy_sources(&dir, &copy, &keep).and_then(|()| {
            let mut cmd = Command::new("mvn");
            cmd.args(["-q", "-B", "-DskipTests", "package"])
                .current_dir(&copy);
            run(&mut cmd)?;
            let jar = copy.join("target/kafkit-peer-java.jar");
            fs::copy(&jar, partial)
                .with_context(|| format!("`{}` left no {}", display(&cmd), jar.display()))?;
            Ok(())
        });
        let _ = fs::remove_dir_all(&copy);
        built
    })
}

/// Copies the files of `dir` that `keep` selects to `to`.
fn copy_sources(dir: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<()> {
    for rel in source_files(dir, keep)? {
        let target = to.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::copy(dir.join(&rel), &target)
            .with_context(|| format!("cannot copy {} to {}", rel.display(), target.display()))?;
    }
    Ok(())
}

/// Runs `build(partial)` and renames `partial` to `output`, unless
/// `output` exists and its stamp says `digest` (or `force`); then writes
/// the stamp. `partial` is a name of this process's own next to `output`.
fn build_if_stale(
    output: &Path,
    digest: &str,
    force: bool,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let stamp = stamp_path(output);
    let current = output.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest);
    if current && !force {
        return Ok(output.to_path_buf());
    }
    let parent = output
        .parent()
        .context("the peer's output has a directory")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = output
        .file_name()
        .context("the peer's output has a name")?
        .to_string_lossy();
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let built = build(&partial).and_then(|()| {
        // The stamp goes first: a stamp without its output is stale anyway,
        // an output without its stamp would be rebuilt for nothing.
        fs::write(&stamp, format!("{digest}\n"))
            .with_context(|| format!("cannot write {}", stamp.display()))?;
        fs::rename(&partial, output)
            .with_context(|| format!("cannot move the peer to {}", output.display()))
    });
    if built.is_err() {
        let _ = fs::remove_file(&partial);
    }
    built.map(|()| output.to_path_buf())
}

/// `<output>.sha256`.
fn stamp_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The files under `dir` (relative to it, sorted) that `keep` selects;
/// `target/` (Maven's output) is never looked into.
fn source_files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    fn walk(
        root: &Path,
        dir: &Path,
        keep: &dyn Fn(&Path) -> bool,
        out: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let entries =
            fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let rel = path.strip_prefix(root)?.to_path_buf();
            if path.is_dir() {
                if rel != Path::new("target") {
                    walk(root, &path, keep, out)?;
                }
            } else if keep(&rel) {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, keep, &mut out)?;
    out.sort();
    if out.is_empty() {
        bail!("no peer sources in {}", dir.display());
    }
    Ok(out)
}

/// SHA-256 (hex) of each source's path and contents, length-prefixed so
/// that no two file sets collide by concatenation, and of the toolchain.
fn digest(dir: &Path, sources: &[PathBuf], toolchain: &str) -> Result<String> {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(toolchain.as_bytes());
    for rel in sources {
        let path = dir.join(rel);
        let contents =
            fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        field(rel.to_string_lossy().as_bytes());
        field(&contents);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_parse() {
        assert_eq!(
            parse_go_version("go version go1.26.8 linux/amd64"),
            Some((1, 26))
        );
        assert_eq!(
            parse_go_version("go version go1.27rc1 linux/amd64"),
            Some((1, 27))
        );
        assert_eq!(
            parse_go_version("go version go1.19.8 linux/amd64"),
            Some((1, 19))
        );
        assert_eq!(parse_go_version("nonsense"), None);
    }
}
