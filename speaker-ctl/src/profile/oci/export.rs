//! `speaker-ctl profile export`: one phase of a speaker profile as one
//! Docker-format seccomp profile for every node architecture the profile
//! holds (a merge of an x86_64 and an arm64 trace: one file for both).
//!
//! How Docker (moby's `profiles/seccomp`), podman and CRI-O
//! (containers/common's `pkg/seccomp`) apply such a file on a node:
//! `archMap`'s entry for the node's native ABI gives the filter's ABIs
//! (that ABI and its `subArchitectures`; a file with both `architectures`
//! and `archMap` is refused); an entry whose `includes.arches` does not name
//! the node's Go architecture (`amd64`, `arm64`) is left out; every other
//! entry's names go to *every* ABI of the filter (the OCI runtime spec has
//! no per-ABI rule, and libseccomp adds a rule to each ABI of a context).
//! Hence:
//!
//! * a profile of one node architecture is written as it always was:
//!   `architectures` and entries without `includes`;
//! * a profile of two gets an `archMap` entry for each and each node's
//!   entries with `includes.arches` naming it: each node applies exactly
//!   its own native ABI's set;
//! * a compat ABI (i386 or x32 on x86_64, 32-bit ARM on arm64) traced in the
//!   phase would get its node's whole set if listed, so it is listed only
//!   where that is exact (every name of the group that exists on an ABI of
//!   the group is in that ABI's own set); otherwise its entries are left out
//!   (returned, for a warning) and the ABI is denied as the default action
//!   says.  speaker's own enforcement (`run --profile`, speaker-runtime)
//!   keeps each ABI's set whatever it is.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{OciArchMap, OciFilter, OciProfile, OciSyscall};
use crate::profile::arch::Arch;
use crate::profile::error::ProfileError;
use crate::profile::filter::Action;
use crate::profile::policy::{phase_sets_on, CompileMode, CompileOptions};
use crate::profile::schema::{Phase, Profile};

/// What one phase allows on the ABIs of one node architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSets {
    /// The node's native ABI (x86_64 or aarch64).
    pub native: Arch,
    /// Per ABI of the node (the native one, its compat ABIs), the names
    /// allowed whatever the arguments.
    pub names: BTreeMap<Arch, BTreeSet<String>>,
    /// Entries (without `includes`) allowing native syscalls for some
    /// arguments only.
    pub conditional: Vec<OciSyscall>,
}

impl NodeSets {
    fn names_of(&self, arch: Arch) -> BTreeSet<&str> {
        self.names.get(&arch).into_iter().flatten().map(String::as_str).collect()
    }

    /// Whether applying the union of `group`'s sets (and the conditional
    /// entries) to every ABI of `group`, as a runtime does, gives each ABI
    /// exactly its own set.
    fn exact(&self, group: &[Arch]) -> bool {
        let all: BTreeSet<&str> = group.iter().flat_map(|a| self.names_of(*a)).collect();
        let cond: BTreeSet<&str> = self.conditional.iter().flat_map(OciSyscall::all_names).collect();
        group.iter().all(|&a| {
            let gets: BTreeSet<&str> = all.iter().copied().filter(|n| a.resolve(n).is_some()).collect();
            gets == self.names_of(a) && (a == self.native || cond.iter().all(|n| a.resolve(n).is_none()))
        })
    }

    /// The ABIs the node's filter lists: the native one, and each compat
    /// ABI traced in the phase whose set stays exact; and the entries of
    /// the others (`name/abi`), which the format cannot carry.
    fn group(&self) -> (Vec<Arch>, Vec<String>) {
        let mut group = vec![self.native];
        let mut dropped = Vec::new();
        for (&abi, names) in self.names.iter().filter(|(a, n)| **a != self.native && !n.is_empty()) {
            let mut with = group.clone();
            with.push(abi);
            if self.exact(&with) {
                group = with;
            } else {
                dropped.extend(names.iter().map(|n| format!("{n}/{abi}")));
            }
        }
        (group, dropped)
    }
}

