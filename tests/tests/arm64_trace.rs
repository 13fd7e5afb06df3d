//! `speaker-ctl trace` on arm64, and one profile for both architectures.
//!
//! Three boots, one after the other (tests/src/bin/vm-trace/cross_arch.rs):
//!
//! 1. arm64 (`qemu/run --arch arm64 -- vm-trace ...`, speaker's arm64 debug
//!    kernel): the tracer's filter mode against its ptrace mode on the
//!    fixture service (the same scenarios as debian_vm_trace.rs; the compat
//!    case traces the AArch32 program `compat-getpriority`), a traced
//!    profile that runs the service with everything else denied, its
//!    export in complain mode, `--mode filter` without speaker.ko, the
//!    reload phase, and the fixture's arm64 trace, printed for the next
//!    boot (vm-trace's `trace_bench_runs` stays on x86_64: strace is not
//!    in the arm64 initramfs);
//! 2. x86_64 (Debian 13's kernel and guest, `--kernel debian`), given the
//!    arm64 trace: traces the same service there, merges both with
//!    `speaker-ctl profile merge`, enforces the merged file and prints it;
//! 3. arm64 again, given the merged file: enforces it.
//!
//! Boots 2 and 3 also enforce the merged file's export (`profile export`:
//! one Docker-format file per phase for both architectures, written in
//! boot 2 and given to boot 3 as printed: the same JSON on one line), with
//! a syscall that only one trace had allowed on its node and denied on
//! the other.
//!
//! Each test asserts one scenario of one boot; `every_..._is_clean` checks
//! that each boot ran exactly its scenarios and left the kernel log clean.
use std::path::PathBuf;
use std::sync::OnceLock;

use speaker_tests::host::{boot_logged, root, VmRun};

const ARM64_SCENARIOS: &[&str] = &[
    "filter_mode_is_reported",
    "filter_mode_matches_ptrace_mode",
    "filter_mode_traps_each_syscall_once_per_phase",
    "filter_mode_follows_children_threads_and_i386",
    "trace_profile_runs_the_service_without_denials",
    "trace_mode_filter_without_module_fails_clearly",
    "exported_profiles_in_complain_mode_log_no_denial",
    "trace_records_reload_phase",
    "fixture_profile_is_traced_for_a_merge",
];
const X86_SCENARIOS: &[&str] = &["merged_profile_of_both_arches_is_enforced"];
const MERGED_SCENARIOS: &[&str] = &["shared_merged_profile_is_enforced"];

/// The arm64 guest: speaker's arm64 debug kernel, the busybox initramfs.
const ARM64: &[&str] = &["--arch", "arm64", "--mem", "1024"];
/// The x86_64 guest: Debian's production kernel with the trixie guest
/// (about seven times faster under TCG than speaker's KASAN kernel, and
/// the kernel an x86_64 node runs).
const X86_64: &[&str] = &["--kernel", "debian", "--mem", "1024"];

fn boot(log: &str, guest: &[&str], scenarios: &[&str], share: Option<PathBuf>) -> VmRun {
    let mut cmd = vec!["vm-trace".to_string()];
    cmd.extend(scenarios.iter().map(|s| s.to_string()));
    let mut args: Vec<String> = guest.iter().map(|s| s.to_string()).collect();
    if let Some(dir) = share {
        args.extend(["--share".to_string(), dir.display().to_string()]);
    }
    boot_logged(&cmd, log, 900, &args)
}

