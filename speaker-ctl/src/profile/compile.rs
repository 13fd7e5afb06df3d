//! One phase's filter ([`PhaseFilter`]) and its compilation to a classic BPF
//! program with libseccomp ([`compile`]).
//!
//! The program is built by libseccomp, never by hand:
//!
//! * one libseccomp context per ABI of the filter (x86_64, and i386 / x32
//!   only when the profile lists them), merged into one program;
//! * the "bad architecture" action is the filter's default action (when that
//!   denies), so a syscall made through an ABI the profile does not list
//!   (`int 0x80` i386 compat calls, x32 calls with bit 0x40000000 set) is
//!   denied like any syscall outside the set;
//! * `no_new_privs` is *not* requested by the program (`CTL_NNP` off): the
//!   installer (speaker-ctl run) decides;
//! * the program is exported with `seccomp_export_bpf` into a memfd and read
//!   back as [`SockFilter`]s, ready for `seccomp(SECCOMP_SET_MODE_FILTER)` or
//!   speaker.ko.
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::FromRawFd;
use std::path::Path;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use super::error::ProfileError;
use super::schema::{Phase, Profile};

/// `AUDIT_ARCH_X86_64`: the `arch` of `struct seccomp_data` for x86_64 (and x32) syscalls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: the `arch` of `struct seccomp_data` for i386 compat syscalls.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Bit set in the syscall number of x32 ABI syscalls.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The ABIs a filter can allow syscalls through (speaker runs on x86_64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// The native ABI.
    X86_64,
    /// The i386 compat ABI (`int 0x80`).
    X86,
    /// The x32 ABI.
    X32,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::X86, Arch::X32];

    /// The ABI speaker-ctl runs on.
    pub fn native() -> Arch {
        Arch::X86_64
    }

    /// Name used in a speaker profile's syscall entries (`"arch": "x86"`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::X32 => "x32",
        }
    }

    /// Name used in `architectures` (speaker and OCI profiles).
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
        }
    }

    /// Inverse of [`Arch::name`].
    pub fn from_name(s: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Inverse of [`Arch::scmp_name`].
    pub fn from_scmp_name(s: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.scmp_name() == s)
    }

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
        }
    }

    pub(crate) fn scmp(self) -> ScmpArch {
        match self {
            Arch::X86_64 => ScmpArch::X8664,
            Arch::X86 => ScmpArch::X86,
            Arch::X32 => ScmpArch::X32,
        }
    }

    /// The syscall number of `name` on this ABI, or `None` when libseccomp
    /// does not know the name or the syscall does not exist on this ABI.
    pub fn resolve(self, name: &str) -> Option<i32> {
        let nr = ScmpSyscall::from_name_by_arch(name, self.scmp())
            .ok()?
            .as_raw_syscall();
        (nr >= 0).then_some(nr)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a filter does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    /// Fail with this errno.
    Errno(u16),
    KillProcess,
    KillThread,
    /// Send SIGSYS.
    Trap,
    /// Allow and log (complain mode).
    Log,
    /// Notify a ptrace tracer with this value.
    Trace(u16),
}

impl Action {
    /// Parses an `SCMP_ACT_*` name; `ret` is the OCI `errnoRet` (errno of
    /// `SCMP_ACT_ERRNO`, message of `SCMP_ACT_TRACE`; EPERM when absent).
    /// `None` for an unknown or unsupported action or an out-of-range `ret`.
    pub fn parse(s: &str, ret: Option<u32>) -> Option<Action> {
        let ret = match ret {
            None => libc::EPERM as u16,
            Some(r) => u16::try_from(r).ok()?,
        };
        Some(match s {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => Action::Errno(ret),
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_TRACE" => Action::Trace(ret),
            _ => return None,
        })
    }

