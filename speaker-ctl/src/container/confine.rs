//! What a `speaker-ctl run` container does not get: capabilities beyond
//! Docker's default set, new privileges (`no_new_privs`), and the host's
//! `/dev` (with speaker's own device in it).  speaker.ko refuses a caller
//! under a container's filter anyway; this keeps the container from even
//! reaching the device, as a container engine would.
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

/// Capability names, indexed by number (linux/capability.h, up to
/// `CAP_CHECKPOINT_RESTORE`).
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby's `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A capability name speaker-ctl does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability '{0}': use a name like SYS_ADMIN or CAP_NET_ADMIN, or ALL")]
pub struct UnknownCapability(pub String);

/// The bit of capability `name` (`SYS_ADMIN`, `CAP_SYS_ADMIN`, any case),
/// or every bit for `ALL`.
pub fn cap_bits(name: &str) -> Result<u64, UnknownCapability> {
    let up = name.to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    if bare == "ALL" {
        return Ok(u64::MAX);
    }
    CAP_NAMES.iter().position(|n| *n == bare).map(|i| 1u64 << i).ok_or_else(|| UnknownCapability(name.to_string()))
}

/// What the container keeps.
#[derive(Debug, Clone, Copy)]
pub struct Confinement {
    /// Capabilities left in the bounding set (bit N = capability N).
    pub caps: u64,
    /// Set `no_new_privs` (setuid binaries and file capabilities cannot
    /// raise privileges).
    pub no_new_privs: bool,
}

impl Default for Confinement {
    /// Docker's default capabilities but CAP_MKNOD (the container sees the
    /// host's file systems, not an image of its own: a device node made in
    /// a volume would be the host's), `no_new_privs`.
    fn default() -> Confinement {
        let caps = DOCKER_DEFAULT_CAPS.iter().filter(|n| **n != "MKNOD").map(|n| cap_bits(n).unwrap_or(0)).fold(0, |a, b| a | b);
        Confinement { caps, no_new_privs: true }
    }
}

impl Confinement {
    /// The default set plus `add` (names as for [`cap_bits`]).
    pub fn with_caps(add: &[String], no_new_privs: bool) -> Result<Confinement, UnknownCapability> {
        let mut c = Confinement { no_new_privs, ..Confinement::default() };
        for name in add {
            c.caps |= cap_bits(name)?;
        }
        Ok(c)
    }

    /// In the container's first process, in its own mount namespace, before
    /// the boot filter: a fresh `/dev`, the bounding set cut down, no
    /// inheritable or ambient capabilities, and `no_new_privs`.  The
    /// process keeps its effective capabilities until it execs (it may need
    /// CAP_SYS_ADMIN to install the filter without `no_new_privs`); the exec
    /// then gives root exactly the bounding set.
    pub fn apply(&self) -> Result<(), (&'static str, Errno)> {
        own_dev()?;
        drop_bounding(self.caps).map_err(|e| ("cannot drop capabilities from the bounding set", e))?;
        clear_inheritable().map_err(|e| ("cannot clear the inheritable capabilities", e))?;
        // Ambient capabilities need kernel 4.3; EINVAL means there are none.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) } != 0 && Errno::last() != Errno::EINVAL {
            return Err(("cannot clear the ambient capabilities", Errno::last()));
        }
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().map_err(|e| ("cannot set no_new_privs", e))?;
        }
        Ok(())
    }
}

fn drop_bounding(keep: u64) -> Result<(), Errno> {
    for cap in 0..64u64 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            // Past the kernel's last capability.
            if Errno::last() == Errno::EINVAL {
                break;
            }
            return Err(Errno::last());
        }
    }
    Ok(())
}

fn clear_inheritable() -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header { version: 0x2008_0522 /* _LINUX_CAPABILITY_VERSION_3 */, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: capget fills two Data records for a version-3 header.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } != 0 {
        return Err(Errno::last());
    }
    for d in &mut data {
        d.inheritable = 0;
    }
    // SAFETY: capset reads the header and two Data records.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Device nodes the container gets, bind-mounted from the host's `/dev`.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Replaces `/dev` (in the container's own mount namespace) with a tmpfs
/// holding only the usual nodes, a private devpts and `/dev/shm`.  The
/// tmpfs is `nodev`: a node made with `mknod` in it cannot be opened.
fn own_dev() -> Result<(), (&'static str, Errno)> {
    let host = open("/dev", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| ("cannot open the host's /dev", e))?;
    // SAFETY: `open` just returned this descriptor, owned by nobody else.
    let host = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(host) };
    let tmpfs = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), "/dev", Some("tmpfs"), tmpfs, Some("mode=755,size=64k")).map_err(|e| ("cannot mount a tmpfs on /dev", e))?;
    for node in DEV_NODES {
        let target = format!("/dev/{node}");
        let f = open(target.as_str(), OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o666))
            .map_err(|e| ("cannot create a device node placeholder in the new /dev", e))?;
        let _ = nix::unistd::close(f);
        // The host's node, reached through the descriptor of the covered /dev.
        let source = format!("/proc/self/fd/{}/{node}", host.as_raw_fd());
        mount(Some(source.as_str()), target.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| ("cannot bind-mount a device node into the new /dev", e))?;
    }
    nix::unistd::mkdir("/dev/pts", Mode::from_bits_truncate(0o755)).map_err(|e| ("cannot create /dev/pts", e))?;
    mount(Some("devpts"), "/dev/pts", Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620"))
        .map_err(|e| ("cannot mount a private devpts on /dev/pts", e))?;
    nix::unistd::mkdir("/dev/shm", Mode::from_bits_truncate(0o1777)).map_err(|e| ("cannot create /dev/shm", e))?;
    mount(Some("shm"), "/dev/shm", Some("tmpfs"), tmpfs, Some("mode=1777")).map_err(|e| ("cannot mount /dev/shm", e))?;
    for (link, to) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        nix::unistd::symlinkat(to, None, link).map_err(|e| ("cannot create a link in the new /dev", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_parse_like_docker() {
        assert_eq!(cap_bits("SYS_ADMIN").unwrap(), 1 << 21);
        assert_eq!(cap_bits("cap_sys_admin").unwrap(), 1 << 21);
        assert_eq!(cap_bits("CHECKPOINT_RESTORE").unwrap(), 1 << 40);
        assert_eq!(cap_bits("all").unwrap(), u64::MAX);
        assert!(cap_bits("SYS_WIZARD").is_err());
    }

    #[test]
    fn default_set_is_dockers_without_mknod_and_lacks_sys_admin() {
        let c = Confinement::default();
        assert_eq!(c.caps.count_ones(), 13);
        assert_eq!(c.caps & (1 << 27), 0, "CAP_MKNOD must not be in the default set");
        assert_eq!(c.caps & (1 << 21), 0, "CAP_SYS_ADMIN must not be in the default set");
        assert!(c.no_new_privs);
        let with = Confinement::with_caps(&["SYS_ADMIN".into()], false).unwrap();
        assert_ne!(with.caps & (1 << 21), 0);
        assert!(!with.no_new_privs);
    }
}
