//! Shared system helpers, built on nix: files, processes, signals and
//! /proc.  The bottom layer: it imports nothing else from the crate.
pub mod audit;
pub mod duration;
pub mod fs;
pub mod kmsg;
pub mod mount_attr;
pub mod output;
pub mod poll;
pub mod process;
pub mod procfs;
pub mod signals;
