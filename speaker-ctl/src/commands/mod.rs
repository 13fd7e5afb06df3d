//! One file and one `run` function per speaker-ctl verb. Each returns the
//! process exit status (the convention: `cli::EXIT_STATUS`); standard
//! output is written through `sys::output` (`outln!`), never `println!`,
//! so that a closed pipe ends a command quietly instead of panicking.
pub mod bench;
pub mod denials;
pub mod docs;
pub mod learn;
pub mod profile;
pub mod run;
pub mod signal;
pub mod status;
pub mod stop;
pub mod switch;
pub mod trace;
pub mod version;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the panic hook has reported a closed standard output.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// The last resort: a panic (a bug) is reported as one line on stderr
/// instead of Rust's message and backtrace hint.  A `println!` that
/// clippy's rule (speaker-ctl/clippy.toml) let through (bench's progress)
/// and that found standard output closed by its reader ends the program
/// quietly with 0; any other failed write to stdout or stderr is an error
/// (exit 1), not a success.
pub fn install_panic_hook(prog: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            STDOUT_CLOSED.store(true, Ordering::SeqCst);
            std::process::exit(0);
        }
        if msg.starts_with("failed printing to std") {
            let what = msg.replace("failed printing to stdout", "standard output").replace("failed printing to stderr", "standard error");
            let line = format!("{prog}: error: cannot write to {what}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            std::process::exit(1);
        }
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let line = format!("{prog}: internal error: {}{at}; please report it\n", msg.replace('\n', " "));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }));
}

/// Runs `f`, turning a panic on this thread (already reported by the hook)
/// into an error exit.
pub fn guarded(f: impl FnOnce() -> anyhow::Result<i32>) -> anyhow::Result<i32> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => std::process::exit(1),
    }
}
