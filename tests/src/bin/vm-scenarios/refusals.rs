//! Scenarios of safety and refusals: switches under load and around exits
//! and rmmod, unprivileged callers, bad pointers, malformed and oversized
//! programs, unknown containers, bad speaker-ctl input.

use std::fs;
use std::time::{Duration, Instant};

use speaker::abi;
use speaker::device::encode_cid;
use speaker_tests::guest::{kernel_trouble, run, LogSince, Outcome};
use speaker_tests::{ensure, ioctl};

use crate::probe::Probe;
use crate::profiles::{std_phases, ALLOWED, DENY};
use crate::support::{ctl, ctl_ok, errno_of, in_child, insn, one_line_error, open_dev, raw_switch, rmmod_within, wait_until};

/// Container `cid`'s compiled program for `phase`, as speaker-ctl saved it
/// in the container's state directory (`struct sock_filter`s, native order).
fn saved_prog(cid: &str, phase: &str) -> Result<Vec<libc::sock_filter>, String> {
    let path = format!("/run/speaker/{cid}/{phase}.bpf");
    let b = fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    ensure!(!b.is_empty() && b.len() % 8 == 0, "{path}: {} bytes is no program", b.len());
    Ok(b.chunks_exact(8)
        .map(|c| insn(u16::from_ne_bytes([c[0], c[1]]), c[2], c[3], u32::from_ne_bytes([c[4], c[5], c[6], c[7]])))
        .collect())
}

