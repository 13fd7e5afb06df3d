//! `speaker-ctl switch`: move a live container to its next phase's filter.
use anyhow::Result;

use crate::cli::SwitchArgs;
use crate::container::switch::switch_mode_with;
use crate::profile::Mode;
use crate::runtime::reprofile::reprofile;
use crate::sys::output::outln;

pub fn run(args: SwitchArgs) -> Result<i32> {
    let mode = match (args.complain, args.enforce) {
        (true, _) => Some(Mode::Complain),
        (_, true) => Some(Mode::Enforce),
        _ => None,
    };
    if let Some(p) = &args.profile {
        reprofile(&args.cid, p)?;
    }
    // With only a new profile: the current phase, recompiled.
    let mode = mode.or_else(|| {
        (args.profile.is_some() && args.to.is_none())
            .then(|| crate::container::state::ContainerState::load(&args.cid).map(|s| s.mode).unwrap_or_default())
    });
    let s = switch_mode_with(&args.cid, args.to, mode, args.no_wait)?;
    let r = s.report;
    let (from, to) = if s.from_mode == s.to_mode && s.to_mode == Mode::Enforce {
        (s.from.to_string(), s.to.to_string())
    } else {
        (format!("{} ({})", s.from, s.from_mode), format!("{} ({})", s.to, s.to_mode))
    };
    outln!(
        "{}: {} -> {}: {} task{}, {} syscalls cached as allowed, {} filter{} above trimmed, {:.1} ms",
        args.cid,
        from,
        to,
        r.tasks,
        if r.tasks == 1 { "" } else { "s" },
        r.cached_allow,
        r.filters_above,
        if r.filters_above == 1 { "" } else { "s" },
        r.elapsed_ns as f64 / 1e6
    )?;
    Ok(0)
}
