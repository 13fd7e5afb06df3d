//! speaker-ctl's command line (clap derive); doc comments are the `--help` text.
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

use crate::container::state::check_id;
use crate::profile::schema::Phase;
use crate::profile::{CompileMode, CompileOptions};

/// The exit status convention (the tail of every `--help`).
pub const EXIT_STATUS: &str = "Exit status: 0 success; 1 the operation failed (an invalid input file, an unknown container, \
a trace whose service was never ready or whose workload failed, ...); 2 a command-line usage error. \
Standard output closed by its reader (e.g. `| head -1`) ends the command quietly, with 0.";

/// `--help`'s tail: the examples, then the exit status convention.
macro_rules! help_tail {
    ($examples:expr) => {
        concat!("Examples:\n", $examples, "\n\nExit status: 0 success; 1 the operation failed (an invalid input file, an unknown container, a trace whose service was never ready or whose workload failed, ...); 2 a command-line usage error. Standard output closed by its reader (e.g. `| head -1`) ends the command quietly, with 0.")
    };
    ($examples:expr, $status:expr) => {
        concat!("Examples:\n", $examples, "\n\nExit status: ", $status)
    };
}

/// A usage error found once the command line is parsed (options that
/// conflict through their values, such as two outputs naming one file):
/// exits 2 like clap's own, before any output.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A container id on the command line (checked as everywhere: `check_id`).
pub fn container_id(s: &str) -> Result<String, String> {
    check_id(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `run --name`: a container id that speaker.ko's ABI takes as it is
/// (at most 63 bytes of letters, digits, '-', '_', '.'), checked here as
/// when the container is registered (before, an id that passed the first
/// check failed after start-up, exit 1).
pub fn run_name(s: &str) -> Result<String, String> {
    container_id(s)?;
    crate::device::encode_cid(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// A duration on the command line: `10s`, `500ms`, `2m` (a bare number
/// is seconds).
pub fn duration(s: &str) -> Result<Duration, String> {
    crate::sys::duration::parse(s)
}

// Option values are checked by clap, so that a bad one is a usage error
// (exit 2, before anything runs) in every verb; those the library takes as
// text stay text.

/// A duration, kept as written (`trace`'s options).
pub fn duration_text(s: &str) -> Result<String, String> {
    duration(s).map(|_| s.to_string())
}

/// `--auto-window`: a duration of 10ms at least.
pub fn auto_window(s: &str) -> Result<String, String> {
    match duration(s)? {
        d if d < Duration::from_millis(10) => Err(format!("'{s}': the window must be at least 10ms")),
        _ => Ok(s.to_string()),
    }
}

/// `--auto-windows`: 1 at least.
pub fn auto_windows(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}': expected a number of windows, 1 or more")),
    }
}

/// `--ready`: a readiness condition.
pub fn readiness(s: &str) -> Result<String, String> {
    crate::profile::readiness::Readiness::parse(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `--reload-ready`: a readiness condition a reload can use.
pub fn reload_readiness(s: &str) -> Result<String, String> {
    crate::profile::readiness::Readiness::parse_for_runtime(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `--allow`/`--deny`: a syscall name libseccomp knows on this host.
pub fn syscall(s: &str) -> Result<String, String> {
    let arch = crate::profile::Arch::native();
    match arch.resolve(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!("unknown syscall '{s}' on {arch} (libseccomp cannot resolve it; check the spelling)")),
    }
}

/// `--cap-add`: a capability name (SYS_ADMIN, CAP_NET_ADMIN, ALL).
pub fn capability(s: &str) -> Result<String, String> {
    crate::container::confine::cap_bits(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `--volume`: HOST or HOST:CONTAINER, absolute paths (that they are
/// directories is checked when the container starts).
pub fn volume(s: &str) -> Result<String, String> {
    let (host, inside) = s.split_once(':').unwrap_or((s, s));
    if std::path::Path::new(host).is_absolute() && std::path::Path::new(inside).is_absolute() {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}': want an absolute path HOST or HOST:CONTAINER"))
    }
}

/// `trace --name`: what a profile's `name` may be.
pub fn profile_name(s: &str) -> Result<String, String> {
    crate::profile::validate::profile_name(s).map(|_| s.to_string())
}

/// A signal to deliver (`signal CID SIGNAL`): HUP, SIGHUP, 1, ...
pub fn signal(s: &str) -> Result<String, String> {
    crate::container::reload::parse_signal(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `--reload-signal`: a signal a service can handle as a reload (as a
/// profile's `reload.signals` takes it).
pub fn reload_signal(s: &str) -> Result<String, String> {
    crate::profile::validate::reload_signal(s).map(|_| s.to_string())
}

impl ValueEnum for Phase {
    fn value_variants<'a>() -> &'a [Self] {
        &Phase::ALL
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for CompileMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[CompileMode::Strict, CompileMode::Balanced]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            CompileMode::Strict => "strict",
            CompileMode::Balanced => "balanced",
        }))
    }
}

/// `trace --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceMode {
    /// A stop at every syscall (like strace).
    Ptrace,
    /// seccomp traps each new syscall once per phase (needs speaker.ko and root).
    Filter,
    /// filter when speaker.ko can be used, else ptrace.
    Auto,
}

impl TraceMode {
    pub fn name(self) -> &'static str {
        match self {
            TraceMode::Ptrace => "ptrace",
            TraceMode::Filter => "filter",
            TraceMode::Auto => "auto",
        }
    }
}

/// `profile export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The Docker/OCI seccomp JSON.
    Oci,
}

/// `profile export --arch`: a node architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeArch {
    /// x86_64 nodes (and their i386/x32 tasks).
    #[value(name = "x86_64", alias = "amd64")]
    X86_64,
    /// arm64 nodes (and their 32-bit ARM tasks).
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
}

impl NodeArch {
    pub fn arch(self) -> crate::profile::Arch {
        match self {
            NodeArch::X86_64 => crate::profile::Arch::X86_64,
            NodeArch::Aarch64 => crate::profile::Arch::Aarch64,
        }
    }
}

/// speaker: split-phase seccomp for containers.
///
/// Traces a service's syscalls per phase (boot, running, shutdown), compiles
/// the per-phase profiles to seccomp filters, runs containers under their
/// boot filter and switches live containers to their next phase through
/// speaker.ko (/dev/speaker).
///
/// Under the name speaker-runtime (a link to this binary), or as
/// `speaker-ctl runtime ARGS...`, it is an OCI runtime wrapping crun: bundles
/// annotated with io.speaker.profile get speaker's phases, everything else
/// is passed to crun unchanged.
#[derive(Debug, Parser)]
#[command(
    name = "speaker-ctl",
    version,
    propagate_version = true,
    after_help = help_tail!(
        "  speaker-ctl trace --ready port:8080 --workload 'ab -n 1000 http://127.0.0.1:8080/' -o web.json -- /usr/sbin/web\n  \
         speaker-ctl profile validate web.json\n  \
         speaker-ctl run --name web --profile web.json --detach -- /usr/sbin/web\n  \
         speaker-ctl status web\n  \
         speaker-ctl denials web\n  \
         speaker-ctl completions bash > /etc/bash_completion.d/speaker-ctl",
        "0 success; 1 the operation failed (an invalid input file, an unknown container, a trace whose service was never ready or whose workload failed, ...); 2 a command-line usage error. Standard output closed by its reader (e.g. `| head -1`) ends the command quietly, with 0. Exceptions: `run` in the foreground exits with the container's status; `profile diff` exits like diff(1): 0 same, 1 different, 2 trouble."
    )
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print speaker-ctl's version and the loaded speaker.ko's ABI and module versions ("speaker.ko: not loaded" without it).
    #[command(after_help = help_tail!("  speaker-ctl version"))]
    Version,
    /// Run a command, trace every syscall of every process and thread it creates, and write a multi-phase profile.
    #[command(after_help = help_tail!(
        "  speaker-ctl trace --ready port:80 --workload 'ab -q -n 500 http://127.0.0.1/' --running-for 5s -o nginx.json -- nginx -g 'daemon off;'\n  \
         speaker-ctl trace --ready 'log:Ready to accept' --reload-signal HUP --shutdown-timeout 30s -o svc.json -- ./svc\n  \
         speaker-ctl trace --one-shot -o job.json -- ./batch-job --input data",
        "0 the service was ready, ran and was shut down (whatever status it exited with after speaker-ctl's SIGTERM), and the workload (if any) exited 0; with --one-shot: the command exited 0. 1 the trace failed: the service exited (or was stopped) before it was ready, exited on its own before speaker-ctl stopped it, its workload failed, --shutdown-timeout killed it, or a bad input (the profile is still written if anything was traced). 2 a command-line usage error."
    ))]
    Trace(TraceArgs),
    /// Inspect, validate, convert, merge and compare profiles.
    #[command(
        subcommand,
        after_help = help_tail!(
            "  speaker-ctl profile validate web.json\n  \
             speaker-ctl profile show web.json\n  \
             speaker-ctl profile diff web-old.json web.json\n  \
             speaker-ctl profile export --phase running web.json > web-running.json",
            "each command's own (see its --help); 2 a command-line usage error."
        )
    )]
    Profile(ProfileCommand),
    /// Start a command as a container under its boot-phase filter and register it with speaker.ko.
    #[command(after_help = help_tail!(
        "  speaker-ctl run --name web --profile web.json --detach -- /usr/sbin/web\n  \
         speaker-ctl run --name web --profile web.json --complain --compile strict -- /usr/sbin/web\n  \
         speaker-ctl run --name t --boot boot-oci.json --running running-oci.json -- ./svc",
        "with --detach: 0 once the container is started, 1 if it could not be; in the foreground: the container's exit status (1 if speaker could not start it); 2 a command-line usage error."
    ))]
    Run(RunArgs),
    /// Switch a running container to its next phase's seccomp filter.
    #[command(after_help = help_tail!(
        "  speaker-ctl switch web                  # boot -> running\n  \
         speaker-ctl switch web --to shutdown\n  \
         speaker-ctl switch web --enforce        # complain -> enforce, same phase\n  \
         speaker-ctl switch web --profile learned.json"
    ))]
    Switch(SwitchArgs),
    /// Switch a container to its shutdown phase (if any), then SIGTERM it, then SIGKILL after a timeout.
    #[command(after_help = help_tail!("  speaker-ctl stop web\n  speaker-ctl stop web --timeout 30s"))]
    Stop(StopArgs),
    /// Send a signal to a container: a reload signal of its profile (reload.signals, e.g. HUP) switches it to its reload filter, delivers the signal, waits for the reload's readiness and switches back to running; TERM/INT switch to shutdown first; others are just delivered.
    #[command(after_help = help_tail!(
        "  speaker-ctl signal web HUP              # reload through the reload phase\n  \
         speaker-ctl signal web USR1\n  \
         speaker-ctl signal web HUP --timeout 5m",
        "0 the signal was delivered (and a reload was ready in time); 1 it could not be, or the reload was not ready within --timeout (the container stays in its reload phase); 2 a command-line usage error."
    ))]
    Signal(SignalArgs),
    /// Show speaker's containers (speaker.ko's and the notify engine's): phase, engine, tasks, allowed syscalls, last switch.
    #[command(after_help = help_tail!("  speaker-ctl status\n  speaker-ctl status web --json"))]
    Status(StatusArgs),
    /// List the syscalls containers' filters did not allow (or, in complain mode, logged), per container and phase, from the kernel's audit records (type=1326).
    #[command(after_help = help_tail!(
        "  speaker-ctl denials\n  \
         speaker-ctl denials web --follow --json\n  \
         speaker-ctl denials web --from-log /var/log/audit/audit.log"
    ))]
    Denials(DenialsArgs),
    /// Print a shell completion script for speaker-ctl (generated from its command line).
    #[command(after_help = help_tail!(
        "  speaker-ctl completions bash > /etc/bash_completion.d/speaker-ctl\n  \
         speaker-ctl completions zsh > \"${fpath[1]}/_speaker-ctl\"\n  \
         speaker-ctl completions fish > ~/.config/fish/completions/speaker-ctl.fish"
    ))]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages for speaker-ctl and each of its commands (speaker-ctl.1, speaker-ctl-trace.1, ...) into DIR.
    #[command(after_help = help_tail!("  speaker-ctl manpage /usr/local/share/man/man1 && mandb -q"))]
    Manpage {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Measure what speaker costs, side by side in one run: filter cost per syscall, switch latency (vs restarting the container), requests while switching, service throughput, tracing cost, memory (run inside the full guest by scripts/bench).
    #[command(after_help = help_tail!("  speaker-ctl bench --smoke --out /srv/bench\n  speaker-ctl bench --suites filter --clock icount"))]
    Bench(BenchArgs),
    /// Rewrite results.md and the plots of a bench run from its results.json (in DIR).
    #[command(after_help = help_tail!("  speaker-ctl bench-report target/bench"))]
    BenchReport { dir: PathBuf },
    /// Join the results.json of several boots of one bench run (scripts/bench: the icount boot's and the wall-clock boot's) into OUT's results.json, results.md and plots.
    #[command(after_help = help_tail!("  speaker-ctl bench-merge --out target/bench target/bench/icount/results.json target/bench/wall/results.json"))]
    BenchMerge {
        /// Where the merged results go.
        #[arg(long)]
        out: PathBuf,
        /// The boots' results.json files.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
    },
    /// Print the ratios of several bench runs (their results.json) side by side with their spread across the runs.
    #[command(after_help = help_tail!("  speaker-ctl bench-compare run1/results.json run2/results.json"))]
    BenchCompare {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
    /// (internal) The payload of `bench` containers: idle threads in idle processes.
    #[command(hide = true)]
    BenchPayload {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 1)]
        processes: usize,
    },
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// When boot ends: port:TCP_PORT (a socket listening), cmd:'SHELL CMD' (exits 0), log:REGEX (a line on stdout/stderr) or auto (no new syscall for a while).
    #[arg(long, value_name = "SPEC", value_parser = readiness)]
    pub ready: Option<String>,
    /// Shell command run (outside the traced tree) once boot has ended, so the running phase sees real requests; the trace fails (exit 1) if it fails.
    #[arg(long, value_name = "CMD")]
    pub workload: Option<String>,
    /// Send SIGTERM (ending the running phase) this long after boot ended, e.g. 5s, 500ms, 2m.
    #[arg(long, value_name = "DURATION", value_parser = duration_text)]
    pub running_for: Option<String>,
    /// After SIGTERM, wait this long for the service's tasks to exit, then SIGKILL them (the trace then fails: its shutdown phase may be incomplete). Default: wait as long as they take.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub shutdown_timeout: Option<Duration>,
    /// CMD is a command that runs to its end, not a service: its whole run is its boot phase, and the trace succeeds if it exits 0.
    #[arg(long, conflicts_with_all = ["ready", "workload", "running_for", "reload_signal"])]
    pub one_shot: bool,
    /// Send SIGTERM this long after the start, whatever the phase.
    #[arg(long, value_name = "DURATION", value_parser = duration_text)]
    pub stop_after: Option<String>,
    /// Window of the `--ready auto` heuristic.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = auto_window)]
    pub auto_window: String,
    /// Number of consecutive windows without a new syscall that end boot under `--ready auto`.
    #[arg(long, value_name = "N", default_value = "4", value_parser = auto_windows)]
    pub auto_windows: u32,
    /// Tracing mode: ptrace (a stop at every syscall), filter (seccomp traps each new syscall once per phase; needs speaker.ko and root) or auto (filter when speaker.ko can be used, else ptrace). The mode used is printed on stderr.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = TraceMode::Auto)]
    pub mode: TraceMode,
    /// After the running phase (workload, --running-for), send this signal (HUP, SIGUSR2, 1) to the service and trace what it does until --reload-ready as its reload phase, then shut it down; the profile gets `reload` (speaker switches a container to its reload filter for this signal).
    #[arg(long, value_name = "SIGNAL", value_parser = reload_signal)]
    pub reload_signal: Option<String>,
    /// When the reload is over: auto (default: no new syscall for --auto-windows windows), cmd:'SHELL CMD' or port:N (holds at once: the service keeps listening).
    #[arg(long, value_name = "SPEC", requires = "reload_signal", value_parser = reload_readiness)]
    pub reload_ready: Option<String>,
    /// Name recorded in the profile (one printable line).
    #[arg(long, value_parser = profile_name)]
    pub name: Option<String>,
    /// Where to write the profile (a regular file is rewritten atomically as the trace goes; a device, FIFO or - (standard output) gets it once, at the end).
    #[arg(short = 'o', long = "output", value_name = "PROFILE")]
    pub output: PathBuf,
    /// The command to trace.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Check profile files as every consumer (run, speaker-runtime, merge) reads them: one line per problem, FILE: LOCATION: problem.
    #[command(after_help = help_tail!(
        "  speaker-ctl profile validate web.json\n  \
         speaker-ctl profile validate examples/profiles/*.json",
        "0 every file is a valid speaker profile; 1 a file has a problem (each listed); 2 a command-line usage error."
    ))]
    Validate {
        /// The profiles.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Write one phase of a profile as Docker/OCI seccomp JSON, compiled as a container gets it (compile mode, margin, allow/deny; boot and shutdown also allow running); a profile of x86_64 and arm64 traces gives one file for both (archMap, includes.arches).
    #[command(after_help = help_tail!(
        "  speaker-ctl profile export --phase running web.json > web-running.json\n  \
         speaker-ctl profile export --phase boot --compile strict --no-margin -o web-boot.json web.json\n  \
         speaker-ctl profile export --phase running --arch aarch64 -o web-running-arm64.json web.json"
    ))]
    Export {
        /// The phase to export.
        #[arg(long, value_enum)]
        phase: Phase,
        /// Output format (oci: the Docker/OCI seccomp JSON).
        #[arg(long, value_enum, default_value_t = ExportFormat::Oci)]
        format: ExportFormat,
        /// Output file (default, or -: standard output; a regular file is replaced atomically, a device or FIFO written in place).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Leave out the safety margin (with --compile strict: exactly what was traced, the switch widening aside).
        #[arg(long)]
        no_margin: bool,
        /// Only this node architecture's half of a profile of several (a file without archMap and includes: for containerd, whose localhost profiles ignore both).
        #[arg(long, value_enum)]
        arch: Option<NodeArch>,
        #[command(flatten)]
        compile: CompileArgs,
        /// The speaker profile.
        profile: PathBuf,
    },
    /// Merge several recordings: per-phase union (entries de-duplicated; a warning when they name different services).
    #[command(after_help = help_tail!("  speaker-ctl profile merge -o nginx.json nginx-bench.json nginx-errors.json nginx-admin.json"))]
    Merge {
        /// Output file (- for standard output).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Profiles to merge.
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
    },
    /// Show per-phase differences between two profiles.
    #[command(after_help = help_tail!(
        "  speaker-ctl profile diff old.json new.json",
        "like diff(1): 0 the same, 1 different, 2 trouble (a file cannot be read or is invalid, or a usage error)."
    ))]
    Diff { a: PathBuf, b: PathBuf },
    /// Compare services' per-phase syscall counts with a baseline OCI profile (Docker's default): a table, optionally also as JSON and Markdown.
    #[command(after_help = help_tail!("  speaker-ctl profile table --baseline docker-default.json --markdown table.md examples/profiles/*.json"))]
    Table {
        /// The baseline, e.g. Docker's default seccomp profile (x86_64 unconditional allows are counted).
        #[arg(long)]
        baseline: PathBuf,
        /// Also write the table as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write the table as Markdown here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// speaker profiles, one per service (the service is the profile's name, else the file name).
        #[arg(required = true, num_args = 1..)]
        profiles: Vec<PathBuf>,
    },
    /// Add what a container was logged doing (complain mode, denials) to the right phase of its profile; shows the diff, then writes.
    #[command(after_help = help_tail!(
        "  speaker-ctl profile learn web -o web-learned.json\n  \
         speaker-ctl profile learn web -o web.json --profile web.json --from-log /var/log/audit/audit.log --phase running"
    ))]
    Learn {
        /// The container.
        #[arg(value_parser = container_id)]
        cid: String,
        /// Where to write the learned profile.
        #[arg(short = 'o', long = "output", value_name = "PROFILE")]
        output: PathBuf,
        /// The profile to start from (default: the one the container was started with by speaker-runtime).
        #[arg(long, value_name = "PROFILE")]
        profile: Option<PathBuf>,
        /// Read a saved kernel log (dmesg, journalctl -k) or auditd log instead of /dev/kmsg.
        #[arg(long, value_name = "FILE")]
        from_log: Option<PathBuf>,
        /// Put every record into this phase (needed when the container's state is gone).
        #[arg(long, value_enum)]
        phase: Option<Phase>,
    },
    /// Show a profile as a table (phase, count, names).
    #[command(after_help = help_tail!("  speaker-ctl profile show web.json\n  speaker-ctl profile show web.json --phase running | head -5"))]
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this phase's syscalls, one name per line (for scripts).
        #[arg(long, value_enum, conflicts_with = "json")]
        phase: Option<Phase>,
        /// The baseline the critical syscalls removed are counted against (default: Docker's default profile, built in).
        #[arg(long, value_name = "OCI_PROFILE")]
        baseline: Option<PathBuf>,
        profile: PathBuf,
    },
}

