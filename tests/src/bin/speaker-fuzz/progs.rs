//! Classic BPF programs for the switches: allow-all, valid random filters and
//! malformed ones.

use crate::rng::Rng;

pub fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

pub const RET_ALLOW: u32 = 0x7fff_0000;

pub const BPF_RET_K: u16 = 0x06;

pub const BPF_LD_W_ABS: u16 = 0x20;

pub const BPF_JEQ_K: u16 = 0x15;

pub const BPF_JA: u16 = 0x05;

/// An allow-all program (one of a few equivalent shapes).
pub fn allow_all(rng: &mut Rng) -> Vec<libc::sock_filter> {
    match rng.below(3) {
        0 => vec![insn(BPF_RET_K, 0, 0, RET_ALLOW)],
        1 => vec![insn(BPF_LD_W_ABS, 0, 0, 4), insn(BPF_RET_K, 0, 0, RET_ALLOW)],
        _ => vec![insn(BPF_LD_W_ABS, 0, 0, 0), insn(BPF_JEQ_K, 0, 0, 1000), insn(BPF_RET_K, 0, 0, RET_ALLOW)],
    }
}

/// A program seccomp accepts: allow-all, or one syscall (or all but exit and
/// exit_group) answered with a random action (errno, kill, trap, log,
/// trace, user-notif).
pub fn valid_prog(rng: &mut Rng) -> Vec<libc::sock_filter> {
    if rng.chance(500) {
        return allow_all(rng);
    }
    let actions = [0x0005_0000 | 1000, 0x8000_0000, 0x0003_0000, 0x7ffc_0000, 0x7ff0_0000, 0x7fc0_0000, 0x0000_0000];
    let action = rng.pick(&actions);
    if rng.chance(200) {
        // Every syscall but exit and exit_group: a child switched to it must
        // still be able to end (glibc's _exit falls through to `hlt` when
        // both fail, a user-mode general protection fault that the kernel
        // logs and the harness rightly counts as trouble).
        return vec![
            insn(BPF_LD_W_ABS, 0, 0, 0),
            insn(BPF_JEQ_K, 2, 0, 60),
            insn(BPF_JEQ_K, 1, 0, 231),
            insn(BPF_RET_K, 0, 0, action),
            insn(BPF_RET_K, 0, 0, RET_ALLOW),
        ];
    }
    let any = rng.below(450) as u32;
    let nr = rng.pick(&[39u32, 102, 110, 140, 165, 170, 1000, any]);
    vec![insn(BPF_LD_W_ABS, 0, 0, 0), insn(BPF_JEQ_K, 0, 1, nr), insn(BPF_RET_K, 0, 0, action), insn(BPF_RET_K, 0, 0, RET_ALLOW)]
}

/// A program seccomp (and so speaker) must refuse, or random noise.
pub fn malformed_prog(rng: &mut Rng) -> Vec<libc::sock_filter> {
    // Long programs are built (and refused) under the module's one lock:
    // they are the slowest calls, so a minority.
    let len = match rng.below(20) {
        0..=6 => rng.below(8),
        7..=13 => rng.below(64),
        14..=16 => rng.below(5001),
        _ => rng.pick(&[4095, 4096, 4097, 5000]),
    } as usize;
    let opcodes: [u16; 14] = [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0x15, 0x20, 0x28, 0x30, 0x35, 0x61, 0x87, 0x94];
    let mut p: Vec<libc::sock_filter> = (0..len)
        .map(|_| {
            let code = if rng.chance(700) { rng.pick(&opcodes) } else { rng.next() as u16 };
            let k = if rng.chance(500) { rng.below(64) as u32 * 4 } else { rng.next() as u32 };
            insn(code, rng.next() as u8, rng.next() as u8, k)
        })
        .collect();
    match rng.below(4) {
        // A valid body whose jump leaves the program.
        0 if len >= 2 => {
            p[0] = insn(BPF_JA, 0, 0, len as u32 + rng.below(1000) as u32);
            p[len - 1] = insn(BPF_RET_K, 0, 0, RET_ALLOW);
        }
        1 if len >= 3 => {
            p[len - 2] = insn(BPF_JEQ_K, 200, 255, 1);
            p[len - 1] = insn(BPF_RET_K, 0, 0, RET_ALLOW);
        }
        // No return at the end.
        2 if len >= 1 => p[len - 1] = insn(BPF_LD_W_ABS, 0, 0, 0),
        _ => {}
    }
    p
}

pub static ALLOW_ONE: [libc::sock_filter; 1] = [libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ALLOW }];

/// speaker's mark, then `RET_ALLOW`: what the fuzzer's containers install
/// (REGISTER takes a filter outside a PID namespace only with the mark).
pub static MARKED_ALLOW: [libc::sock_filter; 2] = [
    libc::sock_filter { code: speaker_tests::abi::SPEAKER_MARK_CODE, jt: 0, jf: 0, k: speaker_tests::abi::SPEAKER_MARK_K },
    libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ALLOW },
];
