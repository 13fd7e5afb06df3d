//! `speaker-ctl stop`.
use anyhow::{bail, Result};

pub fn run(_args: crate::cli::StopArgs) -> Result<i32> {
    bail!("'speaker-ctl stop' is not yet implemented")
}
