//! Profiles: speaker's multi-phase format, the Docker/OCI seccomp format, and
//! their compilation to classic BPF with libseccomp.
//!
//! Profiles in, filters out: [`file`] reads and writes profile files,
//! [`translate`] turns one phase of a speaker profile into a
//! [`PhaseFilter`] ([`filter`]), [`oci`] holds the OCI format and its pure
//! translations, [`bpf`] builds the program with libseccomp; [`merge`] and
//! [`diff`] work on whole profiles; [`risk`] classifies every syscall and
//! [`policy`] turns a traced profile into what each phase allows (the one
//! place phases are compiled from).
pub mod arch;
pub mod audit;
pub mod bpf;
pub mod diff;
pub mod error;
pub mod file;
pub mod filter;
pub mod labels;
pub mod learn;
pub mod margin;
pub mod merge;
pub mod mode;
pub mod oci;
pub mod policy;
pub mod readiness;
pub mod risk;
pub mod schema;
pub mod table;
pub mod translate;
pub mod validate;

pub use arch::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
pub use audit::SeccompRecord;
pub use bpf::{compile, compile_pfc, compile_with, Layout, DEFAULT_LAYOUT};
pub use diff::{diff, entry_label, phase_labels, PhaseDiff, ProfileDiff};
pub use error::ProfileError;
pub use file::{
    check_profile_file, load_oci, load_phase_file, load_profile, load_profile_lossy, oci_nodes, profile_text, read_profile_file, validate,
    write_profile, write_profile_atomic, FileCheck, ProfileFile,
};
pub use filter::{parse_program, program_to_bytes, Action, ArgCmp, CmpOp, PhaseFilter, Rule, SockFilter};
pub use merge::{contributions, merge, Contribution};
pub use mode::Mode;
pub use oci::{docker_count, DockerCount, OciProfile};
pub use policy::{phase_sets, phase_sets_on, CompileMode, CompileOptions, PhaseSets};
pub use translate::{allowed_count, phase_filter, phase_filter_at};
