//! `speaker-ctl trace`.
use anyhow::{bail, Result};

pub fn run(_args: crate::cli::TraceArgs) -> Result<i32> {
    bail!("'speaker-ctl trace' is not yet implemented")
}
