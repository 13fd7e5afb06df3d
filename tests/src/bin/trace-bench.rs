//! trace-bench: what tracing costs a syscall-heavy program, in one run
//! inside the VM (`qemu/run --timeout 900 -- trace-bench [N]`).
//!
//! Times `syscall-loop N` (N `getppid` syscalls, default 100000) untraced,
//! under `speaker-ctl trace --mode ptrace` (a stop at every syscall entry
//! and exit), under `--mode filter` (seccomp traps each syscall about once
//! per phase; needs speaker.ko) and under `strace -f -c -o /dev/null`, and
//! prints a table.  Each command is also timed with N = 0, so that the
//! per-syscall cost ((t(N) - t(0)) / N) is told apart from the fixed cost
//! of starting the tracer and tracing the program's startup (in filter
//! mode, one filter compilation and switch per new syscall).  Commands that
//! take less than 10 s are timed three times (the best time counts).
//!
//! The default N is 10^5, not 10^6: under QEMU's TCG a ptrace stop costs
//! about a millisecond, so 10^6 syscalls under `--mode ptrace` or strace
//! take more than 15 minutes each.
//!
//! A benchmark, not a test: it fails only when a command fails.
use std::process::{Command, Stdio};
use std::time::Instant;

struct Row {
    name: &'static str,
    cmd: Vec<String>,
}

/// Runs `cmd`; its best wall-clock time in seconds (of three runs when it
/// is fast).
fn time(cmd: &[String]) -> Result<f64, String> {
    let mut best = time_once(cmd)?;
    for _ in 0..2 {
        if best >= 10.0 {
            break;
        }
        best = best.min(time_once(cmd)?);
    }
    Ok(best)
}

fn time_once(cmd: &[String]) -> Result<f64, String> {
    let start = Instant::now();
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cmd[0]))?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{} failed ({}): {}", cmd.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(secs)
}

fn main() {
    let n: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 100_000,
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("usage: trace-bench [N]");
            std::process::exit(2);
        }
    };
    let dir = std::env::temp_dir().join("trace-bench");
    let _ = std::fs::create_dir_all(&dir);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let out = |m: &str| dir.join(format!("{m}.json")).display().to_string();
    let strace = ["/usr/bin/strace", "/bin/strace"].into_iter().find(|p| std::path::Path::new(p).exists());
    let mut rows = vec![
        Row { name: "untraced", cmd: vec![] },
        Row { name: "ptrace", cmd: s(&["speaker-ctl", "trace", "--mode", "ptrace", "--one-shot", "-o", &out("ptrace"), "--"]) },
        Row { name: "filter", cmd: s(&["speaker-ctl", "trace", "--mode", "filter", "--one-shot", "-o", &out("filter"), "--"]) },
    ];
    // The comparison is the point of the benchmark: without strace it fails
    // (qemu/run puts the host's strace, installed by scripts/setup, in the guest).
    let Some(p) = strace else {
        eprintln!("trace-bench: strace not found (/usr/bin/strace); run scripts/setup and qemu/run again");
        std::process::exit(1);
    };
    rows.push(Row { name: "strace", cmd: s(&[p, "-f", "-c", "-o", "/dev/null"]) });

    println!("trace-bench: syscall-loop {n} (getppid), wall-clock seconds");
    println!("{:<10} {:>10} {:>10} {:>12} {:>10} {:>12}", "mode", "t(0) s", "t(N) s", "per call", "slowdown", "total ratio");
    let mut base: Option<(f64, f64)> = None;
    let mut failed = false;
    for r in &rows {
        let with = |k: u64| {
            let mut c = r.cmd.clone();
            c.extend(["syscall-loop".to_string(), k.to_string()]);
            c
        };
        let (t0, tn) = match (time(&with(0)), time(&with(n))) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                println!("{:<10} failed: {e}", r.name);
                failed = true;
                continue;
            }
        };
        let per = ((tn - t0) / n as f64).max(0.0);
        let (bper, btotal) = *base.get_or_insert((per, tn));
        println!("{:<10} {:>10.3} {:>10.3} {:>9.2} us {:>9.1}x {:>11.1}x", r.name, t0, tn, per * 1e6, per / bper, tn / btotal);
    }
    std::process::exit(i32::from(failed));
}
