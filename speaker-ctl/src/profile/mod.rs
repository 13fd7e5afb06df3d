//! Profiles: speaker's multi-phase format, the Docker/OCI seccomp format, and
//! their compilation to classic BPF with libseccomp.
//!
//! Profiles in, filters out:
//!
//! * [`load_profile`] / [`load_phase_file`] read and validate files (speaker
//!   or Docker/OCI), [`phase_filter`] turns one phase of a speaker profile
//!   into a [`PhaseFilter`], [`oci`] holds the pure OCI translations;
//! * [`compile`] builds the BPF program ([`SockFilter`]s) with libseccomp;
//!   installing it is up to the caller;
//! * [`merge`], [`diff`] and [`write_profile_atomic`] work on whole profiles.
pub mod compile;
pub mod error;
pub mod load;
pub mod oci;
pub mod ops;
pub mod schema;

pub use compile::{
    allowed_count, compile, compile_pfc, phase_filter, phase_filter_at, Action, Arch, ArgCmp,
    CmpOp, PhaseFilter, Rule, SockFilter, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};
pub use error::ProfileError;
pub use load::{load_oci, load_phase_file, load_profile, read_profile_file, validate, ProfileFile};
pub use oci::{docker_count, DockerCount, OciProfile};
pub use ops::{
    diff, entry_label, merge, phase_labels, write_file_atomic, write_profile_atomic, PhaseDiff,
    ProfileDiff,
};
