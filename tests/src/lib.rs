//! Shared pieces of speaker's VM tests.
//!
//! * [`guest`]: what the scenario runners inside the VM (`vm-scenarios`,
//!   `vm-trace`) share: running commands, reading the kernel log, and the
//!   output protocol (`SCENARIO <name> PASS|FAIL: why`, then
//!   `SCENARIOS DONE pass=N fail=M`).
//! * [`host`]: what the host-side tests share: booting the VM once per test
//!   binary and asserting one scenario per `#[test]` ([`vm_tests!`]).
//! * [`tap`]: parsing the TAP output of the kernel's kselftests; [`selftests`]:
//!   the host's verdicts on a run of them in the VM.
//! * [`abi`]: speaker.ko's ioctl ABI (`speaker-kmod/abi.rs`, as speaker-ctl
//!   includes it: `speaker::abi`).
//! * [`ioctl`]: the argument structs of that ABI, built for the test binaries.

pub use speaker::abi;

/// Returns `Err(format!(...))` from the enclosing scenario unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

pub mod engines;
pub mod guest;
pub mod host;
pub mod ioctl;
pub mod selftests;
pub mod tap;

#[cfg(test)]
mod heldout;
