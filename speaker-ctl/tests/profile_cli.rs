//! `speaker-ctl profile ...` through the built binary.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use speaker::profile::schema::{Phase, Profile};
use speaker::profile::{self, Action};

const BIN: &str = env!("CARGO_BIN_EXE_speaker-ctl");
const DOCKER_DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("speaker-profile-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ctl(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run speaker-ctl")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A recording like `speaker-ctl trace` writes.
fn recording(path: &Path, default_action: &str, boot: &[(&str, u64, u64)], running: &[(&str, u64, u64)]) {
    let entries = |v: &[(&str, u64, u64)]| {
        v.iter().map(|(n, c, t)| serde_json::json!({"name": n, "arch": "x86_64", "count": c, "first_seen_ms": t})).collect::<Vec<_>>()
    };
    let mut phases = serde_json::json!({ "boot": { "syscalls": entries(boot) } });
    if !running.is_empty() {
        phases["running"] = serde_json::json!({ "syscalls": entries(running) });
    }
    let doc = serde_json::json!({
        "schema": "speaker.profile/v1",
        "name": "svc",
        "default_action": default_action,
        "architectures": ["SCMP_ARCH_X86_64"],
        "phases": phases,
    });
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn export_round_trips_through_load_phase_file() {
    let d = dir("export");
    let p = d.join("svc.json");
    recording(
        &p,
        "SCMP_ACT_KILL_PROCESS",
        &[("mount", 1, 3), ("read", 10, 1), ("openat", 4, 2)],
        &[("read", 100, 50), ("write", 80, 51), ("epoll_wait", 3, 52)],
    );
    let out = d.join("running.oci.json");
    let o =
        ctl(&["profile", "export", "--phase", "running", "--format", "oci", "--compile", "strict", "--no-margin", "-o", s(&out), s(&p)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let oci: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(oci["defaultAction"], "SCMP_ACT_KILL_PROCESS");
    assert_eq!(oci["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
    assert_eq!(oci["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
    assert_eq!(oci["syscalls"][0]["names"], serde_json::json!(["epoll_wait", "read", "write"]));
    let f = profile::load_phase_file(&out).unwrap();
    assert_eq!(f.default_action, Action::KillProcess);
    assert_eq!(profile::allowed_count(&f), 3);
    assert!(!profile::compile(&f).unwrap().is_empty());
    // Same filter as the phase of the original profile.
    let orig = profile::phase_filter(&profile::load_profile(&p).unwrap(), Phase::Running).unwrap();
    assert_eq!(profile::compile(&orig).unwrap(), profile::compile(&f).unwrap());
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // By default a phase is exported as a container gets it: balanced, with
    // the margin (read's and write's families, the clocks).
    let o = ctl(&["profile", "export", "--phase", "running", s(&p)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let oci: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names = oci["syscalls"][0]["names"].as_array().unwrap();
    for n in ["read", "readv", "pwrite64", "clock_gettime", "epoll_pwait"] {
        assert!(names.contains(&serde_json::json!(n)), "{n} missing from {names:?}");
    }
    assert!(!names.contains(&serde_json::json!("mount")) && !names.contains(&serde_json::json!("openat")), "{names:?}");
    let o = ctl(&["profile", "export", "--phase", "running", "--allow", "mprotekt", s(&p)]);
    assert!(!o.status.success() && stderr(&o).contains("mprotekt"), "{}", stderr(&o));

    // To standard output, default format; the boot filter is boot ∪ running.
    let o = ctl(&["profile", "export", "--phase", "boot", "--compile", "strict", "--no-margin", s(&p)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let oci: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(oci["syscalls"][0]["names"], serde_json::json!(["epoll_wait", "mount", "openat", "read", "write"]));
}

#[test]
fn export_errors_are_explained() {
    let d = dir("export-errors");
    let p = d.join("svc.json");
    recording(&p, "SCMP_ACT_ERRNO", &[("read", 1, 1)], &[]);
    let o = ctl(&["profile", "export", "--phase", "shutdown", s(&p)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no shutdown phase") && stderr(&o).contains("svc.json"), "{}", stderr(&o));
    // An unknown value of an enumeration is a usage error (2), with the list.
    let o = ctl(&["profile", "export", "--phase", "boot", "--format", "yaml", s(&p)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("yaml") && stderr(&o).contains("possible values: oci"), "{}", stderr(&o));
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"{"schema": "speaker.profile/v1", "phases": {"boot": {"syscalls": [{"name": "nosuch"}]}}}"#).unwrap();
    let o = ctl(&["profile", "export", "--phase", "boot", s(&bad)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nosuch") && stderr(&o).contains("bad.json"), "{}", stderr(&o));
}

#[test]
fn merge_unions_phases() {
    let d = dir("merge");
    let (a, b, out) = (d.join("a.json"), d.join("b.json"), d.join("merged.json"));
    recording(&a, "SCMP_ACT_ERRNO", &[("read", 2, 10), ("mount", 1, 5)], &[("write", 1, 100)]);
    recording(&b, "SCMP_ACT_ERRNO", &[("read", 3, 4), ("openat", 1, 7)], &[]);
    let o = ctl(&["profile", "merge", s(&a), s(&b), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Profile = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let boot = &m.phases[&Phase::Boot].syscalls;
    assert_eq!(boot.len(), 3);
    let read = boot.iter().find(|e| e.name == "read").unwrap();
    assert_eq!((read.count, read.first_seen_ms), (Some(5), Some(4)));
    assert_eq!(m.phases[&Phase::Running].syscalls.len(), 1);
    profile::load_profile(&out).unwrap();

    let c = d.join("c.json");
    recording(&c, "SCMP_ACT_KILL_PROCESS", &[("read", 1, 1)], &[]);
    let o = ctl(&["profile", "merge", s(&a), s(&c), "-o", s(&d.join("no.json"))]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("default_action") && e.contains("c.json") && e.contains("SCMP_ACT_KILL_PROCESS"), "{e}");
    assert!(!d.join("no.json").exists());
}

#[test]
fn diff_exit_status_like_diff1() {
    let d = dir("diff");
    let (a, b) = (d.join("a.json"), d.join("b.json"));
    recording(&a, "SCMP_ACT_ERRNO", &[("read", 2, 10), ("mount", 1, 5)], &[("write", 1, 100)]);
    recording(&b, "SCMP_ACT_ERRNO", &[("read", 9, 1), ("umount2", 1, 7)], &[("write", 1, 1)]);
    let o = ctl(&["profile", "diff", s(&a), s(&a)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let o = ctl(&["profile", "diff", s(&a), s(&b)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("-mount") && out.contains("+umount2") && out.contains("boot"), "{out}");
    assert!(!out.contains("running"), "{out}");
    let o = ctl(&["profile", "diff", s(&a), s(&d.join("missing.json"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
}

#[test]
fn show_table_and_json() {
    let d = dir("show");
    let p = d.join("svc.json");
    recording(&p, "SCMP_ACT_ERRNO", &[("read", 2, 10), ("mount", 1, 5)], &[("write", 1, 100)]);
    let o = ctl(&["profile", "show", s(&p)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PHASE") && lines[0].contains("COUNT"), "{out}");
    assert!(lines[1].starts_with("boot") && lines[1].ends_with("2  mount read"), "{out}");
    assert!(lines[2].starts_with("running") && lines[2].ends_with("1  write"), "{out}");

    let o = ctl(&["profile", "show", "--json", s(&p)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((&v["boot"]["count"], &v["boot"]["syscalls"]), (&serde_json::json!(2), &serde_json::json!(["mount", "read"])));
    assert_eq!(v["running"]["count"], 1);
    // Both compile modes, with the critical syscalls removed vs Docker's default (the same in both).
    for phase in ["boot", "running"] {
        let (st, ba) = (&v[phase]["strict"], &v[phase]["balanced"]);
        assert!(ba["count"].as_u64().unwrap() > st["count"].as_u64().unwrap(), "{v}");
        assert_eq!(st["critical_removed_vs_docker"], ba["critical_removed_vs_docker"]);
        assert!(st["critical_removed_vs_docker"].as_array().unwrap().contains(&serde_json::json!("setuid")));
    }
    let out = stdout(&ctl(&["profile", "show", s(&p)]));
    assert!(out.contains("CRITICAL-STRICT") && out.contains("CRITICAL-BALANCED"), "{out}");

    // The Docker default shows as one wrapped boot phase.
    let o = ctl(&["profile", "show", DOCKER_DEFAULT]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().count() > 10 && out.lines().all(|l| l.len() <= 100), "{out}");
}

#[test]
fn unknown_schema_is_reported_by_the_cli() {
    let d = dir("schema");
    let p = d.join("v2.json");
    std::fs::write(&p, r#"{"schema": "speaker.profile/v2", "phases": {}}"#).unwrap();
    let o = ctl(&["profile", "show", s(&p)]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("v2.json") && e.contains("speaker.profile/v1"), "{e}");
}
