//! The safety margin: syscalls every compiled phase allows, whatever its
//! trace saw, because they give an attacker next to nothing and a service
//! may take a path no workload exercised (a timed wait, a signal handler,
//! a heap that grows).
//!
//! Criteria for an entry: (1) it acts only on the calling process's own
//! state (its clock reads, its sleep, its own heap and mappings, its exit),
//! so it reaches no other process, file, device or namespace; (2) no
//! argument can make it create executable memory, share memory with
//! another process or change privileges; (3) the kernel code behind it is
//! small and has no history of exploitable bugs reachable from an
//! unprivileged caller; (4) Docker's default profile
//! (`/work/shared/data/docker-default-seccomp.json`, moby's
//! `profiles/seccomp/default.json`) allows it unconditionally, so a phase
//! with the margin is never broader than what every Docker container gets
//! for its whole life (the margin adds 13 names of Docker's ~300).
//!
//! Left out on purpose, though the categories could suggest them:
//! * `futex`: its PI and requeue operations carry the most severe futex
//!   CVEs (CVE-2014-3153 "towelroot", `FUTEX_REQUEUE_PI`; CVE-2021-3347,
//!   PI futex use-after-free; CVE-2018-6927, `futex_requeue` overflow), and
//!   profile entries are names, so the margin cannot narrow it to
//!   `FUTEX_WAIT`/`FUTEX_WAKE`.  Every threaded service's trace has it
//!   anyway (glibc's locks use it from the first thread on).
//! * `mmap`, `mprotect`, `pkey_mprotect`: `PROT_EXEC` turns written bytes
//!   into code, the step between a ROP chain and shellcode; whether a
//!   service needs it is for its trace to say, not a margin.
//! * `madvise`: `MADV_DONTNEED` racing a write through `/proc/self/mem`
//!   was Dirty COW (CVE-2016-5195); `MADV_HWPOISON` and friends are
//!   privileged or exotic.
//! * `mremap`: stale TLB entries after a moved mapping (CVE-2018-18281).
//! * `clock_settime`, `adjtimex`, `clock_adjtime`, `settimeofday`: they
//!   change the clock for everyone (and need CAP_SYS_TIME).
//! * `rseq`, `set_robust_list`, `sigaltstack`, `rt_sigaction`: process
//!   set-up, which any boot phase records; not needed to survive an
//!   untraced path later.
use super::arch::Arch;
use super::schema::{Phase, Profile, SyscallEntry};

/// The low-risk set, with the reason for each entry.
pub const MARGIN: &[(&str, &str)] = &[
    ("clock_gettime", "reads a clock; normally answered by the vDSO, the syscall is the fallback (e.g. an unsupported clock source)"),
    ("clock_getres", "reads a clock's resolution"),
    ("gettimeofday", "reads the wall clock (vDSO fallback)"),
    ("time", "reads the wall clock (vDSO fallback)"),
    ("nanosleep", "sleeps the calling thread"),
    ("clock_nanosleep", "sleeps the calling thread on a clock"),
    (
        "restart_syscall",
        "resumes a sleep interrupted by a signal (the kernel asks for it; denying it turns a handled signal into a failed sleep)",
    ),
    ("sched_yield", "gives up the CPU"),
    (
        "rt_sigreturn",
        "returns from a signal handler; denying it kills the process at its first handled signal that no trace happened to see",
    ),
    ("brk", "grows or shrinks the process's own heap (never executable)"),
    ("munmap", "unmaps the process's own memory: can only take away"),
    ("exit", "ends the calling thread"),
    ("exit_group", "ends the process"),
];

/// The margin's names.
pub fn names() -> impl Iterator<Item = &'static str> {
    MARGIN.iter().map(|(n, _)| *n)
}

/// Adds the margin to every phase of `p` (entries the phase has are left
/// alone), on each 64-bit native ABI the profile lists (x86_64, aarch64: a
/// profile merged from both architectures' traces gets it on both; with
/// neither listed, the host's); a no-op when the profile says `"margin": false`.
pub fn apply(p: &mut Profile) {
    if !p.margin.unwrap_or(true) {
        return;
    }
    let mut arches: Vec<Arch> =
        p.architectures.iter().filter_map(|a| Arch::from_scmp_name(a)).filter(|a| matches!(a, Arch::X86_64 | Arch::Aarch64)).collect();
    if arches.is_empty() {
        arches.push(Arch::native());
    }
    let phases: Vec<Phase> = p.phases.keys().copied().collect();
    for phase in phases {
        let set = p.phases.get_mut(&phase).expect("listed phase");
        for arch in &arches {
            for name in names().filter(|n| arch.resolve(n).is_some()) {
                if !set.syscalls.iter().any(|e| e.name == name && e.arch == arch.name()) {
                    set.syscalls.push(SyscallEntry {
                        name: name.into(),
                        arch: arch.name().into(),
                        nr: None,
                        count: None,
                        first_seen_ms: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::oci::OciProfile;
    use crate::profile::translate::tests::profile;

    #[test]
    fn margin_is_within_dockers_default_and_leaves_out_exec_memory() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json")).unwrap();
        let docker: OciProfile = serde_json::from_str(&text).unwrap();
        let allowed: Vec<&str> =
            docker.syscalls.iter().filter(|s| s.action == "SCMP_ACT_ALLOW" && s.args.is_empty()).flat_map(|s| s.all_names()).collect();
        for n in names() {
            assert!(allowed.contains(&n), "{n} is not unconditionally allowed by Docker's default profile");
            assert!(crate::profile::Arch::X86_64.resolve(n).is_some(), "{n} unknown");
        }
        for n in ["mmap", "mprotect", "madvise", "mremap", "futex"] {
            assert!(!names().any(|m| m == n), "{n} must not be in the margin");
        }
    }

    #[test]
    fn margin_is_added_on_each_native_abi_the_profile_lists() {
        let mut p = profile(&[("read", "x86_64"), ("read", "aarch64")]);
        p.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_AARCH64".into()];
        apply(&mut p);
        let set = &p.phase(Phase::Boot).unwrap().syscalls;
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let on: Vec<&str> = set.iter().filter(|e| e.arch == arch.name()).map(|e| e.name.as_str()).collect();
            for n in names().filter(|n| arch.resolve(n).is_some()) {
                assert!(on.contains(&n), "{n} missing on {arch}");
            }
        }
        // Every entry added resolves on its ABI (none would fail to compile).
        assert!(set.iter().all(|e| Arch::from_name(&e.arch).unwrap().resolve(&e.name).is_some()));
    }

    #[test]
    fn margin_is_added_unless_turned_off() {
        let mut p = profile(&[("read", "x86_64")]);
        apply(&mut p);
        assert_eq!(p.phase(Phase::Boot).unwrap().syscalls.len(), 1 + MARGIN.len());
        let mut p = profile(&[("read", "x86_64"), ("brk", "x86_64")]);
        p.margin = Some(false);
        apply(&mut p);
        assert_eq!(p.phase(Phase::Boot).unwrap().syscalls.len(), 2);
    }
}
