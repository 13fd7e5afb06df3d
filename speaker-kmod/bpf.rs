// SPDX-License-Identifier: GPL-2.0

//! Classic seccomp programs: validation exactly as seccomp does it, creation
//! of the `bpf_prog`, and the constant-action emulation behind the action
//! cache.
//!
//! `seccomp_check_filter()` and `seccomp_is_const_allow()` are static in
//! kernel/seccomp.c (Linux 7.3.4); [`seccomp_check_filter`] and
//! [`is_const_allow`] are line-by-line ports of them.

use core::ffi::{c_int, c_uint};
use kernel::ffi::c_ulong;
use kernel::{bindings, prelude::*};

use crate::arch::{native_uprobe_exception, AUDIT_ARCH_COMPAT, AUDIT_ARCH_NATIVE};
use crate::mirror::{SockFprogKern, COMPAT_NR, COMPAT_WORDS, NATIVE_NR, NATIVE_WORDS};

/// `bpf_aux_classic_check_t` (include/linux/filter.h).
type ClassicCheck = unsafe extern "C" fn(*mut bindings::sock_filter, c_uint) -> c_int;

// Exported by net/core/filter.c (EXPORT_SYMBOL_GPL); include/linux/filter.h
// is not part of the kernel crate's bindings.
#[allow(improper_ctypes)]
extern "C" {
    fn bpf_prog_create_from_user(
        pfp: *mut *mut bindings::bpf_prog,
        fprog: *mut bindings::sock_fprog,
        trans: Option<ClassicCheck>,
        save_orig: bool,
    ) -> c_int;
    fn bpf_prog_destroy(fp: *mut bindings::bpf_prog);
}

// Classic BPF opcodes (include/uapi/linux/bpf_common.h, filter.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_ADD: u16 = 0x00;
const BPF_SUB: u16 = 0x10;
const BPF_MUL: u16 = 0x20;
const BPF_DIV: u16 = 0x30;
const BPF_OR: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_NEG: u16 = 0x80;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;

/// `sizeof(struct seccomp_data)`.
const SECCOMP_DATA_SIZE: u32 = core::mem::size_of::<bindings::seccomp_data>() as u32;
const SECCOMP_DATA_NR: u32 = core::mem::offset_of!(bindings::seccomp_data, nr) as u32;
const SECCOMP_DATA_ARCH: u32 = core::mem::offset_of!(bindings::seccomp_data, arch) as u32;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const _: () = assert!(SECCOMP_DATA_SIZE == 64);

/// Port of `seccomp_check_filter()`: rejects instructions seccomp does not
/// allow and rewrites loads to read `struct seccomp_data`.  Passed as the
/// `trans` callback of `bpf_prog_create_from_user()`, which runs it after
/// the generic classic checks, exactly where seccomp runs its own.
///
/// # Safety
///
/// `filter` points to `flen` writable instructions (guaranteed by
/// `bpf_prepare_filter()`, the only caller).
unsafe extern "C" fn seccomp_check_filter(filter: *mut bindings::sock_filter, flen: c_uint) -> c_int {
    for pc in 0..flen as usize {
        // SAFETY: `pc < flen` and `filter` has `flen` instructions.
        let ftest = unsafe { &mut *filter.add(pc) };
        let code = ftest.code;
        let k = ftest.k;
        match code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                ftest.code = BPF_LDX | BPF_W | BPF_ABS;
                // 32-bit aligned and not out of bounds.
                if k >= SECCOMP_DATA_SIZE || k & 3 != 0 {
                    return EINVAL.to_errno();
                }
            }
            c if c == BPF_LD | BPF_W | BPF_LEN => {
                ftest.code = BPF_LD | BPF_IMM;
                ftest.k = SECCOMP_DATA_SIZE;
            }
            c if c == BPF_LDX | BPF_W | BPF_LEN => {
                ftest.code = BPF_LDX | BPF_IMM;
                ftest.k = SECCOMP_DATA_SIZE;
            }
            c if ALLOWED.contains(&c) => {}
            _ => return EINVAL.to_errno(),
        }
    }
    0
}

