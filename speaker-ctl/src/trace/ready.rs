//! Readiness probes that end the boot phase: a listening TCP port, a shell
//! command that succeeds, a log line.  (`auto` lives in the session loop.)
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use regex::Regex;

/// Local ports in LISTEN state (`st` 0A) in a `/proc/<pid>/net/tcp{,6}` text.
pub fn listening_ports(text: &str) -> impl Iterator<Item = u16> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut f = line.split_whitespace();
        let local = f.nth(1)?;
        let state = f.nth(1)?;
        if state != "0A" {
            return None;
        }
        let port = local.rsplit_once(':')?.1;
        u16::from_str_radix(port, 16).ok()
    })
}

/// Whether a TCP socket listens on `port` in the network namespace of `pid`.
/// `None` if `pid`'s files cannot be read (it is gone).
pub fn port_listening(pid: i32, port: u16) -> Option<bool> {
    let mut any = false;
    for f in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) {
            any = true;
            if listening_ports(&text).any(|p| p == port) {
                return Some(true);
            }
        }
    }
    any.then_some(false)
}

/// Polls `sh -c CMD` (outside the traced tree, output discarded) every
/// `interval` until it exits 0 (then sets `ready`) or `stop` is set.
pub fn spawn_cmd_poller(
    cmd: String,
    interval: Duration,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    current: Arc<AtomicI32>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            let child = Command::new("/bin/sh")
                .arg("-c")
                .arg(&cmd)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn();
            let Ok(mut child) = child else {
                return;
            };
            current.store(child.id() as i32, Ordering::Release);
            let ok = child.wait().map(|s| s.success()).unwrap_or(false);
            current.store(0, Ordering::Release);
            if ok {
                ready.store(true, Ordering::Release);
                return;
            }
            std::thread::sleep(interval);
        }
    })
}

/// Copies the traced tree's output from `pipe` to our stdout (`to_stderr`
/// false) or stderr as it comes, and while `matching` is set looks for a
/// line matching `re`, setting `ready` on the first one.
pub fn spawn_log_reader(
    pipe: OwnedFd,
    to_stderr: bool,
    re: Regex,
    ready: Arc<AtomicBool>,
) -> JoinHandle<()> {
    const MAX_LINE: usize = 64 * 1024;
    std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(pipe);
        let mut buf = vec![0u8; 16 * 1024];
        let mut line: Vec<u8> = Vec::new();
        let check = |line: &mut Vec<u8>| {
            if !ready.load(Ordering::Acquire) {
                let text = String::from_utf8_lossy(line);
                if re.is_match(text.trim_end_matches(['\n', '\r'])) {
                    ready.store(true, Ordering::Release);
                }
            }
            line.clear();
        };
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let data = &buf[..n];
            // Errors (our stdout closed) are ignored: keep draining the pipe
            // so that the service never blocks on a full pipe.
            if to_stderr {
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(data).and_then(|_| e.flush());
            } else {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(data).and_then(|_| o.flush());
            }
            if ready.load(Ordering::Acquire) {
                continue;
            }
            for chunk in data.split_inclusive(|&b| b == b'\n') {
                if line.len() < MAX_LINE {
                    let room = MAX_LINE - line.len();
                    line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                if chunk.ends_with(b"\n") {
                    check(&mut line);
                }
            }
        }
        if !line.is_empty() {
            check(&mut line);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
";
        let ports: Vec<u16> = listening_ports(text).collect();
        assert_eq!(ports, vec![8080]);
        let text6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(listening_ports(text6).collect::<Vec<_>>(), vec![80]);
    }
}
