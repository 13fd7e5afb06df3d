//! The filters of an annotated bundle: what crun installs, what the
//! switches install, and what processes `exec`'ed into the container get.
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::bundle::{Bundle, ANNOTATION_ALLOW, ANNOTATION_COMPILE, ANNOTATION_DENY, ANNOTATION_MODE, ANNOTATION_PROFILE, ANNOTATION_READY};
use crate::container::phases::{add_to_phase, compile_one, CompiledPhase};
use crate::container::ready::Readiness;
use crate::profile::schema::{Phase, Profile, SyscallEntry};
use crate::profile::{self, Arch, CompileMode, CompileOptions, Mode, OciProfile, PhaseFilter};

/// seccomp's flag that makes the kernel report every denial of the
/// filter (audit `type=1326`), whatever its action: crun passes OCI
/// `linux.seccomp.flags` to seccomp(2).
pub const FLAG_LOG: &str = "SECCOMP_FILTER_FLAG_LOG";

/// What the OCI runtime itself may do under the boot filter, between
/// installing it in the container's first process and exec'ing the
/// container's command (crun: capabilities, ids, closing inherited file
/// descriptors, the exec fifo that `start` opens, the exec itself).  They
/// are added to the boot filter only: a traced service never shows them,
/// since the tracer starts the service directly.
pub const RUNTIME_PROLOGUE: &[&str] = &[
    "capget",
    "capset",
    "prctl",
    "setgroups",
    "setresuid",
    "setresgid",
    "setuid",
    "setgid",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "close",
    "close_range",
    "fcntl",
    "openat",
    "open",
    "read",
    "write",
    "fstat",
    "newfstatat",
    "lseek",
    "getdents64",
    "rt_sigprocmask",
    "rt_sigaction",
    "execve",
    "execveat",
    "exit_group",
    "exit",
    "getpid",
    "brk",
    "mmap",
    "munmap",
    "futex",
    "readlink",
    "readlinkat",
    "chdir",
    "fchdir",
    "umask",
    "sched_getaffinity",
    "getcwd",
    "pselect6",
    "select",
    "poll",
    "ppoll",
    "recvmsg",
    "recvfrom",
    "sendmsg",
    "sendto",
];

/// What crun does under the notify engine's filter besides
/// [`RUNTIME_PROLOGUE`]: it waits for, and at last kills, the helper process
/// that hands the seccomp listener over (`linux.seccomp.listenerPath`).
/// Added to the boot phase of the notify engine's table only.
pub const NOTIFY_PROLOGUE: &[&str] = &["wait4", "kill"];

/// What any program needs to start (dynamic loader, libc and Rust std
/// start-up: TLS, memory, signal set-up, standard stream checks).  Added to
/// the filter that processes started by `exec` get (with
/// [`RUNTIME_PROLOGUE`]): a service's running phase rarely contains them,
/// and without them nothing exec'ed into a running container could start.
/// The container's own tasks never get them from speaker.
pub const PROGRAM_STARTUP: &[&str] = &[
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "brk",
    "mmap",
    "mprotect",
    "munmap",
    "openat",
    "read",
    "pread64",
    "write",
    "writev",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "lseek",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "getrandom",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "poll",
    "ppoll",
    "ioctl",
    "fcntl",
    "getpid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "futex",
    "madvise",
    "sched_getaffinity",
    "exit",
    "exit_group",
    "execve",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
];

