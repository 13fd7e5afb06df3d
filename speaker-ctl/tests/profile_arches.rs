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
