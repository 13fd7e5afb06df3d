//! The error type of the `profile` module.
//!
//! Every variant carries the context needed to act on it: the file (or, for a
//! profile built in memory, `<profile NAME>`), the phase and the syscall.
//! Underlying causes are part of the message, so `to_string()` is complete.
use std::path::PathBuf;

use super::schema::{Phase, SCHEMA_V1};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read {}: {} (check the path)", path.display(), crate::sys::fs::error_text(error))]
    Read { path: PathBuf, error: std::io::Error },

    #[error("{}: the file is empty (a profile is a JSON object; 'speaker-ctl trace' writes one)", path.display())]
    Empty { path: PathBuf },

    #[error("cannot write {}: {error}", path.display())]
    Write { path: PathBuf, error: std::io::Error },

    #[error("{}:{line}:{column}: invalid JSON: {msg}", path.display())]
    Json { path: PathBuf, line: usize, column: usize, msg: String },

    #[error("{}:{line}:{column}: invalid {format}: {msg}", path.display())]
    Invalid { path: PathBuf, format: &'static str, line: usize, column: usize, msg: String },

    #[error(
        "{}: unknown schema {found}: expected \"schema\": \"{SCHEMA_V1}\" (a speaker profile) \
         or a Docker/OCI seccomp profile (with \"defaultAction\")",
        path.display()
    )]
    UnknownSchema { path: PathBuf, found: String },

    #[error(
        "{}: not a profile: expected a speaker profile (\"schema\": \"{SCHEMA_V1}\") \
         or a Docker/OCI seccomp profile (with \"defaultAction\")",
        path.display()
    )]
    UnknownFormat { path: PathBuf },

    #[error(
        "{}: phase {phase}: unknown syscall '{name}' on {arch} (libseccomp cannot resolve it; \
         check the spelling or the entry's \"arch\")",
        path.display()
    )]
    UnknownSyscall { path: PathBuf, phase: Phase, name: String, arch: String },

    #[error(
        "{}: phase {phase}: syscall '{name}' is recorded for arch {arch}, which \"architectures\" \
         does not list (add {scmp_arch} to \"architectures\" or drop the entry)",
        path.display()
    )]
    ArchNotListed { path: PathBuf, phase: Phase, name: String, arch: String, scmp_arch: &'static str },

    #[error(
        "{}: unknown architecture '{arch}' (expected SCMP_ARCH_X86_64, SCMP_ARCH_X86 or SCMP_ARCH_X32)",
        path.display()
    )]
    UnknownArch { path: PathBuf, arch: String },

    #[error(
        "{}: {what}: unknown or unsupported action '{action}' (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, \
         SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_LOG or SCMP_ACT_TRACE)",
        path.display()
    )]
    UnknownAction { path: PathBuf, what: String, action: String },

    #[error("{}: syscall '{name}': {msg}", path.display())]
    BadArgument { path: PathBuf, name: String, msg: String },

    #[error("{}: {msg}", path.display())]
    BadList { path: PathBuf, msg: String },

    #[error("{}: has no {phase} phase", path.display())]
    MissingPhase { path: PathBuf, phase: Phase },

    #[error(
        "{}: a per-phase file must hold exactly one phase, this one has {count} ({phases}); \
         export the phase you want with `speaker-ctl profile export --phase PHASE` or use --profile",
        path.display()
    )]
    PhaseCount { path: PathBuf, count: usize, phases: String },

    #[error(
        "{}: Docker/OCI profile with defaultAction {action} is a denylist; a speaker profile is an \
         allowlist and cannot represent it",
        path.display()
    )]
    Denylist { path: PathBuf, action: String },

    #[error(
        "cannot merge {} into {}: {field} differs ({b} vs {a}); merge only recordings made with the same {field}",
        path_b.display(),
        path_a.display()
    )]
    MergeMismatch { path_a: PathBuf, path_b: PathBuf, field: &'static str, a: String, b: String },

    #[error(
        "{}: phase {phase}: syscall '{name}' has unknown arch '{arch}' (expected x86_64, x86 or x32)",
        path.display()
    )]
    UnknownEntryArch { path: PathBuf, phase: Phase, name: String, arch: String },

    #[error("compiling the rule of syscall '{name}' ({arch}): {msg}")]
    Rule { name: String, arch: &'static str, msg: String },

    #[error("libseccomp: {what}: {error}")]
    Seccomp { what: String, error: libseccomp::error::SeccompError },

    #[error("libseccomp: exporting the BPF program: {error}")]
    Export { error: std::io::Error },

    #[error("{}: larger than {} MiB: not a profile (is it the right file?)", path.display(), max >> 20)]
    TooLarge { path: PathBuf, max: u64 },

    /// What the validator (`profile::validate`) found: every problem, the
    /// first one in the message.
    #[error("{}: {}{}", path.display(), problems.first().map(ToString::to_string).unwrap_or_default(), more_problems(problems.len(), path))]
    Problems { path: PathBuf, problems: Vec<super::validate::Problem>, kind_oci: bool },

    #[error(transparent)]
    Output(#[from] crate::sys::output::OutputError),
}

/// The tail of a [`ProfileError::Problems`] message with more than one.
fn more_problems(n: usize, path: &std::path::Path) -> String {
    match n {
        0 | 1 => String::new(),
        2 => format!(" (and 1 more problem: 'speaker-ctl profile validate {}' lists them)", path.display()),
        n => format!(" (and {} more problems: 'speaker-ctl profile validate {}' lists them)", n - 1, path.display()),
    }
}

impl ProfileError {
    /// A `Json` or `Invalid` error from a serde_json error while reading `path`
    /// as `format`.
    pub(crate) fn from_serde(path: &std::path::Path, format: &'static str, err: &serde_json::Error) -> ProfileError {
        let full = err.to_string();
        // serde_json appends " at line L column C"; the position is reported
        // separately.
        let msg = match full.rfind(" at line ") {
            Some(i) if err.line() != 0 => full[..i].to_string(),
            _ => full,
        };
        match err.classify() {
            serde_json::error::Category::Data => {
                ProfileError::Invalid { path: path.to_path_buf(), format, line: err.line(), column: err.column(), msg }
            }
            _ => ProfileError::Json { path: path.to_path_buf(), line: err.line(), column: err.column(), msg },
        }
    }
}
