//! Suite 2b: a switch against what users do without speaker, restarting
//! the container with the new profile: `speaker-runtime delete --force` +
//! `run -d` of the same nginx bundle until nginx answers again. Also
//! measures the switch itself in that nginx container and the monitor's
//! resident memory (while it waits for readiness; it exits once it has
//! switched the container).
use std::time::Instant;

use super::error::BenchError;
use super::results::Results;
use super::service::{Container, Service};
use super::switch::time_switches;
use super::Options;
use crate::device::Device;

fn rss_kb(pid: i32) -> Option<f64> {
    crate::sys::procfs::status_field(pid, "VmRSS").ok().flatten()?.split_whitespace().next()?.parse().ok()
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    let dev = Device::open()?;
    res.fact("clock.service", opts.clock.name());
    let c = Container::start(opts, Service::Nginx, "speaker")?;
    let kid = c.state()?.kernel_id().to_string();
    let [running, boot] = c.programs()?;
    let (sync, deferred) = time_switches(&dev, &kid, [&running, &boot], opts.runs)?;
    let s = res.figure("switch.sync.nginx", &sync, "ms").unwrap_or(0.0);
    let d = res.figure("switch.deferred.nginx", &deferred, "ms").unwrap_or(0.0);
    println!("  switch in the nginx container: sync {s:.3} ms, deferred {d:.3} ms");
    if let Some(e) = dev.status(Some(&kid))?.first() {
        res.fact("switch.nginx.kept_after_switches", e.kept);
        res.fact("switch.nginx.switches", e.switches);
    }
    let bundle = Container::bundle(opts, Service::Nginx, "speaker").display().to_string();
    let (mut restarts, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..opts.runs {
        let t = Instant::now();
        super::service::runtime(&["delete", "--force", &c.id])?;
        super::service::runtime(&["run", "-d", "--bundle", &bundle, &c.id])?;
        c.wait_ready(false)?;
        restarts.push(t.elapsed().as_secs_f64() * 1e3);
        // The monitor lives until it has switched the container to its
        // running phase (auto readiness: a few seconds after nginx answers).
        if let Some(kb) = c.state()?.runtime.and_then(|r| r.monitor_pid).and_then(rss_kb) {
            rss.push(kb);
        }
        // The next restart starts from a container in its running phase.
        c.wait_ready(true)?;
    }
    let r = res.figure("restart.nginx", &restarts, "ms").unwrap_or(0.0);
    res.figure("memory.monitor_rss", &rss, "KiB");
    println!("  restart of the nginx container until it answers: {r:.0} ms");
    res.ratio("restart / switch (nginx, sync)", "restart.nginx", "switch.sync.nginx", "");
    res.ratio("restart / switch (nginx, deferred)", "restart.nginx", "switch.deferred.nginx", "");
    Ok(())
}
