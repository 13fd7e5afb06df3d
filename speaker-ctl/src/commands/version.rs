//! `speaker-ctl version`: speaker-ctl's version and the loaded module's.
use anyhow::Result;

use crate::abi;
use crate::device::{decode_str, Device, DeviceError};
use crate::sys::output::outln;

/// Exits 0 whether or not speaker.ko is loaded ("speaker.ko: not loaded"):
/// the question was answered.  1 only if the module is there but cannot
/// be asked (permissions, a different ABI).
pub fn run() -> Result<i32> {
    outln!("speaker-ctl {} (ABI {})", env!("CARGO_PKG_VERSION"), abi::SPEAKER_ABI_VERSION)?;
    let dev = match Device::open() {
        Ok(d) => d,
        Err(DeviceError::NotLoaded) => {
            outln!("speaker.ko: not loaded (insmod speaker.ko or modprobe speaker)")?;
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let v = dev.version()?;
    outln!(
        "speaker.ko {} (ABI {}, {} container{})",
        decode_str(&v.module_version),
        v.abi_version,
        v.containers,
        if v.containers == 1 { "" } else { "s" }
    )?;
    Ok(0)
}
