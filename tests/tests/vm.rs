//! VM scenarios of speaker.ko and `speaker-ctl run/switch/stop/status`:
//! boots speaker's kernel once (`qemu/run -- vm-scenarios`), then each test
//! asserts that its scenario ran inside the VM and passed.  Every scenario
//! runs, always (TCG, no KVM needed): `qemu/run` builds whatever is missing (kernel, module, guest
//! binaries) before booting.
speaker_tests::vm_tests!(
    runner: "vm-scenarios",
    timeout: 1500,
    complete: every_vm_scenario_has_a_test_and_the_kernel_log_is_clean,
    scenarios: [
        module_loads_and_creates_device,
        device_is_root_only,
        version_ioctl_reports_abi,
        unknown_ioctl_returns_enotty,
        boot_phase_allows_boot_syscalls,
        running_phase_denies_boot_only_syscall,
        running_phase_allows_running_syscalls,
        shutdown_phase_applies_after_stop,
        switch_covers_all_threads,
        switch_covers_all_processes,
        children_forked_after_switch_inherit_running_filter,
        cached_allow_is_revoked_after_switch,
        app_stacked_filter_still_applies_after_switch,
        host_filter_below_container_is_untouched,
        switch_leaves_other_containers_alone,
        switch_leaves_host_alone,
        kill_process_action_kills_on_denied_syscall,
        log_action_allows_in_complain_mode,
        switch_by_unprivileged_caller_is_refused,
        bad_user_pointer_returns_efault,
        malformed_program_returns_einval,
        oversized_program_is_refused,
        unknown_container_returns_esrch,
        ctl_reports_bad_input_clearly,
        exited_container_is_forgotten,
        switch_under_syscall_storm_is_safe,
        rmmod_with_live_container_is_safe,
        switch_from_inside_container_is_refused,
        get_filter_during_switch_is_safe,
        register_of_shared_filter_is_refused,
        status_requires_cap_sys_admin,
        layout_is_checked_against_a_live_filter_at_load,
        switch_beyond_max_insns_per_path_is_refused,
        rmmod_after_deferred_switches_is_safe,
        compat_cached_allow_is_revoked_after_switch,
        tsync_stacking_during_switch_is_safe,
        module_unloads_cleanly,
    ]
);
