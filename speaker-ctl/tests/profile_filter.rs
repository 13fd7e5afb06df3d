//! Compiled programs: their shape, and their behaviour when a forked child
//! installs them (the test process itself never gets a filter).
use speaker::profile::schema::{Phase, PhaseSet, Profile, SyscallEntry};
use speaker::profile::{self, Action, SockFilter, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;

fn profile_with(default_action: &str, arches: &[&str], syscalls: &[(&str, &str)]) -> Profile {
    let mut p = Profile::new(Some("probe".into()));
    p.default_action = default_action.to_string();
    p.architectures = arches.iter().map(|s| s.to_string()).collect();
    p.phases.insert(
        Phase::Boot,
        PhaseSet {
            syscalls: syscalls
                .iter()
                .map(|(name, arch)| SyscallEntry {
                    name: name.to_string(),
                    arch: arch.to_string(),
                    nr: None,
                    count: None,
                    first_seen_ms: None,
                })
                .collect(),
        },
    );
    p
}

/// The syscalls the probes need to run and exit.
const BASE: [(&str, &str); 3] = [("getpid", "x86_64"), ("exit_group", "x86_64"), ("exit", "x86_64")];

fn program(default_action: &str, arches: &[&str], extra: &[(&str, &str)]) -> Vec<SockFilter> {
    let mut sys = BASE.to_vec();
    sys.extend_from_slice(extra);
    let p = profile_with(default_action, arches, &sys);
    profile::compile(&profile::phase_filter(&p, Phase::Boot).unwrap()).unwrap()
}

enum Exit {
    Code(i32),
    Signal(i32),
}

/// Forks; the child installs `prog` (unless `None`) and exits with `probe()`.
/// Only raw syscalls run in the child (the parent is multi-threaded).
fn run_child(prog: Option<&[SockFilter]>, probe: fn() -> i32) -> Exit {
    let fprog = prog.map(|p| libc::sock_fprog { len: p.len() as u16, filter: p.as_ptr() as *mut libc::sock_filter });
    // SAFETY: the child only makes raw syscalls and _exits.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            if let Some(f) = &fprog {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(100);
                }
                if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, f as *const libc::sock_fprog) != 0 {
                    libc::_exit(101);
                }
            }
            libc::_exit(probe());
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            assert!(r < 0 && *libc::__errno_location() == libc::EINTR, "waitpid");
        }
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        }
    }
}

fn errno() -> i32 {
    // SAFETY: thread-local errno.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: i32) {
    // SAFETY: thread-local errno.
    unsafe { *libc::__errno_location() = e }
}

/// 0 if getpid works and getpriority and mount fail with EPERM.
fn probe_errno() -> i32 {
    // SAFETY: raw syscalls with no pointer arguments, or null pointers the
    // kernel checks (mount fails before reading them); the probe wants the
    // syscall itself, not a libc wrapper that might make another one.
    unsafe {
        if libc::syscall(libc::SYS_getpid) <= 0 {
            return 10;
        }
        set_errno(0);
        if libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) != -1 || errno() != libc::EPERM {
            return 11;
        }
        set_errno(0);
        let null = std::ptr::null::<libc::c_char>();
        if libc::syscall(libc::SYS_mount, null, null, null, 0, null) != -1 || errno() != libc::EPERM {
            return 12;
        }
    }
    0
}

/// 0 if getpriority succeeds.
fn probe_getpriority() -> i32 {
    set_errno(0);
    // SAFETY: getpriority takes integers only.
    let r = unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) };
    if r == -1 && errno() != 0 {
        return 20;
    }
    0
}

/// getpid through the i386 compat ABI (`int 0x80`, nr 20): the raw result.
fn int80_getpid() -> i64 {
    let ret: i64;
    // SAFETY: an i386 getpid takes no argument; r8-r11 may be clobbered.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _);
    }
    ret
}

/// 0 if the i386 getpid returns a pid.
fn probe_i386_allowed() -> i32 {
    if int80_getpid() > 0 {
        0
    } else {
        30
    }
}

/// 0 if the i386 getpid fails with EPERM.
fn probe_i386_denied() -> i32 {
    if int80_getpid() == -(libc::EPERM as i64) {
        0
    } else {
        31
    }
}

