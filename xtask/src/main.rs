//! Project automation: `cargo xtask <command>`.
//!
//! - `codegen [--check]`: regenerate kafkit-protocol's messages from
//!   `../shared/kafka-messages` (with `--check`, fail if the checked-in code is stale).

mod codegen;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: cargo xtask <codegen> [args]");
    };
    match command.as_str() {
        "codegen" => codegen::run(rest),
        other => bail!("unknown xtask command `{other}`"),
    }
}
