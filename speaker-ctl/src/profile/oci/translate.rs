//! Pure translations between Docker/OCI seccomp profiles and speaker's types.
//!
//! Entries are applied the way a runtime (moby or containers/common, then
//! runc) does for an unprivileged container on a node: this host, or the
//! architecture [`to_phase_filter_on`] is given:
//!
//! * `includes.arches` / `excludes.arches` are compared with the *node's*
//!   architecture (`amd64`, `arm64`), and an applicable entry's rules go to
//!   every ABI of the filter (`architectures`, or `archMap`'s entry for the
//!   node);
//! * entries with `includes.caps` need a capability the container does not
//!   have and are left out; `excludes.caps` never excludes;
//! * `includes.minKernel` is taken as satisfied (speaker needs a recent
//!   kernel anyway), which keeps the translation independent of the host;
//! * names libseccomp does not know on an ABI are left out on that ABI, as
//!   runc does (profiles list syscalls of other ABIs and of newer kernels).
use std::collections::BTreeSet;
use std::path::Path;

use super::{OciProfile, OciSyscall};
use crate::profile::arch::Arch;
use crate::profile::error::ProfileError;
use crate::profile::filter::{Action, ArgCmp, CmpOp, PhaseFilter, Rule};
use crate::profile::schema::{Phase, PhaseSet, Profile, SyscallEntry, SCHEMA_V1};

/// Names of `arch` in `includes.arches` / `excludes.arches` (Go / moby names).
fn host_arch_names(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &["amd64", "x86_64"],
        Arch::X86 => &["x86", "386", "i386"],
        Arch::X32 => &["x32"],
        Arch::Aarch64 => &["arm64", "aarch64"],
        Arch::Arm => &["arm"],
    }
}

/// How an entry applies on a host of architecture `host`, for an
/// unprivileged container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    Yes,
    /// Only with a capability (`includes.caps`).
    CapGated,
    /// Not on this architecture.
    No,
}

pub fn applies(entry: &OciSyscall, host: Arch) -> Applies {
    let names = host_arch_names(host);
    let listed = |v: &[String]| v.iter().any(|a| names.contains(&a.as_str()));
    if listed(&entry.excludes.arches) {
        return Applies::No;
    }
    if !entry.includes.arches.is_empty() && !listed(&entry.includes.arches) {
        return Applies::No;
    }
    if !entry.includes.caps.is_empty() {
        return Applies::CapGated;
    }
    Applies::Yes
}

/// The ABIs of the filter on a host of architecture `host`: `architectures`,
/// or `archMap`'s entry for the host, or only the host's. ABIs other than
/// x86_64 / i386 / x32 cannot occur on the host and are left out.
pub fn filter_arches(oci: &OciProfile, host: Arch) -> Vec<Arch> {
    let mut names: Vec<&str> = oci.architectures.iter().map(String::as_str).collect();
    if let Some(m) = oci.arch_map.iter().find(|m| m.architecture == host.scmp_name()) {
        names.push(&m.architecture);
        names.extend(m.sub_architectures.iter().map(String::as_str));
    }
    let mut arches = Vec::new();
    for a in names.into_iter().filter_map(Arch::from_scmp_name) {
        if !arches.contains(&a) {
            arches.push(a);
        }
    }
    if arches.is_empty() {
        arches.push(host);
    }
    arches
}

/// What an OCI profile allows on ABI `arch` (as the host's), by distinct
/// syscall name that libseccomp resolves on `arch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerSets {
    /// Allowed whatever the arguments.
    pub unconditional: BTreeSet<String>,
    /// Allowed for some argument values only (and not unconditionally).
    pub with_args: BTreeSet<String>,
    /// Allowed only with a capability (and not otherwise).
    pub cap_gated: BTreeSet<String>,
}

