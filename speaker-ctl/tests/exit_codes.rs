//! The exit status convention (0 success, 1 the operation failed, 2 a
//! usage error) in every verb, and the consistency rules around it: one
//! duration syntax, checked container ids, unknown containers are errors,
//! conflicting flags refused before any output, `--help` with examples and
//! the convention, value lists, completions and man pages, and `trace`
//! saying what it does and failing when the trace did not go as planned.
#[path = "trace_util.rs"]
mod util;

use clap::CommandFactory;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::*;

fn ctl(args: &[&str]) -> Output {
    Command::new(speaker_ctl()).args(args).stdin(Stdio::null()).output().expect("run speaker-ctl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_without_the_module_is_an_answer() {
    assert!(!std::path::Path::new("/dev/speaker").exists(), "this test needs a host without speaker.ko");
    let o = ctl(&["version"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("speaker-ctl ") && out.contains("speaker.ko: not loaded"), "{out}");
}

#[test]
fn usage_errors_exit_2_and_list_values() {
    for args in [
        vec!["frobnicate"],
        vec!["profile", "show", "--phase", "bot", "p.json"],
        vec!["run", "--name", "x", "--profile", "p.json", "--compile", "loose", "--", "true"],
        vec!["stop", "x", "--timeout", "soon"],
        vec!["stop", "../../etc"],
        vec!["switch", "a/b"],
        vec!["denials", "--follow", "--from-log", "/dev/null"],
        vec!["trace", "--one-shot", "--ready", "auto", "-o", "p.json", "--", "true"],
    ] {
        let o = ctl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "", "{args:?}: output before the refusal");
    }
    let o = ctl(&["profile", "show", "--phase", "bot", "p.json"]);
    assert!(text(&o.stderr).contains("[possible values: boot, running, reload, shutdown]"), "{}", text(&o.stderr));
    let o = ctl(&["stop", "../../etc"]);
    assert!(text(&o.stderr).contains("invalid container id '../../etc'"), "{}", text(&o.stderr));
}

/// Every option value is checked by the command line, so that a bad one is
/// a usage error (2) before anything runs, in every verb.  Before, trace's
/// --ready, --running-for, --stop-after, --auto-window(s), --reload-signal
/// and --reload-ready, signal's SIGNAL and run's --allow, --deny,
/// --cap-add and --volume were checked later: exit 1.
#[test]
fn option_values_are_usage_errors() {
    let d = tmpdir("values");
    let p = d.join("p.json");
    std::fs::write(&p, r#"{"schema":"speaker.profile/v1","phases":{"boot":{"syscalls":[{"name":"read"}]}}}"#).unwrap();
    let out = d.join("out.json");
    let (p, out) = (p.to_str().unwrap(), out.to_str().unwrap());
    let trace = |opts: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["trace"].iter().chain(opts).map(|s| s.to_string()).collect();
        v.extend(["-o", out, "--", "true"].iter().map(|s| s.to_string()));
        v
    };
    let mut cases: Vec<Vec<String>> = [
        &["--ready", "port:http"][..],
        &["--ready", "soon"],
        &["--running-for", "5x"],
        &["--stop-after", "-"],
        &["--auto-window", "0"],
        &["--auto-windows", "0"],
        &["--reload-signal", "SIGFOO"],
        &["--reload-signal", "TERM"],
        &["--reload-signal", "KILL"],
        &["--reload-signal", "SIGRTMIN"],
        &["--reload-signal", "HUP", "--reload-ready", "log:x"],
        &["--name", "web\nforged"],
    ]
    .iter()
    .map(|o| trace(o))
    .collect();
    for run in [&["--allow", "nosuch"][..], &["--deny", "READ"], &["--allow", "read,"], &["--cap-add", "FLY"], &["-v", "relative/dir"]] {
        let mut v: Vec<String> = ["run", "--name", "x", "--profile", p].iter().map(|s| s.to_string()).collect();
        v.extend(run.iter().map(|s| s.to_string()));
        v.extend(["--", "/nonexistent/cmd"].iter().map(|s| s.to_string()));
        cases.push(v);
    }
    cases.push(["profile", "export", "--phase", "boot", "--deny", "nosuch", p].iter().map(|s| s.to_string()).collect());
    // run --name: speaker.ko's ids (63 bytes, no '+'), not only a state
    // directory's (they failed after start-up).
    let long = "a".repeat(64);
    for name in ["a+b", long.as_str()] {
        cases.push(["run", "--name", name, "--profile", p, "--", "/nonexistent/cmd"].iter().map(|s| s.to_string()).collect());
    }
    cases.push(["signal", "nosuch", "SIGFOO"].iter().map(|s| s.to_string()).collect());
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = ctl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).starts_with("error: invalid value"), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "", "{args:?}");
        assert!(!std::path::Path::new(out).exists(), "{args:?} traced");
    }
}

