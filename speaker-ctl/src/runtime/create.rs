//! `create`: compile the profile, hand crun a copy of the configuration
//! with the boot phase in it (the bundle itself is never written), run
//! `crun create` and start the container's monitor.
use anyhow::{bail, Context, Result};

use super::args::CreateArgs;
use super::bundle::Bundle;
use super::bundle::ANNOTATION_ENGINE;
use super::crun::Invocation;
use super::filters::{BundleFilters, NOTIFY_PROLOGUE};
use super::monitor;
use crate::container::engine::{Engine, EngineChoice};
use crate::container::exec_filter;
use crate::container::notify::{self, supervisor::save_policy, NotifyPolicy};
use crate::container::state::{kernel_id, now_unix_ms, ContainerState, PhaseRecord, RuntimeRecord};
use crate::device::Device;
use crate::profile::schema::Phase;

/// The configuration crun is given, in the container's state directory.
pub const CRUN_CONFIG: &str = "crun-config.json";

/// Speaker state left for `id` under this root by a container crun no
/// longer has (a crash, a reboot of crun's state): forgotten before a plain
/// container of the same id is created, so it is not taken for speaker's.
pub fn forget_stale(inv: &Invocation, id: &str) {
    if let Some(old) = inv.ours(id) {
        if !inv.crun_state_dir(id).exists() && !old.alive() {
            super::delete::forget(&old);
        }
    }
}

/// `create` (also the first half of `run`).
pub fn create(inv: &Invocation, args: &CreateArgs) -> Result<i32> {
    // A bundle without the annotation (or none at all) is crun's business
    // entirely (including its error messages); one that names speaker but
    // cannot be read is an error (`asks_for_speaker`).
    let Some((mut bundle, profile_path)) = Bundle::asks_for_speaker(&args.bundle, args.config.as_deref())? else {
        forget_stale(inv, &args.id);
        return inv.exec_crun();
    };
    let id = &args.id;
    crate::container::state::check_id(id)?;
    let kid = kernel_id(id);
    crate::device::encode_cid(&kid).with_context(|| format!("container id '{id}'"))?;
    // Everything that can fail before crun runs, so that nothing is left
    // half-created.
    let crun = inv.crun()?;
    let filters = BundleFilters::compile(&bundle, &profile_path)?;
    let choice: EngineChoice = match bundle.annotation(ANNOTATION_ENGINE) {
        None => EngineChoice::Auto,
        Some(e) => e.parse().with_context(|| format!("annotation {ANNOTATION_ENGINE} of {}", bundle.config_path.display()))?,
    };
    let engine = choice.resolve().with_context(|| format!("container '{id}'"))?;
    if let Some(old) = inv.ours(id) {
        if inv.crun_state_dir(id).exists() || old.alive() {
            bail!("container '{id}' already exists; delete it first");
        }
        ContainerState::remove(id);
    }
    if engine == Engine::Kmod {
        let dev = Device::open().context("speaker-runtime needs speaker.ko (insmod speaker.ko)")?;
        if !dev.status(Some(&kid))?.is_empty() {
            bail!("speaker.ko already has a container '{kid}'; pick another id");
        }
        // The monitor opens the device itself; an inherited descriptor would
        // pin the module for as long as the monitor lives.
        drop(dev);
    }

    let state_dir = inv.crun_state_dir(id);
    let state = ContainerState {
        cid: id.clone(),
        pid: 0,
        cmd: bundle.process_args(),
        started_unix_ms: now_unix_ms(),
        phases: filters.phases.iter().map(PhaseRecord::of).collect(),
        current: Phase::Boot,
        last_switch_unix_ms: None,
        kernel_id: (kid != *id).then(|| kid.clone()),
        runtime: Some(RuntimeRecord {
            crun_state_dir: state_dir.clone(),
            bundle: bundle.dir.clone(),
            profile: filters.profile_path.clone(),
            ready: filters.ready.clone(),
            ..RuntimeRecord::default()
        }),
        mode: filters.mode,
        switches: Vec::new(),
        reload: filters.profile.reload.clone(),
        engine,
    };
    let saved = (|| -> Result<()> {
        state.save()?;
        state.save_programs(&filters.phases)?;
        if engine == Engine::Notify {
            save_policy(id, &NotifyPolicy::from_filters(&notify_filters(&filters)))?;
            notify::phase::set(id, Phase::Boot, filters.mode)?;
        }
        exec_filter::save(id, &filters.exec_progs, &filters.exec_oci)
    })();
    if let Err(e) = saved {
        ContainerState::remove(id);
        return Err(e);
    }

    // crun gets a copy of the configuration with the boot phase in it,
    // kept with speaker's state (the bundle may be read-only, and is never
    // left rewritten).
    let copy = ContainerState::dir_of(id).join(CRUN_CONFIG);
    let written = match engine {
        Engine::Kmod => {
            let boot = &filters.oci.iter().find(|(p, _)| *p == Phase::Boot).expect("boot phase").1;
            bundle.set_seccomp(boot)
        }
        // notify: the one filter, its listener handed to the monitor by
        // crun (linux.seccomp.listenerPath), which must be listening first.
        Engine::Notify => notify_seccomp(&mut bundle, id, &filters),
    }
    .and_then(|_| bundle.save_copy(&copy));
    if let Err(e) = written {
        ContainerState::remove(id);
        return Err(e);
    }
    let early_monitor = match engine {
        Engine::Kmod => None,
        Engine::Notify => match monitor::spawn_notify(id) {
            Ok(pid) => Some(pid),
            Err(e) => {
                ContainerState::remove(id);
                return Err(e.context(format!("container '{id}' was not created")));
            }
        },
    };
    let kill_early = || {
        if let Some(m) = early_monitor {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(m), nix::sys::signal::Signal::SIGKILL);
        }
    };
    let mut crun_args = args.clone();
    crun_args.bundle = bundle.dir.clone();
    crun_args.config = Some(copy);
    let code = inv.run_crun(&crun, &crun_args.to_args());
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            kill_early();
            ContainerState::remove(id);
            return Err(e);
        }
    };
    if code != 0 {
        kill_early();
        ContainerState::remove(id);
        return Ok(code);
    }
    let finish = || -> Result<()> {
        let pid = inv.crun_pid(&crun, id)?;
        if !state_dir.join("config.json").is_file() {
            bail!("crun keeps no {}/config.json; this crun is not supported (exec would get the wrong filter)", state_dir.display());
        }
        let monitor = match early_monitor {
            Some(m) => m,
            None => monitor::spawn(id, pid)?,
        };
        let _lock = ContainerState::lock(id)?;
        let mut st = ContainerState::load(id)?;
        st.pid = pid.as_raw();
        if let Some(rt) = st.runtime.as_mut() {
            rt.monitor_pid = Some(monitor);
        }
        st.save()
    };
    if let Err(e) = finish() {
        kill_early();
        let _ = inv.run_crun(&crun, &["delete", "--force", id]);
        ContainerState::remove(id);
        return Err(e.context(format!("container '{id}' was not created")));
    }
    Ok(0)
}

