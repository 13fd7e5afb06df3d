//! `speaker-ctl status`: the containers as speaker.ko sees them.
use anyhow::Result;

use crate::cli::StatusArgs;
use crate::container::denials::{collect, Source};
use crate::container::engine::Engine;
use crate::container::state::{kernel_id, ContainerState, StateError};
use crate::device::Device;
use crate::profile::schema::Phase;
use crate::sys::output::{errln, outln};

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

/// One row of `status`, whichever engine runs the container.
struct Row {
    cid: String,
    pid: i32,
    phase: String,
    engine: Engine,
    tasks: Option<u32>,
    allowed: u32,
    switches: u32,
    kept: Option<u32>,
    registered_ns: Option<u64>,
    last_switch_ns: u64,
    state: Option<ContainerState>,
}

/// The number of threads of every process that shares `pid`'s PID
/// namespace (the container's tasks), from /proc.
fn ns_tasks(pid: i32) -> Option<u32> {
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let mut n = 0u32;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if std::fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&ns) {
            n += std::fs::read_dir(format!("/proc/{p}/task")).map(|d| d.count() as u32).unwrap_or(0);
        }
    }
    Some(n)
}

pub fn run(args: StatusArgs) -> Result<i32> {
    // notify-engine containers are known from their state alone; kmod ones
    // from speaker.ko (which need not be loaded when there are none).
    let (states, unreadable) = ContainerState::scan();
    let notify: Vec<ContainerState> = states
        .into_iter()
        .filter(|s| s.engine == Engine::Notify && s.alive())
        .filter(|s| args.cid.as_deref().is_none_or(|c| c == s.cid))
        .collect();
    // Without speaker.ko (a notify-only machine) there are no kmod ones.
    let dev = Device::open().ok();
    // A runtime id longer than the ABI allows is known to the module by
    // its cut form (see `kernel_id`).
    let kid = args.cid.as_deref().map(|c| ContainerState::load(c).map(|s| s.kernel_id().to_string()).unwrap_or_else(|_| kernel_id(c)));
    let list = match &dev {
        Some(dev) if notify.is_empty() => dev.status(kid.as_deref())?,
        Some(dev) if args.cid.is_none() => dev.status(None)?,
        _ => Vec::new(),
    };
    if let Some(cid) = &args.cid {
        if list.is_empty() && notify.is_empty() {
            // A state that is there but cannot be read is not "no
            // container": say what is wrong with it.
            if let Err(e) = ContainerState::load(cid) {
                if e.downcast_ref::<StateError>().is_none() {
                    return Err(e);
                }
            }
            anyhow::bail!("speaker knows no container '{cid}' ('speaker-ctl status' lists them; an exited container is forgotten)");
        }
    }
    // The state is kept under the runtime's id; speaker.ko knows the cut one.
    let state_of = |kid: &str| ContainerState::load(kid).ok().or_else(|| ContainerState::list().into_iter().find(|s| s.kernel_id() == kid));
    let mut rows: Vec<Row> = list
        .iter()
        .map(|c| Row {
            cid: c.cid.clone(),
            pid: c.pid as i32,
            phase: phase_name(c.phase),
            engine: Engine::Kmod,
            tasks: Some(c.tasks),
            allowed: c.allowed,
            switches: c.switches,
            kept: Some(c.kept),
            registered_ns: Some(c.registered_ns),
            last_switch_ns: c.last_switch_ns,
            state: state_of(&c.cid),
        })
        .collect();
    for s in notify {
        rows.push(Row {
            cid: s.cid.clone(),
            pid: s.pid,
            phase: s.current.to_string(),
            engine: Engine::Notify,
            tasks: ns_tasks(s.pid),
            allowed: s.record(s.current).map(|r| r.allowed).unwrap_or(0),
            switches: s.switches.len() as u32,
            kept: None,
            registered_ns: None,
            last_switch_ns: s.last_switch_unix_ms.unwrap_or(0) * 1_000_000,
            state: Some(s),
        });
    }
    // A listing goes on past a state it cannot read, and names it.
    if args.cid.is_none() {
        for e in &unreadable {
            errln!("speaker-ctl: warning: {e:#}");
        }
    }
    // Denials per container (by its id); unknown when they cannot be read.
    let denials: Option<Vec<String>> =
        collect(args.cid.as_deref(), &Source::Kmsg).ok().map(|list| list.into_iter().filter_map(|d| d.cid).collect());
    let count = |r: &Row| {
        let cid = r.state.as_ref().map(|s| s.cid.clone()).unwrap_or_else(|| r.cid.clone());
        denials.as_ref().map(|d| d.iter().filter(|c| **c == cid).count())
    };
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                let st = r.state.as_ref();
                serde_json::json!({
                    "cid": r.cid, "pid": r.pid, "phase": r.phase, "engine": r.engine.name(), "tasks": r.tasks,
                    "allowed_syscalls": r.allowed, "switches": r.switches, "kept_programs": r.kept,
                    "registered_ns": r.registered_ns, "last_switch_ns": r.last_switch_ns,
                    "ready_unix_ms": st.and_then(|s| s.runtime.as_ref()).and_then(|r| r.ready_unix_ms),
                    "mode": st.map(|s| s.mode.name()), "denials": count(r),
                    "cmd": st.map(|s| s.cmd.clone()),
                    "limits": r.engine.limits(),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    outln!(
        "{:<20} {:>7} {:<9} {:<8} {:<7} {:>6} {:>8} {:>8} {:>5} {:>7}  LAST SWITCH",
        "CONTAINER",
        "PID",
        "PHASE",
        "MODE",
        "ENGINE",
        "TASKS",
        "ALLOWED",
        "SWITCHES",
        "KEPT",
        "DENIALS"
    )?;
    let opt = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    for r in &rows {
        outln!(
            "{:<20} {:>7} {:<9} {:<8} {:<7} {:>6} {:>8} {:>8} {:>5} {:>7}  {}",
            r.cid,
            r.pid,
            r.phase,
            r.state.as_ref().map(|s| s.mode.name()).unwrap_or("-"),
            r.engine.name(),
            opt(r.tasks),
            r.allowed,
            r.switches,
            opt(r.kept),
            count(r).map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            ago(r.last_switch_ns)
        )?;
    }
    if rows.iter().any(|r| r.engine == Engine::Notify) {
        outln!("notify engine limits:")?;
        for l in Engine::Notify.limits() {
            outln!("  - {l}")?;
        }
    }
    Ok(0)
}
