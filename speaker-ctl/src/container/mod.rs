//! Containers: the ones speaker runs itself (`speaker-ctl run`), their
//! on-disk state under `/run/speaker/`, their registration with speaker.ko,
//! their readiness and their phase switches.
pub mod confine;
pub mod denials;
pub mod engine;
pub mod exec_filter;
pub mod launch;
pub mod notify;
pub mod phases;
pub mod ready;
pub mod register;
pub mod reload;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod switch;
