//! The kernel's own seccomp selftests (`seccomp_bpf` from speaker's kernel
//! source) in the VM, in one boot (`qemu/run --no-module -- vm-selftests`):
//! first without speaker.ko (the baseline), then the runner loads it and
//! runs them again, each time directly and as the command of a container
//! (switched every 50 ms when the module is there; the same launcher and
//! filter, unswitched, for the baseline).  Every test must pass, or fail
//! (or skip) exactly as on the same kernel without the module;
//! docs/src/testing.md lists those that fail.
use std::collections::BTreeMap;
use std::sync::OnceLock;

use speaker_tests::host::{boot_logged, VmRun};
use speaker_tests::tap;

const TIMEOUT: u32 = 3600;
const SCENARIOS: [&str; 5] = [
    "seccomp_selftests_run_directly_without_module",
    "seccomp_selftests_run_in_container_without_module",
    "speaker_ko_loads_after_the_baseline",
    "seccomp_selftests_run_directly",
    "seccomp_selftests_run_in_switched_container",
];

fn vm() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let args: Vec<String> = vec!["--no-module".into(), "--mem".into(), "1024".into()];
        boot_logged(&["vm-selftests".to_string()], "vm-selftests", TIMEOUT, &args)
    })
}

/// `SELFTEST <kind> <test> <outcome>` lines of a run.
fn outcomes(run: &VmRun, kind: &str) -> BTreeMap<String, tap::Outcome> {
    let prefix = format!("SELFTEST {kind} ");
    run.log
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (name, o) = l.trim().rsplit_once(' ')?;
            Some((name.to_string(), tap::Outcome::parse(o)?))
        })
        .collect()
}

/// Every test of `kind` passes with the module, or has the same outcome
/// without it.
fn same_or_better(kind: &str) {
    let run = vm();
    let i = if kind == "direct" { 0 } else { 1 };
    run.check(SCENARIOS[i]);
    run.check(SCENARIOS[2]);
    run.check(SCENARIOS[3 + i]);
    let (a, b) = (outcomes(run, kind), outcomes(run, &format!("nomod-{kind}")));
    assert!(a.len() >= 90, "only {} selftests ran with the module (log: {})", a.len(), run.log_path.display());
    let names_a: Vec<&String> = a.keys().collect();
    let names_b: Vec<&String> = b.keys().collect();
    assert_eq!(names_a, names_b, "the two runs ran different tests");
    // Every selftest runs: a skip (a feature the kernel lacks) is a gap in
    // what this suite proves, not a pass.
    let skipped: Vec<&String> = a.iter().chain(b.iter()).filter(|(_, &o)| o == tap::Outcome::Skip).map(|(n, _)| n).collect();
    assert!(skipped.is_empty(), "{kind}: selftests skipped: {skipped:?}\n(log: {})", run.log_path.display());
    let worse: Vec<String> = a
        .iter()
        .filter(|(n, &o)| o != tap::Outcome::Pass && b[*n] != o)
        .map(|(n, o)| format!("{n}: {} with the module, {} without", o.as_str(), b[n].as_str()))
        .collect();
    let not_passing: Vec<String> =
        a.iter().filter(|(_, &o)| o != tap::Outcome::Pass).map(|(n, o)| format!("{n} ({})", o.as_str())).collect();
    eprintln!("{kind}: {} tests; not passing with the module (same without): {not_passing:?}", a.len());
    assert!(worse.is_empty(), "{kind}: selftests that fail only with speaker.ko: {worse:?}\n(log: {})", run.log_path.display());
}

#[test]
fn seccomp_selftests_pass_or_fail_as_without_module_when_module_is_loaded() {
    same_or_better("direct");
}

#[test]
fn seccomp_selftests_pass_or_fail_as_without_module_in_switched_container() {
    same_or_better("container");
}

#[test]
fn selftest_runs_are_complete_and_the_kernel_log_is_clean() {
    vm().check_complete(&SCENARIOS);
}
