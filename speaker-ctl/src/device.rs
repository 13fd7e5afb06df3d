//! Talking to speaker.ko through `/dev/speaker`.
//!
//! The ioctl numbers are encoded here independently with nix's
//! `request_code_*!` macros; the tests check them against the module's own
//! ABI file (`abi.rs`).
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::abi;

/// Where the module's misc device appears.
pub const DEVICE_PATH: &str = "/dev/speaker";

/// Errors of the device layer; callers tell "module missing" from
/// "container unknown" and so on.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("speaker.ko is not loaded (insmod speaker.ko)")]
    NotLoaded,
    #[error("cannot open {DEVICE_PATH}: permission denied (speaker-ctl needs root)")]
    PermissionDenied,
    #[error("cannot open {DEVICE_PATH}: {0}")]
    Open(io::Error),
    #[error("speaker.ko speaks ABI {module}, speaker-ctl speaks {ctl}: load the speaker.ko built with this speaker-ctl")]
    AbiMismatch { module: u32, ctl: u32 },
    #[error("container id '{0}' is invalid: use 1-63 characters of [A-Za-z0-9_.-]")]
    BadCid(String),
    #[error("speaker.ko knows no container '{0}' (speaker-ctl status lists them; an exited container is forgotten)")]
    UnknownContainer(String),
    #[error(
        "{op} refused: speaker.ko needs CAP_SYS_ADMIN on the host and a caller outside every container it manages \
         (run speaker-ctl as root on the host, not inside a container)"
    )]
    NotPermitted { op: &'static str },
    #[error(
        "register refused for pid {pid}: its filter is shared with processes outside its thread group (installed before a fork \
         by a launcher?), or another filter was stacked on it since its count was read; a switch would change it for them \
         too. Install the container's filter in the container's own first process, just before it execs"
    )]
    SharedFilter { pid: u32 },
    #[error(
        "switch of '{cid}' refused: the program would make a filter chain longer than seccomp's limit \
         (32768 instructions per chain, counting the filters stacked above the container's): use a shorter program"
    )]
    ChainTooLong { cid: String },
    #[error(
        "switch of '{cid}' refused: speaker.ko already keeps 1024 replaced programs (or 256 Ki instructions) for it \
         until it exits; switch between the programs it already had, or restart the container"
    )]
    TooManyKept { cid: String },
    #[error("{op} failed: {err}")]
    Ioctl { op: &'static str, err: nix::Error },
}

pub type Result<T> = std::result::Result<T, DeviceError>;

nix::ioctl_read!(ioc_version, abi::SPEAKER_IOC_MAGIC, 0x01, abi::VersionInfo);
nix::ioctl_write_ptr!(ioc_register, abi::SPEAKER_IOC_MAGIC, 0x02, abi::RegisterArgs);
nix::ioctl_write_ptr!(ioc_add, abi::SPEAKER_IOC_MAGIC, 0x07, abi::RegisterArgs);
nix::ioctl_readwrite!(ioc_switch, abi::SPEAKER_IOC_MAGIC, 0x03, abi::SwitchArgs);
nix::ioctl_write_ptr!(ioc_unregister, abi::SPEAKER_IOC_MAGIC, 0x04, abi::CidArgs);
nix::ioctl_readwrite!(ioc_status, abi::SPEAKER_IOC_MAGIC, 0x05, abi::StatusArgs);
nix::ioctl_readwrite!(ioc_pids, abi::SPEAKER_IOC_MAGIC, 0x06, abi::PidsArgs);

