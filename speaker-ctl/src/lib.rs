//! speaker: split-phase seccomp for containers (library behind speaker-ctl).
pub mod abi;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod container;
pub mod device;
pub mod profile;
pub mod runtime;
pub mod sys;
pub mod trace;
