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

//!
//! # When a kept program cannot be kept
//!
//! One rule: a kept program is freed only by dropping its [`OldProgs`] once
//! the filter's sole reference is speaker's own.  On every path that cannot
//! keep it any more (a push into a list reserved beforehand that fails all
//! the same, the module unloading while programs are kept), it is leaked
//! deliberately with [`OldProgs::leak`], which says so in the kernel log:
//! freeing it there could race a reader that still holds it.

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

    /// Makes room to keep the filter's current program (`current_len`
    /// instructions) once `new` replaces it, so that [`OldProgs::keep`]
    /// cannot fail after the swap, and returns the program to publish: the
    /// kept copy identical to `new` if there is one (taken out of the list,
    /// so a ping-pong between phases never grows it), else `new`.  The
    /// limits are checked on the list as it will be after the swap:
    /// `ENOSPC` only if the switch would grow it past them.  On error
    /// nothing changed (`new` is dropped: it was never published).
    pub(crate) fn make_room(&mut self, new: OwnedProg, current_len: usize) -> Result<OwnedProg> {
        let same = self.progs.iter().position(|p| p.same_as(new.orig()));
        let (count, insns) = match same {
            Some(i) => (self.progs.len() - 1, self.insns - self.progs[i].orig().len()),
            None => (self.progs.len(), self.insns),
        };
        if count >= MAX_KEPT || insns + current_len > MAX_KEPT_INSNS {
            return Err(ENOSPC);
        }
        let Some(i) = same else {
            self.progs.reserve(1, GFP_KERNEL)?;
            return Ok(new);
        };
        // Removing keeps the capacity: the slot is there for `keep()`.
        let p = self.progs.remove(i).map_err(|_| EINVAL)?;
        self.insns -= p.orig().len();
        Ok(p)
    }

    /// Checks, without changing what is kept, that [`OldProgs::make_room`]
    /// for a program with the instructions `new` would succeed, and
    /// reserves the slot it needs: a switch of several filters checks every
    /// one before it swaps any.
    pub(crate) fn check_room(&mut self, new: &[kernel::bindings::sock_filter], current_len: usize) -> Result {
        let same = self.progs.iter().position(|p| crate::bpf::same_insns(p.orig(), new));
        let (count, insns) = match same {
            Some(i) => (self.progs.len() - 1, self.insns - self.progs[i].orig().len()),
            None => (self.progs.len(), self.insns),
        };
        if count >= MAX_KEPT || insns + current_len > MAX_KEPT_INSNS {
            return Err(ENOSPC);
        }
        self.progs.reserve(1, GFP_KERNEL)?;
        Ok(())
    }

    /// Gives up the kept programs without freeing them (see the module
    /// docs): a path that cannot keep them any more, while a reader may
    /// still hold one.
    pub(crate) fn leak(self, why: &str) {
        if !self.progs.is_empty() {
            pr_err!("{}: leaking {} kept program(s) rather than freeing them under a possible reader\n", why, self.count());
        }
        core::mem::forget(self);
    }

    /// Keeps `old`, a program the filter no longer points to.  Call
    /// [`OldProgs::make_room`] first.
    pub(crate) fn keep(&mut self, old: OwnedProg) {
        let n = old.orig().len();
        match self.progs.push_within_capacity(old) {
            Ok(()) => self.insns += n,
            Err(kernel::alloc::kvec::PushError(old)) => {
                // Unreachable after `make_room()`; the rule of the module
                // docs applies all the same.
                pr_err!("kept-program list full; leaking one program\n");
                core::mem::forget(old);
            }
        }
    }
}
