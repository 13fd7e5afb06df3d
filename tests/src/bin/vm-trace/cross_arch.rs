//! One profile for x86_64 and arm64 nodes, traced on both: the scenarios
//! of tests/tests/arm64_trace.rs's three boots, which pass the traces
//! through the host (printed on the console as `PROFILE-JSON {...}`, given
//! to the next boot in `/mnt/share`, `qemu/run --share`):
//!
//! 1. arm64: `fixture_profile_is_traced_for_a_merge` traces the fixture
//!    service and prints the trace;
//! 2. x86_64: `merged_profile_of_both_arches_is_enforced` traces it there
//!    too, merges the arm64 trace (`/mnt/share/trace.json`) into it with
//!    `speaker-ctl profile merge`, enforces the merged file and prints it;
//!    then exports it (`speaker-ctl profile export`: one Docker-format
//!    file per phase for both architectures), enforces the exported files
//!    and prints them (`OCI-JSON NAME {...}`);
//! 3. arm64: `shared_merged_profile_is_enforced` enforces that same merged
//!    file (`/mnt/share/merged.json`) and the same exported files
//!    (`/mnt/share/exported-*.json`), and checks that its own export of
//!    the merged file says the same.
//!
//! Before the merge, each trace gets one syscall the other lacks (in boot,
//! from [`PROBES`]: speaker-probe can make them and they succeed when
//! allowed): under the exported boot filter, `speaker-probe try` makes
//! both, and each node must allow its own and deny (EPERM) the other's.
//!
//! Enforcing means: the service runs its boot, running and shutdown phases
//! under the file with `SCMP_ACT_ERRNO` as the default action; compiled
//! strictly (balanced mode widens from boot), the file without the other
//! architecture's `write` and `sendto` in the running phase still runs it,
//! and without this architecture's (the fixture answers `pong` with
//! `sendto`: Rust's std sends with `MSG_NOSIGNAL`) its answers fail: each
//! architecture's own half is what its kernel applies.
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use speaker::profile::policy::CompileMode;
use speaker::profile::schema::{Phase, Profile};
use speaker::profile::Arch;
use speaker_tests::ensure;
use speaker_tests::guest::Outcome;

use super::{check_service_sets, ctl, ctl_ok, run_service_under, trace_service, workdir};

/// Syscalls that exist on both architectures, that `speaker-probe try`
/// makes and that succeed for root in the guest when allowed.
const PROBES: &[&str] = &["getppid", "getcpu", "gettid", "sched_getaffinity", "getcwd", "capget"];
/// The phases of the exported files.
const EXPORTED: [Phase; 3] = [Phase::Boot, Phase::Running, Phase::Shutdown];
const PROBE_FILE: &str = "probe-boot.json";

fn read(path: &Path) -> Result<Profile, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is no profile: {e}", path.display()))
}

/// Prints `p` on one line for the host (tests/tests/arm64_trace.rs).
fn print_profile(p: &Profile) {
    println!("PROFILE-JSON {}", serde_json::to_string(p).unwrap());
}

/// The ABIs the entries of `p` name.
fn entry_arches(p: &Profile) -> BTreeSet<String> {
    p.phases.values().flat_map(|s| s.syscalls.iter().map(|e| e.arch.clone())).collect()
}

/// `p` compiled strictly (only what was traced, no widening from the
/// families of what was traced or from boot: balanced mode would put
/// `write` back) without `arch`'s `write` and `sendto` in the running phase.
fn strict_without_answers(p: &Profile, arch: &str) -> Result<Profile, String> {
    let mut cut = p.clone();
    cut.compile = Some(CompileMode::Strict);
    let running = &mut cut.phases.get_mut(&Phase::Running).ok_or("the merged profile has no running phase")?.syscalls;
    let before = running.len();
    running.retain(|e| !(e.arch == arch && (e.name == "write" || e.name == "sendto")));
    ensure!(running.len() < before, "running has no {arch} write or sendto to take away: {running:?}");
    Ok(cut)
}

