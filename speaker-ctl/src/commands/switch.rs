//! `speaker-ctl switch`: move a live container to its next phase's filter.
use anyhow::Result;

use crate::cli::SwitchArgs;
use crate::container::switch::switch;

pub fn run(args: SwitchArgs) -> Result<i32> {
    let s = switch(&args.cid, args.to)?;
    let r = s.report;
    println!(
        "{}: {} -> {}: {} task{}, {} syscalls cached as allowed, {} filter{} above trimmed, {:.1} ms",
        args.cid,
        s.from,
        s.to,
        r.tasks,
        if r.tasks == 1 { "" } else { "s" },
        r.cached_allow,
        r.filters_above,
        if r.filters_above == 1 { "" } else { "s" },
        r.elapsed_ns as f64 / 1e6
    );
    Ok(0)
}