/// The Docker-format profile of one phase whose nodes allow `nodes` (one
/// per node architecture, in [`Arch`] order), and the entries left out
/// (`name/abi`, see the module documentation).
pub fn to_oci(default_action: Action, nodes: &[NodeSets]) -> (OciProfile, Vec<String>) {
    let mut oci = OciProfile {
        default_action: default_action.scmp_name().to_string(),
        default_errno_ret: match default_action {
            Action::Errno(e) | Action::Trace(e) => Some(u32::from(e)),
            _ => None,
        },
        ..OciProfile::default()
    };
    let mut dropped = Vec::new();
    let several = nodes.len() > 1;
    for node in nodes {
        let (group, left_out) = node.group();
        dropped.extend(left_out);
        let names: BTreeSet<String> = group.iter().flat_map(|a| node.names.get(a).into_iter().flatten().cloned()).collect();
        let includes = if several {
            OciFilter { arches: vec![node.native.go_name().to_string()], ..OciFilter::default() }
        } else {
            OciFilter::default()
        };
        if several {
            oci.arch_map.push(OciArchMap {
                architecture: node.native.scmp_name().to_string(),
                sub_architectures: group[1..].iter().map(|a| a.scmp_name().to_string()).collect(),
            });
        } else {
            oci.architectures = group.iter().map(|a| a.scmp_name().to_string()).collect();
        }
        if !names.is_empty() {
            oci.syscalls.push(OciSyscall {
                names: names.into_iter().collect(),
                action: "SCMP_ACT_ALLOW".to_string(),
                includes: includes.clone(),
                ..OciSyscall::default()
            });
        }
        oci.syscalls.extend(node.conditional.iter().map(|e| OciSyscall { includes: includes.clone(), ..e.clone() }));
    }
    (oci, dropped)
}

/// One phase of a profile, exported.
#[derive(Debug, Clone)]
pub struct Exported {
    pub oci: OciProfile,
    /// Entries the format cannot carry (`name/abi`), their ABI denied.
    pub dropped: Vec<String>,
    /// The node architectures the file is for.
    pub nodes: Vec<Arch>,
    pub mode: CompileMode,
    /// Names allowed only in a low form, on any node.
    pub low_form_only: BTreeSet<String>,
}

/// The node architectures of `p`: those of its `architectures` and of its
/// entries (this machine's when it names none).
pub fn node_arches(p: &Profile) -> Vec<Arch> {
    let listed = p.architectures.iter().filter_map(|a| Arch::from_scmp_name(a));
    let used = p.phases.values().flat_map(|s| s.syscalls.iter().filter_map(|e| Arch::from_name(&e.arch)));
    let nodes: BTreeSet<Arch> = listed.chain(used).map(Arch::kernel).collect();
    if nodes.is_empty() {
        vec![Arch::native()]
    } else {
        nodes.into_iter().collect()
    }
}

