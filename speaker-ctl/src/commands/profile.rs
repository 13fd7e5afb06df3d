//! `speaker-ctl profile`.
use anyhow::{bail, Result};

pub fn run(_cmd: crate::cli::ProfileCommand) -> Result<i32> {
    bail!("'speaker-ctl profile' is not yet implemented")
}
