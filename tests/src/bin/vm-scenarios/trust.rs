//! Kernel trust: speaker.ko under attack (issue 10).  Each scenario tries
//! the forbidden thing from where an attacker or a careless tool would, and
//! checks the errno, the bytes or the kernel log.

use std::fs;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use speaker_tests::ensure;
use speaker_tests::guest::{kernel_trouble, run, LogSince, Outcome};

use crate::cache;
use crate::probe::Probe;
use crate::profiles::{std_phases, DENY};
use crate::raw::{self, RawContainer};
use crate::support::wait_until;

/// An open `/dev/speaker`, closed on drop (a scenario that fails early
/// must not keep the module busy for the next ones).
struct Dev(i32);

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this value owns.
        unsafe { libc::close(self.0) };
    }
}

fn dev() -> Result<Dev, String> {
    let fd = raw::open_dev();
    ensure!(fd >= 0, "cannot open /dev/speaker: errno {}", -fd);
    Ok(Dev(fd))
}

/// Waits until `rmmod speaker` succeeds (the sweeper unpins the module
/// within about a second of the last kept program becoming free-able), then
/// loads the module again.
fn rmmod_then_insmod(within: Duration) -> Outcome {
    crate::support::rmmod_within(within)?;
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0, "insmod again failed: {}", o.stderr);
    Ok(())
}

/// A container's own task, root with every capability and an fd to
/// /dev/speaker it inherited, tries to switch its own filter to
/// `RET_ALLOW`; then one that opens the device itself; then a probe started
/// by `speaker-ctl run`.  All get EPERM (or no device at all), and the
/// running phase's denial stays.
pub fn switch_from_inside_container_is_refused() -> Outcome {
    let dev = dev()?;
    let fd = dev.0;
    let allow = raw::allow_all();
    let ops: Vec<raw::Op> = vec![
        Box::new(move || raw::switch(fd, "inside", &raw::allow_all(), 0) as i64),
        Box::new(raw::getpriority_native),
        Box::new(|| {
            let own = raw::open_dev();
            if own < 0 {
                return 10_000 + (-own) as i64;
            }
            raw::switch(own, "inside", &raw::allow_all(), 0) as i64
        }),
        Box::new(move || raw::unregister(fd, "inside") as i64),
    ];
    let c = RawContainer::start(&allow, || {}, ops)?;
    ensure!(raw::register(fd, "inside", c.pid, 1) == 0, "register failed");
    ensure!(raw::switch(fd, "inside", &raw::deny_getpriority(), 0) == 0, "switch to running failed");
    ensure!(c.ask(1)? == -raw::DENY_ERRNO, "running phase does not deny getpriority");
    let inherited = c.ask(0)?;
    ensure!(inherited == libc::EPERM as i64, "switch through an inherited fd gave {inherited}, want EPERM");
    let opened = c.ask(2)?;
    ensure!(opened == libc::EPERM as i64, "switch through a fresh fd gave {opened}, want EPERM");
    let unreg = c.ask(3)?;
    ensure!(unreg == libc::EPERM as i64, "unregister from inside gave {unreg}, want EPERM");
    ensure!(c.ask(1)? == -raw::DENY_ERRNO, "getpriority is no longer denied after the attempts");
    drop(c);
    drop(dev);

    // The same through speaker-ctl run's own container.
    let mut p = Probe::start("inside-ctl", &std_phases(), &[], 1)?;
    p.switch("running")?;
    let r = p.main("selfswitch inside-ctl")?;
    ensure!(
        r == "switch errno 1" || r.starts_with("open errno"),
        "the probe inside speaker-ctl run's container got '{r}' from its own switch"
    );
    p.expect_all("sys getpriority", DENY)?;
    Ok(())
}

