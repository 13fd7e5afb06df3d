//! speaker: split-phase seccomp for containers (library behind speaker-ctl).
pub mod abi;
// bench's progress lines are println! (it runs in speaker's guest, its
// output read by scripts/bench); a failed write there is reported by the
// panic hook (commands::install_panic_hook), exit 1.
#[allow(clippy::disallowed_macros)]
pub mod bench;
pub mod cli;
pub mod commands;
pub mod container;
pub mod device;
pub mod profile;
pub mod runtime;
pub mod sys;
pub mod trace;
