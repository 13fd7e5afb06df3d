//! Shared pieces of speaker's VM tests.
//!
//! * [`guest`]: what the scenario runners inside the VM (`vm-scenarios`,
//!   `vm-trace`) share: running commands, reading the kernel log, and the
//!   output protocol (`SCENARIO <name> PASS|FAIL: why`, then
//!   `SCENARIOS DONE pass=N fail=M`).
//! * [`host`]: what the host-side tests share: booting the VM once per test
//!   binary and asserting one scenario per `#[test]` ([`vm_tests!`]).

/// Returns `Err(format!(...))` from the enclosing scenario unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

pub mod guest {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    /// What a scenario returns: `Err(why)` on failure.
    pub type Outcome = Result<(), String>;
    /// A scenario: its name (the behaviour it proves) and its function.
    pub type Scenario = (&'static str, fn() -> Outcome);

    /// A finished command.
    pub struct Out {
        pub code: i32,
        pub stdout: String,
        pub stderr: String,
    }

    /// Exit code, or 128 + signal.
    pub fn code_of(status: std::process::ExitStatus) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }

    /// Runs `cmd args...` with stdin from /dev/null and collects its output.
    pub fn run(cmd: &str, args: &[&str]) -> Out {
        match Command::new(cmd).args(args).stdin(Stdio::null()).output() {
            Ok(o) => Out {
                code: code_of(o.status),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => Out { code: -1, stdout: String::new(), stderr: format!("cannot run {cmd}: {e}") },
        }
    }

    /// The kernel log.
    pub fn dmesg() -> String {
        run("dmesg", &[]).stdout
    }

    /// Kernel log lines that mean something went wrong in the kernel.
    pub fn kernel_trouble(log: &str) -> Vec<String> {
        const BAD: [&str; 15] = [
            "BUG:",
            "WARNING:",
            "Oops",
            "general protection fault",
            "refcount_t:",
            "possible circular locking",
            "inconsistent lock state",
            "suspicious RCU usage",
            "detected stalls",
            "INFO: task",
            "UBSAN:",
            "list_add corruption",
            "list_del corruption",
            "kernel BUG",
            "possible recursive locking",
        ];
        log.lines().filter(|l| BAD.iter().any(|b| l.contains(b))).map(|l| l.to_string()).collect()
    }

    /// Runs the scenarios named on the command line (all by default; `--list`
    /// lists them), prints one line per scenario and the summary, reports
    /// kernel log trouble, and exits non-zero if one failed.
    pub fn run_scenarios(scenarios: &[Scenario]) -> ! {
        let wanted: Vec<String> = std::env::args().skip(1).collect();
        if wanted.iter().any(|w| w == "--list") {
            for (n, _) in scenarios {
                println!("{n}");
            }
            std::process::exit(0);
        }
        let (mut pass, mut fail) = (0, 0);
        for (name, f) in scenarios {
            if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
                continue;
            }
            let start = Instant::now();
            match std::panic::catch_unwind(f).unwrap_or_else(|_| Err("panicked".into())) {
                Ok(()) => {
                    pass += 1;
                    println!("SCENARIO {name} PASS ({:.1}s)", start.elapsed().as_secs_f64());
                }
                Err(why) => {
                    fail += 1;
                    println!("SCENARIO {name} FAIL: {}", why.replace('\n', " | "));
                }
            }
        }
        let trouble = kernel_trouble(&dmesg());
        if !trouble.is_empty() {
            println!("KERNEL-LOG-TROUBLE {}", trouble.join(" | "));
        }
        println!("SCENARIOS DONE pass={pass} fail={fail}");
        std::process::exit(if fail == 0 { 0 } else { 1 });
    }
}

pub mod host {
    use std::path::PathBuf;
    use std::process::Command;

    /// The repository root.
    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    /// One boot of the VM running a scenario runner.
    pub struct VmRun {
        pub log: String,
        pub status: Option<i32>,
        pub log_path: PathBuf,
    }

    /// Boots the VM with `qemu/run --timeout SECS --mem 1024 -- RUNNER` and
    /// keeps its output (also written to `target/RUNNER.log`).
    pub fn boot(runner: &str, timeout_secs: u32) -> VmRun {
        boot_with(runner, timeout_secs, &["--mem".to_string(), "1024".to_string()])
    }

    /// [`boot`] with other `qemu/run` options (e.g. `--rootfs full`).
    pub fn boot_with(runner: &str, timeout_secs: u32, qemu_args: &[String]) -> VmRun {
        let root = root();
        let out = Command::new(root.join("qemu/run"))
            .args(["--timeout", &timeout_secs.to_string()])
            .args(qemu_args)
            .args(["--", runner])
            .output()
            .expect("cannot start qemu/run");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let log_path = root.join(format!("target/{runner}.log"));
        let _ = std::fs::write(&log_path, &log);
        eprintln!("VM log: {}", log_path.display());
        VmRun { log, status: out.status.code(), log_path }
    }

    impl VmRun {
        /// Panics unless scenario `name` ran and passed.
        pub fn check(&self, name: &str) {
            let pass = format!("SCENARIO {name} PASS");
            let fail = format!("SCENARIO {name} FAIL");
            if self.log.lines().any(|l| l.starts_with(&pass)) {
                return;
            }
            let why = self.log.lines().find(|l| l.starts_with(&fail)).map(str::to_string).unwrap_or_else(|| {
                let tail: Vec<&str> = self.log.lines().rev().take(30).collect();
                format!(
                    "scenario did not run (qemu/run exit {:?}); last lines:\n{}",
                    self.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            });
            panic!("{why}\n(full VM log: {})", self.log_path.display());
        }

        /// Panics if a scenario ran that has no host test, if the runner did
        /// not finish, or if the kernel log showed trouble.
        pub fn check_complete(&self, names: &[&str]) {
            let ran: Vec<&str> =
                self.log.lines().filter_map(|l| l.strip_prefix("SCENARIO ")).filter_map(|l| l.split_whitespace().next()).collect();
            for n in &ran {
                assert!(names.contains(n), "VM scenario {n} has no host test");
            }
            for n in names {
                assert!(ran.contains(n), "VM scenario {n} did not run (log: {})", self.log_path.display());
            }
            assert!(self.log.contains("SCENARIOS DONE"), "the scenario runner did not finish (log: {})", self.log_path.display());
            let trouble: Vec<&str> = self.log.lines().filter(|l| l.starts_with("KERNEL-LOG-TROUBLE")).collect();
            assert!(trouble.is_empty(), "kernel log: {trouble:?}");
        }
    }

    /// One `#[test]` per VM scenario, all sharing one boot of `$runner`, plus
    /// `$complete`, which checks that every scenario that ran has a test and
    /// that the kernel log stayed clean.
    #[macro_export]
    macro_rules! vm_tests {
        (runner: $runner:literal, timeout: $timeout:literal, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?]) => {
            $crate::vm_tests!(runner: $runner, timeout: $timeout, qemu_args: vec!["--mem".to_string(), "1024".to_string()],
                              complete: $complete, scenarios: [$($name),*]);
        };
        (runner: $runner:literal, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?]) => {
            fn vm() -> &'static $crate::host::VmRun {
                static RUN: std::sync::OnceLock<$crate::host::VmRun> = std::sync::OnceLock::new();
                RUN.get_or_init(|| $crate::host::boot_with($runner, $timeout, &$args))
            }
            $(
                #[test]
                fn $name() {
                    vm().check(stringify!($name));
                }
            )*
            #[test]
            fn $complete() {
                vm().check_complete(&[$(stringify!($name)),*]);
            }
        };
    }
}