/// `speaker-ctl run` does not hand its container the keys: no
/// CAP_SYS_ADMIN (Docker's default capabilities but MKNOD), `no_new_privs`, and its
/// own `/dev` without speaker's device (a node made with mknod in it cannot
/// be opened).
pub fn run_container_gets_no_keys() -> Outcome {
    let dir = "/tmp/c/nokeys";
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(format!("{dir}/res")).map_err(|e| e.to_string())?;
    let b = crate::profiles::deny_profile("nokeys-boot", &["sysinfo"], "SCMP_ACT_ERRNO");
    let out = crate::support::ctl_ok(&[
        "run",
        "--name",
        "nokeys",
        "--volume",
        dir,
        "--boot",
        b.to_str().unwrap(),
        "--running",
        b.to_str().unwrap(),
        "--detach",
        "--",
        "speaker-probe",
        "serve",
        dir,
    ])?;
    let pid: i32 = out.split_whitespace().nth(1).and_then(|p| p.parse().ok()).ok_or(format!("bad run output {out:?}"))?;
    let mut p = Probe { cid: "nokeys".into(), dir: dir.into(), pid, gen: 0, tasks: 1 };
    p.wait_ready()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default();
    let bnd = u64::from_str_radix(&field("CapBnd:"), 16).map_err(|e| format!("CapBnd: {e}"))?;
    let eff = u64::from_str_radix(&field("CapEff:"), 16).map_err(|e| format!("CapEff: {e}"))?;
    ensure!(bnd & (1 << 21) == 0 && eff & (1 << 21) == 0, "CAP_SYS_ADMIN is still there (CapBnd {bnd:x}, CapEff {eff:x})");
    ensure!(bnd.count_ones() == 13, "the bounding set has {} capabilities, want Docker's 14 but MKNOD ({bnd:x})", bnd.count_ones());
    ensure!(field("NoNewPrivs:") == "1", "no_new_privs is not set");
    // The boot filter allows mount; the missing capability refuses it.
    p.expect_all("sys mount", "errno 1")?;
    let r = p.main("selfswitch nokeys")?;
    ensure!(r == "open errno 2", "opening /dev/speaker inside gave '{r}', want ENOENT (no such device in its /dev)");
    Ok(())
}

/// `PTRACE_SECCOMP_GET_FILTER` copying the container's program into a
/// userfaultfd page blocks; meanwhile the container is switched (the switch
/// waits for its grace period); then the fault is resolved.  The copied
/// bytes must be the old program, intact, and the kernel log clean.
pub fn get_filter_during_switch_is_safe() -> Outcome {
    let mut trouble_since = LogSince::now()?;
    let boot = raw::deny_getpriority();
    let dev = dev()?;
    let fd = dev.0;
    let c = RawContainer::start(&boot, || {}, vec![Box::new(raw::getpriority_native)])?;
    ensure!(raw::register(fd, "getf", c.pid, 1) == 0, "register failed");
    let uffd = Uffd::new(2 * 4096)?;
    let page = uffd.addr;
    let pid = c.pid;
    // The tracer: attach, read the filter once normally, then into the
    // userfaultfd page (blocks until the main thread resolves the fault).
    let tracer = std::thread::spawn(move || -> Result<(Vec<u8>, Vec<u8>), String> {
        // SAFETY: ptrace requests on our own child, from this thread only.
        unsafe {
            if libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) != 0 {
                return Err(format!("PTRACE_ATTACH: {}", std::io::Error::last_os_error()));
            }
            let mut st = 0;
            libc::waitpid(pid, &mut st, libc::__WALL);
            let mut normal = vec![0u8; 8 * 64];
            let n = libc::ptrace(0x420c /* PTRACE_SECCOMP_GET_FILTER */, pid, 0, normal.as_mut_ptr());
            if n <= 0 {
                return Err(format!("PTRACE_SECCOMP_GET_FILTER: {}", std::io::Error::last_os_error()));
            }
            normal.truncate(n as usize * 8);
            let n2 = libc::ptrace(0x420c, pid, 0, page as *mut u8);
            if n2 != n {
                return Err(format!("the blocked PTRACE_SECCOMP_GET_FILTER gave {n2}, want {n}"));
            }
            let copied = std::slice::from_raw_parts(page as *const u8, n as usize * 8).to_vec();
            libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
            Ok((normal, copied))
        }
    });
    let fault = uffd.wait_fault(Duration::from_secs(60));
    let switched = fault.is_ok().then(|| raw::switch(fd, "getf", &raw::allow_all(), 0));
    let resolved = uffd.resolve(page);
    let (normal, copied) = tracer.join().map_err(|_| "the tracer thread panicked".to_string())??;
    fault?;
    ensure!(switched == Some(0), "the switch during the blocked read failed: errno {switched:?}");
    resolved?;
    // RawContainer installs the program with speaker's mark in front.
    let want = prog_bytes(&raw::marked(&boot));
    ensure!(normal == want, "the unblocked read did not return the boot program");
    ensure!(
        copied == want,
        "the read that slept across the switch copied {:02x?}, want the old program {:02x?}",
        &copied[..copied.len().min(24)],
        &want[..24]
    );
    ensure!(c.ask(0)? >= 0, "the new (allow-all) program is not in force");
    drop(c);
    drop(dev);
    let trouble = kernel_trouble(&trouble_since.messages().join("\n"));
    ensure!(trouble.is_empty(), "kernel log: {trouble:?}");
    Ok(())
}

