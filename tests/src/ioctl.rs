//! The argument structs of `/dev/speaker`'s ioctls (`speaker::abi`), built
//! in one place for every test binary: each builder sets the fields a
//! caller passes in and zeroes the rest (the kernel's out fields and
//! `reserved`).  Callers that fuzz a field the builder zeroes set it after.

use speaker::abi::{CidArgs, PidsArgs, RegisterArgs, StatusArgs, StatusEntry, SwitchArgs, VersionInfo, CID_LEN, MODULE_VERSION_LEN};

/// speaker-ctl's encoding of `cid` (`speaker::device::encode_cid`); an id
/// it refuses becomes `CID_LEN` bytes of `x` with no NUL, which the module
/// must refuse in turn.
pub fn encoded_cid(cid: &str) -> [u8; CID_LEN] {
    speaker::device::encode_cid(cid).unwrap_or([b'x'; CID_LEN])
}

/// A zeroed answer buffer of `SPEAKER_IOC_VERSION`.
pub fn version() -> VersionInfo {
    VersionInfo { abi_version: 0, containers: 0, module_version: [0; MODULE_VERSION_LEN] }
}

/// The argument of `SPEAKER_IOC_REGISTER`.
pub fn register(cid: [u8; CID_LEN], pid: u32, filter_count: u32, phase: u32, allowed: u32) -> RegisterArgs {
    RegisterArgs { cid, pid, filter_count, phase, allowed }
}

/// The argument of `SPEAKER_IOC_SWITCH` to the program at user address
/// `prog` (`prog_len` instructions; the address may be deliberately bad).
pub fn switch_at(cid: [u8; CID_LEN], prog: u64, prog_len: u32, phase: u32, allowed: u32, flags: u32) -> SwitchArgs {
    SwitchArgs { cid, prog, prog_len, phase, allowed, flags, tasks: 0, filters_above: 0, cached_allow: 0, reserved: 0, elapsed_ns: 0 }
}

/// The argument of `SPEAKER_IOC_SWITCH` to `prog` (which must outlive the call).
pub fn switch(cid: [u8; CID_LEN], prog: &[libc::sock_filter], phase: u32, allowed: u32, flags: u32) -> SwitchArgs {
    switch_at(cid, prog.as_ptr() as u64, prog.len() as u32, phase, allowed, flags)
}

/// The argument of `SPEAKER_IOC_UNREGISTER`.
pub fn unregister(cid: [u8; CID_LEN]) -> CidArgs {
    CidArgs { cid }
}

/// The argument of `SPEAKER_IOC_STATUS`: `capacity` entries at user address
/// `entries`, for container `cid` (all zero: every container).
pub fn status(entries: u64, capacity: u32, cid: [u8; CID_LEN]) -> StatusArgs {
    StatusArgs { entries, capacity, count: 0, cid }
}

/// A zeroed entry of the answer of `SPEAKER_IOC_STATUS`.
pub fn status_entry() -> StatusEntry {
    StatusEntry { cid: [0; CID_LEN], pid: 0, phase: 0, tasks: 0, allowed: 0, switches: 0, kept: 0, registered_ns: 0, last_switch_ns: 0 }
}

/// The argument of `SPEAKER_IOC_PIDS`: `capacity` pids at user address `pids`.
pub fn pids(cid: [u8; CID_LEN], pids: u64, capacity: u32) -> PidsArgs {
    PidsArgs { cid, pids, capacity, count: 0 }
}

/// The address of an argument struct, as [`crate::guest::raw_ioctl`] takes it.
pub fn addr<T>(arg: &T) -> u64 {
    arg as *const T as u64
}

/// `ioctl(fd, cmd, arg)` as [`crate::guest::raw_ioctl`] answers it:
/// `Ok(return value)` or `Err(errno)`.  The kernel may write to `arg`.
pub fn call<T>(fd: i32, cmd: u32, arg: &mut T) -> Result<i64, i32> {
    crate::guest::raw_ioctl(fd, cmd, arg as *mut T as u64)
}

/// The address of an argument struct the kernel writes to.
pub fn addr_mut<T>(arg: &mut T) -> u64 {
    arg as *mut T as u64
}
