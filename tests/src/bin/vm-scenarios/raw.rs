//! A raw test container: a forked child confined by a hand-written classic
//! BPF filter and registered with speaker.ko by the runner, driven through
//! pipes.  The kernel-trust scenarios use it where speaker-ctl would hide
//! the detail under test (inherited fds, shared filters, compat syscalls,
//! stacked filters).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use speaker::abi;
use speaker_tests::ioctl;

pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// The compat ABI's `AUDIT_ARCH_*`: i386 on x86_64, 32-bit ARM on arm64.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_COMPAT: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_COMPAT: u32 = 0x4000_0028;
/// `getpriority` in the compat table (96 in both i386's and ARM EABI's).
pub const NR32_GETPRIORITY: u32 = 96;
pub const NR_GETPRIORITY: u32 = libc::SYS_getpriority as u32;
/// The errno of every denial here (no probed syscall returns it on its own).
pub const DENY_ERRNO: i64 = 1000;

pub fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// speaker's mark (`speaker::abi::SPEAKER_MARK_K`): a no-op first
/// instruction that makes a filter registrable outside a PID namespace.
pub fn mark() -> libc::sock_filter {
    insn(abi::SPEAKER_MARK_CODE, 0, 0, abi::SPEAKER_MARK_K)
}

/// `prog` with speaker's mark in front.
pub fn marked(prog: &[libc::sock_filter]) -> Vec<libc::sock_filter> {
    let mut v = vec![mark()];
    v.extend_from_slice(prog);
    v
}

/// `return ALLOW`.
pub fn allow_all() -> Vec<libc::sock_filter> {
    vec![insn(0x06, 0, 0, SECCOMP_RET_ALLOW)]
}

/// Allows everything but `getpriority` on both ABIs (errno 1000).
pub fn deny_getpriority() -> Vec<libc::sock_filter> {
    vec![
        insn(0x20, 0, 0, 4),                        // 0: A = arch
        insn(0x15, 0, 3, AUDIT_ARCH_COMPAT),        // 1: compat? -> 2, else 5
        insn(0x20, 0, 0, 0),                        // 2: A = nr
        insn(0x15, 4, 0, NR32_GETPRIORITY),         // 3: -> 8
        insn(0x06, 0, 0, SECCOMP_RET_ALLOW),        // 4
        insn(0x20, 0, 0, 0),                        // 5: A = nr
        insn(0x15, 1, 0, NR_GETPRIORITY),           // 6: -> 8
        insn(0x06, 0, 0, SECCOMP_RET_ALLOW),        // 7
        insn(0x06, 0, 0, SECCOMP_RET_ERRNO | 1000), // 8
    ]
}

/// Allows everything, in `n` instructions (`n - 1` no-op additions).
pub fn long_allow(n: usize) -> Vec<libc::sock_filter> {
    let mut v = vec![insn(0x04, 0, 0, 0); n - 1];
    v.push(insn(0x06, 0, 0, SECCOMP_RET_ALLOW));
    v
}

/// Installs `prog` on the calling thread (`flags`: e.g. TSYNC); returns the
/// syscall's result (negative errno on failure).
pub fn install(prog: &[libc::sock_filter], flags: u32) -> i64 {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
    // SAFETY: `fprog` points to `prog`, alive during the call.
    let r = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &fprog)
    };
    if r < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        r
    }
}

/// Returns `r` as -errno when negative (the raw-syscall convention).
pub fn sys_result(r: i64) -> i64 {
    if r == -1 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        r
    }
}

/// `getpriority(PRIO_PROCESS, 0)` through the native ABI.
pub fn getpriority_native() -> i64 {
    // SAFETY: plain syscall without pointers.
    sys_result(unsafe { libc::syscall(libc::SYS_getpriority, 0, 0) })
}

