//! The syscall ABIs of an x86_64 kernel, as profiles, filters and the
//! tracer name them.
use libseccomp::{ScmpArch, ScmpSyscall};

/// `AUDIT_ARCH_X86_64`: the `arch` of `struct seccomp_data` for x86_64 (and x32) syscalls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: the `arch` of `struct seccomp_data` for i386 compat syscalls.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Bit set in the syscall number of x32 ABI syscalls.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

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
        let nr = ScmpSyscall::from_name_by_arch(name, self.scmp()).ok()?.as_raw_syscall();
        (nr >= 0).then_some(nr)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Arch {
    /// The ABI of a syscall from `PTRACE_GET_SYSCALL_INFO`'s `arch` (an
    /// `AUDIT_ARCH_*` value) and number: x32 calls are x86_64 calls with
    /// [`X32_SYSCALL_BIT`] set (kept apart, numbers keep the bit).
    pub fn from_audit(arch: u32, nr: u64) -> Option<Arch> {
        match arch {
            AUDIT_ARCH_X86_64 if nr & u64::from(X32_SYSCALL_BIT) != 0 => Some(Arch::X32),
            AUDIT_ARCH_X86_64 => Some(Arch::X86_64),
            AUDIT_ARCH_I386 => Some(Arch::X86),
            _ => None,
        }
    }

    /// The name of syscall `nr` on this ABI, as libseccomp knows it.
    pub fn syscall_name(self, nr: u64) -> Option<String> {
        let nr = i32::try_from(nr).ok().filter(|n| *n >= 0)?;
        ScmpSyscall::from(nr).get_name_by_arch(self.scmp()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_audit_arches() {
        assert_eq!(Arch::X86_64.syscall_name(59).as_deref(), Some("execve"));
        assert_eq!(Arch::X86.syscall_name(20).as_deref(), Some("getpid"));
        assert_eq!(Arch::X86_64.syscall_name(u64::MAX), None);
        assert_eq!(Arch::from_audit(0xc000_003e, 1), Some(Arch::X86_64));
        assert_eq!(Arch::from_audit(0xc000_003e, 0x4000_0001), Some(Arch::X32));
        assert_eq!(Arch::from_audit(0x4000_0003, 1), Some(Arch::X86));
        assert_eq!(Arch::X86_64.resolve("read"), Some(0));
        assert_eq!(Arch::from_scmp_name("SCMP_ARCH_X86"), Some(Arch::X86));
    }
}
