//! The VM scenarios of speaker.ko and `speaker-ctl run/switch/stop/status`
//! (as in vm.rs, the same list: `vm_scenarios_tests!`) on Debian's own
//! kernel: boots the Debian 13 guest once (`qemu/run --kernel debian --
//! vm-scenarios`) with the speaker.ko built for it (`scripts/build-module
//! --kernel debian`), then each test asserts that its scenario ran inside
//! the VM and passed.
//!
//! Where Debian's kernel differs from speaker's debug kernel, the runner
//! adapts and says so in its output, and the tests below check that it did:
//!
//! * no `CONFIG_SECCOMP_CACHE_DEBUG`, so no `/proc/PID/seccomp_cache`: the
//!   four action-cache scenarios derive what the cache held from the
//!   filters' programs (`PTRACE_SECCOMP_GET_FILTER`, Debian has
//!   `CONFIG_CHECKPOINT_RESTORE`) and still assert that the syscall cached
//!   as allowed is denied once the switch returns
//!   (tests/src/bin/vm-scenarios/cache.rs);
//! * no kmemleak (and no KASAN or lockdep reports to expect): the runner
//!   skips the leak scan and says so; the kernel log is still checked for
//!   oopses, `BUG:`/`WARNING:` splats and the rest of `kernel_trouble`.
speaker_tests::vm_scenarios_tests!(
    complete: every_vm_scenario_has_a_test_on_debians_kernel_and_its_log_is_clean,
    runner: "vm-scenarios",
    timeout: 900,
    qemu_args: vec!["--kernel".to_string(), "debian".to_string(), "--mem".to_string(), "1024".to_string()],
);

/// Debian's kernel has no /proc/PID/seccomp_cache: the action-cache
/// scenarios derived the cache from the filters' programs, every lookup.
#[test]
fn action_cache_scenarios_derive_the_cache_without_the_debug_file() {
    vm().check_action_cache_view("derived");
}

/// The runner knew it was not on the debug kernel (no slub_debug, no
/// kmemleak) and said so, instead of failing on a missing kmemleak file.
#[test]
fn runner_skips_the_leak_scan_on_debians_kernel() {
    let log = &vm().log;
    assert!(log.contains("KMEMLEAK not built into this (non-debug) kernel: no leak scan"), "log: {}", vm().log_path.display());
    assert!(!log.contains("KMEMLEAK baseline"), "log: {}", vm().log_path.display());
}
