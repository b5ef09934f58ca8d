//! Code generation for kafkit-protocol (in progress).
use anyhow::{Result, bail};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("codegen is being written")
}
