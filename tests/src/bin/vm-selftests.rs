//! vm-selftests: the kernel's own seccomp selftests (`seccomp_bpf`, built by
//! scripts/build-selftests from speaker's kernel source) inside the VM
//! (`qemu/run [--no-module] -- vm-selftests [NAME...]`):
//!
//! * `seccomp_selftests_run_directly`: `seccomp_bpf` as root, next to
//!   speaker.ko if it is loaded;
//! * `seccomp_selftests_run_in_switched_container`: `seccomp_bpf` as the
//!   command of a speaker container switched every 50 ms while it runs
//!   (`selftest-container`); without the module, the same launcher and
//!   filter without registering or switching (the fair baseline).
//!
//! Each scenario prints `SELFTEST <direct|container> <test> <pass|fail|skip>`
//! per test and passes if the TAP output is complete (and, with the module,
//! if the container was switched at least once).  Whether every test passes,
//! or fails exactly as without the module, is judged on the host
//! (tests/tests/vm_selftests.rs), which boots the VM both ways.
use std::path::Path;

use speaker_tests::ensure;
use speaker_tests::guest::{run, run_scenarios, Outcome, Scenario};
use speaker_tests::tap;

fn module_loaded() -> bool {
    Path::new("/dev/speaker").exists()
}

fn report(kind: &str, stdout: &str) -> tap::Results {
    let res = tap::parse(stdout);
    for (name, o) in &res.tests {
        println!("SELFTEST {kind} {name} {}", o.as_str());
    }
    // Why each test that did not pass failed: its own lines, from `#  RUN`.
    let mut section: Vec<&str> = Vec::new();
    for l in stdout.lines() {
        if l.starts_with("#  RUN ") {
            section.clear();
        }
        section.push(l);
        if let Some((name, o)) = tap::parse_line(l) {
            if o != tap::Outcome::Pass {
                let why: Vec<&str> = section.iter().rev().take(8).rev().copied().collect();
                println!("SELFTEST-WHY {kind} {name}: {}", why.join(" | "));
            }
            section.clear();
        }
    }
    println!("SELFTESTS {kind} module={} {}", module_loaded(), res.summary());
    res
}

fn seccomp_selftests_run_directly() -> Outcome {
    // stderr too: the harness logs why a test failed there.
    let o = run("sh", &["-c", "exec seccomp_bpf 2>&1"]);
    let res = report("direct", &o.stdout);
    ensure!(res.complete(), "seccomp_bpf exited {} with incomplete TAP output ({}): {}", o.code, res.summary(), o.stderr.trim());
    Ok(())
}

fn seccomp_selftests_run_in_switched_container() -> Outcome {
    let mut args = vec!["--timeout", "1500"];
    if !module_loaded() {
        args.push("--no-register");
    }
    args.extend(["--", "seccomp_bpf"]);
    let o = run("selftest-container", &args);
    let res = report("container", &o.stdout);
    let summary = o.stdout.lines().find(|l| l.starts_with("SELFTEST-CONTAINER")).unwrap_or("").to_string();
    println!("{summary}");
    ensure!(o.code == 0, "selftest-container exited {}: {summary} {}", o.code, o.stderr.trim().replace('\n', " | "));
    ensure!(res.complete(), "incomplete TAP output from the container ({})", res.summary());
    if module_loaded() {
        let switches: u64 = summary.split_whitespace().find_map(|w| w.strip_prefix("switches=")).and_then(|n| n.parse().ok()).unwrap_or(0);
        ensure!(switches > 0, "the container was never switched while the selftests ran: {summary}");
    }
    Ok(())
}

const SCENARIOS: &[Scenario] = &[
    ("seccomp_selftests_run_directly", seccomp_selftests_run_directly),
    ("seccomp_selftests_run_in_switched_container", seccomp_selftests_run_in_switched_container),
];

fn main() {
    run_scenarios(SCENARIOS)
}