/// A fresh `target/arm64_trace/NAME/FILE` holding the profile `scenario`
/// printed in `run` (its `PROFILE-JSON` line), beside the files it printed
/// as `OCI-JSON FILE {...}` (the exported ones); the directory is the next
/// boot's share.
fn share_profile(run: &VmRun, scenario: &str, name: &str, file: &str) -> Result<PathBuf, String> {
    let output = run.output_of(scenario);
    let line = output
        .iter()
        .find_map(|l| l.strip_prefix("PROFILE-JSON "))
        .ok_or_else(|| format!("{scenario} printed no profile (log: {})", run.log_path.display()))?;
    let dir = root().join("target/arm64_trace").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut files = vec![(file, line)];
    files.extend(output.iter().filter_map(|l| l.strip_prefix("OCI-JSON ")?.split_once(' ')));
    for (f, text) in files {
        std::fs::write(dir.join(f), text).map_err(|e| format!("cannot write {f} into {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

fn arm64() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| boot("arm64_trace", ARM64, ARM64_SCENARIOS, None))
}

fn x86_64() -> &'static Result<VmRun, String> {
    static RUN: OnceLock<Result<VmRun, String>> = OnceLock::new();
    RUN.get_or_init(|| {
        let share = share_profile(arm64(), "fixture_profile_is_traced_for_a_merge", "x86_64", "trace.json")?;
        Ok(boot("arm64_trace-x86_64", X86_64, X86_SCENARIOS, Some(share)))
    })
}

fn arm64_merged() -> &'static Result<VmRun, String> {
    static RUN: OnceLock<Result<VmRun, String>> = OnceLock::new();
    RUN.get_or_init(|| {
        let x86 = x86_64().as_ref().map_err(|e| format!("no x86_64 boot: {e}"))?;
        let share = share_profile(x86, "merged_profile_of_both_arches_is_enforced", "arm64-merged", "merged.json")?;
        Ok(boot("arm64_trace-merged", ARM64, MERGED_SCENARIOS, Some(share)))
    })
}

fn run_of(r: &'static Result<VmRun, String>) -> &'static VmRun {
    r.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

macro_rules! scenario_tests {
    ($run:expr => $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run.check(stringify!($name));
            }
        )*
    };
}

scenario_tests!(arm64() =>
    filter_mode_is_reported,
    filter_mode_matches_ptrace_mode,
    filter_mode_traps_each_syscall_once_per_phase,
    filter_mode_follows_children_threads_and_i386,
    trace_profile_runs_the_service_without_denials,
    trace_mode_filter_without_module_fails_clearly,
    exported_profiles_in_complain_mode_log_no_denial,
    trace_records_reload_phase,
    fixture_profile_is_traced_for_a_merge,
);
scenario_tests!(run_of(x86_64()) => merged_profile_of_both_arches_is_enforced);
scenario_tests!(run_of(arm64_merged()) => shared_merged_profile_is_enforced);

#[test]
fn every_boot_ran_its_scenarios_and_its_kernel_log_is_clean() {
    arm64().check_complete(ARM64_SCENARIOS);
    run_of(x86_64()).check_complete(X86_SCENARIOS);
    run_of(arm64_merged()).check_complete(MERGED_SCENARIOS);
}

/// The merged file carries both architectures, and each VM broke the
/// service by taking its own ABI's `write` out of the running phase.
#[test]
fn merged_profile_has_both_architectures_and_each_vm_enforces_its_own_half() {
    let merged = run_of(x86_64()).output_of("merged_profile_of_both_arches_is_enforced");
    let line = merged.iter().find(|l| l.starts_with("  merged: architectures ")).expect("no merged summary line");
    for want in ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "\"aarch64\"", "\"x86_64\""] {
        assert!(line.contains(want), "merged summary lacks {want}: {line}");
    }
    for run in [run_of(x86_64()), run_of(arm64_merged())] {
        let cut = run.log.lines().any(|l| l.starts_with("  without ") && l.contains(" write in running: "));
        assert!(cut, "no denied-write line (log: {})", run.log_path.display());
    }
}

/// The exported files gave each node the probe syscall of its own trace and
/// denied (EPERM) the other trace's: two lines per node.
#[test]
fn exported_files_allow_each_node_its_own_probe_and_deny_the_others() {
    for (run, scenario, node, other) in [
        (run_of(x86_64()), "merged_profile_of_both_arches_is_enforced", "x86_64", "aarch64"),
        (run_of(arm64_merged()), "shared_merged_profile_is_enforced", "aarch64", "x86_64"),
    ] {
        let lines = run.output_of(scenario);
        let said = |end: &str, traced: &str| {
            lines.iter().any(|l| {
                l.starts_with(&format!("  exported, {node} node: "))
                    && l.contains(end)
                    && l.ends_with(&format!("(traced on {traced} only)"))
            })
        };
        assert!(said(": 0 ", node), "{node}: no allowed own probe (log: {})", run.log_path.display());
        assert!(said(": errno 1 ", other), "{node}: no denied {other} probe (log: {})", run.log_path.display());
    }
}
