//! Registering a container with speaker.ko at the exec stop of its first
//! process (used by `speaker-ctl run`, the runtime's monitor and the
//! tracer's filter mode).
//!
//! The process is stopped by ptrace at (or right before) the exec of the
//! container's command, so it cannot stack another filter meanwhile: its
//! `Seccomp_filters` count proves which filter is its top one, the one
//! just installed, and speaker.ko checks the count again.
use crate::device::{Device, DeviceError};
use crate::profile::schema::Phase;
use crate::sys::procfs;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read the seccomp state of pid {pid}: {error}")]
    SeccompState { pid: i32, error: std::io::Error },
    #[error("pid {pid} reached its exec without a seccomp filter (does the OCI runtime apply linux.seccomp?)")]
    NoFilter { pid: i32 },
    #[error("cannot register container '{id}' (pid {pid}) with speaker.ko: {error}")]
    Device { id: String, pid: i32, error: DeviceError },
}

/// Registers the top filter of `pid` (stopped at its exec) as container
/// `kernel_id`'s, in phase `phase` with `allowed` syscalls; returns the
/// task's filter count.
pub fn register_at_exec_stop(dev: &Device, kernel_id: &str, pid: i32, phase: Phase, allowed: u32) -> Result<u32, RegisterError> {
    let count = procfs::seccomp_filter_count(pid).map_err(|error| RegisterError::SeccompState { pid, error })?;
    if count == 0 {
        return Err(RegisterError::NoFilter { pid });
    }
    dev.register(kernel_id, pid as u32, count, phase.index(), allowed).map_err(|error| RegisterError::Device {
        id: kernel_id.to_string(),
        pid,
        error,
    })?;
    Ok(count)
}