/// An error is one line that names each cause once, without Rust's
/// "(os error N)" (before: bench-report printed "No such file or directory
/// (os error 2): No such file or directory (os error 2)", manpage onto a
/// file "cannot create F: File exists (os error 17)").
#[test]
fn errors_are_one_line_without_os_error_numbers() {
    let d = tmpdir("oneline");
    let file = d.join("file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    for (args, want) in [
        (vec!["bench-report", "/nonexistent"], "reading /nonexistent/results.json: No such file or directory"),
        (vec!["bench-compare", "/nonexistent"], "reading /nonexistent: No such file or directory"),
        (vec!["manpage", f], "it is not a directory"),
        (vec!["profile", "show", "/nonexistent"], "cannot read /nonexistent: No such file or directory"),
        (vec!["denials", "--from-log", "/nonexistent"], "cannot read /nonexistent: No such file or directory"),
    ] {
        let o = ctl(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("speaker-ctl: error: ") && err.contains(want), "{args:?}: {err}\nwant {want}");
        assert!(!err.contains("(os error"), "{args:?}: {err}");
        assert!(err.matches("No such file or directory").count() <= 1, "{args:?}: a cause twice: {err}");
    }
}

/// Every option that is a time takes the one duration syntax (value name
/// DURATION): before, `bench --baseline-secs` took a float of seconds.
#[test]
fn every_time_option_takes_the_one_duration_syntax() {
    let mut todo = vec![(String::from("speaker-ctl"), speaker::cli::Cli::command())];
    let mut seen = Vec::new();
    while let Some((name, cmd)) = todo.pop() {
        for sub in cmd.get_subcommands() {
            todo.push((format!("{name} {}", sub.get_name()), sub.clone()));
        }
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let timeish = ["timeout", "secs", "seconds", "-for", "after", "window"].iter().any(|w| long.ends_with(w));
            if !timeish {
                continue;
            }
            let names: Vec<String> = arg.get_value_names().unwrap_or_default().iter().map(|n| n.to_string()).collect();
            assert_eq!(names, ["DURATION"], "{name} --{long}: not the duration syntax");
            seen.push(format!("{name} --{long}"));
        }
    }
    assert!(seen.len() >= 7, "{seen:?}");
    for args in [
        &["bench", "--baseline-for", "1x"][..],
        &["stop", "x", "--timeout", "1x"],
        &["trace", "--shutdown-timeout", "1x", "-o", "-", "--", "true"],
    ] {
        let o = ctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
}

