//! How many syscalls a Docker/OCI profile allows (for `profile table`).
use super::translate::docker_sets;
use super::OciProfile;
use crate::profile::arch::Arch;

/// Counts of [`DockerSets`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DockerCount {
    pub unconditional: usize,
    pub with_args: usize,
    pub cap_gated: usize,
}

/// Counts what `oci` allows on `arch` the way a runtime would for an
/// unprivileged container (see [`docker_sets`]).
pub fn docker_count(oci: &OciProfile, arch: Arch) -> DockerCount {
    let s = docker_sets(oci, arch);
    DockerCount { unconditional: s.unconditional.len(), with_args: s.with_args.len(), cap_gated: s.cap_gated.len() }
}