/// The syscalls `SCMP_ACT_ALLOW` entries of `oci` allow for an unprivileged
/// container on `arch` (see the module documentation for the rules).
pub fn docker_sets(oci: &OciProfile, arch: Arch) -> DockerSets {
    let mut sets = DockerSets::default();
    let mut gated = BTreeSet::new();
    for entry in oci.syscalls.iter().filter(|e| e.action == "SCMP_ACT_ALLOW") {
        let target = match applies(entry, arch) {
            Applies::No => continue,
            Applies::CapGated => &mut gated,
            Applies::Yes if entry.args.is_empty() => &mut sets.unconditional,
            Applies::Yes => &mut sets.with_args,
        };
        target.extend(entry.all_names().filter(|n| arch.resolve(n).is_some()).map(str::to_string));
    }
    sets.with_args.retain(|n| !sets.unconditional.contains(n));
    sets.cap_gated = gated.into_iter().filter(|n| !sets.unconditional.contains(n) && !sets.with_args.contains(n)).collect();
    sets
}

fn parse_action(path: &Path, what: impl Into<String>, action: &str, ret: Option<u32>) -> Result<Action, ProfileError> {
    Action::parse(action, ret).ok_or_else(|| ProfileError::UnknownAction {
        path: path.to_path_buf(),
        what: what.into(),
        action: match ret {
            Some(r) => format!("{action} (errnoRet {r})"),
            None => action.to_string(),
        },
    })
}

fn entry_label(entry: &OciSyscall) -> String {
    let names: Vec<&str> = entry.all_names().collect();
    match names.as_slice() {
        [] => "syscalls entry without names".to_string(),
        [one] => format!("syscalls entry '{one}'"),
        [first, ..] => format!("syscalls entry '{first}', ... ({} names)", names.len()),
    }
}

/// The filter a runtime would install for `oci` on this host; `path` is
/// for error messages.
pub fn to_phase_filter(oci: &OciProfile, path: &Path) -> Result<PhaseFilter, ProfileError> {
    to_phase_filter_on(oci, path, Arch::native())
}

/// The filter a runtime would install for `oci` on a node whose native ABI
/// is `host` (x86_64 or aarch64).
pub fn to_phase_filter_on(oci: &OciProfile, path: &Path, host: Arch) -> Result<PhaseFilter, ProfileError> {
    let default_action = parse_action(path, "defaultAction", &oci.default_action, oci.default_errno_ret)?;
    let arches = filter_arches(oci, host);
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: BTreeSet<(String, Arch, String)> = BTreeSet::new();
    let mut unresolved: BTreeSet<String> = BTreeSet::new();
    for entry in &oci.syscalls {
        if applies(entry, host) != Applies::Yes {
            continue;
        }
        let action = parse_action(path, entry_label(entry), &entry.action, entry.errno_ret)?;
        let mut args = Vec::with_capacity(entry.args.len());
        for a in &entry.args {
            let name = entry.all_names().next().unwrap_or("?").to_string();
            let op = CmpOp::parse(&a.op).ok_or_else(|| ProfileError::BadArgument {
                path: path.to_path_buf(),
                name: name.clone(),
                msg: format!("unknown comparison operator '{}'", a.op),
            })?;
            if a.index > 5 {
                return Err(ProfileError::BadArgument {
                    path: path.to_path_buf(),
                    name,
                    msg: format!("argument index {} out of range 0..=5", a.index),
                });
            }
            args.push(ArgCmp { index: a.index, op, value: a.value, value_two: a.value_two });
        }
        for name in entry.all_names() {
            let mut resolved = false;
            for &arch in &arches {
                if arch.resolve(name).is_none() {
                    continue;
                }
                resolved = true;
                let key = (name.to_string(), arch, format!("{action:?}{args:?}"));
                if seen.insert(key) {
                    rules.push(Rule { name: name.to_string(), arch, action, args: args.clone() });
                }
            }
            if !resolved {
                unresolved.insert(name.to_string());
            }
        }
    }
    Ok(PhaseFilter { default_action, arches, rules, unresolved: unresolved.into_iter().collect() })
}

