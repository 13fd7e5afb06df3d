//! The ioctl fuzzer in the VM: boots speaker's kernel once (`qemu/run --
//! speaker-fuzz --calls 100000`), then each test asserts one verdict on the
//! run (see tests/src/bin/speaker-fuzz/): sane answers to every call,
//! register/switch/exit races that really happened, rmmod refused while fds
//! are open and accepted (then insmod) once none is and no container is left,
//! a clean kernel log and kmemleak.  The seed is printed in the log
//! (`target/speaker-fuzz.log`); `SPEAKER_FUZZ_SEED` reruns one.
fn fuzz_args() -> Vec<String> {
    speaker_tests::host::fuzz_args(100000)
}

fn qemu_args() -> Vec<String> {
    vec!["--mem".to_string(), "1024".to_string()]
}

speaker_tests::vm_tests!(
    runner: "speaker-fuzz",
    runner_args: fuzz_args(),
    timeout: 900,
    qemu_args: qemu_args(),
    complete: every_fuzz_verdict_has_a_test_and_the_kernel_log_is_clean,
    scenarios: [
        fuzz_run_completes,
        fuzzed_ioctls_get_sane_answers,
        fuzzing_races_register_switch_and_exits,
        rmmod_is_refused_while_fds_are_open,
        module_reloads_once_fds_close_and_no_container_is_left,
        fuzzing_leaves_the_kernel_log_clean,
    ]
);