/// The filters of an annotated bundle.
pub struct BundleFilters {
    pub profile_path: PathBuf,
    pub profile: Profile,
    /// Compiled per phase (the boot entry is what crun installs, compiled
    /// by speaker only for its count).
    pub phases: Vec<CompiledPhase>,
    /// The same per phase as OCI seccomp JSON (boot: what crun installs in
    /// the container's first process).
    pub oci: Vec<(Phase, OciProfile)>,
    /// Per phase, the OCI seccomp JSON for processes started by `exec`
    /// during that phase (the phase ∪ [`RUNTIME_PROLOGUE`] ∪
    /// [`PROGRAM_STARTUP`]).
    pub exec_oci: Vec<(Phase, OciProfile)>,
    /// The same compiled (crun keeps the compiled boot filter as
    /// `seccomp.bpf` in its state directory and `exec` loads that file).
    pub exec_progs: Vec<(Phase, Vec<profile::SockFilter>)>,
    /// Per phase, the filter the container's tasks get (before
    /// compilation): the notify engine's table is made from these.
    pub filters: Vec<(Phase, PhaseFilter)>,
    /// The readiness condition (annotation, else profile), if any.
    pub ready: Option<String>,
    /// The mode the container starts in (annotation `io.speaker.mode`).
    pub mode: Mode,
    /// How the phases were compiled (annotation `io.speaker.compile`, else
    /// the profile's `compile`, else balanced).
    pub compile: CompileMode,
}

/// Loads the profile and makes every phase's filter from
/// `profile::phase_sets` (as `speaker-ctl run` does: compile mode, margin,
/// allow/deny, boot and shutdown also allow the running set); the boot filter
/// crun installs also allows [`RUNTIME_PROLOGUE`].
impl BundleFilters {
    pub fn compile(bundle: &Bundle, path: &Path) -> Result<BundleFilters> {
        if !path.exists() {
            bail!(
            "the speaker profile {} named by annotation {ANNOTATION_PROFILE} does not exist; trace the service with 'speaker-ctl trace' or fix the annotation in {}",
            path.display(),
            bundle.config_path.display()
        );
        }
        // The architecture first: a profile traced elsewhere gets a message
        // saying so, not one about unknown names.
        let native = Arch::native();
        let raw: Option<Value> = profile::validate::read_limited(path).ok().and_then(|t| serde_json::from_str(&t).ok());
        if let Some(archs) = raw.as_ref().and_then(|v| v.get("architectures")).and_then(Value::as_array) {
            let archs: Vec<&str> = archs.iter().filter_map(Value::as_str).collect();
            if !archs.is_empty() && !archs.contains(&native.scmp_name()) {
                bail!(
                    "the speaker profile {} is for {} but this machine runs {} ({}); trace the service on this architecture",
                    path.display(),
                    archs.join(", "),
                    native.name(),
                    native.scmp_name()
                );
            }
        }
        let profile = profile::load_profile(path).with_context(|| format!("cannot load the speaker profile {}", path.display()))?;
        let mode = match bundle.annotation(ANNOTATION_MODE) {
            None => Mode::Enforce,
            Some(m) => {
                m.parse::<Mode>().map_err(|e| anyhow::anyhow!("annotation {ANNOTATION_MODE} of {}: {e}", bundle.config_path.display()))?
            }
        };
        if profile.phase(Phase::Boot).is_none() {
            bail!("the speaker profile {} has no boot phase", path.display());
        }
        let named = |names: &[&str]| -> Vec<SyscallEntry> {
            names
                .iter()
                .filter(|n| native.resolve(n).is_some())
                .map(|n| SyscallEntry { name: n.to_string(), arch: native.name().to_string(), nr: None, count: None, first_seen_ms: None })
                .collect()
        };
        // What the container's tasks get: boot ∪ running, shutdown ∪
        // running and reload ∪ boot ∪ running (see
        // `crate::container::phases::widen_for_switches`), the running set as
        // traced; the first process's boot filter also lets crun finish
        // (prologue; start-up, which any boot phase already has).
        let opts = compile_options(bundle)?;
        let sets = profile::phase_sets(&profile, &opts, path)?;
        let own = sets.profile.clone();
        let (prologue, startup) = (named(RUNTIME_PROLOGUE), named(PROGRAM_STARTUP));
        let mut first = own.clone();
        add_to_phase(&mut first, Phase::Boot, &prologue);
        add_to_phase(&mut first, Phase::Boot, &startup);
        // Processes exec'ed later: the phase ∪ prologue ∪ start-up.
        let mut exec = own.clone();
        for phase in [Phase::Running, Phase::Reload, Phase::Shutdown] {
            add_to_phase(&mut exec, phase, &prologue);
            add_to_phase(&mut exec, phase, &startup);
        }
        let mut phases = Vec::new();
        let mut oci = Vec::new();
        let mut exec_oci = Vec::new();
        let mut exec_progs = Vec::new();
        let mut filters = Vec::new();
        for phase in Phase::ALL {
            let src = if phase == Phase::Boot { &first } else { &own };
            if src.phase(phase).is_none() {
                continue;
            }
            let filter = sets.filter_of(src, phase, path)?;
            phases.push(compile_one(phase, &filter, path)?);
            filters.push((phase, filter));
            let (mut o, _dropped) = sets.oci_of(src, phase, path)?;
            o.flags.push(FLAG_LOG.to_string());
            if mode == Mode::Complain {
                o.default_action = "SCMP_ACT_LOG".to_string();
                o.default_errno_ret = None;
            }
            oci.push((phase, o));
            let exec_src = if phase == Phase::Boot { &first } else { &exec };
            let (mut o, _dropped) = sets.oci_of(exec_src, phase, path)?;
            o.flags.push(FLAG_LOG.to_string());
            exec_oci.push((phase, o));
            let f = sets.filter_of(exec_src, phase, path)?;
            exec_progs.push((phase, profile::compile(&f).with_context(|| format!("cannot compile the exec filter of the {phase} phase"))?));
        }
        let allow_cmd = std::env::var(ANNOTATION_CMD_ENV).is_ok_and(|v| v == "allow");
        let ready = readiness(bundle, profile.ready.as_deref(), path, allow_cmd)?;
        Ok(BundleFilters {
            profile_path: path.to_path_buf(),
            profile,
            phases,
            oci,
            exec_oci,
            exec_progs,
            filters,
            ready,
            mode,
            compile: sets.mode,
        })
    }
}

