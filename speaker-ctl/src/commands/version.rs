//! `speaker-ctl version`: speaker-ctl's version and the loaded module's.
use anyhow::Result;

use crate::abi;
use crate::device::{decode_str, Device};

pub fn run() -> Result<i32> {
    println!("speaker-ctl {} (ABI {})", env!("CARGO_PKG_VERSION"), abi::SPEAKER_ABI_VERSION);
    let dev = Device::open()?;
    let v = dev.version()?;
    println!(
        "speaker.ko {} (ABI {}, {} container{})",
        decode_str(&v.module_version),
        v.abi_version,
        v.containers,
        if v.containers == 1 { "" } else { "s" }
    );
    Ok(0)
}