/// `getpriority(PRIO_PROCESS, 0)` through the i386 ABI (`int $0x80`).
#[cfg(target_arch = "x86_64")]
pub fn getpriority_compat() -> i64 {
    let mut eax: u32 = NR32_GETPRIORITY;
    // SAFETY: `int $0x80` enters the i386 syscall table; getpriority takes
    // two integers (ebx = PRIO_PROCESS = 0, ecx = 0: this process) and
    // touches no memory.  rbx belongs to LLVM, so it is saved around the call.
    unsafe {
        std::arch::asm!("push rbx", "xor ebx, ebx", "int 0x80", "pop rbx", inout("eax") eax, in("ecx") 0u32);
    }
    eax as i32 as i64
}

/// `getpriority(PRIO_PROCESS, 0)` through the 32-bit ARM ABI: an AArch64
/// task cannot enter it, so a child runs the AArch32 program
/// `compat-getpriority` (tests/compat/getpriority-arm32.c), which inherits
/// this task's seccomp filter (the same filter, so the same container and
/// the same action cache) and prints the raw result.
#[cfg(target_arch = "aarch64")]
pub fn getpriority_compat() -> i64 {
    match std::process::Command::new("/bin/compat-getpriority").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(-(libc::EPROTO as i64)),
        // Failed or killed: not a getpriority result (EPROTO, never -1000).
        Ok(_) => -(libc::EPROTO as i64),
        Err(e) => -(e.raw_os_error().unwrap_or(libc::ENOEXEC) as i64),
    }
}

/// Opens `/dev/speaker` (O_CLOEXEC); raw fd or -errno.
pub fn open_dev() -> i32 {
    // SAFETY: plain open of a path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        -std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        fd
    }
}

fn errno_or_zero(r: libc::c_int) -> i32 {
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

/// `SPEAKER_IOC_SWITCH` of `cid` to `prog` (flags: e.g. SWITCH_DEFER_FREE);
/// 0 or the errno.
pub fn switch(fd: i32, cid: &str, prog: &[libc::sock_filter], flags: u32) -> i32 {
    let mut args = ioctl::switch(ioctl::encoded_cid(cid), prog, 1, 0, flags);
    // SAFETY: `args` is a valid SwitchArgs pointing to `prog`.
    errno_or_zero(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_SWITCH as _, &mut args) })
}

/// `SPEAKER_IOC_REGISTER` of the top filter of `pid`; 0 or the errno.
pub fn register(fd: i32, cid: &str, pid: i32, filter_count: u32) -> i32 {
    let args = ioctl::register(ioctl::encoded_cid(cid), pid as u32, filter_count, 0, 0);
    // SAFETY: `args` is a valid RegisterArgs.
    errno_or_zero(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_REGISTER as _, &args) })
}

/// `SPEAKER_IOC_UNREGISTER`; 0 or the errno.
pub fn unregister(fd: i32, cid: &str) -> i32 {
    let args = ioctl::unregister(ioctl::encoded_cid(cid));
    // SAFETY: `args` is a valid CidArgs.
    errno_or_zero(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_UNREGISTER as _, &args) })
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A command the child runs: returns a number written back to the parent.
pub type Op = Box<dyn Fn() -> i64>;

/// A confined child driven through pipes: each request byte `i` runs
/// `ops[i]` in the child and answers its result.
pub struct RawContainer {
    pub pid: i32,
    req: OwnedFd,
    resp: OwnedFd,
}

/// What kind of process a [`RawContainer`] is.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// A forked child whose filter bears speaker's mark (as the tools'
    /// filters do): registrable.
    Marked,
    /// A forked child under a plain filter: a host process's own sandbox,
    /// which REGISTER refuses.
    Plain,
    /// The first process of a new PID namespace, under a plain filter: a
    /// container made by another tool, registrable.
    PidNs,
}

