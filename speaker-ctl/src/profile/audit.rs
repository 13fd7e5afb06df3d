//! seccomp's audit records: what the kernel reports when a filter installed
//! with `SECCOMP_FILTER_FLAG_LOG` denies a syscall, or any filter returns
//! `SCMP_ACT_LOG` or kills.  Without auditd they reach the kernel log as
//!
//! ```text
//! audit: type=1326 audit(1700000000.123:45): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=812 comm="speaker-probe" exe="/usr/bin/speaker-probe" sig=0 arch=c000003e syscall=140 compat=0 ip=0x7f3c... code=0x50000
//! ```
//!
//! (`/dev/kmsg` prefixes `PRIO,SEQ,MONOTONIC_US,FLAGS;`, `dmesg` prefixes
//! `[SECONDS]`); auditd's log has the same fields after `type=SECCOMP
//! msg=audit(...)`.  `pid=` is the thread-group id in the initial PID
//! namespace; `audit(SECONDS.MILLIS:SERIAL)` is the (coarse) wall-clock time
//! of the event and a serial unique per boot.
use serde::{Deserialize, Serialize};

use super::arch::Arch;

/// One seccomp audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompRecord {
    /// Wall-clock time of the event, milliseconds since the epoch.
    pub time_unix_ms: u64,
    /// The audit serial (with the time, unique per boot).
    pub serial: u64,
    /// Kernel log timestamp (CLOCK_MONOTONIC-like, microseconds since
    /// boot), when read from `/dev/kmsg` or `dmesg` output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monotonic_us: Option<u64>,
    pub pid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// `x86_64`, `x86` or `x32` (speaker's names), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub nr: u64,
    /// The syscall's name (libseccomp's), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// The filter's return value (`SECCOMP_RET_*` | data).
    pub code: u32,
}

const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;

impl SeccompRecord {
    /// Parses one line of a kernel log (`/dev/kmsg`, `dmesg`, syslog) or an
    /// auditd log; `None` if it is not a seccomp record.
    pub fn parse(line: &str) -> Option<SeccompRecord> {
        let at = line.find("type=1326 ").or_else(|| line.find("type=SECCOMP "))?;
        let monotonic_us = kmsg_time(&line[..at]);
        let body = &line[at..];
        let stamp = body.find("audit(")?;
        let rest = &body[stamp + "audit(".len()..];
        let close = rest.find(')')?;
        let (time, serial) = rest[..close].split_once(':')?;
        let (secs, millis) = time.split_once('.').unwrap_or((time, "0"));
        let time_unix_ms = secs.parse::<u64>().ok()?.checked_mul(1000)?.checked_add(millis.parse::<u64>().ok()?)?;
        let serial = serial.parse().ok()?;
        let fields = &rest[close + 1..];
        let pid = field(fields, "pid")?.parse().ok()?;
        let comm = field(fields, "comm").unwrap_or_default();
        let exe = field(fields, "exe");
        let audit_arch = field(fields, "arch").and_then(|a| u32::from_str_radix(&a, 16).ok());
        let nr: u64 = field(fields, "syscall")?.parse().ok()?;
        let code = field(fields, "code").and_then(|c| u32::from_str_radix(c.trim_start_matches("0x"), 16).ok())?;
        let arch = audit_arch.and_then(|a| Arch::from_audit(a, nr));
        let syscall = arch.and_then(|a| a.syscall_name(nr & !u64::from(super::X32_SYSCALL_BIT)));
        Some(SeccompRecord {
            time_unix_ms,
            serial,
            monotonic_us,
            pid,
            comm,
            exe,
            arch: arch.map(|a| a.name().to_string()),
            nr,
            syscall,
            code,
        })
    }

    /// The action as an `SCMP_ACT_*` name.
    pub fn action(&self) -> &'static str {
        match self.code & SECCOMP_RET_ACTION_FULL {
            0x8000_0000 => "SCMP_ACT_KILL_PROCESS",
            0x0000_0000 => "SCMP_ACT_KILL_THREAD",
            0x0003_0000 => "SCMP_ACT_TRAP",
            0x0005_0000 => "SCMP_ACT_ERRNO",
            0x7fc0_0000 => "SCMP_ACT_NOTIFY",
            0x7ff0_0000 => "SCMP_ACT_TRACE",
            0x7ffc_0000 => "SCMP_ACT_LOG",
            0x7fff_0000 => "SCMP_ACT_ALLOW",
            _ => "unknown",
        }
    }

    /// Whether the syscall ran anyway (complain mode).
    pub fn allowed(&self) -> bool {
        matches!(self.code & SECCOMP_RET_ACTION_FULL, 0x7ffc_0000 | 0x7fff_0000)
    }

    /// The syscall's name, or `#NR` when unknown.
    pub fn syscall_label(&self) -> String {
        self.syscall.clone().unwrap_or_else(|| format!("#{}", self.nr))
    }

    /// (time, serial): unique per boot.
    pub fn key(&self) -> (u64, u64) {
        (self.time_unix_ms, self.serial)
    }
}

