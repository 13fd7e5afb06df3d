//! Scenarios of the module and its device: loading, permissions, the
//! VERSION ioctl, unknown ioctls, unloading.

use std::fs;
use std::path::Path;
use std::time::Duration;

use speaker::abi;
use speaker::device::Device;
use speaker_tests::ensure;
use speaker_tests::guest::{dmesg, run, Outcome};

use crate::support::{ctl, ctl_ok, errno_of, in_child, open_dev, rmmod_within};

pub fn module_loads_and_creates_device() -> Outcome {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = fs::metadata("/dev/speaker").map_err(|e| format!("/dev/speaker: {e}"))?;
    ensure!(md.file_type().is_char_device(), "/dev/speaker is not a character device");
    ensure!(md.mode() & 0o777 == 0o600 && md.uid() == 0, "/dev/speaker has mode {:o} uid {}", md.mode() & 0o777, md.uid());
    ensure!(Path::new("/sys/class/misc/speaker/dev").exists(), "/sys/class/misc/speaker missing");
    let mods = fs::read_to_string("/proc/modules").unwrap_or_default();
    ensure!(mods.lines().any(|l| l.starts_with("speaker ")), "speaker not in /proc/modules");
    Ok(())
}

pub fn device_is_root_only() -> Outcome {
    let errno = in_child(|| {
        // SAFETY: dropping to nobody in the forked child.
        unsafe {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return 99;
            }
            let fd = libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR);
            if fd >= 0 {
                return 0;
            }
            errno_of(-1)
        }
    });
    ensure!(errno == libc::EACCES || errno == libc::EPERM, "open as uid 65534 gave {errno}, want EACCES/EPERM");
    Ok(())
}

pub fn version_ioctl_reports_abi() -> Outcome {
    let out = ctl_ok(&["version"])?;
    ensure!(out.contains("speaker.ko 0.1.0 (ABI 1"), "speaker-ctl version said {out:?}");
    let v = Device::open().map_err(|e| e.to_string())?.version().map_err(|e| e.to_string())?;
    ensure!(v.abi_version == abi::SPEAKER_ABI_VERSION, "module ABI {}", v.abi_version);
    Ok(())
}

pub fn unknown_ioctl_returns_enotty() -> Outcome {
    let fd = open_dev()?;
    let mut buf = [0u8; 256];
    for cmd in [abi::ioc(0, 0x7f, 0), abi::ioc(abi::IOC_READ, 0x01, 8), 0x5401 /* TCGETS */] {
        // SAFETY: `buf` is large enough for anything the kernel might write.
        let e = errno_of(unsafe { libc::ioctl(fd, cmd as _, buf.as_mut_ptr()) } as i64);
        ensure!(e == libc::ENOTTY, "ioctl {cmd:#x} gave errno {e}, want ENOTTY");
    }
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

pub fn module_unloads_cleanly() -> Outcome {
    // Earlier scenarios' containers have exited; the programs kept for them
    // are freed (and the module unpinned) within a sweep, about a second.
    rmmod_within(Duration::from_secs(10))?;
    ensure!(!Path::new("/dev/speaker").exists(), "/dev/speaker still exists after rmmod");
    ensure!(dmesg().contains("speaker: unloaded"), "no unload message in the kernel log");
    // Without the module, `version` answers (exit 0): "speaker.ko: not loaded".
    let o = ctl(&["version"]);
    ensure!(
        o.code == 0 && o.stdout.contains("speaker.ko: not loaded") && o.stderr.trim().is_empty(),
        "speaker-ctl version without module: code {} stdout {:?} stderr {:?}",
        o.code,
        o.stdout,
        o.stderr
    );
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0, "insmod after rmmod failed: {}", o.stderr);
    ctl_ok(&["version"])?;
    Ok(())
}