/// The ioctl numbers as nix encodes them (for the ABI agreement test).
pub fn nix_request_codes() -> [u64; 7] {
    [
        nix::request_code_read!(abi::SPEAKER_IOC_MAGIC, 0x01, std::mem::size_of::<abi::VersionInfo>()) as u64,
        nix::request_code_write!(abi::SPEAKER_IOC_MAGIC, 0x02, std::mem::size_of::<abi::RegisterArgs>()) as u64,
        nix::request_code_readwrite!(abi::SPEAKER_IOC_MAGIC, 0x03, std::mem::size_of::<abi::SwitchArgs>()) as u64,
        nix::request_code_write!(abi::SPEAKER_IOC_MAGIC, 0x04, std::mem::size_of::<abi::CidArgs>()) as u64,
        nix::request_code_readwrite!(abi::SPEAKER_IOC_MAGIC, 0x05, std::mem::size_of::<abi::StatusArgs>()) as u64,
        nix::request_code_readwrite!(abi::SPEAKER_IOC_MAGIC, 0x06, std::mem::size_of::<abi::PidsArgs>()) as u64,
        nix::request_code_write!(abi::SPEAKER_IOC_MAGIC, 0x07, std::mem::size_of::<abi::RegisterArgs>()) as u64,
    ]
}

/// Encodes a container id for the ABI.
pub fn encode_cid(cid: &str) -> Result<[u8; abi::CID_LEN]> {
    let ok = !cid.is_empty() && cid.len() < abi::CID_LEN && cid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(DeviceError::BadCid(cid.to_string()));
    }
    let mut out = [0u8; abi::CID_LEN];
    out[..cid.len()].copy_from_slice(cid.as_bytes());
    Ok(out)
}

/// Decodes a NUL-padded byte string.
pub fn decode_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// One container as the module sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerStatus {
    pub cid: String,
    pub pid: u32,
    pub phase: u32,
    pub tasks: u32,
    pub allowed: u32,
    pub switches: u32,
    /// Replaced programs the module keeps until the container exits.
    pub kept: u32,
    pub registered_ns: u64,
    pub last_switch_ns: u64,
}

/// What a switch reported.
#[derive(Debug, Clone, Copy)]
pub struct SwitchReport {
    pub tasks: u32,
    pub filters_above: u32,
    pub cached_allow: u32,
    pub elapsed_ns: u64,
}

/// An open `/dev/speaker`.
pub struct Device {
    file: File,
}

impl Device {
    /// Opens the device and checks the module's ABI version.
    pub fn open() -> Result<Device> {
        Self::open_path(Path::new(DEVICE_PATH))
    }

