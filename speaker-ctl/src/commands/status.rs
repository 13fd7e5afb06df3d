//! `speaker-ctl status`: the containers as speaker.ko sees them.
use anyhow::Result;

use crate::cli::StatusArgs;
use crate::container::denials::{collect, Source};
use crate::container::state::{kernel_id, ContainerState};
use crate::device::Device;
use crate::profile::schema::Phase;
use crate::sys::output::outln;

fn phase_name(i: u32) -> String {
    Phase::from_index(i).map(|p| p.to_string()).unwrap_or_else(|| format!("phase-{i}"))
}

fn ago(ns: u64) -> String {
    if ns == 0 {
        return "never".into();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let s = now.saturating_sub(ns) as f64 / 1e9;
    format!("{s:.1}s ago")
}

pub fn run(args: StatusArgs) -> Result<i32> {
    let dev = Device::open()?;
    // A runtime id longer than the ABI allows is known to the module by
    // its cut form (see `kernel_id`).
    let kid = args.cid.as_deref().map(|c| ContainerState::load(c).map(|s| s.kernel_id().to_string()).unwrap_or_else(|_| kernel_id(c)));
    let list = dev.status(kid.as_deref())?;
    if let Some(cid) = &args.cid {
        if list.is_empty() {
            anyhow::bail!("speaker.ko knows no container '{cid}' ('speaker-ctl status' lists them; an exited container is forgotten)");
        }
    }
    // Denials per container (by speaker.ko's id); unknown when the kernel
    // log cannot be read.
    let denials: Option<Vec<(String, String)>> = collect(args.cid.as_deref(), &Source::Kmsg).ok().map(|list| {
        list.into_iter()
            .filter_map(|d| d.cid)
            .map(|cid| {
                let kid = ContainerState::load(&cid).map(|s| s.kernel_id().to_string()).unwrap_or_else(|_| kernel_id(&cid));
                (kid, cid)
            })
            .collect()
    });
    let count = |kid: &str| denials.as_ref().map(|d| d.iter().filter(|(k, _)| k == kid).count());
    // The state is kept under the runtime's id; speaker.ko knows the cut one.
    let state_of = |kid: &str| ContainerState::load(kid).ok().or_else(|| ContainerState::list().into_iter().find(|s| s.kernel_id() == kid));
    if args.json {
        let v: Vec<_> = list
            .iter()
            .map(|c| {
                let st = state_of(&c.cid);
                serde_json::json!({
                    "cid": c.cid, "pid": c.pid, "phase": phase_name(c.phase), "tasks": c.tasks,
                    "allowed_syscalls": c.allowed, "switches": c.switches, "kept_programs": c.kept,
                    "registered_ns": c.registered_ns, "last_switch_ns": c.last_switch_ns,
                    "ready_unix_ms": st.as_ref().and_then(|s| s.runtime.as_ref()).and_then(|r| r.ready_unix_ms),
                    "mode": st.as_ref().map(|s| s.mode.name()), "denials": count(&c.cid),
                    "cmd": st.map(|s| s.cmd),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    outln!(
        "{:<20} {:>7} {:<9} {:<8} {:>6} {:>8} {:>8} {:>5} {:>7}  LAST SWITCH",
        "CONTAINER",
        "PID",
        "PHASE",
        "MODE",
        "TASKS",
        "ALLOWED",
        "SWITCHES",
        "KEPT",
        "DENIALS"
    )?;
    for c in &list {
        outln!(
            "{:<20} {:>7} {:<9} {:<8} {:>6} {:>8} {:>8} {:>5} {:>7}  {}",
            c.cid,
            c.pid,
            phase_name(c.phase),
            state_of(&c.cid).map(|s| s.mode.name()).unwrap_or("-"),
            c.tasks,
            c.allowed,
            c.switches,
            c.kept,
            count(&c.cid).map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            ago(c.last_switch_ns)
        )?;
    }
    Ok(0)
}
