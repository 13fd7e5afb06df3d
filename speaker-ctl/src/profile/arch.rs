//! The syscall ABIs of x86_64 and arm64 kernels, as profiles, filters and
//! the tracer name them.  An x86_64 kernel runs x86_64, i386 (compat) and
//! x32 tasks; an arm64 kernel aarch64 and 32-bit ARM (compat) tasks.
use libseccomp::{ScmpArch, ScmpSyscall};

/// `AUDIT_ARCH_X86_64`: the `arch` of `struct seccomp_data` for x86_64 (and x32) syscalls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: the `arch` of `struct seccomp_data` for i386 compat syscalls.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`: the native ABI of arm64.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `AUDIT_ARCH_ARM`: 32-bit ARM (EABI) compat syscalls on arm64.
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
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
    /// arm64's native ABI.
    Aarch64,
    /// 32-bit ARM (EABI), arm64's compat ABI.
    Arm,
}

impl Arch {
    pub const ALL: [Arch; 5] = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm];

    /// The ABI speaker-ctl runs on (it is built for x86_64 and aarch64).
    #[cfg(not(target_arch = "aarch64"))]
    pub fn native() -> Arch {
        Arch::X86_64
    }

    /// The ABI speaker-ctl runs on (it is built for x86_64 and aarch64).
    #[cfg(target_arch = "aarch64")]
    pub fn native() -> Arch {
        Arch::Aarch64
    }

    /// The 32-bit compat ABI of the kernel whose native ABI is `self`
    /// (i386 for x86_64 and x32, 32-bit ARM for aarch64).
    pub fn compat(self) -> Arch {
        match self {
            Arch::X86_64 | Arch::X86 | Arch::X32 => Arch::X86,
            Arch::Aarch64 | Arch::Arm => Arch::Arm,
        }
    }

    /// The native ABI of the kernels that run `self` (x86_64 for i386 and
    /// x32, aarch64 for 32-bit ARM): one node's architecture.
    pub fn kernel(self) -> Arch {
        match self {
            Arch::X86_64 | Arch::X86 | Arch::X32 => Arch::X86_64,
            Arch::Aarch64 | Arch::Arm => Arch::Aarch64,
        }
    }

    /// Go's name of a node of architecture `self.kernel()` (`runtime.GOARCH`:
    /// what Docker, podman and CRI-O compare `includes.arches` with).
    pub fn go_name(self) -> &'static str {
        match self.kernel() {
            Arch::Aarch64 => "arm64",
            _ => "amd64",
        }
    }

    /// Name used in a speaker profile's syscall entries (`"arch": "x86"`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::X32 => "x32",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
        }
    }

    /// Name used in `architectures` (speaker and OCI profiles).
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
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
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    pub(crate) fn scmp(self) -> ScmpArch {
        match self {
            Arch::X86_64 => ScmpArch::X8664,
            Arch::X86 => ScmpArch::X86,
            Arch::X32 => ScmpArch::X32,
            Arch::Aarch64 => ScmpArch::Aarch64,
            Arch::Arm => ScmpArch::Arm,
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
            AUDIT_ARCH_AARCH64 => Some(Arch::Aarch64),
            AUDIT_ARCH_ARM => Some(Arch::Arm),
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

    #[test]
    fn arm64_abis() {
        assert_eq!(Arch::Aarch64.syscall_name(221).as_deref(), Some("execve"));
        assert_eq!(Arch::Arm.syscall_name(96).as_deref(), Some("getpriority"));
        assert_eq!(Arch::Aarch64.resolve("getpriority"), Some(141));
        assert_eq!(Arch::Aarch64.resolve("open"), None, "arm64 has only openat");
        assert_eq!(Arch::from_audit(0xc000_00b7, 141), Some(Arch::Aarch64));
        assert_eq!(Arch::from_audit(0x4000_0028, 96), Some(Arch::Arm));
        assert_eq!(Arch::from_scmp_name("SCMP_ARCH_AARCH64"), Some(Arch::Aarch64));
        assert_eq!(Arch::from_name("arm"), Some(Arch::Arm));
        assert_eq!(Arch::Aarch64.compat(), Arch::Arm);
        assert_eq!(Arch::X86_64.compat(), Arch::X86);
        assert_eq!((Arch::X32.kernel(), Arch::Arm.kernel()), (Arch::X86_64, Arch::Aarch64));
        assert_eq!((Arch::X86.go_name(), Arch::Aarch64.go_name()), ("amd64", "arm64"));
    }
}
