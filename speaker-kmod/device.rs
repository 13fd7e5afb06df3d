// SPDX-License-Identifier: GPL-2.0

//! `/dev/speaker`: the misc device and its ioctls (ABI in `abi.rs`).

use kernel::{
    bindings,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use crate::abi::{self, CidArgs, PidsArgs, RegisterArgs, StatusArgs, StatusEntry, SwitchArgs, VersionInfo};
use crate::registry;

// SAFETY: plain `repr(C)` integers and byte arrays without padding (checked
// by the size assertions in abi.rs): every bit pattern is valid.
unsafe impl FromBytes for RegisterArgs {}
// SAFETY: as above.
unsafe impl FromBytes for SwitchArgs {}
// SAFETY: as above.
unsafe impl AsBytes for SwitchArgs {}
// SAFETY: as above.
unsafe impl FromBytes for CidArgs {}
// SAFETY: as above.
unsafe impl FromBytes for StatusArgs {}
// SAFETY: as above.
unsafe impl AsBytes for StatusArgs {}
// SAFETY: as above.
unsafe impl AsBytes for StatusEntry {}
// SAFETY: as above.
unsafe impl AsBytes for VersionInfo {}
// SAFETY: as above.
unsafe impl FromBytes for PidsArgs {}
// SAFETY: as above.
unsafe impl AsBytes for PidsArgs {}

// The ABI's own encoding must be the kernel's.
const _: () = assert!(abi::SPEAKER_IOC_VERSION == kernel::ioctl::_IOR::<VersionInfo>(abi::SPEAKER_IOC_MAGIC, 0x01));
const _: () = assert!(abi::SPEAKER_IOC_REGISTER == kernel::ioctl::_IOW::<RegisterArgs>(abi::SPEAKER_IOC_MAGIC, 0x02));
const _: () = assert!(abi::SPEAKER_IOC_SWITCH == kernel::ioctl::_IOWR::<SwitchArgs>(abi::SPEAKER_IOC_MAGIC, 0x03));
const _: () = assert!(abi::SPEAKER_IOC_UNREGISTER == kernel::ioctl::_IOW::<CidArgs>(abi::SPEAKER_IOC_MAGIC, 0x04));
const _: () = assert!(abi::SPEAKER_IOC_STATUS == kernel::ioctl::_IOWR::<StatusArgs>(abi::SPEAKER_IOC_MAGIC, 0x05));
const _: () = assert!(abi::SPEAKER_IOC_PIDS == kernel::ioctl::_IOWR::<PidsArgs>(abi::SPEAKER_IOC_MAGIC, 0x06));
const _: () = assert!(abi::SPEAKER_IOC_ADD == kernel::ioctl::_IOW::<RegisterArgs>(abi::SPEAKER_IOC_MAGIC, 0x07));

/// An open `/dev/speaker`; all state is module-global (`registry`).
pub(crate) struct SpeakerFile;

fn require_admin() -> Result {
    // SAFETY: plain capability check of the calling task.
    if unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) } {
        Ok(())
    } else {
        Err(EPERM)
    }
}

#[vtable]
impl MiscDevice for SpeakerFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(SpeakerFile, GFP_KERNEL)?)
    }

    fn ioctl(_me: &SpeakerFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), kernel::ioctl::_IOC_SIZE(cmd));
        match cmd {
            abi::SPEAKER_IOC_VERSION => version(user),
            abi::SPEAKER_IOC_REGISTER => register(user),
            abi::SPEAKER_IOC_SWITCH => switch(user),
            abi::SPEAKER_IOC_UNREGISTER => unregister(user),
            abi::SPEAKER_IOC_STATUS => status(user),
            abi::SPEAKER_IOC_PIDS => pids(user),
            abi::SPEAKER_IOC_ADD => add(user),
            _ => Err(ENOTTY),
        }
    }
}

fn version(user: UserSlice) -> Result<isize> {
    let mut info = VersionInfo {
        abi_version: abi::SPEAKER_ABI_VERSION,
        containers: registry::count(),
        module_version: [0; abi::MODULE_VERSION_LEN],
    };
    let v = crate::MODULE_VERSION.as_bytes();
    info.module_version[..v.len()].copy_from_slice(v);
    user.writer().write(&info)?;
    Ok(0)
}

fn register(user: UserSlice) -> Result<isize> {
    require_admin()?;
    let args: RegisterArgs = user.reader().read()?;
    registry::register(&args)?;
    Ok(0)
}

fn add(user: UserSlice) -> Result<isize> {
    require_admin()?;
    let args: RegisterArgs = user.reader().read()?;
    registry::add(&args)?;
    Ok(0)
}

fn switch(user: UserSlice) -> Result<isize> {
    require_admin()?;
    let (mut reader, mut writer) = user.reader_writer();
    let mut args: SwitchArgs = reader.read()?;
    let out = registry::switch(&args)?;
    args.tasks = out.tasks;
    args.filters_above = out.filters_above;
    args.cached_allow = out.cached_allow;
    args.elapsed_ns = out.elapsed_ns;
    writer.write(&args)?;
    Ok(0)
}

fn unregister(user: UserSlice) -> Result<isize> {
    require_admin()?;
    let args: CidArgs = user.reader().read()?;
    registry::unregister(&args.cid)?;
    Ok(0)
}

fn status(user: UserSlice) -> Result<isize> {
    require_admin()?;
    let (mut reader, mut writer) = user.reader_writer();
    let mut args: StatusArgs = reader.read()?;
    let cap = (args.capacity as usize).min(abi::MAX_CONTAINERS);
    let mut entries = KVec::with_capacity(cap.min(16), GFP_KERNEL)?;
    let only = if args.cid[0] != 0 { Some(&args.cid) } else { None };
    args.count = registry::status(only, &mut entries, cap)?;
    let size = entries.len() * core::mem::size_of::<StatusEntry>();
    let mut out = UserSlice::new(UserPtr::from_addr(args.entries as usize), size).writer();
    for e in entries.iter() {
        out.write(e)?;
    }
    writer.write(&args)?;
    Ok(0)
}

fn pids(user: UserSlice) -> Result<isize> {
    require_admin()?;
    let (mut reader, mut writer) = user.reader_writer();
    let mut args: PidsArgs = reader.read()?;
    let cap = args.capacity.min(abi::MAX_PIDS) as usize;
    let (pids, count) = registry::pids(&args.cid, cap)?;
    args.count = count;
    let mut out = UserSlice::new(UserPtr::from_addr(args.pids as usize), pids.len() * 4).writer();
    for p in pids.iter() {
        out.write(p)?;
    }
    writer.write(&args)?;
    Ok(0)
}