/// The notify engine's seccomp section: the one filter (running allowed,
/// the rest notified) with `listenerPath` (the monitor's socket) and
/// `listenerMetadata` (the container id).
fn notify_seccomp(bundle: &mut Bundle, id: &str, filters: &BundleFilters) -> Result<()> {
    let running = filters.oci.iter().find(|(p, _)| *p == Phase::Running).map(|(_, o)| o).with_context(|| {
        format!("the speaker profile {} has no running phase: the notify engine needs one", filters.profile_path.display())
    })?;
    bundle.set_seccomp(&notify::filter::oci_for_this_kernel(running))?;
    let seccomp =
        bundle.config.pointer_mut("/linux/seccomp").and_then(|v| v.as_object_mut()).context("no linux.seccomp after setting it")?;
    seccomp.insert("listenerPath".into(), monitor::notify_socket(id).display().to_string().into());
    seccomp.insert("listenerMetadata".into(), id.into());
    Ok(())
}

/// The filters the notify engine's table is made from: the container's,
/// with [`NOTIFY_PROLOGUE`] allowed in the boot phase.
fn notify_filters(filters: &BundleFilters) -> Vec<(Phase, crate::profile::PhaseFilter)> {
    let native = crate::profile::Arch::native();
    let mut out = filters.filters.clone();
    for (phase, f) in &mut out {
        if *phase == Phase::Boot {
            for n in NOTIFY_PROLOGUE {
                f.rules.push(crate::profile::Rule {
                    name: n.to_string(),
                    arch: native,
                    action: crate::profile::Action::Allow,
                    args: vec![],
                });
            }
        }
    }
    out
}
