//! The end of a pod as the kubelet ends it (a deletion, a drain):
//! StopContainer (SIGTERM, SIGKILL after the grace period), RemoveContainer,
//! StopPodSandbox, RemovePodSandbox; speaker switches each container to its
//! shutdown phase on SIGTERM, and nothing of speaker's is left.

use std::fs;
use std::path::Path;

use k8s_cri::v1::ContainerState;
use speaker_cri_tests::client::Cri;
use speaker_tests::engines::redis_saved;
use speaker_tests::ensure;
use speaker_tests::guest::{phase_of, run, Outcome};

use crate::serve::{started, Started, PODS};
use crate::setup::{cri, OUT};

/// Stops container `id` with the kubelet's default grace period (30 s) and
/// checks that it exited by itself with 0.
pub fn stop_and_check(cri: &Cri, id: &str, name: &str) -> Outcome {
    cri.stop_container(id, 30)?;
    let st = cri.container_status(id)?.status.ok_or("ContainerStatus without a status")?;
    ensure!(st.state == ContainerState::ContainerExited as i32, "{name} after StopContainer: {st:?}");
    ensure!(st.exit_code == 0 && st.reason == "Completed", "{name} exited {} ({}: {})", st.exit_code, st.reason, st.message);
    Ok(())
}

/// Nothing of container `id` in speaker.ko or /run/speaker.
pub fn nothing_left(id: &str) -> Outcome {
    ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "/run/speaker/{id} left behind");
    ensure!(phase_of(id).is_none(), "speaker.ko still knows {id}");
    Ok(())
}

/// speaker.ko knows no container and /run/speaker is empty.
pub fn node_is_clean() -> Outcome {
    let all = run("speaker-ctl", &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&all.stdout).map_err(|e| format!("speaker-ctl status --json: {e}: {}", all.stdout))?;
    ensure!(v.as_array().is_some_and(|a| a.is_empty()), "speaker-ctl status is not empty: {}", all.stdout);
    let left: Vec<String> = fs::read_dir("/run/speaker")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    ensure!(left.is_empty(), "/run/speaker has {left:?}");
    Ok(())
}

/// RemoveContainer for each container, StopPodSandbox, RemovePodSandbox;
/// then the CRI lists none of them and speaker keeps nothing of them.
pub fn remove_pod(cri: &Cri, pod: &Started) -> Outcome {
    for (_, id) in &pod.containers {
        cri.remove_container(id)?;
    }
    cri.stop_pod_sandbox(&pod.sandbox)?;
    cri.remove_pod_sandbox(&pod.sandbox)?;
    let containers = cri.list_containers()?;
    let sandboxes = cri.list_pod_sandboxes()?;
    for (_, id) in &pod.containers {
        ensure!(!containers.contains(id), "the CRI still lists container {id}");
        nothing_left(id)?;
    }
    ensure!(!sandboxes.contains(&pod.sandbox), "the CRI still lists sandbox {}", pod.sandbox);
    nothing_left(&pod.sandbox)
}

pub fn cri_stop_goes_through_shutdown() -> Outcome {
    let cri = cri()?;
    let web = started("web")?;
    let redis = started("redis")?;
    // The sidecar: its SIGTERM handler finds getpriority allowed again.
    stop_and_check(cri, &web.id("sidecar")?, "sidecar")?;
    let term = fs::read_to_string(format!("{OUT}/term.txt")).map_err(|e| format!("the sidecar wrote no /out/term.txt: {e}"))?;
    ensure!(term.trim() == "getpriority: 0", "on SIGTERM the sidecar was not in its shutdown phase: {term}");
    // redis saves its dump on SIGTERM.
    stop_and_check(cri, &redis.id("redis")?, "redis")?;
    redis_saved(&format!("{OUT}/redis"))?;
    stop_and_check(cri, &web.id("web")?, "nginx")?;
    remove_pod(cri, &web)?;
    remove_pod(cri, &redis)?;
    PODS.lock().unwrap().clear();
    node_is_clean()
}
