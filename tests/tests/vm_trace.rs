//! VM scenarios of `speaker-ctl trace`'s filter mode: boots speaker's kernel
//! once (`qemu/run -- vm-trace`), then each test asserts that its scenario
//! ran inside the VM and passed.  Every scenario runs, always (TCG, no KVM needed): `qemu/run` builds
//! whatever is missing (kernel, module, guest binaries) before booting.
//! The list is shared with debian_vm_trace.rs (`vm_trace_tests!`,
//! tests/src/host.rs).
speaker_tests::vm_trace_tests!(
    runner: "vm-trace",
    timeout: 900,
    complete: every_vm_trace_scenario_has_a_test_and_the_kernel_log_is_clean,
);
