//! The `speaker` handler for pods that name no profile (plain crun, with
//! the pod's own seccomp profile), and a pod whose profile is missing (the
//! error reaches the CRI client, as the kubelet reports it).

use std::fs;
use std::time::{Duration, Instant};

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::ContainerState;
use speaker_cri_tests::client::pid_of;
use speaker_tests::ensure;
use speaker_tests::guest::{seccomp_filters, Outcome};

use crate::images::PROBE;
use crate::pods::{Pod, HANDLER};
use crate::serve::{probe_in, start_pod, Started};
use crate::setup::{cri, BOOT_ONLY, OUT, PROFILES};
use crate::stop::{node_is_clean, nothing_left, remove_pod, stop_and_check};

const LOOP: [&str; 3] = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];

pub fn cri_pod_without_annotation_runs_unconfined_by_speaker() -> Outcome {
    let cri = cri()?;
    let pod = Pod::new("plain", &[], ProfileType::RuntimeDefault);
    let s = start_pod(cri, &pod, &[("plain", PROBE, &LOOP, &[])])?;
    let id = s.id("plain")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = cri.container_status(&id)?.status.ok_or("ContainerStatus without a status")?;
        if st.state == ContainerState::ContainerRunning as i32 {
            break;
        }
        ensure!(Instant::now() < deadline, "plain is not RUNNING: {st:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // speaker's profile is not there: the boot-only syscall works...
    let out = probe_in(cri, &id, &[BOOT_ONLY])?;
    ensure!(out.trim() == "getpriority: 0", "in a pod without speaker's annotation: {out}");
    nothing_left(&id)?;
    // ...and the pod's own RuntimeDefault profile is (crun applied it).
    let spec_path = format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json");
    let spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&spec_path).map_err(|e| format!("{spec_path}: {e}"))?).map_err(|e| e.to_string())?;
    ensure!(
        spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO",
        "RuntimeDefault is not in the spec: {}",
        spec["linux"]["seccomp"]
    );
    let pid = pid_of(&cri.container_status(&id)?.info).ok_or("no pid for plain")?;
    ensure!(seccomp_filters(pid) == Some(1), "plain has {:?} seccomp filters, not the pod's one", seccomp_filters(pid));
    stop_and_check(cri, &id, "plain")?;
    remove_pod(cri, &s)?;
    node_is_clean()
}

pub fn cri_missing_profile_fails_the_pod_with_a_clear_event() -> Outcome {
    let cri = cri()?;
    let missing = format!("{PROFILES}/missing.json");
    let pod = Pod::new("broken", &[("io.speaker.profile", &missing)], ProfileType::Unconfined);
    // The sandbox is not speaker's: it runs.
    let config = pod.sandbox_config();
    let sandbox = cri.run_pod_sandbox(&config, HANDLER)?;
    let mut s = Started { pod_name: pod.name.clone(), sandbox, sandbox_config: config, containers: Vec::new() };
    let image = cri.image_id(PROBE)?.ok_or("no probe image")?;
    let ran = format!("{OUT}/broken-ran");
    let _ = fs::remove_file(&ran);
    let cmd = ["/bin/sh", "-c", "touch /out/broken-ran; sleep 3600"];
    let id = cri.create_container(&s.sandbox, &pod.container_config("broken", &image, PROBE, &cmd, &[(OUT, "/out")]), &s.sandbox_config)?;
    s.containers.push(("broken".into(), id.clone()));
    let started = cri.start_container(&id);
    let st = cri.container_status(&id)?.status.ok_or("ContainerStatus without a status")?;
    let left = nothing_left(&id);
    remove_pod(cri, &s)?;
    // What the kubelet's event says: StartContainer's error.
    let err = match started {
        Ok(()) => return Err("StartContainer succeeded for a pod whose profile does not exist".into()),
        Err(e) => e,
    };
    println!("  StartContainer: {err}");
    ensure!(err.contains(&missing), "StartContainer's error does not name the profile: {err}");
    ensure!(err.contains("profile"), "StartContainer's error does not say what is wrong: {err}");
    // What `kubectl describe pod` shows: the container's status.
    ensure!(st.state == ContainerState::ContainerExited as i32, "broken after the failed start: {st:?}");
    ensure!(st.reason == "StartError" && st.message.contains(&missing), "broken's status: {} {}", st.reason, st.message);
    left?;
    ensure!(!std::path::Path::new(&ran).exists(), "the container ran (it wrote {ran})");
    node_is_clean()
}

/// What an engine asks a runtime before using it: `features` is crun's
/// JSON with speaker's annotations added; `--version` names both.
pub fn runtime_features_and_version_name_crun_and_speaker() -> Outcome {
    let o = speaker_tests::guest::run("/opt/speaker/bin/speaker-runtime", &["features"]);
    let out = crate::images::ok("speaker-runtime features", &o)?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("speaker-runtime features printed no JSON ({e}): {out}"))?;
    let crun = crate::images::ok("crun features", &speaker_tests::guest::run("crun", &["features"]))?;
    let c: serde_json::Value = serde_json::from_str(&crun).map_err(|e| format!("crun features: {e}"))?;
    for key in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"] {
        ensure!(v[key] == c[key], "features' {key} is not crun's: {} vs {}", v[key], c[key]);
    }
    let list = v["potentiallyUnsafeConfigAnnotations"].as_array().ok_or("no potentiallyUnsafeConfigAnnotations")?;
    ensure!(list.iter().any(|a| a == "io.speaker."), "speaker's annotations are not listed: {list:?}");
    ensure!(v["annotations"]["io.speaker.version"].is_string(), "no io.speaker.version: {}", v["annotations"]);
    let version =
        crate::images::ok("speaker-runtime --version", &speaker_tests::guest::run("/opt/speaker/bin/speaker-runtime", &["--version"]))?;
    ensure!(version.contains("speaker-runtime ") && version.contains("crun version"), "--version: {version}");
    Ok(())
}
