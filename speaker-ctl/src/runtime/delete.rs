//! `delete`: crun's, then forget the container once crun has.
use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::args::DeleteArgs;
use super::crun::Invocation;
use crate::container::state::ContainerState;
use crate::device::Device;

pub fn delete(inv: &Invocation, args: &DeleteArgs) -> Result<i32> {
    let Some(st) = inv.ours(&args.id) else { return inv.exec_crun() };
    let crun = inv.crun()?;
    let mut line = vec!["delete"];
    if args.force {
        line.push("--force");
    }
    if args.regex {
        line.push("--regex");
    }
    line.push(&args.id);
    let code = crun_delete(inv, &crun, &line, &args.id)?;
    if !inv.crun_state_dir(&st.cid).exists() {
        forget(&st);
    }
    Ok(code)
}

/// `crun LINE` (a `delete` of container `id`) under the container's lock,
/// which every switch holds: no switch (the monitor's, `kill`'s) rewrites
/// crun's state directory (the exec filter's `seccomp.bpf` and
/// `config.json`, through temporary files) while crun removes it.  Without
/// it crun failed now and then with "cannot rm state directory ...:
/// Directory not empty" (runc's suite with every container under a
/// profile, a container that exited as the monitor switched it).
pub fn crun_delete(inv: &Invocation, crun: &std::path::Path, line: &[&str], id: &str) -> Result<i32> {
    let _lock = ContainerState::lock(id)?;
    inv.run_crun(crun, line)
}

/// Forgets a speaker-runtime container (module, monitor, state).
pub fn forget(st: &ContainerState) {
    if let Ok(dev) = Device::open() {
        let _ = dev.unregister(st.kernel_id());
    }
    if let Some(m) = st.runtime.as_ref().and_then(|r| r.monitor_pid) {
        let exe = std::fs::read_link(format!("/proc/{m}/exe")).ok();
        if exe.is_some() && exe == std::env::current_exe().ok() {
            let _ = kill(Pid::from_raw(m), Signal::SIGKILL);
        }
    }
    ContainerState::remove(&st.cid);
}
