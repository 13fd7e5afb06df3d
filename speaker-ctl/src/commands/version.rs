//! `speaker-ctl version`.
use anyhow::{bail, Result};

pub fn run() -> Result<i32> {
    bail!("'speaker-ctl version' is not yet implemented")
}
