// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `/dev/speaker`: the one place it is defined.
//!
//! This file is compiled twice: into `speaker.ko` (as `mod abi`) and into
//! speaker-ctl (`#[path]` include).  It depends on `core` only.  The kernel
//! side checks at build time that [`ioc`] encodes exactly as the kernel's
//! `_IOR`/`_IOW`/`_IOWR`; speaker-ctl checks at test time that its own
//! encoding (nix's `request_code_*!`) and struct sizes agree with this file.
//!
//! All structs are `#[repr(C)]`, contain no implicit padding, and carry user
//! pointers as `u64`.  Strings are NUL-padded byte arrays.
//!
//! | command | dir | struct | errors |
//! |---|---|---|---|
//! | [`SPEAKER_IOC_VERSION`] | R | [`VersionInfo`] | `EFAULT` |
//! | [`SPEAKER_IOC_REGISTER`] | W | [`RegisterArgs`] | `EPERM` `EFAULT` `EINVAL` `ESRCH` `EEXIST` `EBUSY` `ENOSPC` |
//! | [`SPEAKER_IOC_SWITCH`] | RW | [`SwitchArgs`] | `EPERM` `EFAULT` `EINVAL` `E2BIG` `ESRCH` `ENOMEM` `ENOSPC` |
//! | [`SPEAKER_IOC_UNREGISTER`] | W | [`CidArgs`] | `EPERM` `EFAULT` `EINVAL` `ESRCH` |
//! | [`SPEAKER_IOC_STATUS`] | RW | [`StatusArgs`] + [`StatusEntry`] array | `EPERM` `EFAULT` `EINVAL` |
//! | [`SPEAKER_IOC_PIDS`] | RW | [`PidsArgs`] + `u32` array | `EPERM` `EFAULT` `EINVAL` `ESRCH` |
//! | [`SPEAKER_IOC_ADD`] | W | [`RegisterArgs`] | `EPERM` `EFAULT` `EINVAL` `ESRCH` `EEXIST` `EBUSY` `ENOSPC` |
//!
//! Every command but `VERSION` needs `CAP_SYS_ADMIN` and a caller whose own
//! seccomp chain contains no filter speaker.ko manages (`EPERM`): a
//! container's task can never loosen its own filter or anyone's.
//! `REGISTER` answers `EBUSY` when the task's filter count changed or when
//! a process outside the task's thread group shares the filter; `SWITCH`
//! answers `ENOMEM` past seccomp's `MAX_INSNS_PER_PATH` and `ENOSPC` past
//! the limits on kept programs.

#![allow(dead_code, unreachable_pub)]

/// Version of this ABI; bumped on any incompatible change.
pub const SPEAKER_ABI_VERSION: u32 = 1;

/// The ioctl "type" byte of speaker's commands.
pub const SPEAKER_IOC_MAGIC: u32 = 0xB7;

/// Length of a container id buffer, including the terminating NUL.
pub const CID_LEN: usize = 64;
/// Length of the module version string buffer.
pub const MODULE_VERSION_LEN: usize = 32;
/// Largest program accepted, in instructions (the kernel's `BPF_MAXINSNS`).
pub const MAX_PROG_LEN: u32 = 4096;
/// Most containers the module tracks at once.
pub const MAX_CONTAINERS: usize = 1024;

/// Phase numbers (speaker-ctl's `Phase::index`).
pub const PHASE_BOOT: u32 = 0;
pub const PHASE_RUNNING: u32 = 1;
pub const PHASE_SHUTDOWN: u32 = 2;
/// Phases above this are refused.
pub const PHASE_MAX: u32 = 15;

const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
/// `_IOC_WRITE`: userspace writes, the kernel reads.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the kernel writes, userspace reads.
pub const IOC_READ: u32 = 2;

/// Encodes an ioctl number like the kernel's `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT) | (SPEAKER_IOC_MAGIC << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT) | ((size as u32) << IOC_SIZESHIFT)
}

/// Answer of [`SPEAKER_IOC_VERSION`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VersionInfo {
    /// [`SPEAKER_ABI_VERSION`] of the loaded module.
    pub abi_version: u32,
    /// Number of containers currently registered.
    pub containers: u32,
    /// The module's version, NUL-padded.
    pub module_version: [u8; MODULE_VERSION_LEN],
}

