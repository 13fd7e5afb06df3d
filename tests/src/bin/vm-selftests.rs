//! vm-selftests: the kernel's own seccomp selftests (`seccomp_bpf`, built by
//! scripts/build-selftests from speaker's kernel source) inside the VM
//! (`qemu/run --no-module -- vm-selftests [--only TEST | --except TEST]
//! [NAME...]`), in one boot, first without speaker.ko (the baseline), then
//! with it:
//!
//! * `seccomp_selftests_run_directly_without_module`,
//!   `seccomp_selftests_run_in_container_without_module`: the baseline, on
//!   the same kernel before speaker.ko was ever loaded: `seccomp_bpf` as
//!   root, and as the command of the same launcher and filter as below,
//!   without registering or switching;
//! * `speaker_ko_loads_after_the_baseline`: insmod /speaker.ko;
//! * `seccomp_selftests_run_directly`: `seccomp_bpf` as root, next to
//!   speaker.ko;
//! * `seccomp_selftests_run_in_switched_container`: `seccomp_bpf` as the
//!   command of a speaker container switched every 50 ms while it runs
//!   (`selftest-container`).
//!
//! Each scenario prints `SELFTEST <kind> <test> <pass|fail|skip>` per test
//! (kinds `direct`, `container`, and `nomod-direct`, `nomod-container` for
//! the baseline) and passes if the TAP output is complete (and, with the
//! module, if the container was switched at least once).  Whether every
//! test passes, or fails exactly as without the module, is judged on the
//! host (tests/src/selftests.rs, from tests/tests/vm.rs, whose boot runs this
//! runner first).
//!
//! `--only TEST` runs only that test of `seccomp_bpf` (the harness' `-t`),
//! `--except TEST` all but it (`-T`), in every run: the `vm` suite runs
//! all but the one that times out under TCG with and without the module
//! ([`TIMES_OUT_UNDER_TCG`]).
//!
//! [`TIMES_OUT_UNDER_TCG`]: speaker_tests::selftests::TIMES_OUT_UNDER_TCG
use std::path::Path;
use std::sync::OnceLock;

use speaker_tests::ensure;
use speaker_tests::guest::{run, run_selected, Outcome, Scenario};
use speaker_tests::tap;

fn module_loaded() -> bool {
    Path::new("/dev/speaker").exists()
}

/// Prints a run's outcomes (`SELFTEST`), why each test that did not pass
/// failed (`SELFTEST-WHY`) and the summary; returns the results and the
/// tests the harness ended by its 30 s timeout.
fn report(kind: &str, stdout: &str) -> (tap::Results, Vec<String>) {
    let res = tap::parse(stdout);
    for (name, o) in &res.tests {
        println!("SELFTEST {kind} {name} {}", o.as_str());
    }
    let timed_out = why_not_passed(kind, stdout, "SELFTEST-WHY");
    println!("SELFTESTS {kind} module={} {}", module_loaded(), res.summary());
    (res, timed_out)
}

/// Prints `TAG kind test: lines` for each test of `stdout` that did not
/// pass (its own lines, from `#  RUN`); returns those the harness' timeout
/// ended.
fn why_not_passed(kind: &str, stdout: &str, tag: &str) -> Vec<String> {
    let mut timed_out = Vec::new();
    let mut section: Vec<&str> = Vec::new();
    for l in stdout.lines() {
        if l.starts_with("#  RUN ") {
            section.clear();
        }
        section.push(l);
        if let Some((name, o)) = tap::parse_line(l) {
            if o != tap::Outcome::Pass {
                let why: Vec<&str> = section.iter().rev().take(8).rev().copied().collect();
                println!("{tag} {kind} {name}: {}", why.join(" | "));
                if section.iter().any(|l| l.contains("Test terminated by timeout")) {
                    timed_out.push(name.clone());
                }
            }
            section.clear();
        }
    }
    timed_out
}

/// How many more times a test that the harness' timeout ended runs, alone.
const RERUNS: usize = 2;

/// Runs each test of `timed_out` again, alone (the harness' `-r`), the
/// way `once` runs `seccomp_bpf` with the arguments it is given, until it
/// passes or has run [`RERUNS`] more times: one `SELFTEST-RERUN kind test
/// outcome` line per run.  A test that timed out and then passes hung
/// or crawled on a loaded host (docs/src/testing.md); the host judges it
/// by its best run and names it (tests/src/selftests.rs).
fn rerun_timed_out(kind: &str, timed_out: &[String], once: impl Fn(&[&str]) -> String) {
    for name in timed_out {
        // TAP's FIXTURE.VARIANT.TEST (or FIXTURE.TEST) is -r's FIXTURE:VARIANT:TEST.
        let filter = name.replace('.', ":");
        for _ in 0..RERUNS {
            let out = once(&["-r", &filter]);
            let o = tap::parse(&out).tests.get(name).copied();
            why_not_passed(kind, &out, "SELFTEST-RERUN-WHY");
            println!("SELFTEST-RERUN {kind} {name} {}", o.map(tap::Outcome::as_str).unwrap_or("missing"));
            if o == Some(tap::Outcome::Pass) {
                break;
            }
        }
    }
}

/// The kind of a run: `direct`/`container`, prefixed `nomod-` without the
/// module.
fn kind(base: &str) -> String {
    if module_loaded() {
        base.to_string()
    } else {
        format!("nomod-{base}")
    }
}

