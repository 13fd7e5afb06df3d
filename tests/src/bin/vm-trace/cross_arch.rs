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
//! 3. arm64: `shared_merged_profile_is_enforced` enforces that same file
//!    (`/mnt/share/merged.json`).
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

use super::{check_service_sets, ctl_ok, run_service_under, trace_service, workdir};

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
    let mine = dir.join("filter.json");
    let merged_path = dir.join("merged.json");
    ctl_ok(&["profile", "merge", "-o", merged_path.to_str().unwrap(), mine.to_str().unwrap(), other_path.to_str().unwrap()])?;
    let merged = read(&merged_path)?;
    for p in [t.profile()?, &other] {
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
        let want: BTreeSet<_> = names(t.profile()?, &all).union(&names(&other, &all)).cloned().collect();
        ensure!(names(&merged, &all) == want, "{ph}: the merged set is not the union of the two traces");
    }
    println!("  merged: architectures {:?}, entries per ABI {:?}", merged.architectures, entry_arches(&merged));
    print_profile(&merged);
    enforce(&dir, &merged, 7412)
}

pub(super) fn shared_merged_profile_is_enforced() -> Outcome {
    let dir = workdir("shared-merged");
    let merged = read(Path::new("/mnt/share/merged.json"))?;
    let arches = entry_arches(&merged);
    ensure!(
        arches.contains(Arch::native().name()) && arches.len() >= 2,
        "/mnt/share/merged.json is no merge of two architectures: {arches:?}"
    );
    enforce(&dir, &merged, 7421)
}
