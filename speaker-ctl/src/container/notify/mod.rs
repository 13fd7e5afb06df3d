//! The notify engine (see [`super::engine`]): phases without speaker.ko,
//! through seccomp user notification.
//!
//! - [`filter`]: the one filter a container gets (running phase → allow,
//!   everything else → notify);
//! - [`policy`]: what each phase lets run (the supervisor's table);
//! - [`phase`]: the container's current phase and mode as the supervisor
//!   reads it (a switch writes it);
//! - [`supervisor`]: answers notifications and records denials;
//! - [`listener`]: the system calls (all of the engine's `unsafe`);
//! - [`run`]: the listener's hand-over for `speaker-ctl run`.
pub mod filter;
pub mod listener;
pub mod phase;
pub mod policy;
pub mod run;
pub mod supervisor;

pub use policy::{NotifyPolicy, Verdict};
