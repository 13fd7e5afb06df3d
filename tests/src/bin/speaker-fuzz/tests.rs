//! Host-side unit tests of the fuzzer's pieces (random stream, programs,
//! commands, bad pointers, errno names).

use speaker_tests::abi;

use crate::pointers::{arena, bad_pointer};
use crate::progs::{malformed_prog, valid_prog};
use crate::rng::Rng;
use crate::stats::errno_name;
use crate::worker::{close, random_cmd};

#[test]
fn the_same_seed_gives_the_same_stream() {
    let (mut a, mut b) = (Rng::new(42), Rng::new(42));
    let xs: Vec<u64> = (0..100).map(|_| a.next()).collect();
    let ys: Vec<u64> = (0..100).map(|_| b.next()).collect();
    assert_eq!(xs, ys);
    assert_ne!(Rng::new(43).next(), xs[0]);
    let mut r = Rng::new(7);
    assert!((0..1000).all(|_| r.below(10) < 10));
}

/// Loads `prog` as a seccomp filter in a forked child: whether the kernel
/// accepts it.  A refused filter makes the child exit 7; an accepted one
/// may deny or kill the exit itself, so anything else means accepted.
fn kernel_accepts(prog: &[libc::sock_filter]) -> bool {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
    // SAFETY: the child only sets no_new_privs, loads the filter and _exits.
    unsafe {
        match libc::fork() {
            0 => {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let r = libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog);
                libc::_exit(if r == 0 { 0 } else { 7 })
            }
            pid => {
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
                !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7)
            }
        }
    }
}

#[test]
fn valid_programs_are_accepted_by_seccomp() {
    let mut r = Rng::new(1);
    for _ in 0..40 {
        let p = valid_prog(&mut r);
        assert!(kernel_accepts(&p), "refused: {:?}", p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect::<Vec<_>>());
    }
}

#[test]
fn malformed_programs_are_mostly_refused_and_span_the_lengths() {
    let mut r = Rng::new(2);
    let progs: Vec<Vec<libc::sock_filter>> = (0..200).map(|_| malformed_prog(&mut r)).collect();
    assert!(progs.iter().any(|p| p.is_empty()) && progs.iter().any(|p| p.len() > 4096));
    let refused = progs.iter().filter(|p| p.len() <= 4096 && !p.is_empty()).filter(|p| !kernel_accepts(p)).count();
    let tried = progs.iter().filter(|p| p.len() <= 4096 && !p.is_empty()).count();
    assert!(refused * 10 >= tried * 9, "only {refused} of {tried} malformed programs were refused");
}

#[test]
fn random_commands_cover_speaker_and_other_magics_but_not_vfs_ones() {
    let mut r = Rng::new(3);
    let cmds: Vec<u32> = (0..10_000).map(|_| random_cmd(&mut r)).collect();
    let magic = |c: u32| (c >> 8) & 0xff;
    assert!(cmds.iter().filter(|&&c| magic(c) == abi::SPEAKER_IOC_MAGIC).count() > 5000);
    assert!(cmds.iter().filter(|&&c| magic(c) != abi::SPEAKER_IOC_MAGIC).count() > 1000);
    assert!(cmds.iter().all(|&c| ![0x00, 0x15, 0x58, 0x66, 0x94, 0x54].contains(&magic(c))));
    for known in [abi::SPEAKER_IOC_VERSION, abi::SPEAKER_IOC_SWITCH, abi::SPEAKER_IOC_STATUS] {
        assert!(cmds.contains(&known), "{known:#x} never drawn");
    }
}

#[test]
fn bad_pointers_are_refused_by_the_kernel() {
    let mut r = Rng::new(4);
    for _ in 0..50 {
        let p = bad_pointer(&mut r, true);
        // The two pointers straddling the end of the mapping are partly valid.
        if p == arena().edge || p == arena().unmapped - 1 {
            continue;
        }
        let fd = dev_zero();
        // SAFETY: a read into `p`: the kernel must refuse to write there.
        let n = unsafe { libc::read(fd, p as *mut _, 8) };
        close(fd);
        assert_eq!(n, -1, "read into {p:#x} succeeded");
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EFAULT), "read into {p:#x}");
    }
}

fn dev_zero() -> i32 {
    // SAFETY: opening a path literal.
    unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

#[test]
fn errno_names_are_known() {
    assert_eq!(errno_name(libc::EFAULT), "EFAULT");
    assert_eq!(errno_name(0), "OK");
    assert_eq!(errno_name(4000), "errno4000");
}
