//! `start`: crun's, then wait until the monitor has registered the
//! container (so that `speaker-ctl status` and `switch` work as soon as
//! `start` returns).
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

use super::crun::Invocation;
use crate::container::state::ContainerState;
use crate::sys::procfs::pid_alive;

pub fn start(inv: &Invocation, id: &str) -> Result<i32> {
    if inv.ours(id).is_none() {
        return inv.exec_crun();
    }
    let crun = inv.crun()?;
    let code = inv.run_crun(&crun, &["start", id])?;
    if code != 0 {
        return Ok(code);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = ContainerState::dir_of(id).join("monitor.log");
    loop {
        let st = ContainerState::load(id)?;
        let rt = st.runtime.as_ref().expect("runtime container");
        if rt.registered {
            return Ok(0);
        }
        if let Some(e) = &rt.error {
            bail!("container '{id}' was started but speaker could not take it over, so it was killed: {e}");
        }
        if !rt.monitor_pid.is_some_and(pid_alive) {
            bail!("container '{id}': its speaker monitor is gone before registering it; see {}", log.display());
        }
        if Instant::now() > deadline {
            bail!("container '{id}' was not registered (speaker.ko) or supervised (notify) within 30 s of start; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