/// The environment variable with which an operator lets the
/// `io.speaker.ready` annotation name a `cmd:` condition (value `allow`).
pub const ANNOTATION_CMD_ENV: &str = "SPEAKER_ANNOTATION_CMD";

/// The container's readiness condition: the annotation's, else the
/// profile's (`path`).  A `cmd:` condition runs as root on the host (the
/// monitor's `/bin/sh -c`), so it is taken from the profile, a host file an
/// operator installed, but from the annotation, which whoever creates the
/// container sets (under Kubernetes: every pod author), only if the
/// operator allowed it (`allow_cmd`, [`ANNOTATION_CMD_ENV`]).
pub fn readiness(bundle: &Bundle, profile_ready: Option<&str>, path: &Path, allow_cmd: bool) -> Result<Option<String>> {
    if let Some(r) = bundle.annotation(ANNOTATION_READY) {
        let parsed = Readiness::parse_for_runtime(&r)
            .with_context(|| format!("annotation {ANNOTATION_READY} of {}", bundle.config_path.display()))?;
        if matches!(parsed, Readiness::Cmd(_)) && !allow_cmd {
            bail!(
                "annotation {ANNOTATION_READY} of {}: a cmd: condition would run as root on the host; put it in the profile's \"ready\" \
                 (a host file), use port: or auto, or run speaker-runtime with {ANNOTATION_CMD_ENV}=allow",
                bundle.config_path.display()
            );
        }
        return Ok(Some(r));
    }
    if let Some(r) = profile_ready {
        Readiness::parse_for_runtime(r).with_context(|| format!("readiness condition of {}", path.display()))?;
    }
    Ok(profile_ready.map(str::to_string))
}

