//! One file and one `run` function per speaker-ctl verb. Each returns the
//! process exit status.
pub mod bench;
pub mod denials;
pub mod learn;
pub mod profile;
pub mod run;
pub mod signal;
pub mod status;
pub mod stop;
pub mod switch;
pub mod trace;
pub mod version;
