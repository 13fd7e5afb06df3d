//! The Docker default seccomp profile: loading, counting, converting, compiling.
#![allow(clippy::disallowed_macros)] // test output goes to the harness
use speaker::profile::schema::Phase;
use speaker::profile::{self, oci, Action, Arch};

const DOCKER_DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");

#[test]
fn docker_default_loads_and_counts() {
    let o = profile::load_oci(DOCKER_DEFAULT).unwrap();
    assert_eq!(o.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(o.default_errno_ret, Some(1));
    let c = profile::docker_count(&o, Arch::X86_64);
    println!(
        "Docker default on x86_64: {} unconditional, {} with arguments, {} capability-gated",
        c.unconditional, c.with_args, c.cap_gated
    );
    assert!((285..=305).contains(&c.unconditional), "{c:?}");
    let sets = oci::docker_sets(&o, Arch::X86_64);
    // Argument-filtered on x86_64: socket, personality, clone.
    assert_eq!(sets.with_args.iter().map(String::as_str).collect::<Vec<_>>(), ["clone", "personality", "socket"]);
    assert!(sets.unconditional.contains("arch_prctl"));
    assert!(sets.unconditional.contains("read"));
    // Capability-gated, other-arch and i386-only names are not allowed.
    for n in ["mount", "bpf", "reboot", "s390_runtime_instr", "socketcall", "chown32"] {
        assert!(!sets.unconditional.contains(n), "{n}");
    }
    assert!(sets.cap_gated.contains("mount") && sets.cap_gated.contains("bpf"));
    assert!(!sets.cap_gated.contains("clone"));
}

#[test]
fn docker_default_as_phase_file_compiles() {
    let f = profile::load_phase_file(DOCKER_DEFAULT).unwrap();
    assert_eq!(f.default_action, Action::Errno(1));
    // archMap for an x86_64 host.
    assert_eq!(f.arches, vec![Arch::X86_64, Arch::X86, Arch::X32]);
    assert!(f.rules.iter().any(|r| r.name == "clone3" && r.action == Action::Errno(38) && r.arch == Arch::X86_64));
    assert!(f.rules.iter().any(|r| r.name == "socketcall" && r.arch == Arch::X86));
    assert_eq!(profile::allowed_count(&f), 300);
    let prog = profile::compile(&f).unwrap();
    assert!(prog.len() > 300, "{}", prog.len());
    assert!(prog.iter().any(|i| i.k == profile::AUDIT_ARCH_I386));
}

#[test]
fn docker_default_as_speaker_profile() {
    // Where a speaker profile is expected, a Docker/OCI one is refused,
    // saying what its phases-less, condition-less reading would drop.
    let e = profile::load_profile(DOCKER_DEFAULT).unwrap_err().to_string();
    assert!(e.contains("a Docker/OCI seccomp profile, not a speaker profile"), "{e}");
    for dropped in ["clone", "clone3", "personality", "socket"] {
        assert!(e.contains(dropped), "{dropped} not named: {e}");
    }
    // Read for showing, it is one boot phase, with notes on what was left out.
    let (p, notes) = profile::load_profile_lossy(DOCKER_DEFAULT).unwrap();
    assert!(notes.iter().any(|n| n.contains("argument conditions") && n.contains("personality")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("capability conditions")), "{notes:?}");
    let c = profile::docker_count(&profile::load_oci(DOCKER_DEFAULT).unwrap(), Arch::X86_64);
    assert_eq!(p.phases.len(), 1);
    assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(p.phase(Phase::Boot).unwrap().syscalls.len(), c.unconditional);
    let f = profile::phase_filter(&p, Phase::Boot).unwrap();
    assert_eq!(profile::allowed_count(&f), c.unconditional);
    profile::compile(&f).unwrap();
}
