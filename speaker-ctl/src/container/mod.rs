//! Containers speaker runs itself (`speaker-ctl run`), their on-disk state
//! under `/run/speaker/`, and phase switches through speaker.ko.
pub mod launch;
pub mod phases;
pub mod seccomp;
pub mod state;
