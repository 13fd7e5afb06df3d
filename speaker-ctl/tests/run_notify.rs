//! `speaker-ctl run` on the host, under the notify engine (any kernel
//! 5.10 or later; root): what the container's command inherits, and the
//! phase files the engine cannot enforce, refused before anything runs.
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_speaker-ctl");
const DOCKER_DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("speaker-run-notify-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs speaker-ctl with its state in `state`, killed after 60 s (a hang
/// is a failure, not a stuck test).
fn run(args: &[&str], state: &std::path::Path) -> Output {
    assert!(nix::unistd::geteuid().is_root(), "speaker-ctl run needs root (scripts/test runs the host tests as root)");
    let mut child = Command::new(BIN)
        .args(args)
        .env("SPEAKER_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("{args:?} hangs: {}", String::from_utf8_lossy(&o.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The command gets SIGPIPE's default disposition (before: ignored, as
/// speaker-ctl, a Rust program, ignores it and execve keeps what is
/// ignored: `yes | head -1` in a container never ended `yes` by the
/// signal, and /proc/self/status showed SigIgn 0x1000).
#[test]
fn the_command_gets_default_signal_dispositions() {
    let d = dir("sigpipe");
    let name = format!("sigpipe-{}", std::process::id());
    let o = run(
        &[
            "run",
            "--name",
            &name,
            "--engine",
            "notify",
            "--boot",
            DOCKER_DEFAULT,
            "--running",
            DOCKER_DEFAULT,
            "--",
            "/bin/sh",
            "-c",
            "grep SigIgn /proc/self/status",
        ],
        &d,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let mask = u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    // (What the test's own parent ignores, it may pass on: only SIGPIPE,
    // which speaker-ctl ignores itself, is looked at.)
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE is ignored in the container: {out}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A running phase that allows by default (a Docker-style denylist) under
/// the notify engine: refused with one line, nothing started (before:
/// speaker-ctl spun at full CPU and the command never ran).
#[test]
fn an_allowing_running_phase_is_refused_by_the_notify_engine() {
    let d = dir("denylist");
    let deny = d.join("denylist.json");
    std::fs::write(&deny, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
    let marker = d.join("ran");
    let touch = format!("touch {}", marker.display());
    let name = format!("denylist-{}", std::process::id());
    let deny = deny.to_str().unwrap();
    let o = run(&["run", "--name", &name, "--engine", "notify", "--boot", deny, "--running", deny, "--", "/bin/sh", "-c", &touch], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the notify engine needs a running phase that allows a list of syscalls"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!marker.exists(), "the command ran");
    std::fs::remove_dir_all(&d).unwrap();
}
