//! VM scenarios of speaker.ko and `speaker-ctl run/switch/stop/status`:
//! boots speaker's kernel once (`qemu/run -- vm-scenarios`), then each test
//! asserts that its scenario ran inside the VM and passed.  Every scenario
//! runs, always (TCG, no KVM needed): `qemu/run` builds whatever is missing (kernel, module, guest
//! binaries) before booting.  The list is shared with debian_vm.rs
//! (`vm_scenarios_tests!`, tests/src/host.rs).
speaker_tests::vm_scenarios_tests!(
    runner: "vm-scenarios",
    timeout: 1500,
    complete: every_vm_scenario_has_a_test_and_the_kernel_log_is_clean,
    // speaker.ko's debug knobs exist on this kernel only (speaker-kmod/debug.rs).
    also: [tsync_and_private_stacking_between_visits_keep_no_stale_cache],
);

/// speaker's debug kernel has CONFIG_SECCOMP_CACHE_DEBUG: the action-cache
/// scenarios read the bitmap itself from /proc/PID/seccomp_cache.
#[test]
fn action_cache_scenarios_read_the_bitmap_from_the_debug_file() {
    vm().check_action_cache_view("debug-file");
}