/// Argument of [`SPEAKER_IOC_REGISTER`].
///
/// Registers the seccomp filter on top of task `pid`'s chain as the
/// container's own filter.  `filter_count` must equal that task's current
/// number of filters, so that a filter stacked after the caller looked at the
/// task is never taken for the container's.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RegisterArgs {
    /// The container id, NUL-padded; must be unique among registered ones.
    pub cid: [u8; CID_LEN],
    /// PID (in the caller's PID namespace) of the container's first task.
    pub pid: u32,
    /// Expected `seccomp.filter_count` of that task.
    pub filter_count: u32,
    /// Phase the container is in (normally [`PHASE_BOOT`]).
    pub phase: u32,
    /// Number of syscalls the phase allows (reported by status).
    pub allowed: u32,
}

/// Argument of [`SPEAKER_IOC_SWITCH`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SwitchArgs {
    /// The container id, NUL-padded.
    pub cid: [u8; CID_LEN],
    /// User pointer to `prog_len` classic BPF instructions (`struct sock_filter`).
    pub prog: u64,
    /// Number of instructions, 1..=[`MAX_PROG_LEN`].
    pub prog_len: u32,
    /// The phase the new program belongs to.
    pub phase: u32,
    /// Number of syscalls the new program allows (reported by status).
    pub allowed: u32,
    /// [`SWITCH_DEFER_FREE`] or 0.
    pub flags: u32,
    /// Out: tasks that use the container's filter at the time of the swap.
    pub tasks: u32,
    /// Out: filters stacked above the container's filter whose cache was trimmed.
    pub filters_above: u32,
    /// Out: syscalls (native + compat) the new program allows unconditionally.
    pub cached_allow: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Out: nanoseconds from the start of the swap to the end of the grace
    /// period (to the swap only, with [`SWITCH_DEFER_FREE`]).
    pub elapsed_ns: u64,
}

/// [`SwitchArgs::flags`]: return right after the swap, without waiting for
/// an RCU-tasks grace period (a task that entered seccomp just before may
/// still decide one syscall with the old program).  Without it the ioctl
/// waits, so that when it returns no syscall can still be decided by the
/// old program.  Either way the old program is kept until the filter dies.
pub const SWITCH_DEFER_FREE: u32 = 1;

/// Argument of [`SPEAKER_IOC_UNREGISTER`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CidArgs {
    pub cid: [u8; CID_LEN],
}

/// One container in the answer of [`SPEAKER_IOC_STATUS`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StatusEntry {
    pub cid: [u8; CID_LEN],
    /// PID of the first task, in the PID namespace of the registering caller.
    pub pid: u32,
    pub phase: u32,
    /// Tasks (threads included) currently using the container's filter.
    pub tasks: u32,
    /// Syscalls allowed by the current phase, as told by speaker-ctl.
    pub allowed: u32,
    /// Switches done so far.
    pub switches: u32,
    /// Replaced programs speaker.ko keeps until the container's filter dies
    /// (readers such as `PTRACE_SECCOMP_GET_FILTER` may still hold them).
    pub kept: u32,
    /// `ktime_get_real_ns()` at registration.
    pub registered_ns: u64,
    /// `ktime_get_real_ns()` at the last switch (0: never switched).
    pub last_switch_ns: u64,
}

/// Argument of [`SPEAKER_IOC_STATUS`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StatusArgs {
    /// User pointer to an array of `capacity` [`StatusEntry`].
    pub entries: u64,
    /// Capacity of the array.
    pub capacity: u32,
    /// Out: number of containers (may exceed `capacity`; then only
    /// `capacity` entries were written).
    pub count: u32,
    /// Only this container, if not empty (then `count` is 0 or 1).
    pub cid: [u8; CID_LEN],
}

