//! The risk classification of every syscall: `data/syscall-risk.json`,
//! compiled into speaker-ctl.
//!
//! Each syscall has a *class* (critical, moderate, low), a *family* (the
//! syscalls that do the same thing to what the process already holds), a
//! reason and its sources (kernel CVEs, the security-critical set of
//! Ghavamnia et al., USENIX Security 2020, Docker's default profile and its
//! capability-gated groups, systemd's `SystemCallFilter=` groups).  Every
//! decision is a line of that one file, so it can be reviewed there; a unit
//! test checks that every x86_64 syscall libseccomp knows is classified
//! exactly once.
//!
//! Entries are keyed by name, as libseccomp and the profiles name syscalls
//! on every ABI: adding arm64 means classifying the names aarch64 has and
//! x86_64 lacks (none today: aarch64's table is the generic one, a subset of
//! these names) and extending the coverage test to `SCMP_ARCH_AARCH64`.
//!
//! A few syscalls have a *low form*: an argument condition under which the
//! kernel tells the harmless use apart from the dangerous one (`mprotect`
//! without `PROT_EXEC`: the protection is a register argument, so a seccomp
//! filter can test it).  The unconditional syscall keeps its class; the low
//! form is what `balanced` compilation may add (see [`super::policy`]).
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::filter::{ArgCmp, CmpOp};

/// The classification file, as committed.
pub const DATA: &str = include_str!("../../data/syscall-risk.json");
/// Its `schema`.
pub const SCHEMA: &str = "speaker.syscall-risk/v1";

/// How much a syscall gives an attacker who controls the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Low,
    Moderate,
    Critical,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Low => "low",
            Class::Moderate => "moderate",
            Class::Critical => "critical",
        }
    }
}

/// One argument condition of a low form, in the OCI spelling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CondArg {
    pub index: u32,
    pub op: String,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
}

/// The form of a syscall that is low-risk whatever its class.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LowForm {
    /// In words (`no PROT_EXEC`).
    pub when: String,
    pub args: Vec<CondArg>,
}

impl LowForm {
    /// The conditions as filter conditions (checked by the unit tests).
    pub fn arg_cmps(&self) -> Vec<ArgCmp> {
        self.args
            .iter()
            .map(|a| ArgCmp {
                index: a.index,
                op: CmpOp::parse(&a.op).expect("syscall-risk.json: operators are checked by the tests"),
                value: a.value,
                value_two: a.value_two,
            })
            .collect()
    }
}

/// One syscall's classification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    pub name: String,
    pub class: Class,
    pub family: String,
    #[serde(default)]
    pub low_form: Option<LowForm>,
    pub reason: String,
    pub sources: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub schema: String,
    pub sources: BTreeMap<String, String>,
    pub classes: BTreeMap<String, String>,
    pub families: BTreeMap<String, String>,
    pub syscalls: Vec<Entry>,
    #[serde(skip)]
    by_name: BTreeMap<String, usize>,
}

impl Table {
    /// Parses a classification file (the committed one is [`table`]).
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut t: Table = serde_json::from_str(text).map_err(|e| format!("syscall-risk.json: {e}"))?;
        if t.schema != SCHEMA {
            return Err(format!("syscall-risk.json: schema {:?}, expected {SCHEMA:?}", t.schema));
        }
        for (i, e) in t.syscalls.iter().enumerate() {
            if t.by_name.insert(e.name.clone(), i).is_some() {
                return Err(format!("syscall-risk.json: {} is classified twice", e.name));
            }
            if !t.families.contains_key(&e.family) {
                return Err(format!("syscall-risk.json: {}: unknown family {}", e.name, e.family));
            }
        }
        Ok(t)
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.syscalls[i])
    }

    /// The class of `name`; a name the table does not know (a syscall newer
    /// than it) is `Moderate`: never added by `balanced`, never counted as
    /// a critical syscall removed.
    pub fn class(&self, name: &str) -> Class {
        self.get(name).map_or(Class::Moderate, |e| e.class)
    }

    pub fn is_critical(&self, name: &str) -> bool {
        self.class(name) == Class::Critical
    }

    /// The family of `name`, if classified.
    pub fn family(&self, name: &str) -> Option<&str> {
        self.get(name).map(|e| e.family.as_str())
    }

    /// The members of family `family`.
    pub fn members<'a>(&'a self, family: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.syscalls.iter().filter(move |e| e.family == family)
    }
}

