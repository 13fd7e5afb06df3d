//! A closed standard output (`speaker-ctl profile show ... | head -1`, the
//! reader gone before the command writes) ends every command that prints
//! quietly: no panic, no "Broken pipe" message, exit 0 (or the command's
//! own verdict where it has one: `profile validate` of an invalid file
//! still exits 1).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_speaker-ctl");
const DOCKER_DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("speaker-broken-pipe-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs speaker-ctl with stdout a pipe whose read end is already closed;
/// returns (exit code, stderr).
fn closed_stdout(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .output()
        .expect("run speaker-ctl");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_quiet(args: &[&str], env: &[(&str, &str)], want: i32) {
    let (code, err) = closed_stdout(args, env);
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{args:?} panicked: {err}");
    assert!(!err.contains("Broken pipe") && !err.contains("failed printing"), "{args:?} complained: {err}");
    assert_eq!(code, Some(want), "{args:?}: {err}");
}

#[test]
fn every_printing_command_ends_quietly() {
    let d = dir("all");
    let p = d.join("p.json");
    std::fs::write(
        &p,
        r#"{"schema":"speaker.profile/v1","name":"svc","phases":{"boot":{"syscalls":[{"name":"read"},{"name":"mount"}]},"running":{"syscalls":[{"name":"read"}]}}}"#,
    )
    .unwrap();
    let q = d.join("q.json");
    std::fs::write(&q, std::fs::read_to_string(&p).unwrap().replace("mount", "umount2")).unwrap();
    let log = d.join("kern.log");
    let mut f = std::fs::File::create(&log).unwrap();
    for i in 0..200 {
        writeln!(f, "audit: type=1326 audit({i}.000:{i}): auid=0 uid=0 gid=0 ses=1 pid=4242 comm=\"x\" exe=\"/x\" sig=0 arch=c000003e syscall=165 compat=0 ip=0x0 code=0x50000").unwrap();
    }
    drop(f);
    let merged = d.join("m.json");
    let cases: Vec<Vec<&str>> = vec![
        vec!["version"],
        vec!["--help"],
        vec!["profile", "show", s(&p)],
        vec!["profile", "show", "--json", s(&p)],
        vec!["profile", "show", "--phase", "boot", s(&p)],
        vec!["profile", "export", "--phase", "boot", s(&p)],
        vec!["profile", "merge", "-o", "-", s(&p), s(&q)],
        vec!["profile", "merge", "-o", s(&merged), s(&p), s(&q)],
        vec!["profile", "table", "--baseline", DOCKER_DEFAULT, s(&p)],
        vec!["profile", "validate", s(&p)],
        vec!["denials", "--from-log", s(&log)],
        vec!["denials", "--from-log", s(&log), "--json"],
        vec!["completions", "bash"],
        vec!["trace", "--one-shot", "-o", "-", "--", "true"],
    ];
    for args in &cases {
        assert_quiet(args, &[], 0);
    }
    // diff(1)'s convention: 1 = different, whatever happened to the output.
    assert_quiet(&["profile", "diff", s(&p), s(&q)], &[], 1);
    // The verdict survives the closed pipe.
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"{"schema":"speaker.profile/v1","defualt_action":"SCMP_ACT_LOG","phases":{"boot":{"syscalls":[]}}}"#).unwrap();
    assert_quiet(&["profile", "validate", s(&bad)], &[], 1);
    // speaker-runtime's own output.
    assert_quiet(&["runtime", "--version"], &[("SPEAKER_CRUN", "/bin/echo")], 0);
    assert_quiet(&["runtime", "--help"], &[("SPEAKER_CRUN", "/bin/echo")], 0);
}
