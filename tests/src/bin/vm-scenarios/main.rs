//! vm-scenarios: speaker's behaviour tests, run as root inside the VM
//! (`qemu/run -- vm-scenarios [NAME...]`).
//!
//! Each scenario is named for the behaviour it proves, like the kernel's
//! seccomp selftests, and prints one line: `SCENARIO <name> PASS` or
//! `SCENARIO <name> FAIL: <why>`.  Probes are real syscalls made inside
//! test containers by `speaker-probe`; denials use errno 1000, which no
//! probed syscall can return on its own.
use speaker_tests::guest::{run_scenarios, Scenario};

use crate::actions::{kill_process_action_kills_on_denied_syscall, log_action_allows_in_complain_mode};
use crate::device::{
    device_is_root_only, module_loads_and_creates_device, module_unloads_cleanly, unknown_ioctl_returns_enotty, version_ioctl_reports_abi,
};
use crate::refusals::{
    bad_user_pointer_returns_efault, ctl_reports_bad_input_clearly, exited_container_is_forgotten, malformed_program_returns_einval,
    oversized_program_is_refused, rmmod_with_live_container_is_safe, switch_by_unprivileged_caller_is_refused,
    switch_under_syscall_storm_is_safe, unknown_container_returns_esrch,
};
use crate::switching::{
    app_stacked_filter_still_applies_after_switch, boot_phase_allows_boot_syscalls, cached_allow_is_revoked_after_switch,
    children_forked_after_switch_inherit_running_filter, host_filter_below_container_is_untouched, running_phase_allows_running_syscalls,
    running_phase_denies_boot_only_syscall, shutdown_phase_applies_after_stop, stop_kills_a_service_that_ignores_sigterm,
    switch_covers_all_processes, switch_covers_all_threads, switch_leaves_host_alone, switch_leaves_other_containers_alone,
};

mod actions;
mod cache;
mod device;
mod probe;
mod profiles;
mod raw;
mod refusals;
mod support;
mod switching;
mod trust;
mod walks;

const SCENARIOS: &[Scenario] = &[
    ("module_loads_and_creates_device", module_loads_and_creates_device),
    ("device_is_root_only", device_is_root_only),
    ("version_ioctl_reports_abi", version_ioctl_reports_abi),
    ("unknown_ioctl_returns_enotty", unknown_ioctl_returns_enotty),
    ("boot_phase_allows_boot_syscalls", boot_phase_allows_boot_syscalls),
    ("running_phase_denies_boot_only_syscall", running_phase_denies_boot_only_syscall),
    ("running_phase_allows_running_syscalls", running_phase_allows_running_syscalls),
    ("shutdown_phase_applies_after_stop", shutdown_phase_applies_after_stop),
    ("stop_kills_a_service_that_ignores_sigterm", stop_kills_a_service_that_ignores_sigterm),
    ("switch_covers_all_threads", switch_covers_all_threads),
    ("switch_covers_all_processes", switch_covers_all_processes),
    ("children_forked_after_switch_inherit_running_filter", children_forked_after_switch_inherit_running_filter),
    ("cached_allow_is_revoked_after_switch", cached_allow_is_revoked_after_switch),
    ("app_stacked_filter_still_applies_after_switch", app_stacked_filter_still_applies_after_switch),
    ("host_filter_below_container_is_untouched", host_filter_below_container_is_untouched),
    ("switch_leaves_other_containers_alone", switch_leaves_other_containers_alone),
    ("switch_leaves_host_alone", switch_leaves_host_alone),
    ("kill_process_action_kills_on_denied_syscall", kill_process_action_kills_on_denied_syscall),
    ("log_action_allows_in_complain_mode", log_action_allows_in_complain_mode),
    ("switch_by_unprivileged_caller_is_refused", switch_by_unprivileged_caller_is_refused),
    ("bad_user_pointer_returns_efault", bad_user_pointer_returns_efault),
    ("malformed_program_returns_einval", malformed_program_returns_einval),
    ("oversized_program_is_refused", oversized_program_is_refused),
    ("unknown_container_returns_esrch", unknown_container_returns_esrch),
    ("ctl_reports_bad_input_clearly", ctl_reports_bad_input_clearly),
    ("exited_container_is_forgotten", exited_container_is_forgotten),
    ("switch_under_syscall_storm_is_safe", switch_under_syscall_storm_is_safe),
    ("rmmod_with_live_container_is_safe", rmmod_with_live_container_is_safe),
    ("switch_from_inside_container_is_refused", trust::switch_from_inside_container_is_refused),
    ("run_container_gets_no_keys", trust::run_container_gets_no_keys),
    ("run_container_cannot_write_host_files_or_make_devices", trust::run_container_cannot_write_host_files_or_make_devices),
    ("get_filter_during_switch_is_safe", trust::get_filter_during_switch_is_safe),
    ("register_of_shared_filter_is_refused", trust::register_of_shared_filter_is_refused),
    ("status_requires_cap_sys_admin", trust::status_requires_cap_sys_admin),
    ("layout_is_checked_against_a_live_filter_at_load", trust::layout_is_checked_against_a_live_filter_at_load),
    ("switch_beyond_max_insns_per_path_is_refused", trust::switch_beyond_max_insns_per_path_is_refused),
    ("rmmod_after_deferred_switches_is_safe", trust::rmmod_after_deferred_switches_is_safe),
    ("compat_cached_allow_is_revoked_after_switch", trust::compat_cached_allow_is_revoked_after_switch),
    ("tsync_stacking_during_switch_is_safe", trust::tsync_stacking_during_switch_is_safe),
    ("switch_of_one_container_does_not_wait_for_another", trust::switch_of_one_container_does_not_wait_for_another),
    ("register_of_a_host_sandbox_is_refused", trust::register_of_a_host_sandbox_is_refused),
    ("module_unloads_cleanly", module_unloads_cleanly),
];

/// Scenarios that need the debug kernel's build of speaker.ko (its knobs,
/// speaker-kmod/debug.rs): run before the last one (the unload) where the
/// module has them; tests/tests/vm.rs expects them, debian_vm.rs does not.
const DEBUG_SCENARIOS: &[Scenario] = &[(
    "tsync_and_private_stacking_between_visits_keep_no_stale_cache",
    walks::tsync_and_private_stacking_between_visits_keep_no_stale_cache,
)];

fn main() {
    let view = cache::View::current();
    println!("ACTION-CACHE {}: {}", view.name(), view.describe());
    let mut all = SCENARIOS.to_vec();
    if walks::module_has_debug_knobs() {
        let last = all.pop();
        all.extend_from_slice(DEBUG_SCENARIOS);
        all.extend(last);
    } else {
        println!("speaker.ko has no debug knobs (a production build): the debug kernel's scenarios run in tests/tests/vm.rs");
    }
    run_scenarios(&all)
}
