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