/// The instructions `seccomp_check_filter()` lets through unchanged.
const ALLOWED: [u16; 38] = [
    BPF_RET | BPF_K,
    BPF_RET | BPF_A,
    BPF_ALU | BPF_ADD | BPF_K,
    BPF_ALU | BPF_ADD | BPF_X,
    BPF_ALU | BPF_SUB | BPF_K,
    BPF_ALU | BPF_SUB | BPF_X,
    BPF_ALU | BPF_MUL | BPF_K,
    BPF_ALU | BPF_MUL | BPF_X,
    BPF_ALU | BPF_DIV | BPF_K,
    BPF_ALU | BPF_DIV | BPF_X,
    BPF_ALU | BPF_AND | BPF_K,
    BPF_ALU | BPF_AND | BPF_X,
    BPF_ALU | BPF_OR | BPF_K,
    BPF_ALU | BPF_OR | BPF_X,
    BPF_ALU | BPF_XOR | BPF_K,
    BPF_ALU | BPF_XOR | BPF_X,
    BPF_ALU | BPF_LSH | BPF_K,
    BPF_ALU | BPF_LSH | BPF_X,
    BPF_ALU | BPF_RSH | BPF_K,
    BPF_ALU | BPF_RSH | BPF_X,
    BPF_ALU | BPF_NEG,
    BPF_LD | BPF_IMM,
    BPF_LDX | BPF_IMM,
    BPF_MISC | BPF_TAX,
    BPF_MISC | BPF_TXA,
    BPF_LD | BPF_MEM,
    BPF_LDX | BPF_MEM,
    BPF_ST,
    BPF_STX,
    BPF_JMP | BPF_JA,
    BPF_JMP | BPF_JEQ | BPF_K,
    BPF_JMP | BPF_JEQ | BPF_X,
    BPF_JMP | BPF_JGE | BPF_K,
    BPF_JMP | BPF_JGE | BPF_X,
    BPF_JMP | BPF_JGT | BPF_K,
    BPF_JMP | BPF_JGT | BPF_X,
    BPF_JMP | BPF_JSET | BPF_K,
    BPF_JMP | BPF_JSET | BPF_X,
];

/// A seccomp-checked classic program (`bpf_prog`) that no filter uses and
/// no reader can still hold: a program about to be published, or one that a
/// swap replaced and that is being released.
///
/// # Invariants
///
/// `prog` is a valid `bpf_prog` created by `bpf_prog_create_from_user()`
/// (by speaker or by seccomp) with `save_orig`, and owned by this value;
/// dropping the value destroys it.
pub(crate) struct OwnedProg {
    prog: *mut bindings::bpf_prog,
}

// SAFETY: the program is immutable once built and owned by this value alone.
unsafe impl Send for OwnedProg {}

impl OwnedProg {
    /// Copies `len` instructions from user address `ptr`, runs the classic
    /// checker and seccomp's checker on them and builds the program.
    ///
    /// Errors: `EINVAL` (empty, malformed, or not a valid seccomp program),
    /// `E2BIG` (more than `BPF_MAXINSNS` instructions), `EFAULT`, `ENOMEM`.
    pub(crate) fn from_user(ptr: u64, len: u32) -> Result<OwnedProg> {
        if len == 0 {
            return Err(EINVAL);
        }
        if len > crate::abi::MAX_PROG_LEN {
            return Err(E2BIG);
        }
        let mut fprog = bindings::sock_fprog {
            // CAST: `len <= 4096` fits the `unsigned short`.
            len: len as u16,
            filter: ptr as usize as *mut bindings::sock_filter,
        };
        let mut prog: *mut bindings::bpf_prog = core::ptr::null_mut();
        // SAFETY: `fprog` and `prog` are valid for the call; the user
        // pointer is only accessed through copy_from_user inside.
        let ret = unsafe { bpf_prog_create_from_user(&mut prog, &mut fprog, Some(seccomp_check_filter), true) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: created above with seccomp's checker and save_orig.
        Ok(OwnedProg { prog })
    }

    /// Takes ownership of a program a filter no longer points to.
    ///
    /// # Safety
    ///
    /// `prog` was created by `bpf_prog_create_from_user()` with `save_orig`
    /// (by seccomp or by [`OwnedProg::from_user`]), nothing else owns it,
    /// and the caller keeps the value alive until no task and no reader of
    /// the filter can still use the program (see `keep.rs`).
    pub(crate) unsafe fn from_raw(prog: *mut bindings::bpf_prog) -> OwnedProg {
        // INVARIANT: by the function's contract.
        OwnedProg { prog }
    }

    /// Gives up ownership: the caller now owns the program (it publishes it
    /// in a filter, which seccomp frees with the filter).
    pub(crate) fn into_raw(self) -> *mut bindings::bpf_prog {
        let p = self.prog;
        core::mem::forget(self);
        p
    }

    /// Instructions of the translated program (what seccomp counts against
    /// `MAX_INSNS_PER_PATH`).
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: `prog` is valid by the type invariant.
        unsafe { (*self.prog).len }
    }

    /// The original (untranslated) classic program.
    pub(crate) fn orig(&self) -> &[bindings::sock_filter] {
        // SAFETY: `prog` is valid and owned by this value (type invariant),
        // so it outlives the borrow.
        unsafe { orig_insns(self.prog) }
    }

