// SPDX-License-Identifier: GPL-2.0

//! The registry's read-only queries: `STATUS` (one row per container, its
//! tasks counted in one walk) and `PIDS` (the processes of a container).
//! A child of `registry.rs`, whose private state it reads.

use kernel::prelude::*;

use super::{valid_cid, REGISTRY};
use crate::abi::{self, CID_LEN};
use crate::filter::chain_contains;
use crate::tasks::for_each_thread_locked;

/// Fills `out` with the status of all containers (or of `only`), returns
/// the total count.  Tasks are counted in one walk over all threads, so the
/// cost is bounded by threads × chain length, whatever the container count.
pub(crate) fn status(only: Option<&[u8; CID_LEN]>, out: &mut KVec<abi::StatusEntry>, cap: usize) -> Result<u32> {
    if only.is_some_and(|cid| !valid_cid(cid)) {
        return Err(EINVAL);
    }
    let mut reg = REGISTRY.lock();
    reg.settle();
    reg.check_caller()?;
    // The heads: one row per container.
    let picked: KVec<usize> = {
        let mut v = KVec::new();
        for (i, c) in reg.containers.iter().enumerate() {
            if !c.exec && only.is_none_or(|cid| cid == &c.cid) {
                v.push(i, GFP_KERNEL)?;
            }
        }
        v
    };
    let total = picked.len() as u32;
    let shown = &picked[..picked.len().min(cap)];
    // (filter address, slot in `shown`) of every filter of the shown
    // containers (exec'd processes' too), sorted for binary search.
    let mut index = KVec::new();
    let mut kept = KVec::with_capacity(shown.len(), GFP_KERNEL)?;
    for (slot, &i) in shown.iter().enumerate() {
        let mut k = 0u32;
        for c in reg.containers.iter().filter(|c| c.cid == reg.containers[i].cid) {
            index.push((c.filter.as_ptr() as usize, slot), GFP_KERNEL)?;
            k = k.saturating_add(c.old.count() as u32);
        }
        kept.push(k, GFP_KERNEL)?;
    }
    // Insertion sort: a few thousand entries at most, and core's sort
    // brings panic paths objtool warns about on Debian's kernel.
    for i in 1..index.len() {
        let mut j = i;
        while j > 0 && index[j - 1].0 > index[j].0 {
            index.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut tasks = KVec::with_capacity(shown.len(), GFP_KERNEL)?;
    for _ in 0..shown.len() {
        tasks.push(0u32, GFP_KERNEL)?;
    }
    if !shown.is_empty() {
        for_each_thread_locked(|_, top| {
            let mut f = top;
            while !f.is_null() {
                if let Ok(j) = index.binary_search_by_key(&(f as usize), |e| e.0) {
                    tasks[index[j].1] = tasks[index[j].1].saturating_add(1);
                }
                // SAFETY: siglock held: the chain is attached and alive.
                f = unsafe { (*f).prev };
            }
            false
        });
    }
    for (slot, &i) in shown.iter().enumerate() {
        let c = &reg.containers[i];
        out.push(
            abi::StatusEntry {
                cid: c.cid,
                pid: c.pid,
                phase: c.phase,
                tasks: tasks[slot],
                allowed: c.allowed,
                switches: c.switches,
                kept: kept[slot],
                registered_ns: c.registered_ns,
                last_switch_ns: c.last_switch_ns,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(total)
}

/// The thread-group ids (initial PID namespace) of the processes whose
/// threads use container `cid`'s filter, at most `cap` of them, and their
/// total count.
///
/// The answer can take `abi::MAX_PIDS` entries (256 KiB): it lives in a
/// `KVVec`, which falls back to vmalloc where kmalloc would need an order-6
/// block.
pub(crate) fn pids(cid: &[u8; CID_LEN], cap: usize) -> Result<(KVVec<u32>, u32)> {
    // Allocated up front, before the lock: the walk holds spinlocks.
    let mut out = KVVec::with_capacity(cap, GFP_KERNEL)?;
    let mut reg = REGISTRY.lock();
    reg.settle();
    reg.check_caller()?;
    let mut mine = KVec::new();
    for &i in reg.members(cid)?.iter() {
        mine.push(reg.containers[i].filter.as_ptr(), GFP_KERNEL)?;
    }
    let mut total = 0u32;
    let mut last = -1;
    for_each_thread_locked(|t, top| {
        // SAFETY: siglock held: the chain is attached and alive, and `t` is
        // a live task whose `tgid` never changes.
        let (uses, tgid) = unsafe { (mine.iter().any(|&me| chain_contains(top, me)), (*t).tgid) };
        // Threads of one process are visited one after the other.
        if uses && tgid != last {
            last = tgid;
            total = total.saturating_add(1);
            let _ = out.push_within_capacity(tgid as u32);
        }
        false
    });
    Ok((out, total))
}
