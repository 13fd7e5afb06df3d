//! speaker-runtime's command line on the host, with a stand-in for crun
//! (`/bin/echo` prints exactly the arguments it was given): passthrough is
//! exact, speaker's own options are removed, and errors in annotated
//! bundles come before crun runs (the real crun and containers are
//! exercised in the VM: tests/tests/vm_oci.rs).
use std::process::Command;

fn runtime(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_speaker-ctl"))
        .arg("runtime")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run speaker-ctl runtime");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn unknown_commands_and_plain_bundles_reach_crun_untouched() {
    let (code, out, err) = runtime(&["--root", "/run/x", "--log-format=json", "state", "c1"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "--root /run/x --log-format=json state c1\n");
    let (_, out, _) = runtime(&["--speaker-crun", "/bin/echo", "--systemd-cgroup", "frobnicate", "--x", "y"], &[]);
    assert_eq!(out, "--systemd-cgroup frobnicate --x y\n", "--speaker-crun must not reach crun");
    let dir = std::env::temp_dir().join(format!("speaker-runtime-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"ociVersion":"1.0.2","process":{"args":["true"]}}"#).unwrap();
    let (code, out, err) = runtime(&["create", "--bundle", dir.to_str().unwrap(), "c2"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("create --bundle {} c2\n", dir.display()));
}

#[test]
fn annotated_bundle_errors_come_before_crun_and_go_to_the_log() {
    let dir = std::env::temp_dir().join(format!("speaker-runtime-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = r#"{"ociVersion":"1.0.2","process":{"args":["true"]},"annotations":{"io.speaker.profile":"missing.json"}}"#;
    std::fs::write(dir.join("config.json"), config).unwrap();
    let log = dir.join("log.json");
    let (code, out, err) = runtime(
        &["--log", log.to_str().unwrap(), "--log-format", "json", "create", "--bundle", dir.to_str().unwrap(), "c3"],
        &[("SPEAKER_CRUN", "/bin/echo")],
    );
    assert_eq!(code, 1);
    assert_eq!(out, "", "crun must not have run");
    assert!(err.contains("missing.json") && err.contains("does not exist"), "{err}");
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line in --log");
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("missing.json"));
    assert_eq!(std::fs::read_to_string(dir.join("config.json")).unwrap(), config, "bundle changed");
    let (code, _, err) = runtime(&["create", "--bundle", dir.to_str().unwrap(), "c4"], &[("SPEAKER_CRUN", "/nonexistent/crun")]);
    assert_eq!(code, 1);
    assert!(err.contains("crun not found at /nonexistent/crun"), "{err}");
}

/// A bundle in a fresh directory: `config` as its config.json.
fn bundle_dir(name: &str, config: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("speaker-runtime-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    dir
}

const ANNOTATED: &str = r#"{"ociVersion":"1.0.2","process":{"args":["true"]},"annotations":{"io.speaker.profile":"p.json"}}"#;

#[test]
fn lines_it_cannot_parse_never_run_an_annotated_bundle() {
    let dir = bundle_dir("closed", ANNOTATED);
    let b = dir.to_str().unwrap();
    let crun = [("SPEAKER_CRUN", "/bin/echo")];
    for line in [
        &["create", "--frobnicate", "--bundle", b, "c5"][..],
        &["--new-global", "create", "--bundle", b, "c5"],
        &["run", "--bundle", b, "--new-flag", "c5"],
        &["create", "-b", b, "-f", "config.json", "--new-flag", "c5"],
        &["restore", "--bundle", b, "--image-path", "/i", "c5"],
    ] {
        let (code, out, err) = runtime(line, &crun);
        assert_eq!((code, out.as_str()), (1, ""), "{line:?}: crun ran (or the exit code is not 1); stderr: {err}");
        assert!(err.contains("asks for speaker"), "{line:?}: {err}");
    }
    // The bundle as the current directory (crun's default), no --bundle.
    let out = Command::new(env!("CARGO_BIN_EXE_speaker-ctl"))
        .args(["runtime", "create", "--new-flag", "c6"])
        .current_dir(&dir)
        .envs(crun)
        .output()
        .unwrap();
    assert_eq!((out.status.code(), out.stdout.len()), (Some(1), 0), "{}", String::from_utf8_lossy(&out.stderr));
    // A plain bundle: crun's business, line as given (crun's own error).
    let plain = bundle_dir("closed-plain", r#"{"ociVersion":"1.0.2","process":{"args":["true"]}}"#);
    let line = ["create", "--frobnicate", "--bundle", plain.to_str().unwrap(), "c7"];
    let (code, out, err) = runtime(&line, &crun);
    assert_eq!((code, out), (0, format!("{}\n", line.join(" "))), "{err}");
}

#[test]
fn crun_options_speaker_did_not_know_reach_crun_with_the_speaker_checks() {
    // `--no-subreaper` (crun's create and run): parsed, so an annotated
    // bundle goes through speaker (here: its missing profile), not around it.
    let dir = bundle_dir("no-subreaper", ANNOTATED);
    let (code, out, err) =
        runtime(&["create", "--no-subreaper", "--bundle", dir.to_str().unwrap(), "c8"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("p.json") && err.contains("does not exist"), "{err}");
    // A non-string annotation value is refused, not taken for "no profile".
    let dir = bundle_dir("not-string", r#"{"ociVersion":"1.0.2","annotations":{"io.speaker.profile":["p.json"]}}"#);
    let (code, out, err) = runtime(&["run", "--bundle", dir.to_str().unwrap(), "c9"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("io.speaker.profile is not a string"), "{err}");
}

#[test]
fn speaker_crun_is_taken_only_before_the_command() {
    let (code, out, err) = runtime(&["exec", "ct", "echo", "a", "--speaker-crun", "X", "b"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!((code, out.as_str()), (0, "exec ct echo a --speaker-crun X b\n"), "{err}");
    let (_, out, _) = runtime(&["--root", "/r", "--speaker-crun=/bin/echo", "exec", "-t", "ct", "ls"], &[]);
    assert_eq!(out, "--root /r exec -t ct ls\n");
}

#[test]
fn json_log_lines_carry_crun_fields() {
    let dir = bundle_dir("log-fields", ANNOTATED);
    let log = dir.join("log.json");
    let (code, _, _) = runtime(
        &["--log", &format!("file:{}", log.display()), "--log-format=json", "create", "--bad", "--bundle", dir.to_str().unwrap(), "c10"],
        &[("SPEAKER_CRUN", "/bin/echo")],
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(v["level"], "error");
    let time = v["time"].as_str().expect("a time field");
    assert!(time.len() == 27 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    assert!(v["msg"].as_str().unwrap().contains("asks for speaker"), "{v}");
}

/// `--log` naming a FIFO nobody reads: the error is on stderr and the
/// runtime exits 1 (before: it hung opening the FIFO for its log line).
#[test]
fn a_log_fifo_without_reader_never_hangs() {
    let dir = bundle_dir("logfifo", ANNOTATED);
    let fifo = dir.join("log");
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_speaker-ctl"))
        .args(["runtime", "--log", fifo.to_str().unwrap(), "create", "--bundle", dir.to_str().unwrap(), "f1"])
        .env("SPEAKER_CRUN", "/bin/echo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("speaker-runtime hangs on its --log FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("speaker-runtime: error: "), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty(), "crun ran");
}

#[test]
fn delete_runs_crun_under_the_container_lock() {
    // A speaker container's state (as create leaves it) and a stand-in
    // crun that reports whether the container's lock, which every switch
    // holds, is free: `delete` must hold it while crun removes its state
    // directory (a switch rewrites the exec filter in there).
    let dir = std::env::temp_dir().join(format!("speaker-runtime-dellock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (state, root) = (dir.join("state"), dir.join("root"));
    std::fs::create_dir_all(state.join("c9")).unwrap();
    std::fs::create_dir_all(root.join("c9")).unwrap();
    let st = serde_json::json!({"cid": "c9", "pid": 0, "cmd": [], "started_unix_ms": 0, "phases": [], "current": "running",
        "runtime": {"crun_state_dir": root.join("c9"), "bundle": "/", "profile": "/p.json"}, "engine": "notify"});
    std::fs::write(state.join("c9/state.json"), st.to_string()).unwrap();
    let crun = dir.join("crun");
    let lock = state.join("c9/lock");
    std::fs::write(&crun, format!("#!/bin/sh\nflock -n {} true && echo lock-free || echo lock-held\n", lock.display())).unwrap();
    std::fs::set_permissions(&crun, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out, err) = runtime(
        &["--root", root.to_str().unwrap(), "delete", "--force", "c9"],
        &[("SPEAKER_CRUN", crun.to_str().unwrap()), ("SPEAKER_STATE_DIR", state.to_str().unwrap())],
    );
    assert_eq!((code, out.trim()), (0, "lock-held"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