pub fn switch_under_syscall_storm_is_safe() -> Outcome {
    // What the kernel logs from here on (not a count of dmesg's lines: the
    // ring buffer may wrap meanwhile and drop earlier ones).
    let mut since = LogSince::now()?;
    // The storm starts once both containers run and stops before they do:
    // a container started or stopped beside 64 storming threads took most
    // of the scenario's time (29 of its 61 s alone in a guest).
    let mut c1 = Probe::start("storm-1", &std_phases(), &["--threads", "32", "--storm"], 1)?;
    let mut c2 = Probe::start("storm-2", &std_phases(), &["--threads", "32", "--storm"], 1)?;
    storm(&mut [&mut c1, &mut c2], "on", "storming 32")?;
    let start = Instant::now();
    // 100 switches of each container, both at once: the two containers'
    // switches interleave in the module.  One in ten goes through
    // `speaker-ctl switch` and waits for its RCU-tasks grace period; the
    // others are the same programs swapped straight through the ioctl
    // without the wait (SWITCH_DEFER_FREE, as the tracer's): a speaker-ctl
    // process gets little CPU beside 64 storming threads under TCG (200 of
    // them took 4 to 5 minutes), and what is under test is the swap.
    fn each(c: &Probe) -> Outcome {
        let progs = [saved_prog(&c.cid, "running")?, saved_prog(&c.cid, "boot")?];
        let fd = open_dev()?;
        let mut outcome = Ok(());
        for i in 0..100 {
            let to = if i % 2 == 0 { "running" } else { "boot" };
            if i % 10 == 0 {
                outcome = c.switch(to).map(drop);
            } else {
                let e = crate::raw::switch(fd, &c.cid, &progs[i % 2], abi::SWITCH_DEFER_FREE);
                if e != 0 {
                    outcome = Err(format!("switch {i} of {} to {to} (deferred): errno {e}", c.cid));
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
        outcome
    }
    std::thread::scope(|s| {
        let a = s.spawn(|| each(&c1));
        let b = s.spawn(|| each(&c2));
        let (a, b) = (a.join(), b.join());
        a.map_err(|_| "the switching thread of storm-1 panicked".to_string())??;
        b.map_err(|_| "the switching thread of storm-2 panicked".to_string())?
    })?;
    let took = start.elapsed();
    ensure!(c1.alive() && c2.alive(), "a storm container died");
    storm(&mut [&mut c1, &mut c2], "off", "calm")?;
    let trouble = kernel_trouble(&since.messages().join("\n"));
    ensure!(trouble.is_empty(), "kernel log after 200 switches: {trouble:?}");
    println!("  200 switches under storm in {:.1}s", took.as_secs_f64());
    Ok(())
}

/// `storm on|off` sent to each probe at once; each must answer `want`.
fn storm(probes: &mut [&mut Probe], state: &str, want: &str) -> Outcome {
    let sent: Vec<u64> = probes.iter_mut().map(|p| p.send(&format!("storm {state}"))).collect();
    for (p, gen) in probes.iter().zip(sent) {
        let name = format!("{gen}.p0t0");
        wait_until(&format!("{} to answer 'storm {state}'", p.cid), Duration::from_secs(180), || p.result(&name).is_some())?;
        let got = p.result(&name).unwrap_or_default();
        ensure!(got == want, "{}: 'storm {state}' gave {got:?} (want {want:?})", p.cid);
    }
    Ok(())
}

pub fn exited_container_is_forgotten() -> Outcome {
    let mut p = Probe::start("exits", &std_phases(), &["--threads", "2"], 3)?;
    ensure!(ctl_ok(&["status"])?.contains("exits"), "status does not list the container");
    p.send("exit");
    p.wait_gone()?;
    let st = ctl_ok(&["status"])?;
    ensure!(!st.contains("exits"), "status still lists the exited container: {st}");
    let o = ctl(&["switch", "exits"]);
    ensure!(
        o.code != 0 && o.stderr.contains("exits") && o.stderr.trim().lines().count() == 1,
        "switch of exited: {} {:?}",
        o.code,
        o.stderr
    );
    Ok(())
}

pub fn rmmod_with_live_container_is_safe() -> Outcome {
    let mut since = LogSince::now()?;
    let mut p = Probe::start("survivor", &std_phases(), &["--threads", "4"], 5)?;
    p.switch("running")?;
    // speaker.ko keeps the replaced boot program until the container's
    // filter dies (a PTRACE_SECCOMP_GET_FILTER reader may hold it), so it
    // refuses to unload meanwhile.
    let o = run("rmmod", &["speaker"]);
    ensure!(o.code != 0, "rmmod succeeded while a switched container lives");
    // The container keeps its current (running) filter.
    p.expect_all("sys getpriority", DENY)?;
    p.expect_all("sys getppid", ALLOWED)?;
    let g = p.gen + 1;
    p.main("fork getpriority")?;
    ensure!(p.result(&format!("{g}.forked")).as_deref() == Some(DENY), "child forked after rmmod: {:?}", p.result(&format!("{g}.forked")));
    p.send("exit");
    p.wait_gone()?;
    // Once it has exited, the module unloads (within a sweep) and loads again.
    rmmod_within(Duration::from_secs(10))?;
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0, "insmod again failed: {}", o.stderr);
    let trouble = kernel_trouble(&since.messages().join("\n"));
    ensure!(trouble.is_empty(), "kernel log: {trouble:?}");
    Ok(())
}

pub fn switch_by_unprivileged_caller_is_refused() -> Outcome {
    let _p = Probe::start("unpriv", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    let prog = [insn(0x06, 0, 0, 0x7fff_0000)];
    let errno = in_child(|| {
        // SAFETY: dropping every privilege in the forked child; the fd stays open.
        unsafe {
            libc::setgroups(0, std::ptr::null());
            if libc::setresgid(65534, 65534, 65534) != 0 || libc::setresuid(65534, 65534, 65534) != 0 {
                return 99;
            }
        }
        raw_switch(fd, "unpriv", prog.as_ptr(), 1)
    });
    ensure!(errno == libc::EPERM, "switch as uid 65534 gave errno {errno}, want EPERM");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

pub fn bad_user_pointer_returns_efault() -> Outcome {
    let mut p = Probe::start("efault", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    // SAFETY: deliberately bad pointers; the module must not dereference them unchecked.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_SWITCH as _, 8usize) } as i64);
    ensure!(e == libc::EFAULT, "switch with args at 0x8: errno {e}");
    let e = raw_switch(fd, "efault", 0x1000 as *const _, 4);
    ensure!(e == libc::EFAULT, "switch with program at 0x1000: errno {e}");
    // SAFETY: as above.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_VERSION as _, 16usize) } as i64);
    ensure!(e == libc::EFAULT, "version to 0x10: errno {e}");
    let mut st = ioctl::status(0x1000, 4, [0; abi::CID_LEN]);
    // SAFETY: `st` is valid; its entries pointer is not.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_STATUS as _, &mut st) } as i64);
    ensure!(e == libc::EFAULT, "status into 0x1000: errno {e}");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    p.expect_all("sys getpriority", ALLOWED)?;
    Ok(())
}

pub fn malformed_program_returns_einval() -> Outcome {
    let mut p = Probe::start("einval", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    let ret_allow = insn(0x06, 0, 0, 0x7fff_0000);
    let cases: Vec<(&str, Vec<libc::sock_filter>)> = vec![
        ("unknown opcode", vec![insn(0xffff, 0, 0, 0), ret_allow]),
        ("load outside seccomp_data", vec![insn(0x20, 0, 0, 64), ret_allow]),
        ("misaligned load", vec![insn(0x20, 0, 0, 2), ret_allow]),
        ("jump past the end", vec![insn(0x15, 5, 5, 0), ret_allow]),
        ("no return at the end", vec![insn(0x20, 0, 0, 0)]),
        ("socket-only load (BPF_LD|BPF_B|BPF_ABS)", vec![insn(0x30, 0, 0, 0), ret_allow]),
        ("indirect load (BPF_LD|BPF_W|BPF_IND)", vec![insn(0x40, 0, 0, 0), ret_allow]),
    ];
    for (what, prog) in &cases {
        let e = raw_switch(fd, "einval", prog.as_ptr(), prog.len() as u32);
        ensure!(e == libc::EINVAL, "{what}: errno {e}, want EINVAL");
    }
    let e = raw_switch(fd, "einval", [ret_allow].as_ptr(), 0);
    ensure!(e == libc::EINVAL, "empty program: errno {e}, want EINVAL");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    // The container still runs its boot program.
    p.expect_all("sys getpriority", ALLOWED)?;
    p.expect_all("sys sysinfo", DENY)?;
    Ok(())
}

pub fn oversized_program_is_refused() -> Outcome {
    let _p = Probe::start("e2big", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    let prog = vec![insn(0x06, 0, 0, 0x7fff_0000); 4097];
    let e = raw_switch(fd, "e2big", prog.as_ptr(), 4097);
    ensure!(e == libc::E2BIG, "4097 instructions: errno {e}, want E2BIG");
    let e = raw_switch(fd, "e2big", prog.as_ptr(), u32::MAX);
    ensure!(e == libc::E2BIG, "u32::MAX instructions: errno {e}, want E2BIG");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

pub fn unknown_container_returns_esrch() -> Outcome {
    let fd = open_dev()?;
    let prog = [insn(0x06, 0, 0, 0x7fff_0000)];
    let e = raw_switch(fd, "no-such-container", prog.as_ptr(), 1);
    ensure!(e == libc::ESRCH, "unknown container: errno {e}, want ESRCH");
    let args = ioctl::unregister(encode_cid("no-such-container").unwrap());
    // SAFETY: valid CidArgs.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_UNREGISTER as _, &args) } as i64);
    ensure!(e == libc::ESRCH, "unregister unknown: errno {e}, want ESRCH");
    let bad = ioctl::register(encode_cid("ghost").unwrap(), 999_999, 1, 0, 0);
    // SAFETY: valid RegisterArgs naming a PID that does not exist.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_REGISTER as _, &bad) } as i64);
    ensure!(e == libc::ESRCH, "register of a missing pid: errno {e}, want ESRCH");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

pub fn ctl_reports_bad_input_clearly() -> Outcome {
    one_line_error(&ctl(&["switch", "nosuch"]), "nosuch")?;
    one_line_error(&ctl(&["status", "nosuch"]), "nosuch")?;
    fs::write("/tmp/profiles/broken.json", "{ not json").unwrap();
    one_line_error(&ctl(&["run", "--name", "x", "--profile", "/tmp/profiles/broken.json", "--", "true"]), "/tmp/profiles/broken.json")?;
    one_line_error(&ctl(&["run", "--name", "x", "--profile", "/tmp/profiles/missing.json", "--", "true"]), "/tmp/profiles/missing.json")?;
    let [b, r, _] = std_phases();
    let o = ctl(&["run", "--name", "x", "--boot", b.to_str().unwrap(), "--running", r.to_str().unwrap(), "--", "/no/such/binary"]);
    one_line_error(&o, "/no/such/binary")?;
    ensure!(!ctl_ok(&["status"])?.contains(" x "), "a failed run left container x registered");
    Ok(())
}