    /// Whether both programs have the same classic instructions.
    pub(crate) fn same_as(&self, other: &[bindings::sock_filter]) -> bool {
        same_insns(self.orig(), other)
    }
}

/// Whether two classic programs are the same instructions.
pub(crate) fn same_insns(a: &[bindings::sock_filter], b: &[bindings::sock_filter]) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.code == y.code && x.jt == y.jt && x.jf == y.jf && x.k == y.k)
}

/// The original classic instructions of `prog`.
///
/// # Safety
///
/// `prog` is a valid program created with `save_orig` (every seccomp
/// program is, where the arch defines `SECCOMP_ARCH_NATIVE`: x86_64 and arm64) that stays alive while the slice is used.
pub(crate) unsafe fn orig_insns<'a>(prog: *const bindings::bpf_prog) -> &'a [bindings::sock_filter] {
    // SAFETY: by the function's contract `orig_prog` holds `len` original
    // instructions.
    unsafe {
        let orig = (*prog).orig_prog.cast::<SockFprogKern>();
        core::slice::from_raw_parts((*orig).filter, (*orig).len as usize)
    }
}

impl Drop for OwnedProg {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own `prog`; no filter points to it
        // and its owner guarantees no task or reader still uses it.
        unsafe { bpf_prog_destroy(self.prog) }
    }
}

/// Port of `seccomp_uprobe_exception()`: uprobe syscalls (x86_64 has them)
/// are always allowed on the native ABI.
fn uprobe_exception(nr: u32, arch: u32) -> bool {
    arch == AUDIT_ARCH_NATIVE && native_uprobe_exception(nr)
}

/// Port of `seccomp_is_const_allow()`: does `insns` allow syscall `nr` of
/// `arch` whatever its arguments?
fn is_const_allow(insns: &[bindings::sock_filter], nr: u32, arch: u32) -> bool {
    if uprobe_exception(nr, arch) {
        return true;
    }
    let mut reg: u32 = 0;
    let mut pc: usize = 0;
    while pc < insns.len() {
        let insn = &insns[pc];
        let k = insn.k;
        match insn.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => match k {
                SECCOMP_DATA_NR => reg = nr,
                SECCOMP_DATA_ARCH => reg = arch,
                _ => return false,
            },
            c if c == BPF_RET | BPF_K => return k == SECCOMP_RET_ALLOW,
            c if c == BPF_JMP | BPF_JA => pc += k as usize,
            c if c == BPF_JMP | BPF_JEQ | BPF_K
                || c == BPF_JMP | BPF_JGE | BPF_K
                || c == BPF_JMP | BPF_JGT | BPF_K
                || c == BPF_JMP | BPF_JSET | BPF_K =>
            {
                let res = match c & 0xf0 {
                    BPF_JEQ => reg == k,
                    BPF_JGE => reg >= k,
                    BPF_JGT => reg > k,
                    _ => reg & k != 0,
                };
                pc += if res { insn.jt } else { insn.jf } as usize;
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => reg &= k,
            _ => return false,
        }
        pc += 1;
    }
    // Ran off the end: the classic checker makes this impossible.
    false
}

/// The syscalls a program allows unconditionally, per ABI: what seccomp's
/// action cache may hold for a filter running that program (before the
/// intersection with the filters below it).
pub(crate) struct CacheMask {
    pub(crate) native: [c_ulong; NATIVE_WORDS],
    pub(crate) compat: [c_ulong; COMPAT_WORDS],
}

impl CacheMask {
    /// Emulates `prog` for every syscall number of both ABIs.
    pub(crate) fn of(prog: &OwnedProg) -> CacheMask {
        Self::of_insns(prog.orig())
    }

    /// Emulates the classic program `insns` for every syscall number of
    /// both ABIs.
    pub(crate) fn of_insns(insns: &[bindings::sock_filter]) -> CacheMask {
        let mut m = CacheMask { native: [0; NATIVE_WORDS], compat: [0; COMPAT_WORDS] };
        for nr in 0..NATIVE_NR {
            if is_const_allow(insns, nr as u32, AUDIT_ARCH_NATIVE) {
                m.native[nr / 64] |= 1 << (nr % 64);
            }
        }
        for nr in 0..COMPAT_NR {
            if is_const_allow(insns, nr as u32, AUDIT_ARCH_COMPAT) {
                m.compat[nr / 64] |= 1 << (nr % 64);
            }
        }
        m
    }

    /// Number of syscalls (both ABIs) in the mask.
    pub(crate) fn count(&self) -> u32 {
        Iterator::chain(self.native.iter(), self.compat.iter()).map(|w| w.count_ones()).sum()
    }
}