/// How a speaker profile's phases are compiled (over what the profile says).
#[derive(Debug, Clone, Default, Args)]
pub struct CompileArgs {
    /// strict (what was traced, and the margin) or balanced (also the low-risk members of the syscall families each phase used and the low-risk syscalls boot used); default: the profile's `compile`, else balanced.
    #[arg(long = "compile", value_name = "MODE", value_enum)]
    pub mode: Option<CompileMode>,
    /// Allow this syscall in every phase, unconditionally (e.g. mprotect for a JIT; repeatable, or comma-separated).
    #[arg(long, value_name = "SYSCALL", value_delimiter = ',', value_parser = syscall)]
    pub allow: Vec<String>,
    /// Deny this syscall in every phase, even if traced (repeatable, or comma-separated).
    #[arg(long, value_name = "SYSCALL", value_delimiter = ',', value_parser = syscall)]
    pub deny: Vec<String>,
}

impl CompileArgs {
    /// The options for `profile::phase_sets`; `no_margin`: `--no-margin`.
    pub fn options(&self, no_margin: bool) -> CompileOptions {
        CompileOptions { mode: self.mode, margin: no_margin.then_some(false), allow: self.allow.clone(), deny: self.deny.clone() }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The container's id (letters, digits, '-', '_', '.'; at most 63 bytes).
    #[arg(long, value_parser = run_name)]
    pub name: String,
    /// A speaker multi-phase profile.
    #[arg(long, conflicts_with_all = ["boot", "running", "shutdown"], required_unless_present = "boot")]
    pub profile: Option<PathBuf>,
    /// Boot-phase profile (OCI seccomp JSON or speaker profile).
    #[arg(long, requires = "running")]
    pub boot: Option<PathBuf>,
    /// Running-phase profile.
    #[arg(long, requires = "boot")]
    pub running: Option<PathBuf>,
    /// Shutdown-phase profile.
    #[arg(long, requires = "boot")]
    pub shutdown: Option<PathBuf>,
    /// Give the container its own network namespace (only loopback).
    #[arg(long)]
    pub net: bool,
    /// Return once the container is started instead of waiting for it to exit; its output goes to /run/speaker/CID/output.log.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Compile without the safety margin (clocks, sleeping, yielding, rt_sigreturn, brk, munmap, exiting; see README "A safety margin").
    #[arg(long)]
    pub no_margin: bool,
    #[command(flatten)]
    pub compile: CompileArgs,
    /// Start in complain mode: syscalls outside a phase are allowed and logged (audit type=1326) instead of denied; 'speaker-ctl switch CID --enforce' later.
    #[arg(long)]
    pub complain: bool,
    /// Keep this capability too (e.g. SYS_ADMIN, NET_ADMIN, or ALL; repeatable). The container gets Docker's default set otherwise.
    #[arg(long = "cap-add", value_name = "CAP", value_parser = capability)]
    pub cap_add: Vec<String>,
    /// Do not set no_new_privs (setuid binaries in the container may then raise privileges).
    #[arg(long)]
    pub allow_new_privs: bool,
    /// Let the container write this host directory (HOST, or HOST:CONTAINER to see it elsewhere; repeatable). Every other host file is read-only inside, and volumes are nodev and nosuid.
    #[arg(long = "volume", short = 'v', value_name = "HOST[:CONTAINER]", value_parser = volume)]
    pub volumes: Vec<String>,
    /// Who enforces the phases: kmod (speaker.ko swaps the filter's program), notify (seccomp user notification and a supervisor: any kernel ≥ 5.10, see `speaker-ctl status` for its limits), or auto (kmod when /dev/speaker works, else notify).
    #[arg(long, value_name = "ENGINE", default_value = "auto", value_parser = ["auto", "kmod", "notify"])]
    pub engine: String,
    /// Command run inside the container.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// The container's id.
    #[arg(value_parser = container_id)]
    pub cid: String,
    /// Target phase (default: the next one; with --complain or --enforce alone, the current one).
    #[arg(long, value_enum)]
    pub to: Option<Phase>,
    /// Complain mode: the phase's own set is allowed, everything else allowed and logged (audit type=1326).
    #[arg(long, conflicts_with = "enforce")]
    pub complain: bool,
    /// Enforce mode: everything outside the phase's set is denied (the profile's default action).
    #[arg(long)]
    pub enforce: bool,
    /// Compile the container's phases again from this profile first (e.g. the output of 'speaker-ctl profile learn'), then switch: the live container gets the new filter without a restart.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<std::path::PathBuf>,
    /// Return right after the swap instead of after the kernel's grace period (a system call already inside seccomp may still be decided by the old filter): for switching many containers at once.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The container's id.
    #[arg(value_parser = container_id)]
    pub cid: String,
    /// How long to wait after SIGTERM before SIGKILL (10s, 500ms, 2m; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10s")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The container's id.
    #[arg(value_parser = container_id)]
    pub cid: String,
    /// The signal: HUP, SIGHUP, 1, ...
    #[arg(value_parser = signal)]
    pub signal: String,
    /// How long to wait for a reload's readiness condition (the container stays in its reload phase after that; 2m, 90s; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "2m")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this container (an error if speaker.ko does not know it).
    #[arg(value_parser = container_id)]
    pub cid: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DenialsArgs {
    /// Only this container (else every container, and records no container can be found for, as unattributed); an error if speaker has no state for it.
    #[arg(value_parser = container_id)]
    pub cid: Option<String>,
    /// Keep reading the kernel log and print records as they arrive (they are also kept in the container's state, so they stay attributed after the process exits).
    #[arg(long, conflicts_with = "from_log")]
    pub follow: bool,
    /// Print JSON (with --follow: one object per line).
    #[arg(long)]
    pub json: bool,
    /// Read a saved kernel log (dmesg, journalctl -k) or auditd log instead of /dev/kmsg.
    #[arg(long, value_name = "FILE")]
    pub from_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where results.json, results.md and the plots (SVG) are written.
    #[arg(long, default_value = "/srv/bench")]
    pub out: PathBuf,
    /// Measurements per figure (median and min–max are reported).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// A short run: 3 runs, few iterations, every figure still present (unless given explicitly).
    #[arg(long)]
    pub smoke: bool,
    /// The guest's clock: icount (scripts/bench boots with `qemu/run --icount`: guest time counts instructions) or wall.
    #[arg(long, default_value = "wall", value_parser = ["wall", "icount"])]
    pub clock: String,
    /// Suites to run: filter, switch, service, throughput, tracing, memory.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "filter,switch,service,throughput,tracing,memory",
        value_parser = ["filter", "switch", "service", "throughput", "tracing", "memory"]
    )]
    pub suites: Vec<String>,
    /// Thread counts of the switch-latency benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    pub threads: Vec<usize>,
    /// Process counts of the switch-latency benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub processes: Vec<usize>,
    /// Syscalls per filter-cost measurement.
    #[arg(long, default_value_t = 20000)]
    pub syscalls: u64,
    /// Requests per throughput measurement (ab; redis-benchmark gets four times as many, of GET and of SET; a fifth under the tracers). Under -icount nginx serves ~4000 requests per guest second, redis ~15000.
    #[arg(long, default_value_t = 2000)]
    pub requests: u64,
    /// Switches while clients hammer nginx and redis.
    #[arg(long, default_value_t = 100)]
    pub switches: usize,
    /// How long requests run without switching (the no-loss baseline): 10s, 500ms, 2m (the one duration syntax).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10s")]
    pub baseline_for: Duration,
    /// Directory of the OCI bundles nginx-{none,docker,speaker} and redis-{none,docker,speaker}.
    #[arg(long, default_value = "/srv/containers")]
    pub bundles: PathBuf,
    /// Docker's default seccomp profile.
    #[arg(long, default_value = "/mnt/share/docker-default-seccomp.json")]
    pub docker_profile: PathBuf,
    /// nginx's speaker profile (its running set makes the filter-cost suite's running filter).
    #[arg(long, default_value = "/mnt/share/profiles/nginx.json")]
    pub nginx_profile: PathBuf,
}
