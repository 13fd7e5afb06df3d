// SPDX-License-Identifier: GPL-2.0

//! Programs a swap replaced, kept until their filter dies.
//!
//! # Why replaced programs are not freed after a grace period
//!
//! The syscall path runs `filter->prog` without any lock; an RCU-tasks grace
//! period covers it.  It is not the only reader: `PTRACE_SECCOMP_GET_FILTER`
//! (`seccomp_get_filter()`, with `CONFIG_CHECKPOINT_RESTORE`, used by CRIU
//! and `podman container checkpoint`) loads `filter->prog->orig_prog` holding
//! only a reference on the filter, then copies the program to user space.
//! The copy can fault and sleep for as long as user space likes (a
//! userfaultfd page), and a sleeping task does not hold up an RCU-tasks
//! grace period.  No grace period, and no look at which tasks are traced
//! (the tracee can be killed and reaped by another thread of the tracer
//! while the copy sleeps), bounds such a reader.  What does: it holds a
//! reference on the filter (`refs`).  So a replaced program stays allocated
//! until the filter's only remaining reference is speaker's own: then no
//! task runs the filter, no filter is stacked on it, no listener and no
//! reader holds it, and none can appear (all of them start from one of
//! those references).
//!
//! # Memory this keeps
//!
//! Switching back to a program the filter already had reuses the kept copy
//! (phases ping-pong without growing), so a container keeps at most one
//! program per distinct program it ever ran: its phases (boot, running,
//! shutdown, and their complain-mode variants), or one per new syscall in
//! the tracer's filter mode.  Limits per container: [`MAX_KEPT`] programs and
//! [`MAX_KEPT_INSNS`] instructions (a switch beyond them fails with
//! `ENOSPC`); a program of `n` classic instructions costs about `16 n` bytes
//! plus a page.  Everything kept is freed when the container's filter dies
//! (its last task exits and the last reader lets go), checked at every ioctl
//! and once a second by the sweeper (`sweep.rs`).

use kernel::prelude::*;

use crate::bpf::OwnedProg;

/// Most programs one container keeps.
pub(crate) const MAX_KEPT: usize = 1024;
/// Most classic instructions one container keeps (about 2 MiB of copies).
pub(crate) const MAX_KEPT_INSNS: usize = 256 * 1024;

/// The replaced programs of one filter.
///
/// # Invariants
///
/// No program in `progs` is the filter's current program; each one was the
/// filter's program once and may still be read by a reader holding a filter
/// reference.  The owner drops this value only once the filter's sole
/// reference is its own (see the module docs).
pub(crate) struct OldProgs {
    progs: KVec<OwnedProg>,
    insns: usize,
}

impl OldProgs {
    pub(crate) const fn new() -> OldProgs {
        OldProgs { progs: KVec::new(), insns: 0 }
    }

    /// Number of programs kept.
    pub(crate) fn count(&self) -> usize {
        self.progs.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.progs.is_empty()
    }

    /// Takes out the kept program identical to `new`, if there is one (it
    /// can be published again in place of `new`).
    pub(crate) fn take_same(&mut self, new: &OwnedProg) -> Option<OwnedProg> {
        let i = self.progs.iter().position(|p| p.same_as(new.orig()))?;
        let p = self.progs.remove(i).ok()?;
        self.insns -= p.orig().len();
        Some(p)
    }

    /// Makes room for one more program of `insns` instructions, so that
    /// [`OldProgs::keep`] cannot fail after a swap.  `ENOSPC` past the limits.
    pub(crate) fn reserve(&mut self, insns: usize) -> Result {
        if self.progs.len() >= MAX_KEPT || self.insns + insns > MAX_KEPT_INSNS {
            return Err(ENOSPC);
        }
        self.progs.reserve(1, GFP_KERNEL)?;
        Ok(())
    }

    /// Keeps `old`, a program the filter no longer points to.  Call
    /// [`OldProgs::reserve`] first.
    pub(crate) fn keep(&mut self, old: OwnedProg) {
        let n = old.orig().len();
        match self.progs.push_within_capacity(old) {
            Ok(()) => self.insns += n,
            Err(kernel::alloc::kvec::PushError(old)) => {
                // Unreachable after `reserve()`.  Freeing a program a reader
                // may hold is never right: leak it rather.
                pr_err!("kept-program list full; leaking one program\n");
                core::mem::forget(old);
            }
        }
    }
}
