//! `speaker-ctl bench`.
use anyhow::{bail, Result};

pub fn run(_args: crate::cli::BenchArgs) -> Result<i32> {
    bail!("'speaker-ctl bench' is not yet implemented")
}
