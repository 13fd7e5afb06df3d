//! The end of a trace on stderr: one line per phase begun, unnamed
//! syscalls, filter-mode counts, and where the profile went.
use super::recording::{PhaseRec, Recording};
use crate::profile::schema::Phase;
use crate::sys::output::errln;

/// Prints the summary of `rec` (a trace of `total_ms`); `switches` is the
/// number of filter switches in filter mode (`None` in ptrace mode).
pub fn print(rec: &Recording, total_ms: u64, switches: Option<u64>, tasks: u64, output: &str) {
    let begun: Vec<(Phase, &PhaseRec)> =
        Phase::ALL.iter().filter_map(|&p| rec.phases[p.index() as usize].as_ref().map(|r| (p, r))).collect();
    for (i, (phase, r)) in begun.iter().enumerate() {
        let end_ms = begun.get(i + 1).map_or(total_ms, |n| n.1.entered_ms);
        let secs = end_ms.saturating_sub(r.entered_ms) as f64 / 1000.0;
        if switches.is_some() {
            errln!("speaker-ctl: {phase}: {} syscalls, {} seccomp stops, {secs:.2}s", r.entries.len(), r.stops);
        } else {
            errln!("speaker-ctl: {phase}: {} syscalls, {} calls, {secs:.2}s", r.entries.len(), r.calls);
        }
    }
    if rec.unknown_calls > 0 {
        if let Some((arch, nr)) = rec.unknown_example {
            errln!(
                "speaker-ctl: warning: {} calls of syscall numbers libseccomp has no name for \
                 were not recorded (e.g. {} {nr})",
                rec.unknown_calls,
                arch.name()
            );
        }
    }
    if let Some(switches) = switches {
        let stops: u64 = begun.iter().map(|(_, r)| r.stops).sum();
        errln!("speaker-ctl: filter mode: {stops} seccomp stops, {switches} filter switches through speaker.ko");
    }
    errln!("speaker-ctl: {tasks} tasks traced; profile written to {output}");
}
