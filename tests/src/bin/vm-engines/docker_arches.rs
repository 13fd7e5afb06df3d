//! Docker itself (its default runtime, runc: no speaker-runtime) given the
//! one file `speaker-ctl profile export` writes for a profile of both
//! architectures (`archMap` for x86_64 and aarch64, each half's entry with
//! `includes.arches`): this amd64 node must apply the amd64 half only.

use std::fs;

use speaker::profile::Arch;
use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::checks::ok;
use crate::setup::{setup, DIR, IMAGE};

/// Traced on arm64 only (the x86_64 half has every other syscall).
const ARM64_ONLY: &str = "getcpu";
/// Traced on both.
const BOTH: &str = "getppid";

/// A profile with one boot phase: every x86_64 syscall but [`ARM64_ONLY`],
/// and on aarch64 [`ARM64_ONLY`] and [`BOTH`] (strict, no margin: nothing
/// added at export).
fn two_arch_profile() -> Result<String, String> {
    let x86: Vec<String> = (0..1024u64).filter_map(|nr| Arch::X86_64.syscall_name(nr)).filter(|n| n != ARM64_ONLY).collect();
    ensure!(x86.len() > 300 && x86.iter().any(|n| n == BOTH), "libseccomp knows only {} x86_64 syscalls", x86.len());
    let mut entries: Vec<serde_json::Value> = x86.iter().map(|n| serde_json::json!({ "name": n, "arch": "x86_64" })).collect();
    entries.extend([ARM64_ONLY, BOTH].iter().map(|n| serde_json::json!({ "name": n, "arch": "aarch64" })));
    let p = serde_json::json!({
        "schema": "speaker.profile/v1",
        "name": "two-arch",
        "margin": false,
        "compile": "strict",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "phases": { "boot": { "syscalls": entries } },
    });
    serde_json::to_string_pretty(&p).map_err(|e| e.to_string())
}

/// `docker run --security-opt seccomp=FILE` of the probe: its stdout.
fn probe_under(file: &str) -> Result<String, String> {
    let seccomp = format!("seccomp={file}");
    ok("docker run", &run("docker", &["run", "--rm", "--security-opt", &seccomp, IMAGE, "speaker-probe", "try", BOTH, ARM64_ONLY]))
}

pub fn docker_applies_the_amd64_half_of_a_two_arch_export() -> Outcome {
    setup()?;
    let profile = format!("{DIR}/two-arch.json");
    fs::write(&profile, two_arch_profile()?).map_err(|e| format!("{profile}: {e}"))?;
    let exported = format!("{DIR}/two-arch-boot.json");
    let o = run("speaker-ctl", &["profile", "export", "--phase", "boot", "-o", &exported, &profile]);
    ensure!(o.code == 0 && !o.stderr.contains("warning"), "profile export: exit {}: {}", o.code, o.stderr.trim());
    let text = fs::read_to_string(&exported).map_err(|e| format!("{exported}: {e}"))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{exported}: {e}"))?;
    let arches: Vec<&str> = v["archMap"].as_array().into_iter().flatten().filter_map(|m| m["architecture"].as_str()).collect();
    ensure!(arches == ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"], "archMap {arches:?}");

    let out = probe_under(&exported)?;
    for want in [format!("{BOTH}: 0"), format!("{ARM64_ONLY}: errno 1")] {
        ensure!(out.lines().any(|l| l.trim() == want), "under the exported file, want '{want}': {out}");
    }
    println!("  docker, exported two-arch file: {}", out.lines().map(str::trim).collect::<Vec<_>>().join(", "));
    // What includes.arches keeps out: the same file without it gives this
    // node the arm64 half's getcpu too.
    for e in v["syscalls"].as_array_mut().ok_or("the export has no syscalls")? {
        e.as_object_mut().ok_or("a syscalls entry is no object")?.remove("includes");
    }
    let stripped = format!("{DIR}/two-arch-no-includes.json");
    fs::write(&stripped, v.to_string()).map_err(|e| format!("{stripped}: {e}"))?;
    let out = probe_under(&stripped)?;
    ensure!(out.lines().any(|l| l.trim() == format!("{ARM64_ONLY}: 0")), "without includes, {ARM64_ONLY} should pass: {out}");
    Ok(())
}
