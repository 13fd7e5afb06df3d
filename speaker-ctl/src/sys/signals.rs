//! Catching SIGINT, SIGTERM and SIGHUP: the handler only counts them and
//! remembers the last one; the program polls.
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// The signals a foreground speaker-ctl turns into a clean stop.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

static COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    COUNT.fetch_add(1, Ordering::SeqCst);
    LAST.store(sig, Ordering::SeqCst);
}

/// Catches `signals`.  With `restart`, interrupted syscalls restart
/// (`SA_RESTART`); without, blocking calls such as waitpid return EINTR,
/// so that the caller sees the signal at once.
pub fn catch(signals: &[Signal], restart: bool) {
    let flags = if restart { SaFlags::SA_RESTART } else { SaFlags::empty() };
    let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
    for &sig in signals {
        // SAFETY: the handler only touches atomics, which is
        // async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// How many caught signals have arrived so far.
pub fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

/// The last caught signal not taken yet, if any.
pub fn take_last() -> Option<Signal> {
    Signal::try_from(LAST.swap(0, Ordering::SeqCst)).ok()
}

/// Parses a signal as runc/crun do: `TERM`, `SIGTERM`, `15`.
pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().ok().map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_in_every_spelling() {
        for s in ["TERM", "SIGTERM", "term", "15"] {
            assert_eq!(parse(s), Some(libc::SIGTERM), "{s}");
        }
        assert_eq!(parse("INT"), Some(libc::SIGINT));
        assert_eq!(parse("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse("NOPE"), None);
    }
}
