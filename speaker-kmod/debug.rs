// SPDX-License-Identifier: GPL-2.0

//! The debug kernel's knobs for the stress scenario of the thread walks
//! (`tsync_and_private_stacking_between_visits_cannot_keep_a_stale_cache`):
//! load-time module parameters that exist only when the module is built
//! for a KASAN kernel (speaker's debug kernel), never in a production
//! build, where both functions are constants.
//!
//! - `debug_walk_gap_ms`: busy-wait after each visit of a thread group
//!   that uses the switched filter, so that user space can stack and
//!   synchronise filters between two visits at will.
//! - `debug_walk_per_thread`: the walk before issue 18 item 3 (one siglock
//!   hold per thread), so the scenario shows the race it left open.

/// Busy-waits `debug_walk_gap_ms` of the monotonic clock (debug builds; a
/// no-op otherwise): the clock user space reads too, so the stress
/// scenario can place its steps inside the gaps (a calibrated `udelay`
/// drifts under TCG with the host's load).  The walk holds an RCU read
/// lock, so it cannot sleep; the debug kernel is preemptible, so other
/// tasks still run meanwhile.
pub(crate) fn walk_gap() {
    #[cfg(CONFIG_KASAN)]
    {
        let ms = crate::module_parameters::debug_walk_gap_ms.value();
        if ms == 0 {
            return;
        }
        // SAFETY: ktime_get() has no preconditions.
        let end = unsafe { kernel::bindings::ktime_get() }.saturating_add(i64::from(ms) * 1_000_000);
        // SAFETY: as above.
        while unsafe { kernel::bindings::ktime_get() } < end {
            core::hint::spin_loop();
        }
    }
}

/// Whether the walk takes the siglock once per thread (the old walk).
pub(crate) fn per_thread_walk() -> bool {
    #[cfg(CONFIG_KASAN)]
    {
        crate::module_parameters::debug_walk_per_thread.value()
    }
    #[cfg(not(CONFIG_KASAN))]
    {
        false
    }
}
