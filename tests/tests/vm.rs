//! speaker's debug kernel (KASAN, lockdep, kmemleak), one boot for the
//! module's three torture runners, one after another (`qemu/run
//! --no-module -- sh -c ...`, each runner's output after its
//! `SPEAKER-PART` line, judged as a run of its own: [`VmRun::part`]):
//!
//! 1. `vm-selftests`: the kernel's own seccomp selftests (`seccomp_bpf` from
//!    speaker's kernel source), first without speaker.ko (the baseline, on
//!    a kernel that never had it loaded: hence first), then the runner
//!    loads it and runs them again, each time directly and as the command
//!    of a container (switched every 50 ms when the module is there; the
//!    same launcher and filter, unswitched, for the baseline).  Every test
//!    must pass, or fail (or skip) exactly as without the module;
//!    docs/src/testing.md lists those that fail.  All but one, which
//!    under TCG ends by the harness' timeout with and without the module
//!    ([`TIMES_OUT_UNDER_TCG`]).
//! 2. `vm-scenarios`: speaker.ko and `speaker-ctl run/switch/stop/status`;
//!    each test asserts that its scenario ran and passed.  The list is
//!    shared with debian_vm.rs (`vm_scenarios_tests!`, tests/src/host.rs).
//!    Its last scenario unloads the module.
//! 3. `speaker-fuzz --calls 100000` (after an insmod): each test asserts one
//!    verdict on the run (see tests/src/bin/speaker-fuzz/): sane answers to
//!    every call, register/switch/exit races that really happened, rmmod
//!    refused while fds are open and accepted (then insmod) once none is
//!    and no container is left, a clean kernel log and kmemleak.  The seed
//!    is printed in the log; `SPEAKER_FUZZ_SEED` reruns one.
//!
//! Each runner checks the kernel log and kmemleak (baselined when it
//! starts) itself.  They shared a boot to save two boots of the debug
//! kernel (about 45 s of guest time each under TCG, plus their set-up).
//! Every scenario runs, always (TCG, no KVM needed): `qemu/run` builds
//! whatever is missing (kernel, module, guest binaries) before booting.
use std::sync::OnceLock;

use speaker_tests::host::{boot_logged, fuzz_args, VmRun, PART_MARK};
use speaker_tests::selftests::TIMES_OUT_UNDER_TCG;

/// The whole boot.
fn boot() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| {
        // A runner that fails does not stop the next; the module is loaded
        // for the next one unless it already is.
        let insmod = "grep -q '^speaker ' /proc/modules || insmod /speaker.ko";
        let chain = format!(
            "echo '{PART_MARK}vm-selftests'; vm-selftests --except {TIMES_OUT_UNDER_TCG}; a=$?; \
             echo '{PART_MARK}vm-scenarios'; {insmod}; vm-scenarios; b=$?; \
             echo '{PART_MARK}speaker-fuzz'; {insmod}; speaker-fuzz {}; c=$?; \
             exit $((a | b | c))",
            fuzz_args(100000).join(" ")
        );
        let cmd = ["sh".to_string(), "-c".to_string(), chain];
        let args: Vec<String> = ["--no-module", "--mem", "1024"].iter().map(|s| s.to_string()).collect();
        boot_logged(&cmd, "vm", 3600, &args)
    })
}

fn part(cell: &'static OnceLock<VmRun>, name: &str) -> &'static VmRun {
    cell.get_or_init(|| boot().part(name))
}

/// vm-scenarios' part.
fn vm() -> &'static VmRun {
    static PART: OnceLock<VmRun> = OnceLock::new();
    part(&PART, "vm-scenarios")
}

fn selftests() -> &'static VmRun {
    static PART: OnceLock<VmRun> = OnceLock::new();
    part(&PART, "vm-selftests")
}

fn fuzz() -> &'static VmRun {
    static PART: OnceLock<VmRun> = OnceLock::new();
    part(&PART, "speaker-fuzz")
}

// --- 1. the kernel's seccomp selftests ------------------------------------

#[test]
fn seccomp_selftests_pass_or_fail_as_without_module_when_module_is_loaded() {
    speaker_tests::selftests::same_or_better(selftests(), "direct");
}

#[test]
fn seccomp_selftests_pass_or_fail_as_without_module_in_switched_container() {
    speaker_tests::selftests::same_or_better(selftests(), "container");
}

#[test]
fn selftest_runs_are_complete_and_the_kernel_log_is_clean() {
    selftests().check_complete(&speaker_tests::selftests::SCENARIOS);
    // Every test ran but the one that times out under TCG either way.
    let except = format!("SELFTEST-ARGS -T {TIMES_OUT_UNDER_TCG}");
    assert!(selftests().log.lines().any(|l| l == except), "no '{except}' line (log: {})", selftests().log_path.display());
}

// --- 2. vm-scenarios --------------------------------------------------------

speaker_tests::vm_scenarios_tests!(
    complete: every_vm_scenario_has_a_test_and_the_kernel_log_is_clean,
    // speaker.ko's debug knobs exist on this kernel only (speaker-kmod/debug.rs).
    also: [tsync_and_private_stacking_between_visits_keep_no_stale_cache],
    run: vm(),
);

/// speaker's debug kernel has CONFIG_SECCOMP_CACHE_DEBUG: the action-cache
/// scenarios read the bitmap itself from /proc/PID/seccomp_cache.
#[test]
fn action_cache_scenarios_read_the_bitmap_from_the_debug_file() {
    vm().check_action_cache_view("debug-file");
}

// --- 3. the ioctl fuzzer ------------------------------------------------------

speaker_tests::vm_fuzz_tests!(complete: every_fuzz_verdict_has_a_test_and_the_kernel_log_is_clean, run: fuzz());
