//! syscall-loop: `syscall-loop N` makes N `getppid` syscalls (through
//! `libc::syscall`, so no libc caching gets in the way) and exits 0: the
//! syscall-heavy payload of `trace-bench`.
fn main() {
    let n: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: syscall-loop N");
            std::process::exit(2);
        }
    };
    let mut sum: i64 = 0;
    for _ in 0..n {
        // SAFETY: getppid takes no arguments and cannot fail.
        sum = sum.wrapping_add(unsafe { libc::syscall(libc::SYS_getppid) });
    }
    std::hint::black_box(sum);
}
