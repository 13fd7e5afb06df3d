//! `speaker-ctl trace`: see [`crate::trace`] for what it does.
use anyhow::Result;

pub fn run(args: crate::cli::TraceArgs) -> Result<i32> {
    crate::trace::run(&args)
}
