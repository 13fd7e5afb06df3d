//! Two pods of the `speaker` RuntimeClass, as the kubelet starts them:
//! "web" (nginx, and a probe sidecar with a profile of its own through
//! `io.speaker.profile.NAME`) and "redis"; each switches to its running
//! phase by itself and serves; exec probes run under the running filter;
//! the pause sandbox is left alone.

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{ContainerState, PodSandboxConfig};
use speaker_cri_tests::client::{pid_of, Cri};
use speaker_tests::ensure;
use speaker_tests::guest::{phase_of, run, seccomp_filters, wait_phase_polling, Outcome};

use crate::images::{ok, NGINX, PROBE, REDIS};
use crate::pods::{Pod, HANDLER};
use crate::setup::{cri, BOOT_ONLY, OUT, PROFILES};

/// A pod the scenarios below started: its sandbox and containers.
#[derive(Clone)]
pub struct Started {
    pub pod_name: String,
    pub sandbox: String,
    pub sandbox_config: PodSandboxConfig,
    /// (container name, id)
    pub containers: Vec<(String, String)>,
}

impl Started {
    pub fn id(&self, name: &str) -> Result<String, String> {
        self.containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| format!("pod {} has no container {name}", self.pod_name))
    }
}

/// The pods started by [`cri_pod_switches_to_running_and_serves`].
pub static PODS: Mutex<Vec<Started>> = Mutex::new(Vec::new());

pub fn started(pod: &str) -> Result<Started, String> {
    let pods = PODS.lock().unwrap();
    pods.iter()
        .find(|p| p.pod_name == pod)
        .cloned()
        .ok_or_else(|| format!("pod {pod} was not started (cri_pod_switches_to_running_and_serves failed)"))
}

/// A container of a pod: name, image, command (empty: the image's
/// entrypoint), mounts (host path, container path).
pub type ContainerSpec<'a> = (&'a str, &'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

/// Starts `pod` with `containers` as the
/// kubelet does: RunPodSandbox with the handler, then per container the
/// image's id (ImageStatus), CreateContainer, StartContainer.
pub fn start_pod(cri: &Cri, pod: &Pod, containers: &[ContainerSpec]) -> Result<Started, String> {
    let config = pod.sandbox_config();
    let sandbox = cri.run_pod_sandbox(&config, HANDLER)?;
    let mut s = Started { pod_name: pod.name.clone(), sandbox, sandbox_config: config, containers: Vec::new() };
    for (name, image, command, mounts) in containers {
        let image_id = cri.image_id(image)?.ok_or_else(|| format!("the node has no image {image}"))?;
        let c = pod.container_config(name, &image_id, image, command, mounts);
        let id = cri.create_container(&s.sandbox, &c, &s.sandbox_config)?;
        s.containers.push((name.to_string(), id.clone()));
        cri.start_container(&id)?;
    }
    Ok(s)
}

pub fn wait_phase(id: &str, phase: &str, secs: u64) -> Outcome {
    wait_phase_polling(id, phase, secs, Duration::from_millis(200))
}

/// `ab`: `n` requests, 8 at a time, to `url`; 0 may fail.
pub fn ab(url: &str, n: u32) -> Outcome {
    let out = ok("ab", &run("ab", &["-q", "-n", &n.to_string(), "-c", "8", url]))?;
    let failed = out.lines().find(|l| l.starts_with("Failed requests:")).ok_or_else(|| format!("ab printed no summary: {out}"))?;
    ensure!(failed.split_whitespace().last() == Some("0"), "workload on {url}: {failed}");
    let complete = out.lines().find(|l| l.starts_with("Complete requests:")).unwrap_or_default();
    ensure!(complete.split_whitespace().last() == Some(n.to_string().as_str()), "workload on {url}: {complete}");
    Ok(())
}

/// What `speaker-probe try NAME...` prints inside container `id`, through
/// ExecSync (exit 0 required).
pub fn probe_in(cri: &Cri, id: &str, names: &[&str]) -> Result<String, String> {
    let mut cmd = vec!["/bin/speaker-probe", "try"];
    cmd.extend_from_slice(names);
    let r = cri.exec_sync(id, &cmd, 30)?;
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    ensure!(r.exit_code == 0, "ExecSync {cmd:?} exited {}: {out}{}", r.exit_code, String::from_utf8_lossy(&r.stderr));
    Ok(out)
}