#[test]
fn one_duration_syntax() {
    // Parsed (then the container is unknown: 1, not a usage error).
    for t in ["10s", "500ms", "2m", "3"] {
        let o = ctl(&["stop", "no-such-container", "--timeout", t]);
        assert_eq!(o.status.code(), Some(1), "--timeout {t}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("no container 'no-such-container'"), "{}", text(&o.stderr));
        let o = ctl(&["signal", "no-such-container", "HUP", "--timeout", t]);
        assert_eq!(o.status.code(), Some(1), "signal --timeout {t}: {}", text(&o.stderr));
    }
}

#[test]
fn unknown_containers_are_errors() {
    let d = tmpdir("unknown");
    let log = d.join("kern.log");
    std::fs::write(&log, "").unwrap();
    for args in [
        vec!["denials", "nosuch", "--from-log", log.to_str().unwrap()],
        vec!["switch", "nosuch"],
        vec!["stop", "nosuch"],
        vec!["signal", "nosuch", "HUP"],
        vec!["profile", "learn", "nosuch", "-o", "/dev/null", "--profile", "/nonexistent.json"],
    ] {
        let o = ctl(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "", "{args:?}: printed a table");
        assert!(text(&o.stderr).starts_with("speaker-ctl: error: "), "{args:?}: {}", text(&o.stderr));
    }
}

/// A saved log with lines that are not UTF-8: the records around them are
/// still read.
#[test]
fn denials_read_past_undecodable_lines() {
    let d = tmpdir("undecodable");
    let log = d.join("kern.log");
    let mut f = std::fs::File::create(&log).unwrap();
    f.write_all(b"binary junk \xff\xfe\x00\xc3 here\n").unwrap();
    writeln!(
        f,
        "audit: type=1326 audit(1700000000.123:46): pid=4242 comm=\"probe\" sig=0 arch=c000003e syscall=165 compat=0 ip=0x1 code=0x50000"
    )
    .unwrap();
    f.write_all(b"\xff\xff\xff\n").unwrap();
    drop(f);
    let o = ctl(&["denials", "--from-log", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("mount") && out.contains("(unattributed)"), "{out}");
}

/// Every command's --help has an Examples block and the exit status.
#[test]
fn every_help_has_examples_and_the_exit_status() {
    let mut todo = vec![(String::from("speaker-ctl"), speaker::cli::Cli::command())];
    let mut seen = 0;
    while let Some((name, mut cmd)) = todo.pop() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            todo.push((format!("{name} {}", sub.get_name()), sub.clone()));
        }
        let help = cmd.render_long_help().to_string();
        // Groups too (`profile --help` had none).
        assert!(help.contains("Examples:\n  "), "{name}: no examples:\n{help}");
        assert!(help.contains("Exit status: "), "{name}: no exit status:\n{help}");
        seen += 1;
    }
    assert!(seen >= 20, "{seen} commands");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line() {
    let o = ctl(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    let script = text(&o.stdout);
    assert!(script.contains("speaker-ctl") && script.contains("--shutdown-timeout") && script.contains("validate"), "bash completion");
    let d = tmpdir("man");
    let o = ctl(&["manpage", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for page in ["speaker-ctl.1", "speaker-ctl-trace.1", "speaker-ctl-profile-validate.1"] {
        let t = std::fs::read_to_string(d.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(t.contains(".TH"), "{page}");
    }
}

#[test]
fn runtime_speaks_for_itself() {
    // A stand-in for crun that says what it was asked.
    let d = tmpdir("fake-crun");
    let crun = d.join("crun");
    std::fs::write(&crun, "#!/bin/sh\necho \"crun stand-in $*\"\n").unwrap();
    std::fs::set_permissions(&crun, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |args: &[&str]| Command::new(speaker_ctl()).arg("runtime").args(args).env("SPEAKER_CRUN", &crun).output().unwrap();
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("speaker-runtime 0."), "{out}");
    assert_eq!(lines.next(), Some("crun stand-in --version"), "crun's version follows: {out}");
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    let (ours, crun) = out.split_once("--- crun ---").expect("speaker's section, then crun's");
    for want in ["io.speaker.profile", "io.speaker.ready", "SPEAKER_CRUN", "daemon.json", "Examples:", "Exit status:"] {
        assert!(ours.contains(want), "{want}: {ours}");
    }
    assert_eq!(crun.trim(), "crun stand-in --help");
}

/// A service that exits before it is ready: the trace failed (1), says so,
/// and still writes the boot-only profile.
#[test]
fn trace_of_a_service_that_exits_before_ready_fails() {
    let d = tmpdir("early");
    let out = d.join("p.json");
    let run = trace(&["trace", "--ready", "cmd:false", "-o", out.to_str().unwrap(), "--", "sh", "-c", "exit 0"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("before it was ready (--ready cmd:false)"), "{}", run.stderr);
    assert!(load(&out).phase(speaker::profile::schema::Phase::Boot).is_some());
}

/// A workload that fails makes the trace fail.
#[test]
fn trace_with_a_failing_workload_fails() {
    let d = tmpdir("workload");
    let port = free_port().to_string();
    let out = d.join("p.json");
    let ready = format!("port:{port}");
    let run =
        trace(&["trace", "--ready", &ready, "--workload", "exit 3", "-o", out.to_str().unwrap(), "--", fixture_str(), "--port", &port]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("the workload exited with status 3"), "{}", run.stderr);
    assert_no_leftovers(&format!("--port {port}"));
}

/// A service killed by its own SIGTERM (143) after a good trace: 0, and
/// the phase changes are reported as they happen.
#[test]
fn trace_succeeds_whatever_the_service_exits_with_after_sigterm() {
    let d = tmpdir("sigterm");
    let out = d.join("p.json");
    let run =
        trace(&["trace", "--ready", "cmd:true", "--running-for", "300ms", "-o", out.to_str().unwrap(), "--", "sh", "-c", "exec sleep 300"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("boot ended after") && run.stderr.contains("(ready command succeeded): running for 300ms"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--running-for after") && run.stderr.contains("SIGTERM, shutdown: waiting for 1 process to exit"),
        "{}",
        run.stderr
    );
    assert_no_leftovers("sleep 300");
}

/// A trace with a reload: ready, running, the reload signal, the reload's
/// readiness, shutdown: 0, each step reported.
#[test]
fn trace_with_a_reload_succeeds() {
    let d = tmpdir("reload");
    let out = d.join("p.json");
    let run = trace(&[
        "trace",
        "--ready",
        "cmd:true",
        "--running-for",
        "200ms",
        "--reload-signal",
        "HUP",
        "--reload-ready",
        "cmd:true",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "trap 'umask 022' HUP; trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("running for 200ms (--running-for), then the reload"), "{}", run.stderr);
    assert!(
        run.stderr.contains(": SIGHUP, reload") && run.stderr.contains("reload over (ready command succeeded) after"),
        "{}",
        run.stderr
    );
    let p = load(&out);
    assert!(p.phase(speaker::profile::schema::Phase::Reload).is_some() && p.reload.is_some());
}

/// A service that ignores SIGTERM: --shutdown-timeout ends it with SIGKILL,
/// says so, and the trace fails.
#[test]
fn shutdown_timeout_ends_in_sigkill() {
    let d = tmpdir("shutdown-timeout");
    let out = d.join("p.json");
    let start = Instant::now();
    let run = trace(&[
        "trace",
        "--ready",
        "cmd:true",
        "--running-for",
        "200ms",
        "--shutdown-timeout",
        "1s",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 0.1; done",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(run.stderr.contains("SIGKILL after 1s (--shutdown-timeout)"), "{}", run.stderr);
    assert!(run.stderr.contains("still running 1s after SIGTERM (--shutdown-timeout): SIGKILL"), "{}", run.stderr);
    // No progress line looks like a phase's summary line ("speaker-ctl: shutdown: N syscalls").
    let phase_lines = run
        .stderr
        .lines()
        .filter(|l| ["boot: ", "running: ", "shutdown: "].iter().any(|p| l.starts_with(&format!("speaker-ctl: {p}"))))
        .count();
    assert_eq!(phase_lines, 3, "{}", run.stderr);
    assert!(run.stderr.contains("did not exit within 1s of SIGTERM (--shutdown-timeout)"), "{}", run.stderr);
    assert!(load(&out).phase(speaker::profile::schema::Phase::Shutdown).is_some());
}

/// speaker-runtime checks the id of an annotated container before it
/// writes any state (ids name directories).
#[test]
fn runtime_checks_container_ids() {
    let d = tmpdir("runtime-id");
    let p = d.join("p.json");
    std::fs::write(&p, r#"{"schema":"speaker.profile/v1","phases":{"boot":{"syscalls":[{"name":"read"}]}}}"#).unwrap();
    std::fs::write(
        d.join("config.json"),
        format!(r#"{{"ociVersion":"1.0.2","process":{{"args":["true"]}},"annotations":{{"io.speaker.profile":"{}"}}}}"#, p.display()),
    )
    .unwrap();
    let o = Command::new(speaker_ctl())
        .args(["runtime", "create", "--bundle", d.to_str().unwrap(), "../escape"])
        .env("SPEAKER_CRUN", "/bin/echo")
        .env("SPEAKER_STATE_DIR", d.join("state"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("invalid container id '../escape'"), "{}", text(&o.stderr));
    assert!(!d.join("escape").exists() && !d.join("state").exists(), "state was written");
}

/// A container's state.json that is a FIFO (or corrupt) in speaker's
/// state directory: listing verbs go on (`status` with a warning that
/// names it), the container's own verbs say it is corrupt (before: status,
/// denials and switch hung on the FIFO; `status c1` said there was no
/// container c1).
#[test]
fn state_files_that_are_not_files_never_hang() {
    let d = tmpdir("state-fifo");
    std::fs::create_dir_all(d.join("f1")).unwrap();
    nix::unistd::mkfifo(&d.join("f1/state.json"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::create_dir_all(d.join("c1")).unwrap();
    std::fs::write(d.join("c1/state.json"), "{\"cid\":").unwrap();
    let log = d.join("kern.log");
    std::fs::write(&log, "").unwrap();
    for (args, want) in [
        (vec!["status"], 0),
        (vec!["status", "--json"], 0),
        (vec!["denials", "--from-log", log.to_str().unwrap()], 0),
        (vec!["switch", "f1"], 1),
        (vec!["stop", "c1"], 1),
        (vec!["status", "c1"], 1),
    ] {
        let mut child = Command::new(speaker_ctl())
            .args(&args)
            .env("SPEAKER_STATE_DIR", &*d)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("{args:?} hangs");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(want), "{args:?}: {}", text(&o.stderr));
        if want == 1 {
            assert!(text(&o.stderr).contains("is corrupt; remove"), "{args:?}: {}", text(&o.stderr));
        }
        // A listing names the state it could not read (before, `status`
        // passed over it and `status c1` said there was no container c1).
        if args[0] == "status" && args.len() == 1 {
            assert!(
                text(&o.stderr).contains("warning:") && text(&o.stderr).contains("c1/state.json is corrupt; remove"),
                "{args:?}: {}",
                text(&o.stderr)
            );
        }
    }
}
