//! The seccomp action cache, as the scenarios that check it see it.
//!
//! When a filter is attached, `seccomp_cache_prepare()` (kernel/seccomp.c)
//! emulates its program for every syscall number of each ABI with only `nr`
//! and `arch` known: a syscall whose path loads nothing else and returns
//! `SECCOMP_RET_ALLOW` gets its bit in the filter's bitmap (ANDed with the
//! bitmap of the filter below), and from then on seccomp allows it without
//! running any program.  A switch must clear the bits of syscalls the new
//! program no longer allows constantly, or they stay allowed.
//!
//! Two ways to see that bitmap, by kernel:
//!
//! * [`View::DebugFile`]: `/proc/PID/seccomp_cache` (`CONFIG_SECCOMP_CACHE_DEBUG`,
//!   speaker's debug kernel) prints the bitmap itself: `x86_64 140 ALLOW`.
//! * [`View::Derived`]: without that file (Debian's kernel), the bitmap
//!   cannot be read from user space.  What it held when the filters were
//!   attached is derived from their programs, read back from the kernel with
//!   `PTRACE_SECCOMP_GET_FILTER` (the filter's `orig_prog`, exactly what
//!   `seccomp_cache_prepare()` emulated) and emulated the same way
//!   ([`const_allow`], a port of `seccomp_is_const_allow()`).  That proves
//!   the syscall was cached as allowed before a switch.  After a switch the
//!   derived answer only reflects the new program: that the *bit* is gone
//!   is then shown by the syscall being denied, which the scenarios assert
//!   in both views (a bit left set would let seccomp allow the syscall
//!   without running the new program).
//!
//! [`View::current`] picks the view; the runner prints it (`ACTION-CACHE
//! <view>`), and every lookup prints a line naming the view it used.
use std::fs;
use std::path::Path;

/// `AUDIT_ARCH_X86_64` (what the filter loads from `seccomp_data.arch`).
#[cfg(any(test, target_arch = "x86_64"))]
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
#[cfg(any(test, target_arch = "x86_64"))]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64` and `AUDIT_ARCH_ARM` (the compat ABI on arm64).
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// `PTRACE_SECCOMP_GET_FILTER` (needs `CONFIG_CHECKPOINT_RESTORE`).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// An ABI of the action cache: the native one (x86_64, aarch64) or the
/// compat one (i386 on x86_64, 32-bit ARM on arm64).
#[derive(Clone, Copy)]
pub enum Abi {
    Native,
    Compat,
}

impl Abi {
    /// The name `/proc/PID/seccomp_cache` gives it (`SECCOMP_ARCH_*_NAME`).
    #[cfg(target_arch = "x86_64")]
    fn name(self) -> &'static str {
        match self {
            Abi::Native => "x86_64",
            Abi::Compat => "ia32",
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn name(self) -> &'static str {
        match self {
            Abi::Native => "aarch64",
            Abi::Compat => "arm",
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn audit_arch(self) -> u32 {
        match self {
            Abi::Native => AUDIT_ARCH_X86_64,
            Abi::Compat => AUDIT_ARCH_I386,
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn audit_arch(self) -> u32 {
        match self {
            Abi::Native => AUDIT_ARCH_AARCH64,
            Abi::Compat => AUDIT_ARCH_ARM,
        }
    }
}

/// How the action cache is observed on the running kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `/proc/PID/seccomp_cache` (`CONFIG_SECCOMP_CACHE_DEBUG`).
    DebugFile,
    /// Derived from the filters' programs (`PTRACE_SECCOMP_GET_FILTER`).
    Derived,
}

impl View {
    /// The view this kernel allows: the debug file if it exists.
    pub fn current() -> View {
        if Path::new("/proc/self/seccomp_cache").exists() {
            View::DebugFile
        } else {
            View::Derived
        }
    }

    /// The view's name, as the runner prints it (`ACTION-CACHE <name>`).
    pub fn name(self) -> &'static str {
        match self {
            View::DebugFile => "debug-file",
            View::Derived => "derived",
        }
    }

    /// One sentence on what the view reads.
    pub fn describe(self) -> &'static str {
        match self {
            View::DebugFile => "the bitmap itself, from /proc/PID/seccomp_cache (CONFIG_SECCOMP_CACHE_DEBUG)",
            View::Derived => {
                "no /proc/PID/seccomp_cache (CONFIG_SECCOMP_CACHE_DEBUG is off): derived from the filters' programs \
                 (PTRACE_SECCOMP_GET_FILTER, emulated as seccomp_cache_prepare() does); after a switch the denial of \
                 the syscall shows the bit is gone"
            }
        }
    }
}

/// Whether the action cache of task `pid` allows syscall `nr` of `abi`
/// without running a program.  Prints the view used and the answer.
pub fn allows(pid: i32, abi: Abi, nr: u32) -> Result<bool, String> {
    let view = View::current();
    let allowed = match view {
        View::DebugFile => from_debug_file(pid, abi, nr)?,
        View::Derived => {
            let chain = filter_chain(pid)?;
            chain.iter().all(|prog| const_allow(prog, abi.audit_arch(), nr))
        }
    };
    println!("  ACTION-CACHE {} pid {pid}: {} {nr} {}", view.name(), abi.name(), if allowed { "ALLOW" } else { "FILTER" });
    Ok(allowed)
}

fn from_debug_file(pid: i32, abi: Abi, nr: u32) -> Result<bool, String> {
    let path = format!("/proc/{pid}/seccomp_cache");
    let c = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let allow = format!("{} {nr} ALLOW", abi.name());
    let filter = format!("{} {nr} FILTER", abi.name());
    if c.lines().any(|l| l == allow) {
        Ok(true)
    } else if c.lines().any(|l| l == filter) {
        Ok(false)
    } else {
        Err(format!("no line for {} syscall {nr} in {path}", abi.name()))
    }
}

/// The programs of task `pid`'s filter chain, most recent first, as the
/// kernel holds them: the task is seized (no signal), stopped with
/// `PTRACE_INTERRUPT` for the reads and detached again.
pub fn filter_chain(pid: i32) -> Result<Vec<Vec<libc::sock_filter>>, String> {
    let err = |what: &str| format!("{what} of pid {pid}: {}", std::io::Error::last_os_error());
    // SAFETY: ptrace requests on a task we seize here and detach below; the
    // buffers handed to PTRACE_SECCOMP_GET_FILTER hold the count it reported.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) != 0 {
            return Err(err("PTRACE_SEIZE"));
        }
        let mut chain = Vec::new();
        let result = (|| {
            if libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) != 0 {
                return Err(err("PTRACE_INTERRUPT"));
            }
            let mut st = 0;
            if libc::waitpid(pid, &mut st, libc::__WALL) != pid {
                return Err(err("waitpid"));
            }
            for index in 0.. {
                let n = libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index as libc::c_ulong, std::ptr::null_mut::<libc::c_void>());
                if n < 0 {
                    if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) && index > 0 {
                        return Ok(());
                    }
                    return Err(err(&format!("PTRACE_SECCOMP_GET_FILTER {index}")));
                }
                let mut prog = vec![libc::sock_filter { code: 0, jt: 0, jf: 0, k: 0 }; n as usize];
                let m = libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index as libc::c_ulong, prog.as_mut_ptr());
                if m != n {
                    return Err(err(&format!("PTRACE_SECCOMP_GET_FILTER {index} gave {m} instructions, then {n}")));
                }
                chain.push(prog);
            }
            Ok(())
        })();
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
        result.map(|()| chain)
    }
}

