//! `speaker-ctl run`.
use anyhow::{bail, Result};

pub fn run(_args: crate::cli::RunArgs) -> Result<i32> {
    bail!("'speaker-ctl run' is not yet implemented")
}
