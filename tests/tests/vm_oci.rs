//! VM scenarios of speaker-runtime with real OCI containers (crun, nginx,
//! redis, PostgreSQL, MariaDB) in the bookworm guest, on Debian's
//! production kernel (`qemu/run --kernel debian --guest bookworm --
//! vm-oci`, one boot): these are the product's scenarios, and Debian's
//! kernel runs them about seven times faster under TCG than speaker's debug
//! kernel.  The module under a real service on the debug kernel (KASAN,
//! lockdep, kmemleak) is vm_oci_soak.rs.  Every scenario runs, always (TCG,
//! no KVM needed): `qemu/run` builds whatever is missing before booting.
//! The list is shared with debian_oci.rs (`vm_oci_tests!`, tests/src/lib.rs).

speaker_tests::vm_oci_tests!(
    runner: "vm-oci",
    timeout: 1500,
    qemu_args: speaker_tests::host::vm_oci_share_args("vm-oci-share", &["--kernel", "debian", "--guest", "bookworm"]),
    complete: every_vm_oci_scenario_has_a_test_and_the_kernel_log_is_clean,
    // Only the bookworm guest has PostgreSQL and MariaDB.
    also: [
        postgres_and_mariadb_keep_their_data_across_restart,
        postgres_vacuum_truncate_survives_the_running_phase,
        held_out_workloads_pass_under_balanced,
        held_out_failure_is_fixed_by_complain_learn_enforce,
        // The notify engine beside speaker.ko (issue 20).
        auto_engine_picks_kmod_when_loaded,
        one_profile_same_denials_under_both_engines,
        exec_denials_are_attributed_under_notify,
    ],
);
