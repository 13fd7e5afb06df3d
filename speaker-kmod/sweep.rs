// SPDX-License-Identifier: GPL-2.0

//! The sweeper: keeps speaker.ko loaded while it keeps replaced programs of
//! live filters (`keep.rs`), and frees them soon after their filter dies.
//!
//! While any kept program exists, the module holds a reference on itself
//! (`rmmod` fails with `EBUSY`: unloading would have to free programs a
//! reader may still hold, or leak them) and a delayed work item runs once a
//! second to free what has become free-able (the registry also sweeps at
//! every ioctl).  The work item alone drops the module reference, when
//! nothing is kept any more; module exit then flushes it, so the tail of its
//! last run never executes after the module text is gone.

use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    time::msecs_to_jiffies,
    workqueue::{self, impl_has_delayed_work, new_delayed_work, DelayedWork, WorkItem},
};

/// The delayed work item that sweeps the registry.
///
/// This file depends on no other part of speaker.ko: the registry hands
/// the sweeper the function each run calls (`registry.rs` depends on
/// `sweep.rs`, not the other way round).
#[pin_data]
pub(crate) struct Sweeper {
    #[pin]
    work: DelayedWork<Sweeper>,
    /// What each run does: sweep, then [`Sweeper::schedule`] again or drop
    /// the module reference.
    tick: fn(Arc<Sweeper>),
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Sweeper { self.work }
}

impl WorkItem for Sweeper {
    type Pointer = Arc<Sweeper>;

    fn run(this: Arc<Sweeper>) {
        let tick = this.tick;
        tick(this);
    }
}

impl Sweeper {
    /// A sweeper whose runs call `tick`.
    pub(crate) fn new(tick: fn(Arc<Sweeper>)) -> Result<Arc<Sweeper>> {
        Arc::pin_init(pin_init!(Sweeper { work <- new_delayed_work!("speaker_sweep"), tick }), GFP_KERNEL)
    }

    /// Runs the sweeper in about a second.
    pub(crate) fn schedule(this: Arc<Sweeper>) {
        // Only ever called when the item is neither queued nor running the
        // enqueue (the registry's `pinned` flag says so), so this succeeds.
        let _ = workqueue::system_long().enqueue_delayed(this, msecs_to_jiffies(1000));
    }

    /// Waits until the work item is neither queued nor running.
    pub(crate) fn flush(&self) {
        // CAST: `DelayedWork` is `repr(transparent)` over
        // `Opaque<delayed_work>`, itself transparent over the C struct.
        let dwork = (&raw const self.work).cast_mut().cast::<bindings::delayed_work>();
        // SAFETY: the item was initialised by `new()` and lives as long as
        // `self`; flushing an idle item returns at once.
        unsafe { bindings::flush_delayed_work(dwork) };
    }
}

/// Takes a reference on this module.
pub(crate) fn pin_module() -> bool {
    // SAFETY: `THIS_MODULE` is this module; we are running its code, so it
    // is live (try_module_get() refuses if it is going away).
    unsafe { bindings::try_module_get(<crate::SpeakerModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr()) }
}

/// Drops the reference taken by [`pin_module`].
///
/// # Safety
///
/// The caller took the reference with [`pin_module`] and the code that runs
/// after this call is either covered by another module reference or waited
/// for by module exit (`Sweeper::flush`).
pub(crate) unsafe fn unpin_module() {
    // SAFETY: by the function's contract.
    unsafe { bindings::module_put(<crate::SpeakerModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr()) }
}