pub fn cri_pod_switches_to_running_and_serves() -> Outcome {
    let cri = cri()?;
    let _ = fs::remove_file(format!("{OUT}/term.txt"));
    let redis_data = format!("{OUT}/redis");
    let _ = fs::remove_dir_all(&redis_data);
    fs::create_dir_all(&redis_data).map_err(|e| e.to_string())?;
    let nginx_profile = format!("{PROFILES}/nginx.json");
    let probe_profile = format!("{PROFILES}/probe.json");
    let web = Pod::new(
        "web",
        &[("io.speaker.profile.web", &nginx_profile), ("io.speaker.profile.sidecar", &probe_profile), ("io.speaker.mode", "enforce")],
        ProfileType::Unconfined,
    );
    let started_web = start_pod(cri, &web, &[("web", NGINX, &[], &[]), ("sidecar", PROBE, &[], &[(OUT, "/out")])])?;
    PODS.lock().unwrap().push(started_web.clone());
    let redis_profile = format!("{PROFILES}/redis.json");
    let redis = Pod::new("redis", &[("io.speaker.profile", &redis_profile)], ProfileType::Unconfined);
    let started_redis = start_pod(cri, &redis, &[("redis", REDIS, &[], &[(&redis_data, "/data")])])?;
    PODS.lock().unwrap().push(started_redis.clone());

    let ids = [started_web.id("web")?, started_web.id("sidecar")?, started_redis.id("redis")?];
    for id in &ids {
        wait_phase(id, "running", 120)?;
        let st = cri.container_status(id)?.status.ok_or("ContainerStatus without a status")?;
        ensure!(st.state == ContainerState::ContainerRunning as i32, "container {id} is not RUNNING for the CRI: {st:?}");
    }
    ab("http://127.0.0.1/index.html", 400)?;
    ab("http://127.0.0.1:8080/index.html", 200)?;
    for i in 0..20 {
        let o = run("redis-cli", &["set", &format!("k{i}"), &format!("v{i}")]);
        ensure!(o.stdout.trim() == "OK", "redis-cli set: {}{}", o.stdout, o.stderr);
    }
    ok("redis-benchmark", &run("redis-benchmark", &["-q", "-n", "500", "-c", "4", "-t", "set,get,incr,lpush"]))?;
    for id in &ids {
        let out = probe_in(cri, id, &[BOOT_ONLY])?;
        ensure!(out.trim() == "getpriority: errno 1", "inside {id} in the running phase: {out}");
        ensure!(phase_of(id).as_deref() == Some("running"), "{id} after the workload: {:?}", phase_of(id));
    }
    Ok(())
}

/// A kubelet exec probe (livenessProbe.exec, timeoutSeconds 5, five
/// periods): every run exits 0 and runs under the container's running
/// filter, which it does not change.
pub fn cri_exec_probe_runs_under_the_running_phase() -> Outcome {
    let cri = cri()?;
    let id = started("web")?.id("web")?;
    for _ in 0..5 {
        let out = probe_in(cri, &id, &["getppid", BOOT_ONLY])?;
        ensure!(out.contains("getppid: 0") && out.contains("getpriority: errno 1"), "exec probe in the running phase: {out}");
    }
    ensure!(phase_of(&id).as_deref() == Some("running"), "phase after the probes: {:?}", phase_of(&id));
    let st = cri.container_status(&id)?.status.ok_or("ContainerStatus without a status")?;
    ensure!(st.state == ContainerState::ContainerRunning as i32, "web after the probes: {st:?}");
    ab("http://127.0.0.1/index.html", 200)
}

/// The pause container has the pod's io.speaker.* annotations in its OCI
/// spec (pod_annotations), and speaker leaves it alone: not registered, no
/// state, no seccomp filter (the pod is Unconfined).
pub fn cri_sandbox_is_not_switched() -> Outcome {
    let cri = cri()?;
    let web = started("web")?;
    let st = cri.pod_sandbox_status(&web.sandbox)?;
    let status = st.status.as_ref().ok_or("PodSandboxStatus without a status")?;
    ensure!(status.runtime_handler == HANDLER, "the sandbox's handler is {:?}", status.runtime_handler);
    let spec_path = format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{}/config.json", web.sandbox);
    let spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&spec_path).map_err(|e| format!("{spec_path}: {e}"))?).map_err(|e| e.to_string())?;
    let ann = &spec["annotations"];
    ensure!(ann["io.kubernetes.cri.container-type"] == "sandbox", "the sandbox's spec: {ann}");
    ensure!(ann["io.speaker.profile.web"].is_string(), "pod_annotations did not reach the sandbox's spec: {ann}");
    ensure!(phase_of(&web.sandbox).is_none(), "speaker.ko knows the sandbox: {:?}", phase_of(&web.sandbox));
    ensure!(!std::path::Path::new(&format!("/run/speaker/{}", web.sandbox)).exists(), "/run/speaker has the sandbox");
    let pid = pid_of(&st.info).ok_or_else(|| format!("no pid in PodSandboxStatus' info: {:?}", st.info))?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    ensure!(comm.trim() == "pause", "the sandbox's process is {comm:?}");
    ensure!(seccomp_filters(pid) == Some(0), "the pause process has {:?} seccomp filters", seccomp_filters(pid));
    let web_pid = pid_of(&cri.container_status(&web.id("web")?)?.info).ok_or("no pid for web")?;
    ensure!(seccomp_filters(web_pid).is_some_and(|n| n >= 1), "nginx has no seccomp filter: {:?}", seccomp_filters(web_pid));
    Ok(())
}