/// Whether `prog` allows syscall `nr` of `arch` whatever the arguments:
/// `seccomp_is_const_allow()` of kernel/seccomp.c (7.3), line by line (the
/// uprobe exception aside: no scenario probes `uretprobe`).
pub fn const_allow(prog: &[libc::sock_filter], arch: u32, nr: u32) -> bool {
    let mut a = 0u32;
    let mut pc = 0usize;
    while let Some(insn) = prog.get(pc) {
        let k = insn.k;
        match insn.code {
            // BPF_LD | BPF_W | BPF_ABS
            0x20 => match k {
                0 => a = nr,
                4 => a = arch,
                _ => return false,
            },
            // BPF_RET | BPF_K
            0x06 => return k == 0x7fff_0000,
            // BPF_JMP | BPF_JA
            0x05 => pc += k as usize,
            // BPF_JMP | BPF_{JEQ,JGE,JGT,JSET} | BPF_K
            0x15 | 0x35 | 0x25 | 0x45 => {
                let taken = match insn.code {
                    0x15 => a == k,
                    0x35 => a >= k,
                    0x25 => a > k,
                    _ => a & k != 0,
                };
                pc += if taken { insn.jt } else { insn.jf } as usize;
            }
            // BPF_ALU | BPF_AND | BPF_K
            0x54 => a &= k,
            _ => return false,
        }
        pc += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    #[test]
    fn const_allow_follows_the_kernels_emulation() {
        let deny = crate::raw::deny_getpriority();
        assert!(!const_allow(&deny, AUDIT_ARCH_X86_64, 140));
        assert!(const_allow(&deny, AUDIT_ARCH_X86_64, 110));
        assert!(!const_allow(&deny, AUDIT_ARCH_I386, 96));
        assert!(const_allow(&deny, AUDIT_ARCH_I386, 20));
        assert!(const_allow(&crate::raw::allow_all(), AUDIT_ARCH_I386, 96));
        // An argument load on a syscall's path makes it uncacheable, not the others.
        let args = [insn(0x20, 0, 0, 0), insn(0x15, 0, 1, 140), insn(0x20, 0, 0, 16), insn(0x06, 0, 0, 0x7fff_0000)];
        assert!(!const_allow(&args, AUDIT_ARCH_X86_64, 140));
        assert!(const_allow(&args, AUDIT_ARCH_X86_64, 139));
        // SECCOMP_RET_LOG is not cacheable; running off the end is not either.
        assert!(!const_allow(&[insn(0x06, 0, 0, 0x7ffc_0000)], AUDIT_ARCH_X86_64, 1));
        assert!(!const_allow(&[insn(0x54, 0, 0, 1)], AUDIT_ARCH_X86_64, 1));
        // JA and JSET.
        let ja = [
            insn(0x05, 0, 0, 1),
            insn(0x06, 0, 0, 0),
            insn(0x20, 0, 0, 0),
            insn(0x45, 1, 0, 1),
            insn(0x06, 0, 0, 0x7fff_0000),
            insn(0x06, 0, 0, 0),
        ];
        assert!(const_allow(&ja, AUDIT_ARCH_X86_64, 2));
        assert!(!const_allow(&ja, AUDIT_ARCH_X86_64, 3));
    }
}