    /// The `SCMP_ACT_*` name (without the errno / trace value).
    pub fn scmp_name(self) -> &'static str {
        match self {
            Action::Allow => "SCMP_ACT_ALLOW",
            Action::Errno(_) => "SCMP_ACT_ERRNO",
            Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Action::KillThread => "SCMP_ACT_KILL_THREAD",
            Action::Trap => "SCMP_ACT_TRAP",
            Action::Log => "SCMP_ACT_LOG",
            Action::Trace(_) => "SCMP_ACT_TRACE",
        }
    }

    /// Whether the syscall runs (`Allow`, `Log`).
    pub fn allows(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    pub(crate) fn scmp(self) -> ScmpAction {
        match self {
            Action::Allow => ScmpAction::Allow,
            Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
            Action::KillProcess => ScmpAction::KillProcess,
            Action::KillThread => ScmpAction::KillThread,
            Action::Trap => ScmpAction::Trap,
            Action::Log => ScmpAction::Log,
            Action::Trace(v) => ScmpAction::Trace(v),
        }
    }

    /// The action for syscalls made through an ABI the filter does not list:
    /// the default action when it denies; in complain mode (`Log`), `Log`;
    /// with an `Allow` default (a denylist), EPERM, so that a foreign ABI
    /// cannot bypass the denylist.
    pub fn bad_arch_action(self) -> Action {
        match self {
            Action::Allow => Action::Errno(libc::EPERM as u16),
            other => other,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Errno(e) => write!(f, "SCMP_ACT_ERRNO({e})"),
            Action::Trace(v) => write!(f, "SCMP_ACT_TRACE({v})"),
            other => f.write_str(other.scmp_name()),
        }
    }
}

/// Comparison operator of an argument condition (OCI `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

impl CmpOp {
    pub fn parse(s: &str) -> Option<CmpOp> {
        Some(match s {
            "SCMP_CMP_NE" => CmpOp::Ne,
            "SCMP_CMP_LT" => CmpOp::Lt,
            "SCMP_CMP_LE" => CmpOp::Le,
            "SCMP_CMP_EQ" => CmpOp::Eq,
            "SCMP_CMP_GE" => CmpOp::Ge,
            "SCMP_CMP_GT" => CmpOp::Gt,
            "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
            _ => return None,
        })
    }
}

/// One argument condition (OCI `args[]`): `arg[index] OP value` or, for
/// `MaskedEq`, `(arg[index] & value) == value_two`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCmp {
    pub index: u32,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

impl ArgCmp {
    fn scmp(self) -> ScmpArgCompare {
        let (op, datum) = match self.op {
            CmpOp::Ne => (ScmpCompareOp::NotEqual, self.value),
            CmpOp::Lt => (ScmpCompareOp::Less, self.value),
            CmpOp::Le => (ScmpCompareOp::LessOrEqual, self.value),
            CmpOp::Eq => (ScmpCompareOp::Equal, self.value),
            CmpOp::Ge => (ScmpCompareOp::GreaterEqual, self.value),
            CmpOp::Gt => (ScmpCompareOp::Greater, self.value),
            CmpOp::MaskedEq => (ScmpCompareOp::MaskedEqual(self.value), self.value_two),
        };
        ScmpArgCompare::new(self.index, op, datum)
    }
}

/// One rule: `action` for syscall `name` made through ABI `arch`, when all
/// `args` conditions hold (always when `args` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub name: String,
    pub arch: Arch,
    pub action: Action,
    pub args: Vec<ArgCmp>,
}

/// One phase's seccomp filter, before compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseFilter {
    /// What a syscall matching no rule gets.
    pub default_action: Action,
    /// ABIs whose syscalls can match rules; syscalls of other ABIs get the
    /// default action (see [`Action::bad_arch_action`]). Empty means x86_64.
    pub arches: Vec<Arch>,
    pub rules: Vec<Rule>,
    /// Informational: names of an OCI profile that libseccomp resolves on
    /// none of `arches` (left out of the filter, as runc does; e.g. syscalls newer than
    /// libseccomp). Always empty for speaker profiles, where that is an error.
    pub unresolved: Vec<String>,
}

/// The kernel's `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const _: () = assert!(std::mem::size_of::<SockFilter>() == 8);
const _: () =
    assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());

impl From<SockFilter> for libc::sock_filter {
    fn from(f: SockFilter) -> libc::sock_filter {
        libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        }
    }
}