impl RawContainer {
    /// Forks a child that runs `setup()` (unconfined), installs `prog` with
    /// speaker's mark in front, and then serves `ops` until its request
    /// pipe closes.
    pub fn start(prog: &[libc::sock_filter], setup: impl FnOnce(), ops: Vec<Op>) -> Result<RawContainer, String> {
        Self::start_as(Kind::Marked, prog, setup, ops)
    }

    /// [`RawContainer::start`] for a child of kind `kind`.
    pub fn start_as(kind: Kind, prog: &[libc::sock_filter], setup: impl FnOnce(), ops: Vec<Op>) -> Result<RawContainer, String> {
        let prog = if kind == Kind::Marked { marked(prog) } else { prog.to_vec() };
        let (req_r, req_w) = pipe()?;
        let (resp_r, resp_w) = pipe()?;
        let pid = if kind == Kind::PidNs {
            // SAFETY: clone without a new stack or CLONE_VM is fork into a
            // new PID namespace; the child is as for fork below.
            unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_NEWPID | libc::SIGCHLD, 0, 0, 0, 0) as i32 }
        } else {
            // SAFETY: the runner is single-threaded here; the child only
            // makes syscalls and exits with _exit.
            unsafe { libc::fork() }
        };
        match pid {
            0 => {
                drop(req_w);
                drop(resp_r);
                setup();
                let ok = install(&prog, 0) >= 0;
                let reply = |v: i64| {
                    // SAFETY: writing 8 bytes from a local to our pipe.
                    unsafe { libc::write(resp_w.as_raw_fd(), (&v as *const i64).cast(), 8) };
                };
                reply(if ok { 0 } else { -1 });
                loop {
                    let mut b = 0u8;
                    // SAFETY: reading one byte into a local.
                    if unsafe { libc::read(req_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) } != 1 {
                        break;
                    }
                    let v = ops.get(b as usize).map(|op| op()).unwrap_or(i64::MIN);
                    reply(v);
                }
                // SAFETY: leave without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            pid if pid > 0 => {
                drop(req_r);
                drop(resp_w);
                let c = RawContainer { pid, req: req_w, resp: resp_r };
                let ready = c.read_reply()?;
                if ready != 0 {
                    return Err("the child could not install its filter".into());
                }
                Ok(c)
            }
            _ => Err(format!("fork: {}", std::io::Error::last_os_error())),
        }
    }

    fn read_reply(&self) -> Result<i64, String> {
        let mut v = 0i64;
        // SAFETY: reading 8 bytes into a local.
        let n = unsafe { libc::read(self.resp.as_raw_fd(), (&mut v as *mut i64).cast(), 8) };
        if n != 8 {
            return Err(format!("the raw container {} stopped answering", self.pid));
        }
        Ok(v)
    }

    /// Runs op `i` in the child; its result.
    pub fn ask(&self, i: u8) -> Result<i64, String> {
        // SAFETY: writing one byte from a local.
        if unsafe { libc::write(self.req.as_raw_fd(), (&i as *const u8).cast(), 1) } != 1 {
            return Err(format!("cannot reach the raw container {}", self.pid));
        }
        self.read_reply()
    }
}

impl Drop for RawContainer {
    fn drop(&mut self) {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// A zeroed `T` in a fresh shared anonymous mapping, so that forked
/// children and the scenario see the same memory.  The mapping is never
/// unmapped (a scenario's children are killed before it returns; the
/// runner is a short-lived process).  `T` must be valid when all zero
/// (atomics and arrays of them).
pub fn shared<T: Sync>() -> Result<&'static T, String> {
    let len = std::mem::size_of::<T>().max(1).next_multiple_of(4096);
    // SAFETY: a new anonymous mapping, no address hint, checked below.
    let p =
        unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap of {len} shared bytes failed: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the mapping is page-aligned (enough for any T here), at
    // least size_of::<T>() bytes, zeroed by the kernel (a valid T by this
    // function's contract) and never unmapped, so 'static holds.
    Ok(unsafe { &*(p as *const T) })
}
