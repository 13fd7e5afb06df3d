//! `speaker-ctl status`.
use anyhow::{bail, Result};

pub fn run(_args: crate::cli::StatusArgs) -> Result<i32> {
    bail!("'speaker-ctl status' is not yet implemented")
}