/// A userfaultfd over an anonymous mapping whose pages are missing.
struct Uffd {
    fd: i32,
    addr: usize,
    len: usize,
}

const UFFD_API: u64 = 0xaa;
const fn iowr(nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (0xaa << 8) | nr
}
const UFFDIO_API: u64 = iowr(0x3f, 24);
const UFFDIO_REGISTER: u64 = iowr(0x00, 32);
const UFFDIO_COPY: u64 = iowr(0x03, 40);

impl Uffd {
    fn new(len: usize) -> Result<Uffd, String> {
        // SAFETY: plain syscalls; the structs passed are locals of the
        // sizes the ioctl numbers encode.
        unsafe {
            let fd = libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) as i32;
            ensure!(fd >= 0, "userfaultfd: {} (CONFIG_USERFAULTFD?)", std::io::Error::last_os_error());
            let mut api = [UFFD_API, 0, 0];
            ensure!(libc::ioctl(fd, UFFDIO_API as _, api.as_mut_ptr()) == 0, "UFFDIO_API: {}", std::io::Error::last_os_error());
            let addr =
                libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            ensure!(addr != libc::MAP_FAILED, "mmap failed");
            let mut reg = [addr as u64, len as u64, 1 /* MODE_MISSING */, 0];
            ensure!(libc::ioctl(fd, UFFDIO_REGISTER as _, reg.as_mut_ptr()) == 0, "UFFDIO_REGISTER: {}", std::io::Error::last_os_error());
            Ok(Uffd { fd, addr: addr as usize, len })
        }
    }

    /// Waits for the first page fault on the mapping.
    fn wait_fault(&self, timeout: Duration) -> Result<u64, String> {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: polling one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        ensure!(n == 1, "no page fault on the userfaultfd page within {timeout:?}: the tracer never blocked");
        let mut msg = [0u64; 4];
        // SAFETY: a uffd_msg is 32 bytes.
        let r = unsafe { libc::read(self.fd, msg.as_mut_ptr().cast(), 32) };
        ensure!(r == 32 && (msg[0] & 0xff) == 0x12, "unexpected userfaultfd message");
        Ok(msg[2])
    }

    /// Fills the page at `at` with zeroes, waking the faulting reader.
    fn resolve(&self, at: usize) -> Outcome {
        self.resolve_with(at, &[])
    }

    /// Fills the page at `at` with `bytes` (at most a page), then zeroes,
    /// waking the faulting reader.
    fn resolve_with(&self, at: usize, bytes: &[u8]) -> Outcome {
        let mut src = vec![0u8; 4096];
        src[..bytes.len()].copy_from_slice(bytes);
        let mut copy = [at as u64, src.as_ptr() as u64, 4096, 0, 0];
        // SAFETY: `copy` is a uffdio_copy; `src` is a readable page.
        let r = unsafe { libc::ioctl(self.fd, UFFDIO_COPY as _, copy.as_mut_ptr()) };
        ensure!(r == 0, "UFFDIO_COPY: {}", std::io::Error::last_os_error());
        Ok(())
    }
}

impl Drop for Uffd {
    fn drop(&mut self) {
        // SAFETY: unmapping our mapping and closing our fd.
        unsafe {
            libc::munmap(self.addr as *mut _, self.len);
            libc::close(self.fd);
        }
    }
}

