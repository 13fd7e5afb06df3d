//! The test profiles: per-phase deny lists and allow lists written as JSON,
//! and the results the probe reports for allowed and denied syscalls.

use std::fs;
use std::path::{Path, PathBuf};

/// The errno every test profile's deny rules return.
pub const DENY: &str = "errno 1000";

pub const ALLOWED: &str = "0";

/// `getpriority` on the native ABI (140 on x86_64, 141 on arm64): the
/// syscall used to probe the action cache.
pub const NR_GETPRIORITY: u32 = libc::SYS_getpriority as u32;

pub fn write_json(path: &Path, v: &serde_json::Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// An OCI profile that allows everything but `deny`, which fail with errno 1000.
pub fn deny_profile(name: &str, deny: &[&str], action: &str) -> PathBuf {
    let path = PathBuf::from(format!("/tmp/profiles/{name}.json"));
    let mut rule = serde_json::json!({ "names": deny, "action": action });
    if action == "SCMP_ACT_ERRNO" {
        rule["errnoRet"] = 1000.into();
    }
    write_json(
        &path,
        &serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [speaker::profile::Arch::native().scmp_name()],
            "syscalls": [rule],
        }),
    );
    path
}

/// The standard three phases of the tests: boot denies only `sysinfo`;
/// running also denies `mount`, `sethostname` and `getpriority`; shutdown
/// also denies `uname`.
pub fn std_phases() -> [PathBuf; 3] {
    [
        deny_profile("boot", &["sysinfo"], "SCMP_ACT_ERRNO"),
        deny_profile("running", &["sysinfo", "mount", "sethostname", "getpriority"], "SCMP_ACT_ERRNO"),
        deny_profile("shutdown", &["sysinfo", "mount", "sethostname", "getpriority", "uname"], "SCMP_ACT_ERRNO"),
    ]
}

/// A speaker multi-phase profile with allow lists (default: EPERM), built
/// from every syscall libseccomp knows minus `deny`.
pub fn allow_list_profile(name: &str) -> PathBuf {
    let all: Vec<String> = (0..512)
        .filter_map(|nr| libseccomp::ScmpSyscall::from(nr).get_name_by_arch(libseccomp::ScmpArch::native()).ok())
        .filter(|n| !n.is_empty() && !n.starts_with('_'))
        .collect();
    let phase = |deny: &[&str]| {
        let list: Vec<serde_json::Value> =
            all.iter().filter(|n| !deny.contains(&n.as_str())).map(|n| serde_json::json!({ "name": n })).collect();
        serde_json::json!({ "syscalls": list })
    };
    let path = PathBuf::from(format!("/tmp/profiles/{name}.json"));
    write_json(
        &path,
        &serde_json::json!({
            "schema": "speaker.profile/v1",
            "name": name,
            "default_action": "SCMP_ACT_ERRNO",
            // The phases exactly as listed (getpriority is low-risk).
            "compile": "strict",
            "phases": {
                "boot": phase(&["sysinfo"]),
                "running": phase(&["sysinfo", "mount", "sethostname", "getpriority"]),
                "shutdown": phase(&["sysinfo", "mount", "sethostname", "getpriority", "uname"]),
            }
        }),
    );
    path
}
