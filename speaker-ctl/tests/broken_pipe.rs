//! Standard output and error that fail, for every command that prints.
//! A closed standard output (`speaker-ctl profile show ... | head -1`, the
//! reader gone before the command writes) ends it quietly: no panic, no
//! "Broken pipe" message, exit 0 (or the command's own verdict where it
//! has one: `profile validate` of an invalid file still exits 1).  A
//! standard output that fails otherwise (`> /dev/full`) is an error: exit
//! 1 and one line, never a claimed success.  A standard error that fails
//! (`2> /dev/full`) changes nothing: same exit status, no panic.
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

/// The profiles and logs the printing commands read.
struct Inputs {
    p: PathBuf,
    q: PathBuf,
    log: PathBuf,
    merged: PathBuf,
    bad: PathBuf,
}

fn inputs(d: &Path) -> Inputs {
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
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"{"schema":"speaker.profile/v1","defualt_action":"SCMP_ACT_LOG","phases":{"boot":{"syscalls":[]}}}"#).unwrap();
    Inputs { p, q, log, merged: d.join("m.json"), bad }
}

/// Every command that prints on standard output (clap's own answers too).
fn printing_commands(i: &Inputs) -> Vec<Vec<&str>> {
    vec![
        vec!["version"],
        vec!["--help"],
        vec!["--version"],
        vec!["help", "profile"],
        vec!["profile", "show", "--help"],
        vec!["profile", "show", s(&i.p)],
        vec!["profile", "show", "--json", s(&i.p)],
        vec!["profile", "show", "--phase", "boot", s(&i.p)],
        vec!["profile", "export", "--phase", "boot", s(&i.p)],
        vec!["profile", "merge", "-o", "-", s(&i.p), s(&i.q)],
        vec!["profile", "merge", "-o", s(&i.merged), s(&i.p), s(&i.q)],
        vec!["profile", "table", "--baseline", DOCKER_DEFAULT, s(&i.p)],
        vec!["denials", "--from-log", s(&i.log)],
        vec!["denials", "--from-log", s(&i.log), "--json"],
        vec!["completions", "bash"],
        vec!["trace", "--one-shot", "-o", "-", "--", "true"],
    ]
}

#[test]
fn every_printing_command_ends_quietly() {
    let d = dir("all");
    let i = inputs(&d);
    for args in &printing_commands(&i) {
        assert_quiet(args, &[], 0);
    }
    assert_quiet(&["profile", "validate", s(&i.p)], &[], 0);
    // diff(1)'s convention: 1 = different, whatever happened to the output.
    assert_quiet(&["profile", "diff", s(&i.p), s(&i.q)], &[], 1);
    // The verdict survives the closed pipe.
    assert_quiet(&["profile", "validate", s(&i.bad)], &[], 1);
    // speaker-runtime's own output.
    assert_quiet(&["runtime", "--version"], &[("SPEAKER_CRUN", "/bin/echo")], 0);
    assert_quiet(&["runtime", "--help"], &[("SPEAKER_CRUN", "/bin/echo")], 0);
}

/// Runs speaker-ctl with its stdout and stderr as given (stdin empty);
/// returns (exit code, stderr if it was piped).
fn run_with(args: &[&str], stdout: Stdio, stderr: Stdio) -> (Option<i32>, String) {
    let out =
        Command::new(BIN).args(args).env("SPEAKER_CRUN", "/bin/echo").stdin(Stdio::null()).stdout(stdout).stderr(stderr).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn dev_full() -> Stdio {
    Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
}

/// `> /dev/full`: before, `--help`, `--version` and `help` exited 0
/// having written nothing (clap's exit() ignores the failed write).
#[test]
fn a_full_stdout_is_an_error_for_every_printing_command() {
    let d = dir("full");
    let i = inputs(&d);
    let mut cases = printing_commands(&i);
    cases.push(vec!["profile", "validate", s(&i.bad)]);
    cases.push(vec!["runtime", "--version"]);
    cases.push(vec!["runtime", "--help"]);
    for args in &cases {
        let (code, err) = run_with(args, dev_full(), Stdio::piped());
        assert_eq!(code, Some(1), "{args:?}: {err}");
        // One error line (trace also says what it does on stderr).
        assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{args:?}: one error line wanted: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("cannot write to standard output: No space left on device"), "{args:?}: {err}");
    }
    // diff(1)'s convention: trouble is 2.
    let (code, err) = run_with(&["profile", "diff", s(&i.p), s(&i.q)], dev_full(), Stdio::piped());
    assert_eq!(code, Some(2), "{err}");
}

/// `2> /dev/full` (or a closed stderr pipe): before, the first message
/// panicked (`eprintln!`: exit 101) or turned a success into exit 1.
#[test]
fn a_failing_stderr_changes_nothing() {
    let d = dir("stderr");
    let i = inputs(&d);
    let mut cases = printing_commands(&i);
    cases.push(vec!["profile", "validate", s(&i.p)]);
    cases.push(vec!["profile", "validate", s(&i.bad)]);
    cases.push(vec!["profile", "show", "/nonexistent.json"]);
    cases.push(vec!["frobnicate"]);
    cases.push(vec!["stop", "no-such-container"]);
    for args in &cases {
        let (want, _) = run_with(args, Stdio::null(), Stdio::null());
        let (full, _) = run_with(args, Stdio::null(), dev_full());
        assert_eq!(full, want, "{args:?} with stderr on /dev/full");
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let (closed, _) = run_with(args, Stdio::null(), Stdio::from(w));
        assert_eq!(closed, want, "{args:?} with stderr closed");
        assert!(matches!(want, Some(0..=2)), "{args:?}: {want:?}");
    }
}