    pub fn open_path(path: &Path) -> Result<Device> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => DeviceError::NotLoaded,
            io::ErrorKind::PermissionDenied => DeviceError::PermissionDenied,
            _ => DeviceError::Open(e),
        })?;
        let dev = Device { file };
        let v = dev.version()?;
        if v.abi_version != abi::SPEAKER_ABI_VERSION {
            return Err(DeviceError::AbiMismatch { module: v.abi_version, ctl: abi::SPEAKER_ABI_VERSION });
        }
        Ok(dev)
    }

    fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// The module's version information.
    pub fn version(&self) -> Result<abi::VersionInfo> {
        let mut v = abi::VersionInfo { abi_version: 0, containers: 0, module_version: [0; abi::MODULE_VERSION_LEN] };
        // SAFETY: `v` is a valid, writable VersionInfo for the kernel to fill.
        unsafe { ioc_version(self.fd(), &mut v) }.map_err(|err| DeviceError::Ioctl { op: "version ioctl", err })?;
        Ok(v)
    }

    /// Registers the top filter of `pid` (which must have `filter_count` filters) as container `cid`'s.
    pub fn register(&self, cid: &str, pid: u32, filter_count: u32, phase: u32, allowed: u32) -> Result<()> {
        self.take_filter("register", ioc_register, cid, pid, filter_count, phase, allowed)
    }

    /// Adds the top filter of task `pid` (a process exec'd into container
    /// `cid`, with `filter_count` filters) to the container: its switches
    /// then reach that process too.
    pub fn add(&self, cid: &str, pid: u32, filter_count: u32, phase: u32, allowed: u32) -> Result<()> {
        self.take_filter("add", ioc_add, cid, pid, filter_count, phase, allowed)
    }

    /// REGISTER and ADD: the same argument and the same errors.
    #[allow(clippy::too_many_arguments)]
    fn take_filter(
        &self,
        op: &'static str,
        ioc: unsafe fn(i32, *const abi::RegisterArgs) -> nix::Result<i32>,
        cid: &str,
        pid: u32,
        filter_count: u32,
        phase: u32,
        allowed: u32,
    ) -> Result<()> {
        let args = abi::RegisterArgs { cid: encode_cid(cid)?, pid, filter_count, phase, allowed };
        // SAFETY: `args` is a valid RegisterArgs the kernel only reads.
        unsafe { ioc(self.fd(), &args) }.map_err(|err| match err {
            nix::Error::EPERM => DeviceError::NotPermitted { op },
            nix::Error::EBUSY => DeviceError::SharedFilter { pid },
            err => DeviceError::Ioctl { op, err },
        })?;
        Ok(())
    }

    /// Replaces container `cid`'s program with `prog` (classic BPF, `struct
    /// sock_filter` array); returns after the grace period.
    pub fn switch(&self, cid: &str, prog: &[crate::profile::SockFilter], phase: u32, allowed: u32) -> Result<SwitchReport> {
        self.switch_with(cid, prog, phase, allowed, 0)
    }

    /// [`Device::switch`] with ABI flags (e.g. [`abi::SWITCH_DEFER_FREE`]).
    pub fn switch_with(
        &self,
        cid: &str,
        prog: &[crate::profile::SockFilter],
        phase: u32,
        allowed: u32,
        flags: u32,
    ) -> Result<SwitchReport> {
        let mut args = abi::SwitchArgs {
            cid: encode_cid(cid)?,
            prog: prog.as_ptr() as u64,
            prog_len: prog.len() as u32,
            phase,
            allowed,
            flags,
            tasks: 0,
            filters_above: 0,
            cached_allow: 0,
            reserved: 0,
            elapsed_ns: 0,
        };
        // SAFETY: `args` is valid for read and write; `prog` outlives the call.
        unsafe { ioc_switch(self.fd(), &mut args) }.map_err(|err| match err {
            nix::Error::ESRCH => DeviceError::UnknownContainer(cid.to_string()),
            nix::Error::EPERM => DeviceError::NotPermitted { op: "switch" },
            nix::Error::ENOMEM => DeviceError::ChainTooLong { cid: cid.to_string() },
            nix::Error::ENOSPC => DeviceError::TooManyKept { cid: cid.to_string() },
            err => DeviceError::Ioctl { op: "switch", err },
        })?;
        Ok(SwitchReport {
            tasks: args.tasks,
            filters_above: args.filters_above,
            cached_allow: args.cached_allow,
            elapsed_ns: args.elapsed_ns,
        })
    }

    /// Forgets container `cid`.
    pub fn unregister(&self, cid: &str) -> Result<()> {
        let args = abi::CidArgs { cid: encode_cid(cid)? };
        // SAFETY: `args` is a valid CidArgs the kernel only reads.
        unsafe { ioc_unregister(self.fd(), &args) }.map_err(|err| match err {
            nix::Error::ESRCH => DeviceError::UnknownContainer(cid.to_string()),
            nix::Error::EPERM => DeviceError::NotPermitted { op: "unregister" },
            err => DeviceError::Ioctl { op: "unregister", err },
        })?;
        Ok(())
    }

    /// All containers (or just `only`).
    pub fn status(&self, only: Option<&str>) -> Result<Vec<ContainerStatus>> {
        let cid = match only {
            Some(c) => encode_cid(c)?,
            None => [0; abi::CID_LEN],
        };
        let mut cap = 16usize;
        loop {
            let empty = abi::StatusEntry {
                cid: [0; abi::CID_LEN],
                pid: 0,
                phase: 0,
                tasks: 0,
                allowed: 0,
                switches: 0,
                kept: 0,
                registered_ns: 0,
                last_switch_ns: 0,
            };
            let mut buf = vec![empty; cap];
            let mut args = abi::StatusArgs { entries: buf.as_mut_ptr() as u64, capacity: cap as u32, count: 0, cid };
            // SAFETY: `buf` has `capacity` writable entries; `args` is valid.
            unsafe { ioc_status(self.fd(), &mut args) }.map_err(|err| match err {
                nix::Error::EPERM => DeviceError::NotPermitted { op: "status" },
                err => DeviceError::Ioctl { op: "status ioctl", err },
            })?;
            if args.count as usize > cap {
                cap = args.count as usize;
                continue;
            }
            buf.truncate(args.count as usize);
            return Ok(buf
                .iter()
                .map(|e| ContainerStatus {
                    cid: decode_str(&e.cid),
                    pid: e.pid,
                    phase: e.phase,
                    tasks: e.tasks,
                    allowed: e.allowed,
                    switches: e.switches,
                    kept: e.kept,
                    registered_ns: e.registered_ns,
                    last_switch_ns: e.last_switch_ns,
                })
                .collect());
        }
    }

    /// The processes (thread-group ids in the initial PID namespace, the
    /// `pid=` of audit records) that use container `cid`'s filter now.
    pub fn pids(&self, cid: &str) -> Result<Vec<u32>> {
        let cid_bytes = encode_cid(cid)?;
        let mut cap = 64usize;
        loop {
            let mut buf = vec![0u32; cap];
            let mut args = abi::PidsArgs { cid: cid_bytes, pids: buf.as_mut_ptr() as u64, capacity: cap as u32, count: 0 };
            // SAFETY: `buf` has `capacity` writable u32; `args` is valid.
            unsafe { ioc_pids(self.fd(), &mut args) }.map_err(|err| match err {
                nix::Error::ESRCH => DeviceError::UnknownContainer(cid.to_string()),
                nix::Error::EPERM => DeviceError::NotPermitted { op: "pids" },
                err => DeviceError::Ioctl { op: "pids ioctl", err },
            })?;
            if args.count as usize > cap && cap < abi::MAX_PIDS as usize {
                cap = (args.count as usize).min(abi::MAX_PIDS as usize);
                continue;
            }
            buf.truncate((args.count as usize).min(cap));
            return Ok(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_agree_with_module_abi() {
        let module = [
            abi::SPEAKER_IOC_VERSION,
            abi::SPEAKER_IOC_REGISTER,
            abi::SPEAKER_IOC_SWITCH,
            abi::SPEAKER_IOC_UNREGISTER,
            abi::SPEAKER_IOC_STATUS,
            abi::SPEAKER_IOC_PIDS,
            abi::SPEAKER_IOC_ADD,
        ];
        let ours = nix_request_codes();
        for (m, o) in module.iter().zip(ours.iter()) {
            assert_eq!(*m as u64, *o, "ioctl number {m:#x} vs nix {o:#x}");
        }
    }

    #[test]
    fn struct_sizes_agree_with_kernel_layout() {
        // Sizes as the C side would lay them out (no implicit padding).
        assert_eq!(std::mem::size_of::<abi::VersionInfo>(), 40);
        assert_eq!(std::mem::size_of::<abi::RegisterArgs>(), 80);
        assert_eq!(std::mem::size_of::<abi::SwitchArgs>(), 112);
        assert_eq!(std::mem::size_of::<abi::CidArgs>(), 64);
        assert_eq!(std::mem::size_of::<abi::StatusEntry>(), 104);
        assert_eq!(std::mem::size_of::<abi::StatusArgs>(), 80);
        // A sock_filter is 8 bytes; speaker-ctl passes programs as u64 words.
        assert_eq!(std::mem::size_of::<libc::sock_filter>(), 8);
    }

    #[test]
    fn module_version_matches_workspace_version() {
        let src = include_str!("../../speaker-kmod/speaker.rs");
        let want = format!("MODULE_VERSION: &str = \"{}\";", env!("CARGO_PKG_VERSION"));
        assert!(src.contains(&want), "speaker-kmod/speaker.rs must declare {want}");
    }

    #[test]
    fn cid_encoding_rejects_bad_ids() {
        assert!(encode_cid("web-1.a_b").is_ok());
        assert!(encode_cid("").is_err());
        assert!(encode_cid("a/b").is_err());
        assert!(encode_cid(&"x".repeat(64)).is_err());
        assert_eq!(decode_str(&encode_cid("abc").unwrap()), "abc");
    }
}