/// A filter installed before a fork is shared by parent and child:
/// registering it for one of them would let a switch rewrite the other's.
/// EBUSY; once the other process is gone, registering works.
pub fn register_of_shared_filter_is_refused() -> Outcome {
    let dev = dev()?;
    let fd = dev.0;
    // The child installs a filter, then forks a grandchild sharing it.
    let ops: Vec<raw::Op> = vec![
        Box::new(|| {
            // SAFETY: the grandchild only pauses until it is killed.
            match unsafe { libc::fork() } {
                0 => loop {
                    // SAFETY: plain pause.
                    unsafe { libc::pause() };
                },
                pid => pid as i64,
            }
        }),
        Box::new(|| {
            // SAFETY: killing and reaping our own child (any).
            unsafe {
                let mut st = 0;
                let pid = libc::wait(&mut st);
                pid as i64
            }
        }),
    ];
    let c = RawContainer::start(&raw::allow_all(), || {}, ops)?;
    let g = c.ask(0)?;
    ensure!(g > 0, "the fork inside the container failed");
    let e = raw::register(fd, "shared", c.pid, 1);
    // SAFETY: killing the grandchild (reaped by its parent below).
    unsafe { libc::kill(g as i32, libc::SIGKILL) };
    let reaped = c.ask(1)?;
    ensure!(e == libc::EBUSY, "register of a filter shared with pid {g} gave errno {e}, want EBUSY");
    ensure!(reaped == g, "the grandchild was not reaped ({reaped})");
    let e = raw::register(fd, "shared", c.pid, 1);
    ensure!(e == 0, "register once the filter is no longer shared gave errno {e}");
    ensure!(raw::unregister(fd, "shared") == 0, "unregister failed");
    drop(c);
    drop(dev);
    Ok(())
}

/// STATUS lists every container's id and pid: root only.
pub fn status_requires_cap_sys_admin() -> Outcome {
    let _p = Probe::start("status-priv", &std_phases(), &[], 1)?;
    let dev = dev()?;
    let fd = dev.0;
    let errno = crate::support::in_child(|| {
        // SAFETY: dropping every privilege in the forked child; the fd stays open.
        unsafe {
            libc::setgroups(0, std::ptr::null());
            if libc::setresgid(65534, 65534, 65534) != 0 || libc::setresuid(65534, 65534, 65534) != 0 {
                return 99;
            }
        }
        let mut entries = [0u8; 4096];
        let mut args = speaker_tests::ioctl::status(entries.as_mut_ptr() as u64, 16, [0; 64]);
        // SAFETY: `args` points to a buffer big enough for 16 entries.
        let r = unsafe { libc::ioctl(fd, speaker::abi::SPEAKER_IOC_STATUS as _, &mut args) };
        if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        }
    });
    drop(dev);
    ensure!(errno == libc::EPERM, "STATUS as uid 65534 gave errno {errno}, want EPERM");
    Ok(())
}

/// Loading the module checks `struct seccomp_filter` against a live filter
/// (read with fault-safe reads), not against zeroed memory.
pub fn layout_is_checked_against_a_live_filter_at_load() -> Outcome {
    let c = RawContainer::start(&raw::allow_all(), || {}, vec![])?;
    // Earlier scenarios' switched containers pin the module until a sweep.
    crate::support::rmmod_within(Duration::from_secs(10))?;
    let mut since = LogSince::now()?;
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0, "insmod failed: {}", o.stderr);
    let new = since.messages();
    ensure!(
        new.iter().any(|l| l.contains("layout: struct seccomp_filter checked against the live filters of pid")),
        "insmod did not check a live filter; it said: {new:?}"
    );
    drop(c);
    Ok(())
}

