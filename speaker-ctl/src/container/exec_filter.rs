//! The filter that processes `exec`'ed into a runtime container get: crun
//! keeps its own copy of the boot filter in its state directory, and every
//! switch replaces that copy with the current phase's exec filter (kept per
//! phase in the container's state directory).
use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::state::{ContainerState, RuntimeRecord};
use crate::profile::schema::Phase;
use crate::profile::{program_to_bytes, OciProfile, SockFilter};
use crate::sys::fs::write_atomic;

/// Path of the OCI JSON for processes exec'ed during phase `phase`, in the
/// container's state directory.
pub fn oci_path(cid: &str, phase: Phase) -> PathBuf {
    ContainerState::dir_of(cid).join(format!("{phase}.exec.json"))
}

/// Path of the compiled exec filter of phase `phase`.
pub fn bpf_path(cid: &str, phase: Phase) -> PathBuf {
    ContainerState::dir_of(cid).join(format!("{phase}.exec.bpf"))
}

/// Saves every phase's exec filter, compiled and as OCI JSON.
pub fn save(cid: &str, progs: &[(Phase, Vec<SockFilter>)], oci: &[(Phase, OciProfile)]) -> Result<()> {
    for (phase, prog) in progs {
        let path = bpf_path(cid, *phase);
        write_atomic(&path, &program_to_bytes(prog)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    for (phase, oci) in oci {
        let path = oci_path(cid, *phase);
        write_atomic(&path, serde_json::to_string_pretty(oci)?.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Replaces `linux.seccomp` of an OCI configuration (read from `origin`)
/// with `oci`.
pub fn set_seccomp(config: &mut Value, oci: &OciProfile, origin: &Path) -> Result<()> {
    let obj = config.as_object_mut().ok_or_else(|| anyhow!("{} is not a JSON object", origin.display()))?;
    let linux = obj.entry("linux").or_insert_with(|| Value::Object(Default::default()));
    let linux = linux.as_object_mut().ok_or_else(|| anyhow!("{}: 'linux' is not an object", origin.display()))?;
    linux.insert("seccomp".to_string(), serde_json::to_value(oci)?);
    Ok(())
}

/// Makes processes that `exec` starts in the container from now on get
/// phase `phase`'s filter: crun's `exec` loads the compiled filter it kept
/// in its state directory (`seccomp.bpf`), or compiles `linux.seccomp` of
/// its copy of the configuration (`config.json`) when there is none; both
/// are replaced here.
pub fn set_exec_phase(state: &ContainerState, rt: &RuntimeRecord, phase: Phase) -> Result<()> {
    let bpf = rt.crun_state_dir.join("seccomp.bpf");
    if bpf.exists() {
        let src = bpf_path(&state.cid, phase);
        let bytes = std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        write_atomic(&bpf, &bytes).with_context(|| format!("cannot rewrite crun's {}", bpf.display()))?;
    }
    let src = oci_path(&state.cid, phase);
    let text = std::fs::read_to_string(&src).with_context(|| format!("cannot read {}", src.display()))?;
    let oci: OciProfile = serde_json::from_str(&text).with_context(|| format!("{} is corrupt", src.display()))?;
    let path = rt.crun_state_dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read crun's {}", path.display()))?;
    let mut config: Value = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    set_seccomp(&mut config, &oci, &path)?;
    write_atomic(&path, serde_json::to_string(&config)?.as_bytes()).with_context(|| format!("cannot rewrite {}", path.display()))
}