/// Phase `phase` of `p` (read from `origin`) compiled with `opts` for each
/// of its node architectures (or only for `only`) as that node compiles
/// it, as one Docker-format profile (see the module documentation).
pub fn export_phase(p: &Profile, opts: &CompileOptions, phase: Phase, only: Option<Arch>, origin: &Path) -> Result<Exported, ProfileError> {
    let default_action = Action::parse(&p.default_action, None).ok_or_else(|| ProfileError::UnknownAction {
        path: origin.to_path_buf(),
        what: "default_action".to_string(),
        action: p.default_action.clone(),
    })?;
    let nodes: Vec<Arch> = match only {
        Some(node) => vec![node.kernel()],
        None => node_arches(p),
    };
    let mut sets = Vec::with_capacity(nodes.len());
    let mut low_form_only = BTreeSet::new();
    let mut mode = CompileMode::default();
    for &native in &nodes {
        let s = phase_sets_on(p, opts, origin, native)?;
        let set = s.profile.phase(phase).ok_or_else(|| ProfileError::MissingPhase { path: origin.to_path_buf(), phase })?;
        let mut names: BTreeMap<Arch, BTreeSet<String>> = BTreeMap::new();
        names.insert(native, BTreeSet::new());
        for e in &set.syscalls {
            if let Some(a) = Arch::from_name(&e.arch).filter(|a| a.kernel() == native) {
                names.entry(a).or_default().insert(e.name.clone());
            }
        }
        low_form_only.extend(s.conditional_names(phase));
        mode = s.mode;
        sets.push(NodeSets { native, names, conditional: s.conditional_entries(&s.profile, phase) });
    }
    let (oci, dropped) = to_oci(default_action, &sets);
    Ok(Exported { oci, dropped, nodes, mode, low_form_only })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::merge::merge;
    use crate::profile::oci::to_phase_filter_on;
    use crate::profile::schema::{PhaseSet, SyscallEntry};

    fn trace(entries: &[(&str, Arch)]) -> Profile {
        let mut p = Profile::new(Some("svc".into()));
        let arches: BTreeSet<Arch> = entries.iter().map(|(_, a)| *a).collect();
        p.architectures = arches.iter().map(|a| a.scmp_name().to_string()).collect();
        let syscalls: Vec<SyscallEntry> = entries
            .iter()
            .map(|(n, a)| SyscallEntry {
                name: n.to_string(),
                arch: a.name().into(),
                nr: a.resolve(n),
                count: Some(1),
                first_seen_ms: Some(0),
            })
            .collect();
        for phase in [Phase::Boot, Phase::Running] {
            p.phases.insert(phase, PhaseSet { syscalls: syscalls.clone() });
        }
        p
    }

    fn merged(a: Profile, b: Profile) -> Profile {
        merge(&[("a.json".into(), a), ("b.json".into(), b)]).unwrap()
    }

    /// Per ABI, the (name, has-args) pairs a filter allows.
    fn allowed(f: &crate::profile::PhaseFilter) -> BTreeMap<Arch, BTreeSet<(String, bool)>> {
        let mut m: BTreeMap<Arch, BTreeSet<(String, bool)>> = BTreeMap::new();
        for r in f.rules.iter().filter(|r| r.action.allows()) {
            m.entry(r.arch).or_default().insert((r.name.clone(), !r.args.is_empty()));
        }
        m
    }

    /// What `phase_sets_on(host)` gives the host's ABIs, as [`allowed`].
    fn compiled_on(p: &Profile, phase: Phase, host: Arch) -> BTreeMap<Arch, BTreeSet<(String, bool)>> {
        let s = phase_sets_on(p, &CompileOptions::default(), Path::new("p.json"), host).unwrap();
        let f = s.filter(phase, Path::new("p.json")).unwrap();
        let mut m = allowed(&f);
        m.retain(|a, _| a.kernel() == host);
        m
    }

    const X86: &[&str] = &["read", "write", "open", "getpriority", "socket", "mmap", "pread64"];
    const ARM: &[&str] = &["read", "write", "openat", "getppid", "uname", "mmap", "sendto"];

    fn two_arch() -> Profile {
        let x = trace(&X86.iter().map(|n| (*n, Arch::X86_64)).collect::<Vec<_>>());
        let a = trace(&ARM.iter().map(|n| (*n, Arch::Aarch64)).collect::<Vec<_>>());
        merged(x, a)
    }

    #[test]
    fn a_two_arch_profile_exports_each_node_its_own_set() {
        let p = two_arch();
        for phase in [Phase::Boot, Phase::Running] {
            let ex = export_phase(&p, &CompileOptions::default(), phase, None, Path::new("p.json")).unwrap();
            assert_eq!(ex.nodes, [Arch::X86_64, Arch::Aarch64]);
            assert!(ex.dropped.is_empty(), "{:?}", ex.dropped);
            assert!(ex.oci.architectures.is_empty(), "moby refuses architectures with archMap");
            let map: Vec<(&str, usize)> = ex.oci.arch_map.iter().map(|m| (m.architecture.as_str(), m.sub_architectures.len())).collect();
            assert_eq!(map, [("SCMP_ARCH_X86_64", 0), ("SCMP_ARCH_AARCH64", 0)]);
            for e in &ex.oci.syscalls {
                assert_eq!(e.includes.arches.len(), 1, "every entry is for one node: {e:?}");
            }
            // Written and read back: each node's filter is what speaker
            // compiles on that node, rule for rule (names and low forms).
            let text = serde_json::to_string_pretty(&ex.oci).unwrap();
            let back: OciProfile = serde_json::from_str(&text).unwrap();
            for host in [Arch::X86_64, Arch::Aarch64] {
                let f = to_phase_filter_on(&back, Path::new("e.json"), host).unwrap();
                assert_eq!(f.arches, [host], "{host}");
                assert_eq!(allowed(&f), compiled_on(&p, phase, host), "{phase} on {host}");
                crate::profile::compile(&f).unwrap();
            }
        }
        // Traced on one only: allowed there, not on the other.
        let ex = export_phase(&p, &CompileOptions::mode(CompileMode::Strict), Phase::Running, None, Path::new("p.json")).unwrap();
        let on = |host: Arch| -> BTreeSet<String> {
            to_phase_filter_on(&ex.oci, Path::new("e.json"), host).unwrap().rules.into_iter().map(|r| r.name).collect()
        };
        let (x, a) = (on(Arch::X86_64), on(Arch::Aarch64));
        assert!(x.contains("getpriority") && !a.contains("getpriority"));
        assert!(a.contains("uname") && !x.contains("uname") && a.contains("getppid") && !x.contains("getppid"));
    }

    #[test]
    fn a_one_arch_export_is_the_runtime_format_it_always_was() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/profiles"));
        for name in ["nginx.json", "postgres.json", "redis.json"] {
            let path = root.join(name);
            let p = crate::profile::load_profile(&path).unwrap();
            for mode in CompileMode::ALL {
                let opts = CompileOptions::mode(mode);
                let s = crate::profile::phase_sets(&p, &opts, &path).unwrap();
                for &phase in p.phases.keys() {
                    let ex = export_phase(&p, &opts, phase, None, &path).unwrap();
                    let (old, dropped) = s.oci_of(&s.profile, phase, &path).unwrap();
                    assert!(dropped.is_empty() && ex.dropped.is_empty());
                    assert_eq!(
                        serde_json::to_string_pretty(&ex.oci).unwrap(),
                        serde_json::to_string_pretty(&old).unwrap(),
                        "{name} {phase}"
                    );
                }
            }
        }
    }

    #[test]
    fn compat_abis_are_listed_only_where_their_set_stays_exact() {
        // i386 ran what x86_64 ran, and socketcall (i386 only): exact.
        let p =
            trace(&[("read", Arch::X86_64), ("write", Arch::X86_64), ("read", Arch::X86), ("write", Arch::X86), ("socketcall", Arch::X86)]);
        let strict = CompileOptions { margin: Some(false), ..CompileOptions::mode(CompileMode::Strict) };
        let ex = export_phase(&p, &strict, Phase::Boot, None, Path::new("p.json")).unwrap();
        assert!(ex.dropped.is_empty(), "{:?}", ex.dropped);
        assert_eq!(ex.oci.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        let f = to_phase_filter_on(&ex.oci, Path::new("e.json"), Arch::X86_64).unwrap();
        let want = |a: Arch, names: &[&str]| (a, names.iter().map(|n| (n.to_string(), false)).collect::<BTreeSet<_>>());
        assert_eq!(
            allowed(&f),
            BTreeMap::from([want(Arch::X86_64, &["read", "write"]), want(Arch::X86, &["read", "socketcall", "write"])])
        );
        // i386 ran getpriority, which x86_64 did not: listing i386 would give
        // x86_64 getpriority and i386 write; so i386 is left out.
        let p = trace(&[("read", Arch::X86_64), ("write", Arch::X86_64), ("read", Arch::X86), ("getpriority", Arch::X86)]);
        let ex = export_phase(&p, &strict, Phase::Boot, None, Path::new("p.json")).unwrap();
        assert_eq!(ex.dropped, ["getpriority/x86", "read/x86"]);
        assert_eq!(ex.oci.architectures, ["SCMP_ARCH_X86_64"]);
        let f = to_phase_filter_on(&ex.oci, Path::new("e.json"), Arch::X86_64).unwrap();
        assert_eq!(allowed(&f), BTreeMap::from([want(Arch::X86_64, &["read", "write"])]));
        // The same on arm64, in a two-arch file: 32-bit ARM rides along
        // only where exact, and x86_64's node never sees it.
        let arm = trace(&[("read", Arch::Aarch64), ("write", Arch::Aarch64), ("read", Arch::Arm), ("write", Arch::Arm)]);
        let both = merged(trace(&[("read", Arch::X86_64), ("getpid", Arch::X86_64)]), arm);
        let ex = export_phase(&both, &strict, Phase::Boot, None, Path::new("p.json")).unwrap();
        let map: Vec<(&str, &[String])> =
            ex.oci.arch_map.iter().map(|m| (m.architecture.as_str(), m.sub_architectures.as_slice())).collect();
        assert_eq!(map, [("SCMP_ARCH_X86_64", &[][..]), ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM".to_string()][..])]);
        let f = to_phase_filter_on(&ex.oci, Path::new("e.json"), Arch::Aarch64).unwrap();
        assert_eq!(allowed(&f), BTreeMap::from([want(Arch::Aarch64, &["read", "write"]), want(Arch::Arm, &["read", "write"])]));
        let f = to_phase_filter_on(&ex.oci, Path::new("e.json"), Arch::X86_64).unwrap();
        assert_eq!(allowed(&f), BTreeMap::from([want(Arch::X86_64, &["getpid", "read"])]));
    }

    #[test]
    fn a_conditional_rule_keeps_a_compat_abi_out() {
        let node = NodeSets {
            native: Arch::X86_64,
            names: BTreeMap::from([
                (Arch::X86_64, BTreeSet::from(["read".to_string()])),
                (Arch::X86, BTreeSet::from(["read".to_string()])),
            ]),
            conditional: vec![OciSyscall { names: vec!["mprotect".into()], action: "SCMP_ACT_ALLOW".into(), ..OciSyscall::default() }],
        };
        assert_eq!(node.group(), (vec![Arch::X86_64], vec!["read/x86".to_string()]));
    }
}