/// The annotations' say over how the profile is compiled:
/// `io.speaker.compile` (strict or balanced), `io.speaker.allow` and
/// `io.speaker.deny` (comma-separated syscall names), as `speaker-ctl run
/// --compile/--allow/--deny`.
pub fn compile_options(bundle: &Bundle) -> Result<CompileOptions> {
    let mode = match bundle.annotation(ANNOTATION_COMPILE) {
        None => None,
        Some(m) => Some(
            m.parse::<CompileMode>()
                .map_err(|e| anyhow::anyhow!("annotation {ANNOTATION_COMPILE} of {}: {e}", bundle.config_path.display()))?,
        ),
    };
    // Each name checked here, so that the message names the annotation
    // (as `--allow` names the option).
    let list = |key: &str| -> Result<Vec<String>> {
        let names: Vec<String> = bundle
            .annotation(key)
            .map(|v| v.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let arch = crate::profile::Arch::native();
        if let Some(bad) = names.iter().find(|n| arch.resolve(n).is_none()) {
            anyhow::bail!(
                "annotation {key} of {}: unknown syscall '{bad}' on {arch} (libseccomp cannot resolve it; check the spelling)",
                bundle.config_path.display()
            );
        }
        Ok(names)
    };
    Ok(CompileOptions { mode, margin: None, allow: list(ANNOTATION_ALLOW)?, deny: list(ANNOTATION_DENY)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bundle::tests::{setup, PROFILE};

    fn names(o: &OciProfile) -> Vec<String> {
        o.syscalls.iter().flat_map(|s| s.all_names().map(str::to_string)).collect()
    }

    #[test]
    fn boot_filter_is_boot_running_and_runtime_prologue_and_exec_filters_add_start_up() {
        let (_d, b) = setup("widen", PROFILE, r#""io.speaker.profile":"profile.json","io.speaker.compile":"strict""#);
        assert_eq!(b.profile_path(), Some(b.dir.join("profile.json")));
        assert_eq!(b.process_args(), vec!["svc", "--x"]);
        let filters = BundleFilters::compile(&b, &b.profile_path().unwrap()).unwrap();
        assert_eq!(filters.ready.as_deref(), Some("port:80"));
        let oci = |p: Phase| names(&filters.oci.iter().find(|(q, _)| *q == p).unwrap().1);
        let exec = |p: Phase| names(&filters.exec_oci.iter().find(|(q, _)| *q == p).unwrap().1);
        let boot = oci(Phase::Boot);
        for n in ["getpriority", "bind", "accept4", "execve", "pselect6", "capset", "arch_prctl"] {
            assert!(boot.contains(&n.to_string()), "{n} missing from the boot filter {boot:?}");
        }
        assert!(!boot.contains(&"fsync".to_string()), "the shutdown set leaked into boot");
        assert_eq!(oci(Phase::Running), vec!["accept4"]);
        assert_eq!(oci(Phase::Shutdown), vec!["accept4", "fsync"], "shutdown ∪ running");
        let running = filters.phases.iter().find(|p| p.phase == Phase::Running).unwrap();
        assert_eq!(running.allowed, 1, "the switch program allows exactly the running set");
        let er = exec(Phase::Running);
        for n in ["accept4", "execve", "arch_prctl", "capset"] {
            assert!(er.contains(&n.to_string()), "{n} missing from the running exec filter");
        }
        for n in ["getpriority", "bind", "fsync"] {
            assert!(!er.contains(&n.to_string()), "{n} must not be in the running exec filter");
        }
        for n in ["accept4", "fsync", "execve"] {
            assert!(exec(Phase::Shutdown).contains(&n.to_string()), "{n} missing from the shutdown exec filter");
        }
        assert_eq!(filters.exec_progs.len(), 3);
    }

    #[test]
    fn balanced_is_the_default_and_annotations_choose_allow_and_deny() {
        let (_d, b) = setup("balanced", PROFILE, r#""io.speaker.profile":"profile.json""#);
        let filters = BundleFilters::compile(&b, &b.profile_path().unwrap()).unwrap();
        assert_eq!(filters.compile, CompileMode::Balanced);
        let running = names(&filters.oci.iter().find(|(q, _)| *q == Phase::Running).unwrap().1);
        // accept4's family, and getpriority (low, used by boot); never bind or capset.
        for n in ["accept4", "accept", "getpriority"] {
            assert!(running.contains(&n.to_string()), "{n} missing from balanced running {running:?}");
        }
        for n in ["bind", "capset", "execve"] {
            assert!(!running.contains(&n.to_string()), "{n} must not be in balanced running");
        }
        let (_d, b) = setup(
            "lists",
            PROFILE,
            r#""io.speaker.profile":"profile.json","io.speaker.compile":"strict","io.speaker.allow":"mprotect, madvise","io.speaker.deny":"accept4""#,
        );
        let filters = BundleFilters::compile(&b, &b.profile_path().unwrap()).unwrap();
        let running = names(&filters.oci.iter().find(|(q, _)| *q == Phase::Running).unwrap().1);
        assert_eq!(running, vec!["madvise", "mprotect"]);
        let (_d, b) = setup("badmode", PROFILE, r#""io.speaker.profile":"profile.json","io.speaker.compile":"loose""#);
        let err = format!("{:#}", BundleFilters::compile(&b, &b.profile_path().unwrap()).err().unwrap());
        assert!(err.contains("io.speaker.compile") && err.contains("loose"), "{err}");
        let (_d, b) = setup("badname", PROFILE, r#""io.speaker.profile":"profile.json","io.speaker.allow":"mprotekt""#);
        let err = format!("{:#}", BundleFilters::compile(&b, &b.profile_path().unwrap()).err().unwrap());
        assert!(err.contains("mprotekt"), "{err}");
    }

    #[test]
    fn annotation_overrides_readiness_and_log_readiness_is_refused() {
        let (_d, b) = setup("ready", PROFILE, r#""io.speaker.profile":"profile.json","io.speaker.ready":"port:80""#);
        assert_eq!(BundleFilters::compile(&b, &b.profile_path().unwrap()).unwrap().ready.as_deref(), Some("port:80"));
        let (_d, b) = setup("logready", PROFILE, r#""io.speaker.profile":"profile.json","io.speaker.ready":"log:listening""#);
        let err = format!("{:#}", BundleFilters::compile(&b, &b.profile_path().unwrap()).err().unwrap());
        assert!(err.contains("use port:, cmd: or auto"), "{err}");
    }

    #[test]
    fn a_cmd_readiness_from_an_annotation_needs_the_operators_consent() {
        let (_d, b) = setup("cmdready", PROFILE, r#""io.speaker.profile":"profile.json","io.speaker.ready":"cmd:touch /tmp/pwned""#);
        let path = b.profile_path().unwrap();
        let err = format!("{:#}", readiness(&b, None, &path, false).err().unwrap());
        assert!(err.contains("io.speaker.ready") && err.contains("as root on the host") && err.contains(ANNOTATION_CMD_ENV), "{err}");
        assert_eq!(readiness(&b, None, &path, true).unwrap().as_deref(), Some("cmd:touch /tmp/pwned"));
        // The profile's own cmd: (a host file) is taken as before.
        let (_d, b) = setup("profready", PROFILE, r#""io.speaker.profile":"profile.json""#);
        assert_eq!(readiness(&b, Some("cmd:true"), &b.profile_path().unwrap(), false).unwrap().as_deref(), Some("cmd:true"));
    }

    #[test]
    fn missing_and_foreign_profiles_are_refused_with_their_path() {
        let (_d, b) = setup("missing", PROFILE, r#""io.speaker.profile":"nope.json""#);
        let err = format!("{:#}", BundleFilters::compile(&b, &b.profile_path().unwrap()).err().unwrap());
        assert!(err.contains("nope.json") && err.contains("does not exist"), "{err}");
        let arm = r#"{"schema":"speaker.profile/v1","architectures":["SCMP_ARCH_AARCH64"],"phases":{"boot":{"syscalls":[{"name":"read","arch":"aarch64"}]}}}"#;
        let (_d, b) = setup("arm", arm, r#""io.speaker.profile":"profile.json""#);
        let err = format!("{:#}", BundleFilters::compile(&b, &b.profile_path().unwrap()).err().unwrap());
        assert!(err.contains("SCMP_ARCH_AARCH64") && err.contains("x86_64"), "{err}");
    }
}
