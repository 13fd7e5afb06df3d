//! One phase's filter before compilation ([`PhaseFilter`]: default action,
//! ABIs, rules) and the compiled program's instruction ([`SockFilter`]).
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp};

use super::arch::Arch;
use super::error::ProfileError;

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
    /// Ask the filter's user-space supervisor (seccomp user notification:
    /// the notify engine's single filter, never a profile's own action).
    Notify,
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
            Action::Notify => "SCMP_ACT_NOTIFY",
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
            Action::Notify => ScmpAction::Notify,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

    /// The OCI spelling (inverse of [`CmpOp::parse`]).
    pub fn scmp_name(self) -> &'static str {
        match self {
            CmpOp::Ne => "SCMP_CMP_NE",
            CmpOp::Lt => "SCMP_CMP_LT",
            CmpOp::Le => "SCMP_CMP_LE",
            CmpOp::Eq => "SCMP_CMP_EQ",
            CmpOp::Ge => "SCMP_CMP_GE",
            CmpOp::Gt => "SCMP_CMP_GT",
            CmpOp::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }
}

/// One argument condition (OCI `args[]`): `arg[index] OP value` or, for
/// `MaskedEq`, `(arg[index] & value) == value_two`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ArgCmp {
    pub index: u32,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

impl ArgCmp {
    /// Whether argument values `args` (a syscall's registers) satisfy this
    /// condition, as the kernel's BPF compares them (64-bit).
    pub fn holds(self, args: &[u64; 6]) -> bool {
        let Some(&a) = args.get(self.index as usize) else { return false };
        match self.op {
            CmpOp::Ne => a != self.value,
            CmpOp::Lt => a < self.value,
            CmpOp::Le => a <= self.value,
            CmpOp::Eq => a == self.value,
            CmpOp::Ge => a >= self.value,
            CmpOp::Gt => a > self.value,
            CmpOp::MaskedEq => a & self.value == self.value_two,
        }
    }

    pub(crate) fn scmp(self) -> ScmpArgCompare {
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
const _: () = assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());

impl From<SockFilter> for libc::sock_filter {
    fn from(f: SockFilter) -> libc::sock_filter {
        libc::sock_filter { code: f.code, jt: f.jt, jf: f.jf, k: f.k }
    }
}

/// Serialises a program as raw `struct sock_filter` bytes (native endian).
pub fn program_to_bytes(prog: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Parses raw `struct sock_filter`s (native byte order).
pub fn parse_program(bytes: &[u8]) -> Result<Vec<SockFilter>, ProfileError> {
    if bytes.is_empty() || !bytes.chunks_exact(8).remainder().is_empty() {
        return Err(ProfileError::Export {
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} bytes is not a whole number of 8-byte instructions", bytes.len()),
            ),
        });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter { code: u16::from_ne_bytes([c[0], c[1]]), jt: c[2], jf: c[3], k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse() {
        assert_eq!(Action::parse("SCMP_ACT_ERRNO", None), Some(Action::Errno(1)));
        assert_eq!(Action::parse("SCMP_ACT_ERRNO", Some(38)), Some(Action::Errno(38)));
        assert_eq!(Action::parse("SCMP_ACT_KILL", None), Some(Action::KillThread));
        assert_eq!(Action::parse("SCMP_ACT_KILL_PROCESS", None), Some(Action::KillProcess));
        assert_eq!(Action::parse("SCMP_ACT_TRACE", Some(7)), Some(Action::Trace(7)));
        assert_eq!(Action::parse("SCMP_ACT_NOTIFY", None), None);
        assert_eq!(Action::parse("SCMP_ACT_ERRNO", Some(70000)), None);
    }

    #[test]
    fn parse_program_rejects_partial() {
        assert!(parse_program(&[0; 12]).is_err());
        assert_eq!(parse_program(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap()[0].k, 0x7fff_0000);
        let prog = [SockFilter { code: 6, jt: 1, jf: 2, k: 0x7fff_0000 }];
        assert_eq!(parse_program(&program_to_bytes(&prog)).unwrap(), prog);
    }
}