/// Runs the fixture service under `p` (deny by default); then, compiled
/// strictly, without the other ABI's `write` and `sendto` in the running
/// phase (it still answers), and without this ABI's (its answers fail).
fn enforce(dir: &Path, p: &Profile, port: u16) -> Outcome {
    let native = Arch::native().name();
    let mut p = p.clone();
    p.default_action = "SCMP_ACT_ERRNO".into();
    let path = dir.join("enforced.json");
    fs::write(&path, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    run_service_under("merged-svc", &["--profile", path.to_str().unwrap()], port)?;

    let other = entry_arches(&p).into_iter().find(|a| a != native).ok_or("the profile has one architecture only")?;
    let path = dir.join("strict-without-other.json");
    fs::write(&path, serde_json::to_string_pretty(&strict_without_answers(&p, &other)?).unwrap()).unwrap();
    run_service_under("strict-svc", &["--profile", path.to_str().unwrap()], port + 1)
        .map_err(|e| format!("strict, without {other} write/sendto in running (this node's intact): {e}"))?;

    let path = dir.join("strict-without-native.json");
    fs::write(&path, serde_json::to_string_pretty(&strict_without_answers(&p, native)?).unwrap()).unwrap();
    match run_service_under("cut-svc", &["--profile", path.to_str().unwrap()], port + 2) {
        Ok(()) => Err(format!("the service answered without {native} write/sendto in its running phase: the file is not enforced")),
        Err(e) if e.contains("client under the running phase") => {
            println!("  without {native} write in running: {}", e.lines().next().unwrap_or(""));
            Ok(())
        }
        Err(e) => Err(format!("without {native} write/sendto the service failed, but not at its running-phase answers: {e}")),
    }
}

/// Every name of `p`, any phase, any ABI.
fn all_names(p: &Profile) -> BTreeSet<String> {
    p.phases.values().flat_map(|s| s.syscalls.iter().map(|e| e.name.clone())).collect()
}

/// Adds `name` (ABI `arch`) to the boot phase of the trace at `path`.
fn add_to_boot(path: &Path, name: &str, arch: Arch) -> Outcome {
    let mut p = read(path)?;
    let boot = p.phases.get_mut(&Phase::Boot).ok_or_else(|| format!("{} has no boot phase", path.display()))?;
    boot.syscalls.push(speaker::profile::schema::SyscallEntry {
        name: name.to_string(),
        arch: arch.name().to_string(),
        nr: arch.resolve(name),
        count: Some(1),
        first_seen_ms: Some(0),
    });
    fs::write(path, serde_json::to_string_pretty(&p).unwrap()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The probe syscalls of the merged `p`, each with the one ABI whose boot
/// phase has it.
fn probes_of(p: &Profile) -> Vec<(String, String)> {
    let boot = p.phases.get(&Phase::Boot).map(|s| s.syscalls.as_slice()).unwrap_or_default();
    PROBES
        .iter()
        .filter_map(|n| {
            let arches: Vec<&str> = boot.iter().filter(|e| e.name == *n).map(|e| e.arch.as_str()).collect();
            match arches.as_slice() {
                [one] => Some((n.to_string(), one.to_string())),
                _ => None,
            }
        })
        .collect()
}

/// `speaker-ctl profile export` of `p` (default action EPERM): each
/// phase of [`EXPORTED`] as compiled by default, and the boot phase
/// compiled strictly (nothing added beyond the traces and the margin) as
/// [`PROBE_FILE`]; each checked by `profile validate` and carrying both
/// architectures, with nothing left out. (file name, its JSON).
fn export_all(dir: &Path, p: &Profile) -> Result<Vec<(String, serde_json::Value)>, String> {
    let mut p = p.clone();
    p.default_action = "SCMP_ACT_ERRNO".into();
    let src = dir.join("for-export.json");
    fs::write(&src, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    let mut jobs: Vec<(String, Vec<&str>)> =
        EXPORTED.iter().map(|ph| (format!("exported-{ph}.json"), vec!["--phase", ph.name()])).collect();
    jobs.push((PROBE_FILE.to_string(), vec!["--phase", "boot", "--compile", "strict"]));
    let mut out = Vec::new();
    for (name, opts) in jobs {
        let file = dir.join(&name);
        let mut args = vec!["profile", "export"];
        args.extend(opts);
        args.extend(["-o", file.to_str().unwrap(), src.to_str().unwrap()]);
        let o = ctl(&args);
        ensure!(o.code == 0, "speaker-ctl {} failed ({}): {}", args.join(" "), o.code, o.stderr.trim());
        ensure!(!o.stderr.contains("warning"), "export of {name} left something out: {}", o.stderr.trim());
        ctl_ok(&["profile", "validate", file.to_str().unwrap()])?;
        let text = fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        let map: Vec<&str> = v["archMap"].as_array().into_iter().flatten().filter_map(|m| m["architecture"].as_str()).collect();
        ensure!(map == ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"], "{name}: archMap {map:?}, want x86_64 and aarch64");
        out.push((name, v));
    }
    Ok(out)
}

/// The fixture service under the exported files (boot, running,
/// shutdown: `speaker-ctl run --boot/--running/--shutdown`), then
/// `speaker-probe try` under the strict boot file in `dir`: each probe
/// syscall of this node's ABI works, the other node's fails with EPERM.
fn enforce_exported(dir: &Path, merged: &Profile, port: u16) -> Outcome {
    let f = |ph: &str| dir.join(format!("exported-{ph}.json")).to_str().unwrap().to_string();
    let (b, r, s) = (f("boot"), f("running"), f("shutdown"));
    run_service_under("exported-svc", &["--boot", &b, "--running", &r, "--shutdown", &s], port)
        .map_err(|e| format!("the fixture under the exported files: {e}"))?;
    let native = Arch::native().name();
    let probes = probes_of(merged);
    ensure!(
        probes.iter().any(|(_, a)| a == native) && probes.iter().any(|(_, a)| a != native),
        "the merged boot phase has no probe syscall of each architecture: {probes:?}"
    );
    let probe = dir.join(PROBE_FILE);
    let probe = probe.to_str().unwrap();
    let mut args = vec!["run", "--name", "exported-probe", "--boot", probe, "--running", probe, "--", "/bin/speaker-probe", "try"];
    args.extend(probes.iter().map(|(n, _)| n.as_str()));
    let o = ctl(&args);
    ensure!(o.code == 0, "speaker-probe under {PROBE_FILE}: exit {}: {} {}", o.code, o.stdout.trim(), o.stderr.trim());
    for (name, arch) in &probes {
        let want = if arch == native { format!("{name}: 0") } else { format!("{name}: errno 1") };
        ensure!(o.stdout.lines().any(|l| l.trim() == want), "{name} ({arch} only): want '{want}', got: {}", o.stdout.trim());
        println!("  exported, {native} node: {want} (traced on {arch} only)");
    }
    Ok(())
}

pub(super) fn fixture_profile_is_traced_for_a_merge() -> Outcome {
    let dir = workdir("for-merge");
    let t = trace_service(&dir, "filter", 7401, 5);
    ensure!(t.code == 0, "trace: {}", t.describe());
    let p = t.profile()?;
    check_service_sets("traced profile", p)?;
    let arches = entry_arches(p);
    ensure!(arches.contains(Arch::native().name()), "no {} entries: {arches:?}", Arch::native().name());
    print_profile(p);
    Ok(())
}

pub(super) fn merged_profile_of_both_arches_is_enforced() -> Outcome {
    let dir = workdir("merge");
    let native = Arch::native().name();
    let other_path = Path::new("/mnt/share/trace.json");
    let other = read(other_path)?;
    let other_arches = entry_arches(&other);
    ensure!(
        !other_arches.is_empty() && !other_arches.contains(native),
        "{} is not another architecture's trace: {other_arches:?}",
        other_path.display()
    );
    let t = trace_service(&dir, "filter", 7411, 5);
    ensure!(t.code == 0, "trace: {}", t.describe());
    check_service_sets("traced profile", t.profile()?)?;
    // One probe syscall that only this trace has, one only the other has.
    let used: BTreeSet<String> = all_names(t.profile()?).union(&all_names(&other)).cloned().collect();
    let free: Vec<&str> = PROBES
        .iter()
        .copied()
        .filter(|n| !used.contains(*n) && Arch::X86_64.resolve(n).is_some() && Arch::Aarch64.resolve(n).is_some())
        .collect();
    let [mine_only, other_only, ..] = free[..] else {
        return Err(format!("fewer than two of {PROBES:?} are free of both traces: {free:?}"));
    };
    let mine = dir.join("filter.json");
    let other_copy = dir.join("other.json");
    fs::copy(other_path, &other_copy).map_err(|e| format!("cannot copy {}: {e}", other_path.display()))?;
    add_to_boot(&mine, mine_only, Arch::native())?;
    let other_arch = other_arches.iter().next().and_then(|a| Arch::from_name(a)).ok_or("the other trace names no known ABI")?;
    add_to_boot(&other_copy, other_only, other_arch)?;
    let (mine_p, other) = (read(&mine)?, read(&other_copy)?);
    let merged_path = dir.join("merged.json");
    ctl_ok(&["profile", "merge", "-o", merged_path.to_str().unwrap(), mine.to_str().unwrap(), other_copy.to_str().unwrap()])?;
    let merged = read(&merged_path)?;
    for p in [&mine_p, &other] {
        for a in &p.architectures {
            ensure!(merged.architectures.contains(a), "merged architectures {:?} lack {a}", merged.architectures);
        }
    }
    // Each phase holds exactly what each architecture's trace saw.
    for ph in Phase::ALL {
        let names = |p: &Profile, pick: &dyn Fn(&str) -> bool| -> BTreeSet<(String, String)> {
            p.phases
                .get(&ph)
                .map(|s| s.syscalls.iter().filter(|e| pick(&e.arch)).map(|e| (e.arch.clone(), e.name.clone())).collect())
                .unwrap_or_default()
        };
        let all = |_: &str| true;
        let want: BTreeSet<_> = names(&mine_p, &all).union(&names(&other, &all)).cloned().collect();
        ensure!(names(&merged, &all) == want, "{ph}: the merged set is not the union of the two traces");
    }
    println!("  merged: architectures {:?}, entries per ABI {:?}", merged.architectures, entry_arches(&merged));
    print_profile(&merged);
    enforce(&dir, &merged, 7412)?;
    for (name, v) in export_all(&dir, &merged)? {
        println!("OCI-JSON {name} {v}");
    }
    enforce_exported(&dir, &merged, 7416)
}

pub(super) fn shared_merged_profile_is_enforced() -> Outcome {
    let dir = workdir("shared-merged");
    let merged = read(Path::new("/mnt/share/merged.json"))?;
    let arches = entry_arches(&merged);
    ensure!(
        arches.contains(Arch::native().name()) && arches.len() >= 2,
        "/mnt/share/merged.json is no merge of two architectures: {arches:?}"
    );
    enforce(&dir, &merged, 7421)?;
    // The x86_64 node's exported files, enforced here as they are; this
    // node's own export of the merged file is the same.
    let shared = workdir("shared-exported");
    for (name, mine) in export_all(&shared, &merged)? {
        let path = Path::new("/mnt/share").join(&name);
        let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let theirs: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        ensure!(theirs == mine, "{name}: the x86_64 node's export differs from this node's");
        fs::write(dir.join(&name), text).unwrap();
    }
    enforce_exported(&dir, &merged, 7426)
}
