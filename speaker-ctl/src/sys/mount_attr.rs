//! `mount_setattr(2)` (Linux 5.12+; nix has no wrapper): changing the
//! read-only, nosuid and nodev attributes of a mount, or of a whole tree of
//! mounts at once.
use std::ffi::CString;
use std::path::Path;

use nix::errno::Errno;

/// `MOUNT_ATTR_RDONLY`.
pub const RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID`.
pub const NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV`.
pub const NODEV: u64 = 0x4;

/// `struct mount_attr` (linux/mount.h, `MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets the attributes `set` and clears `clr` on the mount at `path`, and
/// on every mount below it when `recursive`.
pub fn set(path: &Path, set: u64, clr: u64, recursive: bool) -> Result<(), Errno> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let attr = MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 };
    let flags = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: `c` is a NUL-terminated path and `attr` a valid mount_attr of
    // the size passed; the kernel only reads both.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}