/// A speaker profile with one phase (`phase`) holding what `oci` allows
/// unconditionally on x86_64 for an unprivileged container. Lossy by design,
/// and stricter than `oci`: argument-filtered, capability-gated and non-ALLOW
/// entries, other ABIs and `defaultErrnoRet` are dropped. An OCI denylist
/// (`defaultAction` SCMP_ACT_ALLOW) is refused.
pub fn to_profile(oci: &OciProfile, phase: Phase, path: &Path) -> Result<Profile, ProfileError> {
    let default_action = parse_action(path, "defaultAction", &oci.default_action, oci.default_errno_ret)?;
    if default_action == Action::Allow {
        return Err(ProfileError::Denylist { path: path.to_path_buf(), action: oci.default_action.clone() });
    }
    let arch = Arch::native();
    let syscalls = docker_sets(oci, arch)
        .unconditional
        .into_iter()
        .map(|name| SyscallEntry { nr: arch.resolve(&name), name, arch: arch.name().to_string(), count: None, first_seen_ms: None })
        .collect();
    let mut profile = Profile::new(path.file_stem().map(|s| s.to_string_lossy().into_owned()));
    profile.schema = SCHEMA_V1.to_string();
    profile.default_action = default_action.scmp_name().to_string();
    profile.architectures = vec![arch.scmp_name().to_string()];
    profile.phases.insert(phase, PhaseSet { syscalls });
    Ok(profile)
}

