//! speaker-fuzz: an ioctl fuzzer for speaker.ko, run as root inside the VM
//! (`qemu/run -- speaker-fuzz [--seed N] [--calls N] [--threads N] [--rounds N] [--module PATH]`).
//!
//! Each round opens `/dev/speaker` in several worker threads (default 4)
//! that throw ioctls at it: random command numbers (speaker's magic 0xB7
//! with random nr, direction and size, and other magics), speaker's five
//! commands with well-formed and malformed arguments (random pids and
//! container ids, valid and malformed BPF programs of 0..5000 instructions,
//! jumps out of range), and bad pointers (NULL, kernel addresses,
//! non-canonical, unmapped, a PROT_NONE page, a read-only page for commands
//! the kernel writes to, a struct straddling the end of a mapping).  Meanwhile
//! a container thread forks children that install a seccomp filter, are
//! registered, switched and unregistered, live a few milliseconds (some fork
//! a grandchild sharing the filter) and exit; the workers fork and drop
//! privileges now and then; an rmmod thread tries `delete_module` while its
//! own fd is open (must fail).  At the end of a round every child is gone
//! and every fd closed: the module's container count must come back to 0,
//! `rmmod` must succeed, and the module is loaded again for the next round.
//!
//! The fuzzer asserts no errno for garbage: only sane return values (0, or
//! -1 with an errno), a sane `VERSION` answer, no leaked container, rmmod
//! refused while an fd is open and accepted once none is, and (by the
//! scenario harness) a clean kernel log and kmemleak.  It prints the seed
//! (rerun with `--seed`), calls per second and the errno histogram.
use std::sync::OnceLock;

use speaker_tests::ensure;
use speaker_tests::guest::{run_selected, Outcome, Scenario};

use crate::run::{fuzz, Report};

mod containers;
mod module;
mod pointers;
mod progs;
mod rng;
mod run;
mod stats;
#[cfg(test)]
mod tests;
mod worker;

struct Config {
    seed: u64,
    calls: u64,
    threads: usize,
    rounds: u64,
    module: String,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

static REPORT: OnceLock<Result<Report, String>> = OnceLock::new();

fn report() -> Result<&'static Report, String> {
    REPORT.get().ok_or("the fuzz run did not happen")?.as_ref().map_err(|e| format!("the fuzz run failed: {e}"))
}

fn fuzz_run_completes() -> Outcome {
    let cfg = CONFIG.get().ok_or("no configuration")?;
    let r = REPORT.get_or_init(|| fuzz(cfg));
    let r = r.as_ref().map_err(|e| e.clone())?;
    ensure!(r.calls >= cfg.calls, "only {} of {} calls were made in {:.0} s", r.calls, cfg.calls, r.secs);
    Ok(())
}

fn fuzzed_ioctls_get_sane_answers() -> Outcome {
    let r = report()?;
    ensure!(r.violations.is_empty(), "{} violation(s): {}", r.violations.len(), r.violations.join(" | "));
    Ok(())
}

fn fuzzing_races_register_switch_and_exits() -> Outcome {
    let r = report()?;
    ensure!(
        r.registered > 0 && r.switched > 0 && r.exits > 0,
        "the run registered {} containers, switched {} times, saw {} container exits: nothing raced",
        r.registered,
        r.switched,
        r.exits
    );
    Ok(())
}

fn rmmod_is_refused_while_fds_are_open() -> Outcome {
    let r = report()?;
    ensure!(r.rmmod_refused > 0, "no rmmod attempt was made while fds were open");
    Ok(())
}

fn module_reloads_once_fds_close_and_no_container_is_left() -> Outcome {
    let r = report()?;
    ensure!(r.reloads == r.rounds, "{} of {} rounds ended with rmmod and insmod", r.reloads, r.rounds);
    Ok(())
}

fn fuzzing_leaves_the_kernel_log_clean() -> Outcome {
    let r = report()?;
    ensure!(r.trouble.is_empty(), "kernel log: {}", r.trouble.join(" | "));
    Ok(())
}

const SCENARIOS: &[Scenario] = &[
    ("fuzz_run_completes", fuzz_run_completes),
    ("fuzzed_ioctls_get_sane_answers", fuzzed_ioctls_get_sane_answers),
    ("fuzzing_races_register_switch_and_exits", fuzzing_races_register_switch_and_exits),
    ("rmmod_is_refused_while_fds_are_open", rmmod_is_refused_while_fds_are_open),
    ("module_reloads_once_fds_close_and_no_container_is_left", module_reloads_once_fds_close_and_no_container_is_left),
    ("fuzzing_leaves_the_kernel_log_clean", fuzzing_leaves_the_kernel_log_clean),
];

fn usage(why: &str) -> ! {
    eprintln!("speaker-fuzz: {why}");
    eprintln!("usage: speaker-fuzz [--seed N] [--calls N] [--threads N] [--rounds N] [--module PATH] [SCENARIO...]");
    std::process::exit(2)
}

fn parse_config(args: &[String]) -> (Config, Vec<String>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut cfg = Config { seed: now, calls: 100_000, threads: 4, rounds: 3, module: "/speaker.ko".into() };
    let mut names = Vec::new();
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> u64 {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(&format!("{what} wants a whole number")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => cfg.seed = num(it.next(), "--seed"),
            "--calls" => cfg.calls = num(it.next(), "--calls"),
            "--threads" => cfg.threads = num(it.next(), "--threads") as usize,
            "--rounds" => cfg.rounds = num(it.next(), "--rounds").max(1),
            "--module" => cfg.module = it.next().cloned().unwrap_or_else(|| usage("--module wants a path")),
            s if s.starts_with('-') => usage(&format!("unknown option '{s}'")),
            s => names.push(s.to_string()),
        }
    }
    if cfg.threads < 1 {
        usage("--threads wants at least 1");
    }
    (cfg, names)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (n, _) in SCENARIOS {
            println!("{n}");
        }
        return;
    }
    let (cfg, mut names) = parse_config(&args);
    // The run happens in the first scenario; the others judge it.
    if !names.is_empty() && !names.iter().any(|n| n == "fuzz_run_completes") {
        names.insert(0, "fuzz_run_completes".into());
    }
    let _ = CONFIG.set(cfg);
    run_selected(SCENARIOS, &names)
}