/// 0 if an x32 getpid fails with EPERM (not ENOSYS: the filter, not the
/// kernel, refused it).
fn probe_x32_denied() -> i32 {
    set_errno(0);
    // SAFETY: an x32 getpid takes no argument.
    let r = unsafe { libc::syscall(X32_SYSCALL_BIT as libc::c_long | libc::SYS_getpid) };
    if r == -1 && errno() == libc::EPERM {
        0
    } else {
        40
    }
}

fn i386_available() -> bool {
    matches!(run_child(None, probe_i386_allowed), Exit::Code(0))
}

#[test]
fn program_checks_arch_first() {
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"], &[]);
    assert_eq!((prog[0].code, prog[0].k), (BPF_LD_W_ABS, 4), "{prog:?}");
    assert_eq!((prog[1].code, prog[1].k), (BPF_JEQ_K, AUDIT_ARCH_X86_64), "{prog:?}");
    assert!(prog.iter().any(|i| i.k == X32_SYSCALL_BIT), "x32 numbers are checked");
    assert!(!prog.iter().any(|i| i.k == AUDIT_ARCH_I386), "no i386 branch");
    assert_eq!(std::mem::size_of::<SockFilter>(), 8);
}

#[test]
fn errno_default_denies_with_eperm() {
    assert!(matches!(run_child(None, probe_getpriority), Exit::Code(0)));
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"], &[]);
    match run_child(Some(&prog), probe_errno) {
        Exit::Code(0) => {}
        Exit::Code(c) => panic!("probe failed with {c}"),
        Exit::Signal(s) => panic!("child killed by signal {s}"),
    }
    // The same program allows getpriority once listed.
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"], &[("getpriority", "x86_64")]);
    assert!(matches!(run_child(Some(&prog), probe_getpriority), Exit::Code(0)));
}

#[test]
fn kill_process_default_kills_with_sigsys() {
    let prog = program("SCMP_ACT_KILL_PROCESS", &["SCMP_ARCH_X86_64"], &[]);
    match run_child(Some(&prog), probe_getpriority) {
        Exit::Signal(s) => assert_eq!(s, libc::SIGSYS),
        Exit::Code(c) => panic!("child exited with {c} instead of dying of SIGSYS"),
    }
}

#[test]
fn x32_abi_is_denied() {
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"], &[]);
    assert!(matches!(run_child(Some(&prog), probe_x32_denied), Exit::Code(0)));
}

#[test]
fn i386_abi_is_denied_unless_listed() {
    // speaker's target machines (and its own VM kernel) run i386 compat
    // syscalls; a kernel without IA32 emulation cannot prove this test.
    assert!(i386_available(), "this kernel does not run i386 compat syscalls (int 0x80): CONFIG_IA32_EMULATION is required");
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"], &[]);
    assert!(matches!(run_child(Some(&prog), probe_i386_denied), Exit::Code(0)));
    // Listed, but getpid not recorded for x86: the default action.
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], &[("read", "x86")]);
    assert!(matches!(run_child(Some(&prog), probe_i386_denied), Exit::Code(0)));
    // Listed and recorded.
    let prog = program("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], &[("getpid", "x86")]);
    assert!(matches!(run_child(Some(&prog), probe_i386_allowed), Exit::Code(0)));
    // With a KILL_PROCESS default, a foreign ABI kills too.
    let prog = program("SCMP_ACT_KILL_PROCESS", &["SCMP_ARCH_X86_64"], &[]);
    assert!(matches!(run_child(Some(&prog), probe_i386_denied), Exit::Signal(libc::SIGSYS)));
}

#[test]
fn docker_default_program_works() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");
    let f = profile::load_phase_file(path).unwrap();
    assert_eq!(f.default_action, Action::Errno(1));
    let prog = profile::compile(&f).unwrap();
    // getpid allowed, getpriority allowed by Docker too; mount denied.
    fn probe() -> i32 {
        // SAFETY: getpid takes no argument; mount gets null pointers, which
        // the filter refuses before the kernel reads them.
        unsafe {
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 50;
            }
            let null = std::ptr::null::<libc::c_char>();
            set_errno(0);
            if libc::syscall(libc::SYS_mount, null, null, null, 0, null) != -1 || errno() != libc::EPERM {
                return 51;
            }
        }
        probe_getpriority()
    }
    assert!(matches!(run_child(Some(&prog), probe), Exit::Code(0)));
}
