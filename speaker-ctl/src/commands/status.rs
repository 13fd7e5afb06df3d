//! `speaker-ctl status`: the containers as speaker.ko sees them.
use anyhow::Result;

use crate::cli::StatusArgs;
use crate::container::state::{kernel_id, ContainerState};
use crate::device::Device;
use crate::profile::schema::Phase;

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
    if args.json {
        let v: Vec<_> = list
            .iter()
            .map(|c| {
                let st = ContainerState::load(&c.cid).ok();
                serde_json::json!({
                    "cid": c.cid, "pid": c.pid, "phase": phase_name(c.phase), "tasks": c.tasks,
                    "allowed_syscalls": c.allowed, "switches": c.switches, "kept_programs": c.kept,
                    "registered_ns": c.registered_ns, "last_switch_ns": c.last_switch_ns,
                    "ready_unix_ms": st.as_ref().and_then(|s| s.runtime.as_ref()).and_then(|r| r.ready_unix_ms),
                    "cmd": st.map(|s| s.cmd),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<20} {:>7} {:<9} {:>6} {:>8} {:>8} {:>5}  LAST SWITCH",
        "CONTAINER", "PID", "PHASE", "TASKS", "ALLOWED", "SWITCHES", "KEPT"
    );
    for c in &list {
        println!(
            "{:<20} {:>7} {:<9} {:>6} {:>8} {:>8} {:>5}  {}",
            c.cid,
            c.pid,
            phase_name(c.phase),
            c.tasks,
            c.allowed,
            c.switches,
            c.kept,
            ago(c.last_switch_ns)
        );
    }
    Ok(0)
}
