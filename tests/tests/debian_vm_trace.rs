//! The VM scenarios of `speaker-ctl trace`'s filter mode (as in vm_trace.rs,
//! the same list: `vm_trace_tests!`) on Debian's own kernel: boots the
//! Debian 13 guest once (`qemu/run --kernel debian -- vm-trace`) with the
//! speaker.ko built for it (`scripts/build-module --kernel debian`), then
//! each test asserts that its scenario ran inside the VM and passed.
speaker_tests::vm_trace_tests!(
    runner: "vm-trace",
    timeout: 900,
    qemu_args: vec!["--kernel".to_string(), "debian".to_string(), "--mem".to_string(), "1024".to_string()],
    complete: every_vm_trace_scenario_has_a_test_on_debians_kernel_and_its_log_is_clean,
);