/// The timestamp of a `/dev/kmsg` record (`PRIO,SEQ,USECS,FLAGS;`) or a
/// `dmesg` line (`[SECS.USECS]`), in microseconds.
fn kmsg_time(prefix: &str) -> Option<u64> {
    if let Some((head, _)) = prefix.split_once(';') {
        return head.split(',').nth(2)?.trim().parse().ok();
    }
    let open = prefix.find('[')?;
    let close = prefix[open..].find(']')? + open;
    let (s, us) = prefix[open + 1..close].trim().split_once('.')?;
    Some(s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?)
}

/// The value of ` key=value` (quoted, bare, or hex-encoded as audit does
/// for strings with spaces or quotes).
fn field(fields: &str, key: &str) -> Option<String> {
    let pat = format!(" {key}=");
    let at = fields.find(&pat)? + pat.len();
    let v = &fields[at..];
    if let Some(q) = v.strip_prefix('"') {
        return Some(q[..q.find('"')?].to_string());
    }
    let raw = v.split_whitespace().next().unwrap_or("");
    if (key == "comm" || key == "exe") && raw.len().is_multiple_of(2) && raw.chars().all(|c| c.is_ascii_hexdigit()) && !raw.is_empty() {
        let bytes: Option<Vec<u8>> = (0..raw.len()).step_by(2).map(|i| u8::from_str_radix(&raw[i..i + 2], 16).ok()).collect();
        if let Some(b) = bytes {
            return Some(String::from_utf8_lossy(&b).into_owned());
        }
    }
    Some(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KMSG: &str = "5,1042,78123456,-;audit: type=1326 audit(1700000000.123:45): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=812 comm=\"speaker-probe\" exe=\"/opt/speaker/bin/speaker-probe\" sig=0 arch=c000003e syscall=140 compat=0 ip=0x7f3c00001234 code=0x50000";

    #[test]
    fn parses_kmsg_dmesg_and_auditd_lines() {
        let r = SeccompRecord::parse(KMSG).unwrap();
        assert_eq!((r.time_unix_ms, r.serial, r.monotonic_us), (1_700_000_000_123, 45, Some(78_123_456)));
        assert_eq!((r.pid, r.comm.as_str(), r.nr, r.code), (812, "speaker-probe", 140, 0x50000));
        assert_eq!(r.syscall.as_deref(), Some("getpriority"));
        assert_eq!(r.arch.as_deref(), Some("x86_64"));
        assert_eq!(r.action(), "SCMP_ACT_ERRNO");
        assert!(!r.allowed());
        let dmesg = "[   78.123456] audit: type=1326 audit(1700000000.123:46): pid=9 comm=\"a b\" sig=0 arch=c000003e syscall=165 compat=0 ip=0x1 code=0x7ffc0000";
        let r = SeccompRecord::parse(dmesg).unwrap();
        assert_eq!(
            (r.monotonic_us, r.syscall.as_deref(), r.action(), r.allowed()),
            (Some(78_123_456), Some("mount"), "SCMP_ACT_LOG", true)
        );
        let auditd = "type=SECCOMP msg=audit(1700000001.5:47): auid=0 uid=0 gid=0 ses=1 pid=10 comm=6E67696E7820776F726B6572 exe=\"/usr/sbin/nginx\" sig=31 arch=40000003 syscall=20 compat=1 ip=0x1 code=0x80000000";
        let r = SeccompRecord::parse(auditd).unwrap();
        assert_eq!((r.time_unix_ms, r.monotonic_us, r.comm.as_str()), (1_700_000_001_005, None, "nginx worker"));
        assert_eq!((r.arch.as_deref(), r.syscall.as_deref(), r.action()), (Some("x86"), Some("getpid"), "SCMP_ACT_KILL_PROCESS"));
        assert!(SeccompRecord::parse("6,1,2,-;audit: type=1400 audit(1.2:3): apparmor").is_none());
        assert!(SeccompRecord::parse("random line").is_none());
    }
}