/// CPU seconds (user + system) the runner's reaped children have used.
fn children_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-parameter.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Runs `f`, printing its wall time beside the CPU time its children used
/// (how much of a run is waiting rather than computing).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (cpu, wall) = (children_cpu(), std::time::Instant::now());
    let r = f();
    println!("  {what}: {:.1}s wall, {:.1}s CPU", wall.elapsed().as_secs_f64(), children_cpu() - cpu);
    r
}

/// The harness options that `--only`/`--except` gave (`-t TEST`/`-T TEST`).
static HARNESS_ARGS: OnceLock<Vec<String>> = OnceLock::new();

fn harness_args() -> &'static [String] {
    HARNESS_ARGS.get().map(Vec::as_slice).unwrap_or(&[])
}

/// `seccomp_bpf ARGS` as root; its output with stderr (where the
/// harness logs why a test failed) and its exit code.
fn seccomp_bpf(args: &[&str]) -> (String, i32) {
    // (Test names and filters are the harness' own: letters, digits, '_', ':'.)
    let cmd = format!("exec seccomp_bpf {} 2>&1", args.join(" "));
    let o = run("sh", &["-c", &cmd]);
    (o.stdout, o.code)
}

fn directly() -> Outcome {
    let args: Vec<&str> = harness_args().iter().map(String::as_str).collect();
    let (out, code) = timed("seccomp_bpf", || seccomp_bpf(&args));
    let kind = kind("direct");
    let (res, timed_out) = report(&kind, &out);
    ensure!(res.complete(), "seccomp_bpf exited {code} with incomplete TAP output ({})", res.summary());
    rerun_timed_out(&kind, &timed_out, |a| seccomp_bpf(a).0);
    Ok(())
}

/// `seccomp_bpf ARGS` as the command of `selftest-container` (registered
/// and switched when the module is loaded).
fn in_a_container(harness: &[&str]) -> speaker_tests::guest::Out {
    let mut args = vec!["--timeout", "1500"];
    if !module_loaded() {
        args.push("--no-register");
    }
    args.extend(["--", "seccomp_bpf"]);
    args.extend(harness);
    run("selftest-container", &args)
}

fn in_container() -> Outcome {
    let harness: Vec<&str> = harness_args().iter().map(String::as_str).collect();
    let o = timed("seccomp_bpf in a container", || in_a_container(&harness));
    let kind = kind("container");
    let (res, timed_out) = report(&kind, &o.stdout);
    let summary = o.stdout.lines().find(|l| l.starts_with("SELFTEST-CONTAINER")).unwrap_or("").to_string();
    println!("{summary}");
    ensure!(o.code == 0, "selftest-container exited {}: {summary} {}", o.code, o.stderr.trim().replace('\n', " | "));
    ensure!(res.complete(), "incomplete TAP output from the container ({})", res.summary());
    if module_loaded() {
        let switches: u64 = summary.split_whitespace().find_map(|w| w.strip_prefix("switches=")).and_then(|n| n.parse().ok()).unwrap_or(0);
        ensure!(switches > 0, "the container was never switched while the selftests ran: {summary}");
    }
    rerun_timed_out(&kind, &timed_out, |a| in_a_container(a).stdout);
    Ok(())
}

fn seccomp_selftests_run_directly_without_module() -> Outcome {
    ensure!(!module_loaded(), "speaker.ko is already loaded: boot with qemu/run --no-module for the baseline");
    directly()
}

fn seccomp_selftests_run_in_container_without_module() -> Outcome {
    ensure!(!module_loaded(), "speaker.ko is already loaded: boot with qemu/run --no-module for the baseline");
    in_container()
}

fn speaker_ko_loads_after_the_baseline() -> Outcome {
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0 && module_loaded(), "insmod /speaker.ko: exit {}: {}", o.code, o.stderr.trim());
    Ok(())
}

fn seccomp_selftests_run_directly() -> Outcome {
    ensure!(module_loaded(), "speaker.ko is not loaded");
    directly()
}

fn seccomp_selftests_run_in_switched_container() -> Outcome {
    ensure!(module_loaded(), "speaker.ko is not loaded");
    in_container()
}

const SCENARIOS: &[Scenario] = &[
    ("seccomp_selftests_run_directly_without_module", seccomp_selftests_run_directly_without_module),
    ("seccomp_selftests_run_in_container_without_module", seccomp_selftests_run_in_container_without_module),
    ("speaker_ko_loads_after_the_baseline", speaker_ko_loads_after_the_baseline),
    ("seccomp_selftests_run_directly", seccomp_selftests_run_directly),
    ("seccomp_selftests_run_in_switched_container", seccomp_selftests_run_in_switched_container),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut harness, mut names) = (Vec::new(), Vec::new());
    while let Some(a) = args.next() {
        let flag = match a.as_str() {
            "--only" => "-t",
            "--except" => "-T",
            _ => {
                names.push(a);
                continue;
            }
        };
        match args.next() {
            Some(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                harness.extend([flag.to_string(), t]);
            }
            other => {
                eprintln!("vm-selftests: {a} wants the name of a seccomp_bpf test (letters, digits, '_'), got {other:?}");
                std::process::exit(2);
            }
        }
    }
    if !harness.is_empty() {
        println!("SELFTEST-ARGS {}", harness.join(" "));
    }
    HARNESS_ARGS.set(harness).expect("set once");
    run_selected(SCENARIOS, &names)
}
