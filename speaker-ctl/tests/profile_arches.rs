//! One profile for x86_64 and arm64 nodes: an x86_64 trace and an arm64
//! trace of the same service, merged, compile into one filter per phase that
//! allows each architecture exactly what was traced on it (and rejects an
//! ABI that was never traced), whichever host compiles it.
use std::path::PathBuf;

use speaker::profile::schema::{Phase, PhaseSet, Profile, SyscallEntry};
use speaker::profile::{compile, merge, phase_filter, Arch, SockFilter};

fn trace(arch: Arch, names: &[&str]) -> Profile {
    let mut p = Profile::new(Some("svc".into()));
    p.architectures = vec![arch.scmp_name().to_string()];
    let syscalls = names
        .iter()
        .map(|n| SyscallEntry {
            name: n.to_string(),
            arch: arch.name().to_string(),
            nr: arch.resolve(n),
            count: Some(1),
            first_seen_ms: Some(0),
        })
        .collect();
    p.phases.insert(Phase::Boot, PhaseSet { syscalls });
    p
}

/// What classic `prog` returns for syscall `nr` of `arch` (no arguments
/// loaded: the test profiles have no argument rules).
fn verdict(prog: &[SockFilter], arch: u32, nr: u32) -> u32 {
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = prog[pc];
        match i.code {
            0x20 => {
                a = if i.k == 4 {
                    arch
                } else {
                    assert_eq!(i.k, 0, "loads only nr and arch");
                    nr
                }
            }
            0x06 => return i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 | 0x45 => {
                let taken = match i.code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    0x35 => a >= i.k,
                    _ => a & i.k != 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            0x54 => a &= i.k,
            c => panic!("unexpected instruction {c:#x}"),
        }
        pc += 1;
    }
}

const ALLOW: u32 = 0x7fff_0000;

#[test]
fn merged_x86_64_and_arm64_traces_allow_each_arch_its_own_syscalls() {
    let x86 = trace(Arch::X86_64, &["read", "open", "getpriority"]);
    let arm = trace(Arch::Aarch64, &["read", "openat", "uname"]);
    let merged = merge(&[(PathBuf::from("x86.json"), x86), (PathBuf::from("arm64.json"), arm)]).unwrap();
    assert_eq!(merged.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]);
    // The merged profile survives its own file format.
    let text = serde_json::to_string(&merged).unwrap();
    let back: Profile = serde_json::from_str(&text).unwrap();
    let prog = compile(&phase_filter(&back, Phase::Boot).unwrap()).unwrap();

    let on = |arch: Arch, name: &str| verdict(&prog, arch.audit_arch(), arch.resolve(name).unwrap() as u32);
    for n in ["read", "open", "getpriority"] {
        assert_eq!(on(Arch::X86_64, n), ALLOW, "x86_64 {n}");
    }
    for n in ["read", "openat", "uname"] {
        assert_eq!(on(Arch::Aarch64, n), ALLOW, "aarch64 {n}");
    }
    // Traced on one architecture only: denied on the other.
    assert_ne!(on(Arch::X86_64, "uname"), ALLOW);
    assert_ne!(on(Arch::Aarch64, "getpriority"), ALLOW);
    assert_ne!(on(Arch::X86_64, "openat"), ALLOW);
    // Compat ABIs never traced are not allowed at all.
    assert_ne!(verdict(&prog, Arch::Arm.audit_arch(), 3 /* arm read */), ALLOW);
    assert_ne!(verdict(&prog, Arch::X86.audit_arch(), 3 /* i386 read */), ALLOW);
}

// `speaker-ctl profile export` of such a profile: one Docker-format file
// that each node applies as Docker, podman and CRI-O do (moby's
// profiles/seccomp setupSeccomp, containers/common's pkg/seccomp).

const BIN: &str = env!("CARGO_BIN_EXE_speaker-ctl");

fn ctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().expect("run speaker-ctl")
}

