//! The host's verdicts on a run of `vm-selftests` (the kernel's own seccomp
//! selftests in the VM, without and then with speaker.ko; see
//! tests/src/bin/vm-selftests.rs): every test passes with the module, or
//! has the same outcome without it.
use std::collections::BTreeMap;

use crate::host::VmRun;
use crate::tap;

/// The one test of `seccomp_bpf` that the `vm` suite does not run
/// (`vm-selftests --except`): 100,000 user-notification round trips under a
/// 1 ms SIGALRM.  Under TCG it ends by the harness' 30 s timeout with and
/// without speaker.ko: always on the debug kernel (all four runs of every
/// `vm` suite until December 2026, 2 of its 8 minutes), and on Debian's
/// kernel whenever a second guest runs beside it (5 of 5 runs each way;
/// it passed in 15 s on a quiet host).  A comparison of two timeouts shows
/// nothing about the module; by hand, on a quiet host: `qemu/run --kernel
/// debian --no-module -- vm-selftests --only TEST` (docs/src/testing.md).
pub const TIMES_OUT_UNDER_TCG: &str = "user_notification_wait_killable_after_reply";

/// The runner's scenarios, in the order it runs them.
pub const SCENARIOS: [&str; 5] = [
    "seccomp_selftests_run_directly_without_module",
    "seccomp_selftests_run_in_container_without_module",
    "speaker_ko_loads_after_the_baseline",
    "seccomp_selftests_run_directly",
    "seccomp_selftests_run_in_switched_container",
];

/// `<tag> <kind> <test> <outcome>` lines of a run, in order.
fn lines<'a>(run: &'a VmRun, tag: &str, kind: &str) -> Vec<(&'a str, tap::Outcome)> {
    let prefix = format!("{tag} {kind} ");
    run.log
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (name, o) = l.trim().rsplit_once(' ')?;
            Some((name, tap::Outcome::parse(o)?))
        })
        .collect()
}

/// Each test's outcome in the run of `kind`: its `SELFTEST` line, or
/// `pass` if the harness' timeout ended it and it passed when run again
/// alone (a `SELFTEST-RERUN` line: the runner reruns such a test up to
/// twice, with or without the module alike; see [`rerun_passes`]).
fn outcomes(run: &VmRun, kind: &str) -> BTreeMap<String, tap::Outcome> {
    let mut o: BTreeMap<String, tap::Outcome> = lines(run, "SELFTEST", kind).into_iter().map(|(n, o)| (n.to_string(), o)).collect();
    for n in rerun_passes(run, kind) {
        if let Some(t) = o.get_mut(&n) {
            *t = tap::Outcome::Pass;
        }
    }
    o
}

/// The tests of the run of `kind` that timed out and then passed when run
/// again alone.
pub fn rerun_passes(run: &VmRun, kind: &str) -> Vec<String> {
    let reruns = lines(run, "SELFTEST-RERUN", kind);
    let mut passed: Vec<String> = reruns.iter().filter(|(_, o)| *o == tap::Outcome::Pass).map(|(n, _)| n.to_string()).collect();
    passed.dedup();
    passed
}

/// Panics unless every test of `kind` (`direct` or `container`) passes
/// with the module, or has the same outcome without it.
pub fn same_or_better(run: &VmRun, kind: &str) {
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
    for k in [kind.to_string(), format!("nomod-{kind}")] {
        let flaky = rerun_passes(run, &k);
        if !flaky.is_empty() {
            eprintln!("{k}: timed out, then passed when run again alone: {flaky:?}");
        }
    }
    assert!(worse.is_empty(), "{kind}: selftests that fail only with speaker.ko: {worse:?}\n(log: {})", run.log_path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(log: &str) -> VmRun {
        VmRun { log: log.to_string(), status: Some(0), log_path: "test.log".into() }
    }

    #[test]
    fn a_timed_out_test_counts_as_passed_only_if_a_rerun_passed() {
        let r = run("SELFTEST direct global.a fail\n\
                     SELFTEST direct global.b fail\n\
                     SELFTEST direct global.c pass\n\
                     SELFTEST-RERUN direct global.a fail\n\
                     SELFTEST-RERUN direct global.a pass\n\
                     SELFTEST-RERUN direct global.b fail\n\
                     SELFTEST-RERUN direct global.b fail\n\
                     SELFTEST-RERUN nomod-direct global.b pass\n");
        let o = outcomes(&r, "direct");
        assert_eq!(o["global.a"], tap::Outcome::Pass);
        assert_eq!(o["global.b"], tap::Outcome::Fail, "a pass in another kind's rerun does not count");
        assert_eq!(o["global.c"], tap::Outcome::Pass);
        assert_eq!(rerun_passes(&r, "direct"), vec!["global.a".to_string()]);
        assert_eq!(outcomes(&r, "nomod-direct").len(), 0, "a rerun line alone is not a test of the run");
    }
}