/// Argument of [`SPEAKER_IOC_PIDS`]: the processes that use a container's
/// filter now (to attribute seccomp's audit records, which carry a pid, to
/// containers).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PidsArgs {
    /// The container id, NUL-padded.
    pub cid: [u8; CID_LEN],
    /// User pointer to an array of `capacity` `u32`: thread-group ids in
    /// the initial PID namespace (the `pid=` of audit records).
    pub pids: u64,
    /// Capacity of the array (at most [`MAX_PIDS`] are written).
    pub capacity: u32,
    /// Out: number of processes (may exceed `capacity`).
    pub count: u32,
}

/// speaker's mark on a filter made for a container: the first instruction
/// of its classic program is `jeq #SPEAKER_MARK_K, 0, 0` (code
/// [`SPEAKER_MARK_CODE`]), a no-op (both branches go on to the next
/// instruction, and seccomp's action-cache emulation steps over it).
/// [`SPEAKER_IOC_REGISTER`] takes the top filter of a task in a non-initial
/// PID namespace (what a container is), or one whose program bears this
/// mark; any other (a host process's own sandbox: sshd's privilege
/// separation, a browser's, systemd's `SystemCallFilter=`) is refused with
/// `EPERM`.
pub const SPEAKER_MARK_CODE: u16 = 0x15;
/// The constant of speaker's mark ("SPKR").
pub const SPEAKER_MARK_K: u32 = 0x5350_4b52;

/// Most pids [`SPEAKER_IOC_PIDS`] writes in one call.
pub const MAX_PIDS: u32 = 65536;

pub const SPEAKER_IOC_VERSION: u32 = ioc(IOC_READ, 0x01, core::mem::size_of::<VersionInfo>());
pub const SPEAKER_IOC_REGISTER: u32 = ioc(IOC_WRITE, 0x02, core::mem::size_of::<RegisterArgs>());
pub const SPEAKER_IOC_SWITCH: u32 = ioc(IOC_READ | IOC_WRITE, 0x03, core::mem::size_of::<SwitchArgs>());
pub const SPEAKER_IOC_UNREGISTER: u32 = ioc(IOC_WRITE, 0x04, core::mem::size_of::<CidArgs>());
pub const SPEAKER_IOC_STATUS: u32 = ioc(IOC_READ | IOC_WRITE, 0x05, core::mem::size_of::<StatusArgs>());
pub const SPEAKER_IOC_PIDS: u32 = ioc(IOC_READ | IOC_WRITE, 0x06, core::mem::size_of::<PidsArgs>());
/// Adds the top filter of task `pid` to the registered container `cid`
/// (a process exec'd into it: `docker exec`, a Kubernetes exec probe, a
/// health check), under the same rules as [`SPEAKER_IOC_REGISTER`].  From
/// then on the container's switches replace the program of every filter it
/// owns, [`SPEAKER_IOC_STATUS`] and [`SPEAKER_IOC_PIDS`] count their tasks
/// too, and their tasks are refused as callers like the container's own.
/// `ESRCH`: no container `cid`, or task `pid` is gone or exiting (its
/// filters are dropped before it shows as a zombie); `ENOSPC`: it owns
/// [`MAX_EXEC_FILTERS`] added filters already.
pub const SPEAKER_IOC_ADD: u32 = ioc(IOC_WRITE, 0x07, core::mem::size_of::<RegisterArgs>());
/// Most filters [`SPEAKER_IOC_ADD`] adds to one container (live ones).
pub const MAX_EXEC_FILTERS: usize = 64;

// The structs have no implicit padding (sizes are sums of their fields).
const _: () = assert!(core::mem::size_of::<VersionInfo>() == 8 + MODULE_VERSION_LEN);
const _: () = assert!(core::mem::size_of::<RegisterArgs>() == CID_LEN + 16);
const _: () = assert!(core::mem::size_of::<SwitchArgs>() == CID_LEN + 8 + 32 + 8);
const _: () = assert!(core::mem::size_of::<CidArgs>() == CID_LEN);
const _: () = assert!(core::mem::size_of::<StatusEntry>() == CID_LEN + 24 + 16);
const _: () = assert!(core::mem::size_of::<StatusArgs>() == 16 + CID_LEN);
const _: () = assert!(core::mem::size_of::<PidsArgs>() == CID_LEN + 16);
