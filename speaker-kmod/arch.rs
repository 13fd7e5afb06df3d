// SPDX-License-Identifier: GPL-2.0

//! What differs between the architectures speaker.ko is built for.
//!
//! seccomp keeps two action caches per filter (`struct action_cache` in
//! kernel/seccomp.c): one for the native ABI and, with `CONFIG_COMPAT`, one
//! for the 32-bit ABI the kernel also runs.  Their sizes and the
//! `AUDIT_ARCH_*` values a program sees in `seccomp_data.arch` come from
//! `arch/*/include/asm/seccomp.h`:
//!
//! | | native | compat |
//! |---|---|---|
//! | x86_64 | `AUDIT_ARCH_X86_64`, `NR_syscalls` | `AUDIT_ARCH_I386`, `IA32_NR_syscalls` (`CONFIG_IA32_EMULATION`) |
//! | arm64 | `AUDIT_ARCH_AARCH64`, `NR_syscalls` | `AUDIT_ARCH_ARM`, `__NR_compat32_syscalls` |
//!
//! `speaker-kmod/check-mirror` checks that the kernel was configured with
//! the compat half (and fails the build otherwise).

use kernel::bindings;

/// Slots of the native action cache: `SECCOMP_ARCH_NATIVE_NR`, which is
/// `NR_syscalls` on both architectures.
pub(crate) const NATIVE_NR: usize = bindings::__NR_syscalls as usize;

#[cfg(target_arch = "x86_64")]
mod imp {
    use kernel::bindings;

    /// `SECCOMP_ARCH_NATIVE`.
    pub(crate) const AUDIT_ARCH_NATIVE: u32 = bindings::AUDIT_ARCH_X86_64;
    /// `SECCOMP_ARCH_COMPAT` (i386).
    pub(crate) const AUDIT_ARCH_COMPAT: u32 = bindings::AUDIT_ARCH_I386;
    /// `SECCOMP_ARCH_COMPAT_NR`: the i386 table's size.
    pub(crate) const COMPAT_NR: usize = bindings::IA32_NR_syscalls as usize;

    /// Port of `seccomp_uprobe_exception()` for a native syscall number:
    /// x86_64's uprobe syscalls are always allowed.
    pub(crate) fn native_uprobe_exception(nr: u32) -> bool {
        nr == bindings::__NR_uretprobe || nr == bindings::__NR_uprobe
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    // include/uapi/linux/audit.h and elf-em.h; arm64's kernel bindings do not
    // include them.
    const EM_ARM: u32 = 40;
    const EM_AARCH64: u32 = 183;
    const AUDIT_ARCH_64BIT: u32 = 0x8000_0000;
    const AUDIT_ARCH_LE: u32 = 0x4000_0000;

    /// `SECCOMP_ARCH_NATIVE`: `AUDIT_ARCH_AARCH64`.
    pub(crate) const AUDIT_ARCH_NATIVE: u32 = EM_AARCH64 | AUDIT_ARCH_64BIT | AUDIT_ARCH_LE;
    /// `SECCOMP_ARCH_COMPAT`: `AUDIT_ARCH_ARM` (32-bit ARM, EABI).
    pub(crate) const AUDIT_ARCH_COMPAT: u32 = EM_ARM | AUDIT_ARCH_LE;
    const _: () = assert!(AUDIT_ARCH_NATIVE == 0xC000_00B7 && AUDIT_ARCH_COMPAT == 0x4000_0028);
    /// `SECCOMP_ARCH_COMPAT_NR`: `__NR_compat32_syscalls`
    /// (asm/unistd_compat_32.h, generated from arch/arm64/tools/syscall_32.tbl).
    pub(crate) const COMPAT_NR: usize = kernel::bindings::__NR_compat32_syscalls as usize;

    /// arm64 has no uprobe syscalls: `seccomp_uprobe_exception()` is false.
    pub(crate) fn native_uprobe_exception(_nr: u32) -> bool {
        false
    }
}

pub(crate) use imp::{native_uprobe_exception, AUDIT_ARCH_COMPAT, AUDIT_ARCH_NATIVE, COMPAT_NR};