/// The filter of phase `phase` of a speaker profile built in memory (errors
/// name it `<profile NAME>`). See [`phase_filter_at`] for the rules.
pub fn phase_filter(profile: &Profile, phase: Phase) -> Result<PhaseFilter, ProfileError> {
    let origin = format!("<profile {}>", profile.name.as_deref().unwrap_or("unnamed"));
    phase_filter_at(profile, phase, Path::new(&origin))
}

/// The filter of phase `phase` of `profile`, read from `origin` (for error
/// messages): default action `profile.default_action`, the ABIs of
/// `profile.architectures`, and one allow rule per syscall entry of the
/// phase, for the entry's `arch` (which `architectures` must list).
pub fn phase_filter_at(
    profile: &Profile,
    phase: Phase,
    origin: &Path,
) -> Result<PhaseFilter, ProfileError> {
    let default_action = Action::parse(&profile.default_action, None).ok_or_else(|| {
        ProfileError::UnknownAction {
            path: origin.to_path_buf(),
            what: "default_action".to_string(),
            action: profile.default_action.clone(),
        }
    })?;
    let mut arches = Vec::new();
    for a in &profile.architectures {
        let arch = Arch::from_scmp_name(a).ok_or_else(|| ProfileError::UnknownArch {
            path: origin.to_path_buf(),
            arch: a.clone(),
        })?;
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    if arches.is_empty() {
        arches.push(Arch::native());
    }
    let set = profile
        .phase(phase)
        .ok_or_else(|| ProfileError::MissingPhase {
            path: origin.to_path_buf(),
            phase,
        })?;
    let mut rules: Vec<Rule> = Vec::with_capacity(set.syscalls.len());
    let mut seen = BTreeSet::new();
    for entry in &set.syscalls {
        let arch = Arch::from_name(&entry.arch).ok_or_else(|| ProfileError::UnknownEntryArch {
            path: origin.to_path_buf(),
            phase,
            name: entry.name.clone(),
            arch: entry.arch.clone(),
        })?;
        if !arches.contains(&arch) {
            return Err(ProfileError::ArchNotListed {
                path: origin.to_path_buf(),
                phase,
                name: entry.name.clone(),
                arch: entry.arch.clone(),
                scmp_arch: arch.scmp_name(),
            });
        }
        if arch.resolve(&entry.name).is_none() {
            return Err(ProfileError::UnknownSyscall {
                path: origin.to_path_buf(),
                phase,
                name: entry.name.clone(),
                arch: entry.arch.clone(),
            });
        }
        if seen.insert((arch, entry.name.as_str())) {
            rules.push(Rule {
                name: entry.name.clone(),
                arch,
                action: Action::Allow,
                args: Vec::new(),
            });
        }
    }
    Ok(PhaseFilter {
        default_action,
        arches,
        rules,
        unresolved: Vec::new(),
    })
}

/// Number of distinct syscalls the filter lets run (`Allow` or `Log` rules,
/// with or without argument conditions) on the native ABI.
pub fn allowed_count(filter: &PhaseFilter) -> usize {
    filter
        .rules
        .iter()
        .filter(|r| r.arch == Arch::native() && r.action.allows())
        .map(|r| r.name.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

fn seccomp_err(
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> ProfileError {
    let what = what.into();
    move |error| ProfileError::Seccomp { what, error }
}

fn rule_err(rule: &Rule, msg: impl Into<String>) -> ProfileError {
    ProfileError::Rule {
        name: rule.name.clone(),
        arch: rule.arch.name(),
        msg: msg.into(),
    }
}

/// A libseccomp context holding only `arch`, with the filter's attributes.
fn arch_context(filter: &PhaseFilter, arch: Arch) -> Result<ScmpFilterContext, ProfileError> {
    let what = format!("creating the {arch} context");
    let mut ctx =
        ScmpFilterContext::new(filter.default_action.scmp()).map_err(seccomp_err(&what))?;
    if ScmpArch::native() != arch.scmp() {
        ctx.add_arch(arch.scmp()).map_err(seccomp_err(&what))?;
        ctx.remove_arch(ScmpArch::native())
            .map_err(seccomp_err(&what))?;
    }
    ctx.set_act_badarch(filter.default_action.bad_arch_action().scmp())
        .map_err(seccomp_err(&what))?;
    ctx.set_ctl_nnp(false).map_err(seccomp_err(&what))?;
    Ok(ctx)
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    filter: &PhaseFilter,
    rule: &Rule,
) -> Result<(), ProfileError> {
    if rule.action == filter.default_action {
        // libseccomp refuses rules whose action is the default one; they
        // are redundant anyway.
        return Ok(());
    }
    if rule.arch.resolve(&rule.name).is_none() {
        return Err(rule_err(
            rule,
            format!("libseccomp does not know it on {}", rule.arch),
        ));
    }
    // Rules take the *native* number (possibly a libseccomp pseudo number),
    // which libseccomp translates to each ABI of the context.
    let syscall = ScmpSyscall::from_name(&rule.name).map_err(|e| rule_err(rule, e.to_string()))?;
    let action = rule.action.scmp();
    let add = |ctx: &mut ScmpFilterContext, conds: &[ScmpArgCompare]| {
        if conds.is_empty() {
            ctx.add_rule(action, syscall)
        } else {
            ctx.add_rule_conditional(action, syscall, conds)
        }
        .map(|_| ())
        .map_err(|e| rule_err(rule, e.to_string()))
    };
    if let Some(a) = rule.args.iter().find(|a| a.index > 5) {
        return Err(rule_err(
            rule,
            format!("argument index {} out of range 0..=5", a.index),
        ));
    }
    let conds: Vec<ScmpArgCompare> = rule.args.iter().map(|a| a.scmp()).collect();
    let mut indexes = rule.args.iter().map(|a| a.index).collect::<Vec<_>>();
    indexes.sort_unstable();
    let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
    if repeated {
        // Like runc: several conditions on the same argument become one
        // rule each (alternatives), as libseccomp cannot AND them.
        for c in &conds {
            add(ctx, std::slice::from_ref(c))?;
        }
        Ok(())
    } else {
        add(ctx, &conds)
    }
}

/// The libseccomp context of a filter (all its ABIs merged).
fn build_context(filter: &PhaseFilter) -> Result<ScmpFilterContext, ProfileError> {
    let mut arches: Vec<Arch> = Vec::new();
    for a in &filter.arches {
        if !arches.contains(a) {
            arches.push(*a);
        }
    }
    if arches.is_empty() {
        arches.push(Arch::native());
    }
    if let Some(rule) = filter.rules.iter().find(|r| !arches.contains(&r.arch)) {
        return Err(rule_err(rule, "the filter does not list this architecture"));
    }
    let mut merged: Option<ScmpFilterContext> = None;
    for arch in arches {
        let mut ctx = arch_context(filter, arch)?;
        for rule in filter.rules.iter().filter(|r| r.arch == arch) {
            add_rule(&mut ctx, filter, rule)?;
        }
        match merged.as_mut() {
            None => merged = Some(ctx),
            Some(m) => {
                m.merge(ctx)
                    .map_err(seccomp_err(format!("merging the {arch} context")))?;
            }
        }
    }
    Ok(merged.expect("at least one architecture"))
}

/// Compiles a phase filter to a classic BPF program (libseccomp).
pub fn compile(filter: &PhaseFilter) -> Result<Vec<SockFilter>, ProfileError> {
    let ctx = build_context(filter)?;
    export_bpf(&ctx)
}

/// libseccomp's pseudo-code listing of the compiled filter (for debugging).
pub fn compile_pfc(filter: &PhaseFilter) -> Result<String, ProfileError> {
    let ctx = build_context(filter)?;
    let mut file = memfd()?;
    ctx.export_pfc(&file)
        .map_err(seccomp_err("exporting the PFC listing"))?;
    let bytes = read_back(&mut file)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn memfd() -> Result<std::fs::File, ProfileError> {
    // SAFETY: a valid NUL-terminated name; the fd is owned by the File.
    let fd = unsafe { libc::memfd_create(c"speaker-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(ProfileError::Export {
            error: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn read_back(file: &mut std::fs::File) -> Result<Vec<u8>, ProfileError> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut buf))
        .map_err(|error| ProfileError::Export { error })?;
    Ok(buf)
}

/// Exports a libseccomp context's BPF program (libseccomp 2.5 only exports
/// to a file descriptor).
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, ProfileError> {
    let mut file = memfd()?;
    ctx.export_bpf(&file)
        .map_err(seccomp_err("exporting the BPF program"))?;
    let bytes = read_back(&mut file)?;
    parse_program(&bytes)
}

/// Parses raw `struct sock_filter`s (native byte order).
pub fn parse_program(bytes: &[u8]) -> Result<Vec<SockFilter>, ProfileError> {
    if bytes.is_empty() || !bytes.chunks_exact(8).remainder().is_empty() {
        return Err(ProfileError::Export {
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} bytes is not a whole number of 8-byte instructions",
                    bytes.len()
                ),
            ),
        });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::schema::{PhaseSet, SyscallEntry};

    fn entry(name: &str, arch: &str) -> SyscallEntry {
        SyscallEntry {
            name: name.to_string(),
            arch: arch.to_string(),
            nr: None,
            count: None,
            first_seen_ms: None,
        }
    }

    fn profile(names: &[(&str, &str)]) -> Profile {
        let mut p = Profile::new(Some("t".into()));
        p.phases.insert(
            Phase::Boot,
            PhaseSet {
                syscalls: names.iter().map(|(n, a)| entry(n, a)).collect(),
            },
        );
        p
    }

    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;

    #[test]
    fn actions_parse() {
        assert_eq!(
            Action::parse("SCMP_ACT_ERRNO", None),
            Some(Action::Errno(1))
        );
        assert_eq!(
            Action::parse("SCMP_ACT_ERRNO", Some(38)),
            Some(Action::Errno(38))
        );
        assert_eq!(
            Action::parse("SCMP_ACT_KILL", None),
            Some(Action::KillThread)
        );
        assert_eq!(
            Action::parse("SCMP_ACT_KILL_PROCESS", None),
            Some(Action::KillProcess)
        );
        assert_eq!(
            Action::parse("SCMP_ACT_TRACE", Some(7)),
            Some(Action::Trace(7))
        );
        assert_eq!(Action::parse("SCMP_ACT_NOTIFY", None), None);
        assert_eq!(Action::parse("SCMP_ACT_ERRNO", Some(70000)), None);
    }

    #[test]
    fn phase_filter_rules_and_count() {
        let p = profile(&[("read", "x86_64"), ("write", "x86_64"), ("read", "x86_64")]);
        let f = phase_filter(&p, Phase::Boot).unwrap();
        assert_eq!(f.default_action, Action::Errno(1));
        assert_eq!(f.arches, vec![Arch::X86_64]);
        assert_eq!(f.rules.len(), 2);
        assert_eq!(allowed_count(&f), 2);
    }

    #[test]
    fn phase_filter_errors() {
        let p = profile(&[("no_such_syscall", "x86_64")]);
        let e = phase_filter(&p, Phase::Boot).unwrap_err().to_string();
        assert!(
            e.contains("no_such_syscall") && e.contains("<profile t>"),
            "{e}"
        );
        // socketcall exists on i386 only.
        let p = profile(&[("socketcall", "x86_64")]);
        assert!(matches!(
            phase_filter(&p, Phase::Boot),
            Err(ProfileError::UnknownSyscall { .. })
        ));
        let p = profile(&[("read", "x86")]);
        let e = phase_filter(&p, Phase::Boot).unwrap_err();
        assert!(matches!(e, ProfileError::ArchNotListed { .. }), "{e}");
        assert!(e.to_string().contains("SCMP_ARCH_X86"), "{e}");
        let e = phase_filter(&p, Phase::Running).unwrap_err();
        assert!(matches!(e, ProfileError::MissingPhase { .. }), "{e}");
        let mut p = profile(&[("read", "x86_64")]);
        p.default_action = "SCMP_ACT_BOGUS".into();
        assert!(matches!(
            phase_filter(&p, Phase::Boot),
            Err(ProfileError::UnknownAction { .. })
        ));
    }

    #[test]
    fn compile_checks_arch_first() {
        let p = profile(&[("read", "x86_64"), ("exit_group", "x86_64")]);
        let prog = compile(&phase_filter(&p, Phase::Boot).unwrap()).unwrap();
        // ld [4] (seccomp_data.arch); jeq AUDIT_ARCH_X86_64
        assert_eq!((prog[0].code, prog[0].k), (BPF_LD_W_ABS, 4));
        assert_eq!((prog[1].code, prog[1].k), (BPF_JEQ_K, AUDIT_ARCH_X86_64));
        // x32 numbers are rejected.
        assert!(prog.iter().any(|i| i.k == X32_SYSCALL_BIT));
        // No i386 branch.
        assert!(!prog.iter().any(|i| i.k == AUDIT_ARCH_I386));
        // Every return is ALLOW or ERRNO(EPERM).
        let rets: BTreeSet<u32> = prog
            .iter()
            .filter(|i| i.code == BPF_RET_K)
            .map(|i| i.k)
            .collect();
        assert_eq!(rets, BTreeSet::from([0x7fff_0000, 0x0005_0001]));
    }

    #[test]
    fn compile_with_i386() {
        let mut p = profile(&[("read", "x86_64"), ("socketcall", "x86"), ("read", "x86")]);
        p.architectures.push("SCMP_ARCH_X86".into());
        let f = phase_filter(&p, Phase::Boot).unwrap();
        let prog = compile(&f).unwrap();
        assert!(prog
            .iter()
            .any(|i| i.code == BPF_JEQ_K && i.k == AUDIT_ARCH_I386));
        let pfc = compile_pfc(&f).unwrap();
        assert!(pfc.contains("x86_64") && pfc.contains("x86"), "{pfc}");
        assert_eq!(allowed_count(&f), 1);
    }

    #[test]
    fn compile_arg_rules() {
        let f = PhaseFilter {
            default_action: Action::KillProcess,
            arches: vec![Arch::X86_64],
            rules: vec![
                Rule {
                    name: "personality".into(),
                    arch: Arch::X86_64,
                    action: Action::Allow,
                    args: vec![
                        ArgCmp {
                            index: 0,
                            op: CmpOp::Eq,
                            value: 0,
                            value_two: 0,
                        },
                        ArgCmp {
                            index: 0,
                            op: CmpOp::Eq,
                            value: 8,
                            value_two: 0,
                        },
                    ],
                },
                Rule {
                    name: "clone".into(),
                    arch: Arch::X86_64,
                    action: Action::Allow,
                    args: vec![ArgCmp {
                        index: 0,
                        op: CmpOp::MaskedEq,
                        value: 0x7E02_0000,
                        value_two: 0,
                    }],
                },
                Rule {
                    name: "clone3".into(),
                    arch: Arch::X86_64,
                    action: Action::Errno(38),
                    args: vec![],
                },
            ],
            unresolved: vec![],
        };
        let prog = compile(&f).unwrap();
        assert!(prog.iter().any(|i| i.k == 0x7E02_0000));
        assert!(prog
            .iter()
            .any(|i| i.code == BPF_RET_K && i.k == 0x0005_0026));
        assert!(prog
            .iter()
            .any(|i| i.code == BPF_RET_K && i.k == 0x8000_0000));
        let mut bad = f.clone();
        bad.rules[0].args[0].index = 6;
        assert!(compile(&bad)
            .unwrap_err()
            .to_string()
            .contains("personality"));
        let mut bad = f;
        bad.rules[0].arch = Arch::X86;
        assert!(compile(&bad).is_err());
    }

    #[test]
    fn parse_program_rejects_partial() {
        assert!(parse_program(&[0; 12]).is_err());
        assert_eq!(
            parse_program(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap()[0].k,
            0x7fff_0000
        );
    }
}