fn tmp(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("speaker-profile-arches-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a profile whose boot and running phases hold `entries`.
fn write_trace(path: &std::path::Path, entries: &[(&str, Arch)]) {
    let mut p = Profile::new(Some("svc".into()));
    for (_, a) in entries {
        if !p.architectures.iter().any(|x| x == a.scmp_name()) {
            p.architectures.push(a.scmp_name().to_string());
        }
    }
    let syscalls: Vec<SyscallEntry> = entries
        .iter()
        .map(|(n, a)| SyscallEntry { name: n.to_string(), arch: a.name().into(), nr: a.resolve(n), count: Some(1), first_seen_ms: Some(0) })
        .collect();
    for phase in [Phase::Boot, Phase::Running] {
        p.phases.insert(phase, PhaseSet { syscalls: syscalls.clone() });
    }
    std::fs::write(path, serde_json::to_string_pretty(&p).unwrap()).unwrap();
}

/// `profile export --phase running --compile strict --no-margin` (what was
/// traced, nothing added): (the file as written, stderr).
fn export(dir: &std::path::Path, profile: &std::path::Path) -> (String, String) {
    let out = dir.join("exported.json");
    let o = ctl(&[
        "profile",
        "export",
        "--phase",
        "running",
        "--compile",
        "strict",
        "--no-margin",
        "-o",
        out.to_str().unwrap(),
        profile.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "export failed: {stderr}");
    let v = ctl(&["profile", "validate", out.to_str().unwrap()]);
    assert!(
        v.status.success(),
        "validate refused the export: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    (std::fs::read_to_string(&out).unwrap(), stderr)
}

type Sets = std::collections::BTreeMap<Arch, std::collections::BTreeSet<String>>;

/// What Docker, podman or CRI-O on a node of architecture `node` (x86_64 or
/// aarch64) allow under the file `text`, per ABI of the filter, by their
/// rules (not speaker's reader): the filter's ABIs are `architectures`, or
/// `archMap`'s entry for the node (both at once: refused); an entry whose
/// `includes.arches` lacks the node's GOARCH, or whose `excludes.arches`
/// has it, is left out; the others' names go to every ABI of the filter,
/// where libseccomp knows them.
fn node_sets(text: &str, node: Arch) -> Sets {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let goarch = if node == Arch::Aarch64 { "arm64" } else { "amd64" };
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
    };
    let listed = strs(&v["architectures"]);
    assert!(listed.is_empty() || v.get("archMap").is_none(), "moby refuses both architectures and archMap");
    let mut abis = listed;
    for m in v["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == node.scmp_name() {
            abis.push(node.scmp_name().to_string());
            abis.extend(strs(&m["subArchitectures"]));
        }
    }
    if abis.is_empty() {
        abis.push(node.scmp_name().to_string());
    }
    let mut names = Vec::new();
    for e in v["syscalls"].as_array().unwrap() {
        let inc = strs(&e["includes"]["arches"]);
        if (!inc.is_empty() && !inc.iter().any(|a| a == goarch)) || strs(&e["excludes"]["arches"]).iter().any(|a| a == goarch) {
            continue;
        }
        assert_eq!(e["action"], "SCMP_ACT_ALLOW");
        assert!(e.get("args").is_none(), "strict, without margin: no argument rules");
        names.extend(strs(&e["names"]));
    }
    abis.iter()
        .map(|a| {
            let abi = Arch::from_scmp_name(a).unwrap();
            (abi, names.iter().filter(|n| abi.resolve(n).is_some()).cloned().collect())
        })
        .collect()
}

fn sets(want: &[(Arch, &[&str])]) -> Sets {
    want.iter().map(|(a, names)| (*a, names.iter().map(|n| n.to_string()).collect())).collect()
}

#[test]
fn a_merged_profile_exports_one_file_that_gives_each_node_exactly_its_set() {
    let d = tmp("merged");
    let (x86, arm) = (d.join("x86.json"), d.join("arm64.json"));
    let x86_names: &[&str] = &["read", "write", "open", "getpriority"];
    let arm_names: &[&str] = &["read", "write", "openat", "uname"];
    write_trace(&x86, &x86_names.iter().map(|n| (*n, Arch::X86_64)).collect::<Vec<_>>());
    write_trace(&arm, &arm_names.iter().map(|n| (*n, Arch::Aarch64)).collect::<Vec<_>>());
    let merged = d.join("merged.json");
    let o = ctl(&["profile", "merge", "-o", merged.to_str().unwrap(), x86.to_str().unwrap(), arm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (text, stderr) = export(&d, &merged);
    assert!(!stderr.contains("warning"), "nothing is left out: {stderr}");
    assert_eq!(node_sets(&text, Arch::X86_64), sets(&[(Arch::X86_64, x86_names)]), "{text}");
    assert_eq!(node_sets(&text, Arch::Aarch64), sets(&[(Arch::Aarch64, arm_names)]), "{text}");
    // `run --boot` takes it: on this host, this host's half.
    let f = speaker::profile::load_phase_file(d.join("exported.json")).unwrap();
    let native = Arch::native();
    let got: std::collections::BTreeSet<&str> = f.rules.iter().filter(|r| r.arch == native).map(|r| r.name.as_str()).collect();
    let want = if native == Arch::X86_64 { x86_names } else { arm_names };
    assert_eq!(got, want.iter().copied().collect());
    assert!(f.rules.iter().all(|r| r.arch == native), "{:?}", f.rules);
}

#[test]
fn a_one_arch_export_is_unchanged_and_an_arm64_one_is_for_arm64() {
    let d = tmp("one");
    let p = d.join("x86.json");
    write_trace(&p, &[("write", Arch::X86_64), ("read", Arch::X86_64)]);
    let (text, stderr) = export(&d, &p);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(
        text,
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"defaultErrnoRet\": 1,\n  \"architectures\": [\n    \"SCMP_ARCH_X86_64\"\n  ],\n  \
         \"syscalls\": [\n    {\n      \"names\": [\n        \"read\",\n        \"write\"\n      ],\n      \"action\": \"SCMP_ACT_ALLOW\"\n    }\n  ]\n}\n"
    );
    // An arm64 trace, exported on any host: arm64's file.
    let p = d.join("arm64.json");
    write_trace(&p, &[("openat", Arch::Aarch64), ("read", Arch::Aarch64)]);
    let (text, stderr) = export(&d, &p);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(node_sets(&text, Arch::Aarch64), sets(&[(Arch::Aarch64, &["openat", "read"])]), "{text}");
    assert_eq!(node_sets(&text, Arch::X86_64).values().flatten().count(), 0, "{text}");
}

#[test]
fn compat_syscalls_stay_on_their_abi() {
    let d = tmp("compat");
    // i386 ran the same as x86_64, plus socketcall (i386 only): listing
    // i386 gives each ABI exactly its set.
    let p = d.join("exact.json");
    let mut entries =
        vec![("read", Arch::X86_64), ("write", Arch::X86_64), ("read", Arch::X86), ("write", Arch::X86), ("socketcall", Arch::X86)];
    write_trace(&p, &entries);
    let (text, stderr) = export(&d, &p);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(node_sets(&text, Arch::X86_64), sets(&[(Arch::X86_64, &["read", "write"]), (Arch::X86, &["read", "socketcall", "write"])]));
    // i386 ran getpriority, x86_64 did not: the format would give it to
    // both, so i386's entries are left out (and the ABI denied), with a
    // warning naming them.
    entries.push(("getpriority", Arch::X86));
    let p = d.join("inexact.json");
    write_trace(&p, &entries);
    let (text, stderr) = export(&d, &p);
    assert!(stderr.contains("warning") && stderr.contains("getpriority/x86") && stderr.contains("socketcall/x86"), "{stderr}");
    assert_eq!(node_sets(&text, Arch::X86_64), sets(&[(Arch::X86_64, &["read", "write"])]));
    // In a two-arch file, 32-bit ARM likewise rides along with arm64 only
    // where exact, and x86_64's node never gets it.
    let (x86, arm, merged) = (d.join("x.json"), d.join("a.json"), d.join("m.json"));
    write_trace(&x86, &[("read", Arch::X86_64), ("getpid", Arch::X86_64)]);
    write_trace(&arm, &[("read", Arch::Aarch64), ("write", Arch::Aarch64), ("read", Arch::Arm), ("write", Arch::Arm)]);
    let o = ctl(&["profile", "merge", "-o", merged.to_str().unwrap(), x86.to_str().unwrap(), arm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (text, _) = export(&d, &merged);
    assert_eq!(node_sets(&text, Arch::Aarch64), sets(&[(Arch::Aarch64, &["read", "write"]), (Arch::Arm, &["read", "write"])]));
    assert_eq!(node_sets(&text, Arch::X86_64), sets(&[(Arch::X86_64, &["getpid", "read"])]));
}

/// `--arch`: one node's half of a merged profile, in the one-architecture
/// format (no archMap, no includes: what containerd, which reads neither,
/// applies as written).
#[test]
fn export_arch_writes_one_nodes_half() {
    let d = tmp("arch");
    let (x86, arm, merged) = (d.join("x86.json"), d.join("arm64.json"), d.join("merged.json"));
    write_trace(&x86, &[("read", Arch::X86_64), ("getpriority", Arch::X86_64)]);
    write_trace(&arm, &[("read", Arch::Aarch64), ("uname", Arch::Aarch64)]);
    let o = ctl(&["profile", "merge", "-o", merged.to_str().unwrap(), x86.to_str().unwrap(), arm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (arch, node, want) in [("aarch64", Arch::Aarch64, ["read", "uname"]), ("amd64", Arch::X86_64, ["getpriority", "read"])] {
        let out = d.join(format!("{arch}.json"));
        let args =
            ["profile", "export", "--phase", "boot", "--compile", "strict", "--no-margin", "--arch", arch, "-o", out.to_str().unwrap()];
        let o = ctl(&[&args[..], &[merged.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains("archMap") && !text.contains("includes"), "{text}");
        assert_eq!(node_sets(&text, node), sets(&[(node, &want[..])]), "{text}");
    }
    // A half the profile does not have: a clear error.
    let o = ctl(&["profile", "export", "--phase", "boot", "--arch", "aarch64", x86.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("has no aarch64 half (it is for x86_64)"), "{e}");
}