/// Phase `phase` of a speaker profile as the OCI runtime spec's
/// `linux.seccomp` for a node whose native ABI is `native` (what
/// speaker-runtime gives crun): `defaultAction` (and `defaultErrnoRet` for
/// SCMP_ACT_ERRNO), `architectures` [native] and one SCMP_ACT_ALLOW entry
/// with the sorted names. The runtime spec cannot give each ABI its own
/// set, so only the native ABI's entries are kept; the names of the others
/// are returned (dropped, and their ABIs denied as a result). `profile
/// export` writes Docker's format instead ([`super::export`]).
pub fn from_phase(profile: &Profile, phase: Phase, path: &Path, native: Arch) -> Result<(OciProfile, Vec<String>), ProfileError> {
    let set = profile.phase(phase).ok_or_else(|| ProfileError::MissingPhase { path: path.to_path_buf(), phase })?;
    let default_action = parse_action(path, "default_action", &profile.default_action, None)?;
    let mut names = BTreeSet::new();
    let mut dropped = BTreeSet::new();
    for e in &set.syscalls {
        if e.arch == native.name() {
            names.insert(e.name.clone());
        } else {
            dropped.insert(format!("{}/{}", e.name, e.arch));
        }
    }
    let syscalls = if names.is_empty() {
        Vec::new()
    } else {
        vec![OciSyscall { names: names.into_iter().collect(), action: "SCMP_ACT_ALLOW".to_string(), ..OciSyscall::default() }]
    };
    let oci = OciProfile {
        default_action: default_action.scmp_name().to_string(),
        default_errno_ret: match default_action {
            Action::Errno(e) | Action::Trace(e) => Some(u32::from(e)),
            _ => None,
        },
        architectures: vec![native.scmp_name().to_string()],
        syscalls,
        ..OciProfile::default()
    };
    Ok((oci, dropped.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::oci::{OciFilter, OciSyscall};

    fn parse(s: &str) -> OciProfile {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn serde_nulls_and_defaults() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":null,
                "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":null},
                            {"name":"write","action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(p.architectures.is_empty());
        assert_eq!(p.syscalls[1].all_names().collect::<Vec<_>>(), ["write"]);
        let f = to_phase_filter(&p, Path::new("x.json")).unwrap();
        assert_eq!(f.arches, vec![Arch::X86_64]);
        assert_eq!(f.rules.len(), 2);
    }

    #[test]
    fn applicability() {
        let e = |inc: &[&str], exc: &[&str], caps: &[&str]| OciSyscall {
            names: vec!["read".into()],
            action: "SCMP_ACT_ALLOW".into(),
            includes: OciFilter {
                arches: inc.iter().map(|s| s.to_string()).collect(),
                caps: caps.iter().map(|s| s.to_string()).collect(),
                min_kernel: None,
            },
            excludes: OciFilter { arches: exc.iter().map(|s| s.to_string()).collect(), ..OciFilter::default() },
            ..OciSyscall::default()
        };
        assert_eq!(applies(&e(&[], &[], &[]), Arch::X86_64), Applies::Yes);
        assert_eq!(applies(&e(&["amd64", "x32"], &[], &[]), Arch::X86_64), Applies::Yes);
        assert_eq!(applies(&e(&["arm64"], &[], &[]), Arch::X86_64), Applies::No);
        assert_eq!(applies(&e(&[], &["amd64"], &[]), Arch::X86_64), Applies::No);
        assert_eq!(applies(&e(&[], &[], &["CAP_SYS_ADMIN"]), Arch::X86_64), Applies::CapGated);
    }

    #[test]
    fn arch_map_and_unresolved() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS",
                "archMap":[{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]},
                           {"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
                "syscalls":[{"names":["read","socketcall","not_a_syscall_at_all"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        );
        let f = to_phase_filter(&p, Path::new("x.json")).unwrap();
        assert_eq!(f.arches, vec![Arch::X86_64, Arch::X86]);
        assert_eq!(f.unresolved, vec!["not_a_syscall_at_all".to_string()]);
        // read on both ABIs, socketcall on i386 only, clone3 on both.
        assert_eq!(f.rules.len(), 5);
        assert!(f.rules.iter().any(|r| r.name == "clone3" && r.action == Action::Errno(38)));
        crate::profile::compile(&f).unwrap();
    }

    #[test]
    fn bad_entries() {
        let p = parse(r#"{"defaultAction":"SCMP_ACT_NOTIFY","syscalls":[]}"#);
        let e = to_phase_filter(&p, Path::new("n.json")).unwrap_err().to_string();
        assert!(e.contains("n.json") && e.contains("SCMP_ACT_NOTIFY"), "{e}");
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW",
                "args":[{"index":0,"value":1,"op":"SCMP_CMP_FOO"}]}]}"#,
        );
        let e = to_phase_filter(&p, Path::new("a.json")).unwrap_err().to_string();
        assert!(e.contains("personality") && e.contains("SCMP_CMP_FOO"), "{e}");
        let p = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#);
        assert!(matches!(to_profile(&p, Phase::Boot, Path::new("d.json")), Err(ProfileError::Denylist { .. })));
    }

    #[test]
    fn export_round_trip() {
        let mut p = Profile::new(None);
        p.architectures.push("SCMP_ARCH_X86".into());
        let e = |n: &str, a: &str| SyscallEntry { name: n.into(), arch: a.into(), nr: None, count: None, first_seen_ms: None };
        p.phases.insert(Phase::Running, PhaseSet { syscalls: vec![e("write", "x86_64"), e("read", "x86_64"), e("read", "x86")] });
        let (oci, dropped) = from_phase(&p, Phase::Running, Path::new("p.json"), Arch::X86_64).unwrap();
        assert_eq!(dropped, vec!["read/x86".to_string()]);
        assert_eq!(oci.default_errno_ret, Some(1));
        assert_eq!(oci.syscalls[0].names, vec!["read".to_string(), "write".to_string()]);
        let text = serde_json::to_string(&oci).unwrap();
        assert!(!text.contains("includes") && !text.contains("archMap"), "{text}");
        let back: OciProfile = serde_json::from_str(&text).unwrap();
        let f = to_phase_filter(&back, Path::new("p.json")).unwrap();
        assert_eq!(crate::profile::allowed_count(&f), 2);
        assert!(from_phase(&p, Phase::Boot, Path::new("p.json"), Arch::X86_64).is_err());
    }
}