/// seccomp refuses a chain longer than MAX_INSNS_PER_PATH (32768
/// instructions, 4 more per filter) when a filter is attached; a switch to
/// a longer program would otherwise build such a chain behind its back.
pub fn switch_beyond_max_insns_per_path_is_refused() -> Outcome {
    let dev = dev()?;
    let fd = dev.0;
    let ops: Vec<raw::Op> = vec![Box::new(|| {
        // The application stacks 7 filters of 4096 instructions.
        for i in 0..7 {
            let r = raw::install(&raw::long_allow(4096), 0);
            if r < 0 {
                return -1000 - i;
            }
        }
        0
    })];
    let c = RawContainer::start(&raw::allow_all(), || {}, ops)?;
    ensure!(raw::register(fd, "longpath", c.pid, 1) == 0, "register failed");
    let stacked = c.ask(0)?;
    ensure!(stacked == 0, "stacking the application's filters failed ({stacked})");
    let e = raw::switch(fd, "longpath", &raw::long_allow(4096), 0);
    ensure!(e == libc::ENOMEM, "switch to a 4096-instruction program under 28k stacked instructions gave errno {e}, want ENOMEM");
    let e = raw::switch(fd, "longpath", &raw::deny_getpriority(), 0);
    ensure!(e == 0, "switch to a short program afterwards gave errno {e}");
    drop(c);
    drop(dev);
    Ok(())
}

/// Deferred-free switches, then rmmod at once: refused while the container
/// lives (it keeps the replaced programs), the container stays confined,
/// and once it has exited the module unloads cleanly.
pub fn rmmod_after_deferred_switches_is_safe() -> Outcome {
    let mut trouble_since = LogSince::now()?;
    // The device is opened after the fork: a child holding an inherited fd
    // would keep the module busy by itself.
    let c = RawContainer::start(&raw::allow_all(), || {}, vec![Box::new(raw::getpriority_native)])?;
    let dev = dev()?;
    let fd = dev.0;
    ensure!(raw::register(fd, "deferred", c.pid, 1) == 0, "register failed");
    for i in 0..20 {
        let prog = if i % 2 == 0 { raw::deny_getpriority() } else { raw::long_allow(2 + i) };
        let e = raw::switch(fd, "deferred", &prog, speaker::abi::SWITCH_DEFER_FREE);
        ensure!(e == 0, "deferred switch {i} gave errno {e}");
    }
    ensure!(raw::switch(fd, "deferred", &raw::deny_getpriority(), speaker::abi::SWITCH_DEFER_FREE) == 0, "last switch failed");
    drop(dev);
    let o = run("rmmod", &["speaker"]);
    ensure!(o.code != 0, "rmmod succeeded while the container lives and its replaced programs may be read");
    ensure!(c.ask(0)? == -raw::DENY_ERRNO, "the container is no longer confined after the refused rmmod");
    drop(c);
    rmmod_then_insmod(Duration::from_secs(10))?;
    let trouble = kernel_trouble(&trouble_since.messages().join("\n"));
    ensure!(trouble.is_empty(), "kernel log: {trouble:?}");
    Ok(())
}

/// A compat getpriority (i386's `int $0x80` on x86_64; on arm64 the AArch32
/// program `compat-getpriority`, which runs under the container's filter)
/// is allowed (and cached: the compat half of the action cache) in boot,
/// and denied once the switch returns.
pub fn compat_cached_allow_is_revoked_after_switch() -> Outcome {
    let dev = dev()?;
    let fd = dev.0;
    let c = RawContainer::start(&raw::allow_all(), || {}, vec![Box::new(raw::getpriority_compat)])?;
    ensure!(raw::register(fd, "compat", c.pid, 1) == 0, "register failed");
    let r = c.ask(0)?;
    ensure!(r >= 0, "compat getpriority failed in boot ({r})");
    ensure!(cache::allows(c.pid, cache::Abi::Compat, raw::NR32_GETPRIORITY)?, "boot does not cache compat getpriority");
    ensure!(raw::switch(fd, "compat", &raw::deny_getpriority(), 0) == 0, "switch failed");
    let r = c.ask(0)?;
    ensure!(r == -raw::DENY_ERRNO, "compat getpriority after the switch gave {r}, want -1000");
    ensure!(!cache::allows(c.pid, cache::Abi::Compat, raw::NR32_GETPRIORITY)?, "compat getpriority is still cached after the switch");
    drop(c);
    drop(dev);
    Ok(())
}

