//! The `/dev/speaker` ioctl ABI, shared with the module: this includes the
//! module's own definition (`speaker-kmod/abi.rs`).  `device.rs` encodes the
//! numbers a second, independent way (nix) and the tests below check that
//! both agree.
#[path = "../../speaker-kmod/abi.rs"]
mod kmod_abi;
pub use kmod_abi::*;
