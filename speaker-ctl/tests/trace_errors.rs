//! `speaker-ctl trace` refuses bad input with one clear line, before
//! starting anything.
#[path = "trace_util.rs"]
mod util;

use util::*;

/// The error line of a failed run (exactly one `speaker-ctl: error:` line).
fn error_line(run: &Run) -> String {
    assert_ne!(run.code(), 0);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("speaker-ctl: error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    errors[0].to_string()
}

/// The error line of a usage error (exit 2: a bad option value is refused
/// by the command line, before anything runs).
fn usage_error(run: &Run) -> String {
    assert_eq!(run.code(), 2, "{}", run.stderr);
    let line = run.stderr.lines().next().unwrap_or_default().to_string();
    assert!(line.starts_with("error: invalid value"), "{}", run.stderr);
    line
}

#[test]
fn command_not_found() {
    let dir = tmpdir("notfound");
    let out = dir.join("p.json");
    let run = trace(&["trace", "-o", out.to_str().unwrap(), "--", "speaker-no-such-cmd", "x"]);
    let e = error_line(&run);
    assert!(e.contains("cannot execute 'speaker-no-such-cmd': No such file or directory"), "{e}");
    assert!(!out.exists());

    let run = trace(&["trace", "-o", out.to_str().unwrap(), "--", "/nonexistent/cmd"]);
    assert!(error_line(&run).contains("cannot execute '/nonexistent/cmd': No such file or directory"));
    assert!(!out.exists());
}

#[test]
fn not_an_executable() {
    let dir = tmpdir("noexec");
    let out = dir.join("p.json");
    let bad = dir.join("bad");
    std::fs::write(&bad, b"\x7fELF not really").unwrap();
    let run = trace(&["trace", "-o", out.to_str().unwrap(), "--", bad.to_str().unwrap()]);
    assert!(error_line(&run).contains("Permission denied"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = trace(&["trace", "-o", out.to_str().unwrap(), "--", bad.to_str().unwrap()]);
    let e = error_line(&run);
    assert!(e.contains(&format!("cannot execute '{}': Exec format error", bad.display())), "{e}");
    assert!(!out.exists());
    assert_no_leftovers(bad.to_str().unwrap());
}

#[test]
fn output_not_writable() {
    let dir = tmpdir("unwritable");
    let marker = dir.join("marker");
    let file = dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let touch = format!("touch {}", marker.display());
    for out in [file.join("p.json"), dir.join("missing-dir/p.json"), dir.to_path_buf()] {
        let run = trace(&["trace", "-o", out.to_str().unwrap(), "--", "sh", "-c", &touch]);
        let e = error_line(&run);
        assert!(e.contains(&format!("cannot write profile '{}'", out.display())), "{e}");
        assert!(!marker.exists(), "the command ran");
    }
}

#[test]
fn malformed_ready() {
    let dir = tmpdir("ready");
    let out = dir.join("p.json");
    let marker = dir.join("marker");
    let touch = format!("touch {}", marker.display());
    for spec in ["port:abc", "port:0", "port:99999", "tcp:80", "80", "cmd:", "log:(unclosed", ""] {
        let run = trace(&["trace", "--ready", spec, "-o", out.to_str().unwrap(), "--", "sh", "-c", &touch]);
        let e = usage_error(&run);
        assert!(e.contains(&format!("malformed --ready '{spec}'")), "{e}");
        assert!(e.contains("port:TCP_PORT") || e.contains("regex") || e.contains("empty"), "{e}");
        assert!(!marker.exists());
    }
}

#[test]
fn bad_durations_and_mode() {
    let dir = tmpdir("durations");
    let out = dir.join("p.json");
    let o = out.to_str().unwrap();
    for (opt, val) in [("--running-for", "5x"), ("--stop-after", "soon"), ("--auto-window", "-1s")] {
        let arg = format!("{opt}={val}");
        let run = trace(&["trace", &arg, "-o", o, "--", "true"]);
        let e = usage_error(&run);
        assert!(e.contains(&format!("invalid value '{val}' for '{opt} <DURATION>'")), "{e}");
    }
    let run = trace(&["trace", "--mode", "filter", "-o", o, "--", "true"]);
    // The host kernel has no speaker.ko: filter mode says what it needs.
    assert!(error_line(&run).contains("--mode filter needs speaker.ko"));
    // An unknown value of an enumeration is a usage error, with the list.
    let run = trace(&["trace", "--mode", "magic", "-o", o, "--", "true"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr.contains("invalid value 'magic'") && run.stderr.contains("[possible values: ptrace, filter, auto]"),
        "{}",
        run.stderr
    );
    let run = trace(&["trace", "--mode", "ptrace", "--one-shot", "-o", o, "--", "true"]);
    assert_eq!(run.code(), 0);
    assert!(!run.stderr.contains("not loaded"), "no note with an explicit --mode ptrace");
}

/// When ptrace is refused (here: speaker-ctl itself runs under strace -f,
/// which already traces the child), the error names ptrace permissions.
#[test]
fn ptrace_refused_names_ptrace_permissions() {
    let dir = tmpdir("refused");
    let out = dir.join("p.json");
    let child = std::process::Command::new("strace")
        .args(["-f", "-o", "/dev/null", speaker_ctl()])
        .args(["trace", "--mode", "ptrace", "-o", out.to_str().unwrap(), "--", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("strace is installed by scripts/setup");
    let run = finish(child, std::time::Duration::from_secs(60));
    let line = error_line(&run);
    assert!(line.contains("ptrace(PTRACE_SEIZE) was refused") && line.contains("ptrace_scope"), "{line}");
}