/// The committed classification (parsed once).
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::parse(DATA).expect("speaker-ctl/data/syscall-risk.json is checked by the unit tests"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::oci::{docker_sets, OciProfile};
    use crate::profile::Arch;
    use libseccomp::{ScmpArch, ScmpSyscall};

    /// Every x86_64 syscall libseccomp knows (numbers 0..1024 by name).
    fn libseccomp_x86_64() -> Vec<String> {
        (0..1024).filter_map(|nr| ScmpSyscall::from(nr).get_name_by_arch(ScmpArch::X8664).ok()).collect()
    }

    #[test]
    fn every_x86_64_syscall_is_classified_exactly_once() {
        let t = table();
        let known = libseccomp_x86_64();
        assert!(known.len() > 330, "libseccomp knows only {} x86_64 syscalls", known.len());
        let missing: Vec<&String> = known.iter().filter(|n| t.get(n).is_none()).collect();
        assert!(missing.is_empty(), "not classified in data/syscall-risk.json: {missing:?}");
        // Parsing refuses duplicates; names libseccomp does not know must be
        // marked as newer (so a typo cannot hide).
        for e in &t.syscalls {
            if Arch::X86_64.resolve(&e.name).is_none() {
                assert!(e.sources.iter().any(|s| s == "libseccomp:newer"), "{} is unknown to libseccomp and not marked newer", e.name);
            }
        }
        assert!(Table::parse(&DATA.replacen("\"name\": \"write\"", "\"name\": \"read\"", 1)).is_err());
    }

    #[test]
    fn every_entry_has_a_reason_sources_and_known_tags() {
        let t = table();
        for e in &t.syscalls {
            assert!(!e.reason.trim().is_empty(), "{}: no reason", e.name);
            assert!(!e.sources.is_empty(), "{}: no sources", e.name);
            for s in &e.sources {
                let known = s.starts_with("cve:CVE-")
                    || s.starts_with("systemd:@")
                    || s.starts_with("docker:cap:")
                    || ["ghavamnia20", "docker:allow", "docker:args", "docker:deny", "libseccomp:newer"].contains(&s.as_str());
                assert!(known, "{}: unknown source tag {s}", e.name);
            }
            assert!(e.sources.iter().any(|s| s.starts_with("docker:")), "{}: no Docker tag", e.name);
            if let Some(f) = &e.low_form {
                assert!(e.class > Class::Low, "{}: a low syscall needs no low form", e.name);
                assert!(!f.args.is_empty() && f.args.iter().all(|a| a.index <= 5 && CmpOp::parse(&a.op).is_some()), "{}", e.name);
            }
        }
    }

    #[test]
    fn docker_tags_match_the_docker_profile() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json")).unwrap();
        let docker: OciProfile = serde_json::from_str(&text).unwrap();
        let sets = docker_sets(&docker, Arch::X86_64);
        for e in table().syscalls.iter().filter(|e| Arch::X86_64.resolve(&e.name).is_some()) {
            let tag = if sets.unconditional.contains(&e.name) {
                "docker:allow"
            } else if sets.with_args.contains(&e.name) {
                "docker:args"
            } else if sets.cap_gated.contains(&e.name) {
                "docker:cap:"
            } else {
                "docker:deny"
            };
            assert!(e.sources.iter().any(|s| s.starts_with(tag)), "{}: expected a {tag} tag, has {:?}", e.name, e.sources);
        }
    }

    #[test]
    fn the_critical_set_holds_what_only_boot_may_do() {
        let t = table();
        let must = [
            "mount",
            "umount2",
            "setuid",
            "setgid",
            "setreuid",
            "setregid",
            "setresuid",
            "setresgid",
            "setfsuid",
            "setfsgid",
            "setgroups",
            "chroot",
            "pivot_root",
            "capset",
            "unshare",
            "setns",
            "bpf",
            "ptrace",
            "process_vm_writev",
            "process_vm_readv",
            "keyctl",
            "add_key",
            "request_key",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "kexec_file_load",
            "open_by_handle_at",
            "userfaultfd",
            "perf_event_open",
            "clone3",
            "mount_setattr",
            "fsopen",
            "fsconfig",
            "fsmount",
            "move_mount",
            "open_tree",
            "fspick",
            "personality",
            "iopl",
            "ioperm",
            "reboot",
            "swapon",
            "swapoff",
            "quotactl",
            "execve",
            "execveat",
            "mprotect",
            "pkey_mprotect",
            "io_uring_setup",
        ];
        for n in must {
            assert_eq!(t.class(n), Class::Critical, "{n}");
        }
        // What the issue names as buying no security when removed.
        for n in ["geteuid", "gettid", "fadvise64", "ftruncate", "madvise", "shutdown", "sendfile", "read", "pwritev"] {
            assert_eq!(t.class(n), Class::Low, "{n}");
        }
        // The executable-memory syscalls are split on prot (arg 2).
        for n in ["mprotect", "pkey_mprotect", "mmap"] {
            let f = t.get(n).and_then(|e| e.low_form.as_ref()).unwrap_or_else(|| panic!("{n} has no low form"));
            assert_eq!(f.arg_cmps(), vec![ArgCmp { index: 2, op: CmpOp::MaskedEq, value: libc::PROT_EXEC as u64, value_two: 0 }]);
        }
        assert_eq!(t.class("clone"), Class::Moderate);
    }

    #[test]
    fn families_group_the_issues_examples() {
        let t = table();
        for group in [
            &["read", "pread64", "readv", "preadv", "preadv2"][..],
            &["write", "pwrite64", "writev", "pwritev", "pwritev2", "sendfile", "splice", "copy_file_range", "tee"],
            &["truncate", "ftruncate", "fallocate"],
            &["fsync", "fdatasync", "sync_file_range", "syncfs"],
            &["fadvise64", "readahead"],
            &["getuid", "geteuid", "getgid", "getegid", "getpid", "gettid"],
            &["mmap", "mremap", "madvise", "munmap", "mprotect"],
            &["sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown"],
            &["stat", "fstat", "newfstatat", "statx"],
            &["poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait"],
        ] {
            let f = t.family(group[0]).unwrap();
            for n in group {
                assert_eq!(t.family(n), Some(f), "{n} is not in {}'s family", group[0]);
            }
        }
    }
}
