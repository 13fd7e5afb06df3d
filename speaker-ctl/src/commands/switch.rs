//! `speaker-ctl switch`.
use anyhow::{bail, Result};

pub fn run(_args: crate::cli::SwitchArgs) -> Result<i32> {
    bail!("'speaker-ctl switch' is not yet implemented")
}