/// Memory shared by the TSYNC scenario's parent and child threads.
#[repr(C)]
struct TsyncShared {
    gen: AtomicU64,
    stop: AtomicU64,
    stacked: AtomicU64,
    answered: [AtomicU64; 4],
    result: [AtomicI64; 4],
}

/// Threads stack filters with TSYNC in a loop while the container is
/// switched back and forth; each time a switch to the denying program
/// returns, every thread is denied.
pub fn tsync_stacking_during_switch_is_safe() -> Outcome {
    const THREADS: usize = 4;
    let shared: &TsyncShared = raw::shared()?;
    let sh = shared as *const TsyncShared as usize;
    // Started from inside the confined child, so the threads share its filter.
    let start_threads = move || -> i64 {
        // SAFETY: the mapping outlives the child (never unmapped there).
        let s = unsafe { &*(sh as *const TsyncShared) };
        for t in 0..THREADS {
            std::thread::spawn(move || {
                let mut seen = 0;
                loop {
                    let g = s.gen.load(Ordering::Acquire);
                    if g != seen {
                        s.result[t].store(raw::getpriority_native(), Ordering::Release);
                        s.answered[t].store(g, Ordering::Release);
                        seen = g;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
        std::thread::spawn(move || {
            while s.stop.load(Ordering::Acquire) == 0 {
                if raw::install(&raw::allow_all(), 1 /* SECCOMP_FILTER_FLAG_TSYNC */) < 0 {
                    break;
                }
                s.stacked.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        0
    };
    let dev = dev()?;
    let fd = dev.0;
    let c = RawContainer::start(&raw::allow_all(), || {}, vec![Box::new(start_threads)])?;
    ensure!(raw::register(fd, "tsync", c.pid, 1) == 0, "register failed");
    ensure!(c.ask(0)? == 0, "the container's threads did not start");
    let mut outcome = Ok(());
    for round in 1..=20u64 {
        let deny = round % 2 == 1;
        let prog = if deny { raw::deny_getpriority() } else { raw::allow_all() };
        let e = raw::switch(fd, "tsync", &prog, 0);
        if e != 0 {
            outcome = Err(format!("switch {round} gave errno {e}"));
            break;
        }
        if !deny {
            continue;
        }
        shared.gen.store(round, Ordering::Release);
        let answered = wait_until(&format!("{THREADS} threads to answer round {round}"), Duration::from_secs(30), || {
            shared.answered.iter().all(|a| a.load(Ordering::Acquire) == round)
        });
        if let Err(e) = answered {
            outcome = Err(e);
            break;
        }
        let results: Vec<i64> = shared.result.iter().map(|r| r.load(Ordering::Acquire)).collect();
        if results.iter().any(|&r| r != -raw::DENY_ERRNO) {
            outcome = Err(format!("round {round}: getpriority in the threads gave {results:?}, want -1000 everywhere"));
            break;
        }
    }
    shared.stop.store(1, Ordering::Release);
    let stacked = shared.stacked.load(Ordering::Acquire);
    drop(c);
    drop(dev);
    outcome?;
    ensure!(stacked > 0, "no filter was stacked with TSYNC during the switches");
    Ok(())
}

/// The bytes of a classic program as user space lays it out.
fn prog_bytes(prog: &[libc::sock_filter]) -> Vec<u8> {
    prog.iter()
        .flat_map(|i| {
            let mut b = i.code.to_ne_bytes().to_vec();
            b.extend([i.jt, i.jf]);
            b.extend(i.k.to_ne_bytes());
            b
        })
        .collect()
}

/// A SWITCH of container A whose program sits on a userfaultfd page the
/// caller leaves missing is parked inside the module, in `copy_from_user`.
/// Meanwhile a SWITCH of container B must complete within a second: one
/// slow caller must not stall every container behind the registry lock.
/// Once the page is filled, A's switch completes too.
pub fn switch_of_one_container_does_not_wait_for_another() -> Outcome {
    let dev = dev()?;
    let fd = dev.0;
    let a = RawContainer::start(&raw::allow_all(), || {}, vec![Box::new(raw::getpriority_native)])?;
    let b = RawContainer::start(&raw::allow_all(), || {}, vec![Box::new(raw::getpriority_native)])?;
    ensure!(raw::register(fd, "park-a", a.pid, 1) == 0, "register of A failed");
    ensure!(raw::register(fd, "park-b", b.pid, 1) == 0, "register of B failed");
    // How long an unhindered switch of B takes here (TCG, busy host).
    let t = std::time::Instant::now();
    ensure!(raw::switch(fd, "park-b", &raw::allow_all(), 0) == 0, "the unhindered switch of B failed");
    let unhindered = t.elapsed();
    let deny = raw::deny_getpriority();
    let uffd = Uffd::new(2 * 4096)?;
    let page = uffd.addr;
    let len = deny.len() as u32;
    let parked = std::thread::spawn(move || crate::support::raw_switch(fd, "park-a", page as *const libc::sock_filter, len));
    let fault = uffd.wait_fault(Duration::from_secs(60));
    let mut b_result = None;
    let (tx, rx) = std::sync::mpsc::channel();
    let b_thread = fault.is_ok().then(|| {
        let deny = deny.clone();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let e = raw::switch(fd, "park-b", &deny, 0);
            let _ = tx.send((e, t.elapsed()));
        })
    });
    if b_thread.is_some() {
        b_result = rx.recv_timeout(Duration::from_secs(1)).ok();
    }
    // Always let A go, so that nothing stays parked whatever happened.
    let resolved = uffd.resolve_with(page, &prog_bytes(&deny));
    let a_result = parked.join().map_err(|_| "the parked switch panicked".to_string())?;
    let late = match b_thread {
        Some(h) => {
            let r = rx.recv_timeout(Duration::from_secs(120)).ok();
            let _ = h.join();
            r
        }
        None => None,
    };
    fault?;
    resolved?;
    let Some((e, took)) = b_result else {
        return Err(match late {
            Some((e, took)) => format!(
                "the switch of B waited for A's parked switch: it returned (errno {e}) only after {} ms, once A's page was filled (unhindered: {} ms)",
                took.as_millis(),
                unhindered.as_millis()
            ),
            None => "the switch of B never returned".into(),
        });
    };
    println!("  switch of B: {} ms while A's switch was parked ({} ms unhindered)", took.as_millis(), unhindered.as_millis());
    ensure!(e == 0, "the switch of B gave errno {e}");
    ensure!(a_result == 0, "the parked switch of A gave errno {a_result} once its page was filled");
    ensure!(a.ask(0)? == -raw::DENY_ERRNO, "A does not deny getpriority after its switch");
    ensure!(b.ask(0)? == -raw::DENY_ERRNO, "B does not deny getpriority after its switch");
    drop((a, b));
    drop(dev);
    Ok(())
}

/// REGISTER takes what a container is: the top filter of a task in a
/// non-initial PID namespace, or a filter bearing speaker's mark.  A host
/// process's own sandbox (sshd's privilege separation, a browser's, a
/// systemd `SystemCallFilter=`: initial PID namespace, a plain filter) is
/// refused with EPERM, so no switch can ever loosen it.
pub fn register_of_a_host_sandbox_is_refused() -> Outcome {
    let dev = dev()?;
    let fd = dev.0;
    let ops = || -> Vec<raw::Op> { vec![Box::new(raw::getpriority_native)] };
    let host = RawContainer::start_as(raw::Kind::Plain, &raw::deny_getpriority(), || {}, ops())?;
    let e = raw::register(fd, "host-sandbox", host.pid, 1);
    if e == 0 {
        let _ = raw::unregister(fd, "host-sandbox");
    }
    ensure!(e == libc::EPERM, "register of a host process's own sandbox (initial PID namespace, no mark) gave errno {e}, want EPERM");
    ensure!(host.ask(0)? == -raw::DENY_ERRNO, "the host sandbox no longer denies getpriority");
    drop(host);
    let ns = RawContainer::start_as(raw::Kind::PidNs, &raw::allow_all(), || {}, ops())?;
    let e = raw::register(fd, "pidns", ns.pid, 1);
    ensure!(e == 0, "register of the first process of a PID namespace gave errno {e}");
    ensure!(raw::switch(fd, "pidns", &raw::deny_getpriority(), 0) == 0, "switch of the PID-namespace container failed");
    ensure!(ns.ask(0)? == -raw::DENY_ERRNO, "the PID-namespace container does not deny getpriority after its switch");
    ensure!(raw::unregister(fd, "pidns") == 0, "unregister failed");
    drop(ns);
    let marked = RawContainer::start(&raw::allow_all(), || {}, ops())?;
    let e = raw::register(fd, "marked", marked.pid, 1);
    ensure!(e == 0, "register of a filter with speaker's mark gave errno {e}");
    ensure!(raw::unregister(fd, "marked") == 0, "unregister failed");
    drop(marked);
    drop(dev);
    Ok(())
}

/// `speaker-ctl run` is a boundary for files and devices: root in the
/// container (Docker's default capabilities) cannot write a host file
/// outside its volumes, nor a kernel setting under /proc/sys, nor make a
/// device node (no CAP_MKNOD); given CAP_MKNOD, a node it makes in a volume
/// cannot be opened (volumes are nodev).  Its volume is writable.
pub fn run_container_cannot_write_host_files_or_make_devices() -> Outcome {
    let vol = "/tmp/c/rofs";
    let _ = fs::remove_dir_all(vol);
    fs::create_dir_all(vol).map_err(|e| e.to_string())?;
    let _ = fs::remove_file("/etc/speaker-rofs");
    let b = crate::profiles::deny_profile("rofs", &["sysinfo"], "SCMP_ACT_ERRNO");
    // Each line: what was tried, then its exit status (0: it worked).
    let script = format!(
        "t() {{ w=$1; shift; \"$@\" 2>/dev/null; echo \"$w $?\"; }}; \
         t etc sh -c 'echo x > /etc/speaker-rofs'; \
         t vol sh -c 'echo x > {vol}/ok'; \
         t sysctl sh -c 'echo 3 > /proc/sys/vm/drop_caches'; \
         t mknod-dev mknod /dev/speaker-rofs c 1 3; \
         t mknod-vol mknod {vol}/null c 1 3; \
         t open-vol-node sh -c 'echo x > {vol}/null'"
    );
    let go = |extra: &[&str]| -> Result<String, String> {
        let bs = b.to_str().unwrap();
        let mut args = vec!["run", "--name", "rofs", "--volume", vol, "--boot", bs, "--running", bs];
        args.extend(extra);
        args.extend(["--", "sh", "-c", script.as_str()]);
        crate::support::ctl_ok(&args)
    };
    let out = go(&[])?;
    let status = |what: &str, out: &str| -> String {
        out.lines().find_map(|l| l.strip_prefix(&format!("{what} "))).unwrap_or("missing").trim().to_string()
    };
    ensure!(status("vol", &out) == "0", "writing the volume failed: {out:?}");
    ensure!(fs::read_to_string(format!("{vol}/ok")).map(|s| s == "x\n").unwrap_or(false), "the volume's file is not on the host");
    for what in ["etc", "sysctl", "mknod-dev", "mknod-vol"] {
        ensure!(status(what, &out) != "0" && status(what, &out) != "missing", "root in the container could do '{what}': {out:?}");
    }
    ensure!(!std::path::Path::new("/etc/speaker-rofs").exists(), "the container wrote /etc/speaker-rofs on the host");
    // (The last step, writing to the node, makes a plain file when there is
    // no node.)
    let node = format!("{vol}/null");
    let is_device =
        |p: &str| fs::symlink_metadata(p).map(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type())).unwrap_or(false);
    ensure!(!is_device(&node), "the container made a device node in its volume");
    let _ = fs::remove_file(&node);
    // With CAP_MKNOD the node is made, but the volume is nodev.
    let out = go(&["--cap-add", "MKNOD"])?;
    ensure!(status("mknod-vol", &out) == "0" && is_device(&node), "with CAP_MKNOD, mknod in the volume failed: {out:?}");
    ensure!(status("open-vol-node", &out) != "0", "a device node made in a volume could be opened: {out:?}");
    let _ = fs::remove_dir_all(vol);
    Ok(())
}
