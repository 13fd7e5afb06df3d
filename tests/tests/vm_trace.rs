//! VM scenarios of `speaker-ctl trace`'s filter mode: boots speaker's kernel
//! once (`qemu/run -- vm-trace`), then each test asserts that its scenario
//! ran inside the VM and passed.  Nothing here is skipped: `qemu/run` builds
//! whatever is missing (kernel, module, guest binaries) before booting.
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct VmRun {
    log: String,
    status: Option<i32>,
    log_path: PathBuf,
}

fn vm() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let root = root();
        let out = Command::new(root.join("qemu/run"))
            .args(["--timeout", "900", "--mem", "1024", "--", "vm-trace"])
            .output()
            .expect("cannot start qemu/run");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log_path = root.join("target/vm-trace.log");
        let _ = std::fs::write(&log_path, &log);
        eprintln!("VM log: {}", log_path.display());
        VmRun {
            log,
            status: out.status.code(),
            log_path,
        }
    })
}

fn check(name: &str) {
    let run = vm();
    let pass = format!("SCENARIO {name} PASS");
    let fail = format!("SCENARIO {name} FAIL");
    if run.log.lines().any(|l| l.starts_with(&pass)) {
        return;
    }
    let why = run
        .log
        .lines()
        .find(|l| l.starts_with(&fail))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "scenario did not run (qemu/run exit {:?}); last lines:\n{}",
                run.status,
                run.log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    panic!("{why}\n(full VM log: {})", run.log_path.display());
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios!(
    filter_mode_is_reported,
    filter_mode_matches_ptrace_mode,
    filter_mode_traps_each_syscall_once_per_phase,
    filter_mode_follows_children_threads_and_i386,
    trace_profile_runs_the_service_without_denials,
    trace_mode_filter_without_module_fails_clearly,
    trace_bench_runs,
);

#[test]
fn every_vm_trace_scenario_has_a_test_and_the_kernel_log_is_clean() {
    let run = vm();
    let ran: Vec<&str> = run
        .log
        .lines()
        .filter_map(|l| l.strip_prefix("SCENARIO "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "DONE")
        .collect();
    for n in &ran {
        assert!(NAMES.contains(n), "VM scenario {n} has no host test");
    }
    for n in NAMES {
        assert!(
            ran.contains(n),
            "VM scenario {n} did not run (log: {})",
            run.log_path.display()
        );
    }
    assert!(
        run.log.contains("SCENARIOS DONE"),
        "the scenario runner did not finish (log: {})",
        run.log_path.display()
    );
    let trouble: Vec<&str> = run
        .log
        .lines()
        .filter(|l| l.starts_with("KERNEL-LOG-TROUBLE"))
        .collect();
    assert!(trouble.is_empty(), "kernel log: {trouble:?}");
}
