//! The VM scenarios that define speaker.ko's contract, on arm64: boots
//! speaker's arm64 kernel once under qemu-system-aarch64 (`qemu/run --arch
//! arm64 -- vm-scenarios NAME...`: `-M virt -cpu max`, TCG, the busybox
//! initramfs with the aarch64 builds of speaker.ko and the test programs),
//! then each test asserts that its scenario ran inside the VM and passed.
//!
//! The scenarios are those of vm.rs (the same runner and code) that prove
//! the module's contract: the switch of a process tree with threads, a
//! child forked after the switch, the action cache revoked for native
//! (aarch64) and compat (32-bit ARM: the AArch32 program
//! `compat-getpriority`, tests/compat/getpriority-arm32.c) syscalls,
//! deferred frees after RCU-tasks grace periods, the trust refusals
//! (from inside, unprivileged, shared filter), the layout check at load and
//! rmmod's safety.  Left to x86_64, whose kernel runs the same Rust code:
//! the 10-minute syscall storm and the scenarios about speaker-ctl's
//! messages and ioctl argument errors, which have nothing per-arch.
speaker_tests::vm_selected_tests!(
    runner: "vm-scenarios",
    timeout: 900,
    qemu_args: vec!["--arch".to_string(), "arm64".to_string(), "--mem".to_string(), "1024".to_string()],
    complete: every_arm64_scenario_ran_and_the_kernel_log_is_clean,
    scenarios: [
        module_loads_and_creates_device,
        version_ioctl_reports_abi,
        boot_phase_allows_boot_syscalls,
        running_phase_denies_boot_only_syscall,
        running_phase_allows_running_syscalls,
        switch_covers_all_threads,
        switch_covers_all_processes,
        children_forked_after_switch_inherit_running_filter,
        cached_allow_is_revoked_after_switch,
        app_stacked_filter_still_applies_after_switch,
        compat_cached_allow_is_revoked_after_switch,
        switch_from_inside_container_is_refused,
        switch_by_unprivileged_caller_is_refused,
        register_of_shared_filter_is_refused,
        layout_is_checked_against_a_live_filter_at_load,
        get_filter_during_switch_is_safe,
        tsync_stacking_during_switch_is_safe,
        rmmod_after_deferred_switches_is_safe,
        rmmod_with_live_container_is_safe,
        module_unloads_cleanly,
    ],
);

/// The arm64 kernel has CONFIG_SECCOMP_CACHE_DEBUG: the action-cache
/// scenarios read the bitmap itself, whose ABIs are named `aarch64` and
/// `arm` there.
#[test]
fn action_cache_scenarios_read_the_aarch64_and_arm_bitmaps() {
    let log = &vm().log;
    assert!(log.contains("  ACTION-CACHE debug-file pid "), "no debug-file lookup (log: {})", vm().log_path.display());
    let compat = vm().output_of("compat_cached_allow_is_revoked_after_switch");
    assert!(compat.iter().any(|l| l.contains(": arm 96 ALLOW")), "compat lookups: {compat:?}");
    assert!(compat.iter().any(|l| l.contains(": arm 96 FILTER")), "compat lookups: {compat:?}");
    let native = vm().output_of("cached_allow_is_revoked_after_switch");
    assert!(native.iter().any(|l| l.contains(": aarch64 141 ALLOW")), "native lookups: {native:?}");
}
