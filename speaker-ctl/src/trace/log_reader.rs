//! `--ready log:REGEX`: the traced tree's output goes through pipes to
//! speaker-ctl, which echoes it and watches for the ready line.
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use regex::Regex;

/// Copies the traced tree's output from `pipe` to our stdout (`to_stderr`
/// false) or stderr as it comes, and while `matching` is set looks for a
/// line matching `re`, setting `ready` on the first one.
pub fn spawn_log_reader(pipe: OwnedFd, to_stderr: bool, re: Regex, ready: Arc<AtomicBool>) -> JoinHandle<()> {
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
