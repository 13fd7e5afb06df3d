//! deploy/speaker-node.yaml's node part on this node: its init container
//! `load` (the script, command and mounts read from the manifest in the
//! share) runs as the kubelet would run it, a privileged pod on the host's
//! PID namespace through the CRI's default (runc) handler, from an image
//! made here with what the manifest says the image holds (/speaker-ctl,
//! /modules/<release>/speaker.ko, busybox).  speaker.ko is unloaded first:
//! an image without the module for this kernel fails, saying why; the
//! right image installs speaker-runtime and loads the module, and a pod of
//! the `speaker` RuntimeClass then switches as before.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{ContainerState, Mount, NamespaceMode};
use speaker_cri_tests::client::Cri;
use speaker_cri_tests::deploy::{documents, host_path, init_container, of_kind};
use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::images::{base_root, import, ok, PROBE};
use crate::pods::Pod;
use crate::serve::{start_pod, wait_phase, Started};
use crate::setup::{cri, PROFILES};
use crate::stop::{node_is_clean, remove_pod, stop_and_check};

pub const MANIFEST: &str = "/mnt/share/deploy/speaker-node.yaml";

fn module_loaded() -> bool {
    fs::read_to_string("/proc/modules").unwrap_or_default().lines().any(|l| l.starts_with("speaker "))
}

/// The node image `name`: busybox, /speaker-ctl, and speaker.ko as
/// /modules/RELEASE/speaker.ko when `release` is given.
fn node_image(name: &str, release: Option<&str>) -> Outcome {
    let root = base_root(&format!("node-{}", release.is_some()), &[])?;
    ok("cp busybox", &run("cp", &["/bin/busybox", &format!("{root}/bin/busybox")]))?;
    for applet in ["sh", "install", "mv", "ln", "grep", "mkdir", "ls", "tr", "uname", "insmod", "cat"] {
        std::os::unix::fs::symlink("busybox", format!("{root}/bin/{applet}")).map_err(|e| e.to_string())?;
    }
    ok("cp speaker-ctl", &run("cp", &["/opt/speaker/bin/speaker-ctl", &format!("{root}/speaker-ctl")]))?;
    if let Some(rel) = release {
        fs::create_dir_all(format!("{root}/modules/{rel}")).map_err(|e| e.to_string())?;
        ok("cp speaker.ko", &run("cp", &["/opt/speaker/speaker.ko", &format!("{root}/modules/{rel}/speaker.ko")]))?;
    } else {
        fs::create_dir_all(format!("{root}/modules/0.0.0-other")).map_err(|e| e.to_string())?;
    }
    let env: &[&str] = &["PATH=/bin"];
    import(name, &root, &speaker_cri_tests::image::ImageConfig { entrypoint: &["/bin/sh"], cmd: &[], env })
}

/// Runs the DaemonSet's init container `load` from `image` as a pod (the
/// default handler, privileged, hostPID) until it exits; its exit code and
/// log.
fn run_load(cri: &Cri, image: &str, pod_name: &str) -> Result<(i32, String), String> {
    let docs = documents(Path::new(MANIFEST))?;
    let ds = of_kind(&docs, "DaemonSet")?;
    let load = init_container(ds, "load")?;
    let pod = Pod::new(pod_name, &[], ProfileType::Unconfined);
    let mut sandbox = pod.sandbox_config();
    if let Some(sc) = sandbox.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
        if let Some(ns) = sc.namespace_options.as_mut() {
            ns.pid = NamespaceMode::Node as i32;
        }
    }
    let sid = cri.run_pod_sandbox(&sandbox, "")?;
    let mut started = Started { pod_name: pod_name.into(), sandbox: sid, sandbox_config: sandbox, containers: Vec::new() };
    let image_id = cri.image_id(image)?.ok_or_else(|| format!("no image {image}"))?;
    let cmd: Vec<&str> = load.command.iter().map(String::as_str).collect();
    let mut c = pod.container_config("load", &image_id, image, &cmd, &[]);
    for (volume, path) in &load.mounts {
        let host = host_path(ds, volume).ok_or_else(|| format!("the DaemonSet has no hostPath volume {volume}"))?;
        c.mounts.push(Mount { host_path: host, container_path: path.clone(), ..Default::default() });
    }
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
        sc.masked_paths.clear();
        sc.readonly_paths.clear();
        if let Some(ns) = sc.namespace_options.as_mut() {
            ns.pid = NamespaceMode::Node as i32;
        }
    }
    let id = cri.create_container(&started.sandbox, &c, &started.sandbox_config)?;
    started.containers.push(("load".into(), id.clone()));
    let result = cri.start_container(&id).and_then(|_| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = cri.container_status(&id)?.status.ok_or("ContainerStatus without a status")?;
            if st.state == ContainerState::ContainerExited as i32 {
                let log = fs::read_to_string(format!("{}/load/0.log", pod.log_directory())).unwrap_or_default();
                return Ok((st.exit_code, log));
            }
            ensure!(Instant::now() < deadline, "the init container did not finish in 60 s: {st:?}");
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    remove_pod(cri, &started)?;
    result
}

pub fn deploy_node_script_loads_the_module_and_installs_the_runtime() -> Outcome {
    let cri = cri()?;
    node_is_clean()?;
    let rel = ok("uname -r", &run("uname", &["-r"]))?;
    let docs = documents(Path::new(MANIFEST))?;
    let image = of_kind(&docs, "DaemonSet")?["spec"]["template"]["spec"]["initContainers"][0]["image"]
        .as_str()
        .ok_or("the init container has no image")?
        .to_string();
    let full = if image.contains('/') && image.split('/').next().is_some_and(|h| h.contains('.')) {
        image.clone()
    } else {
        format!("docker.io/{image}")
    };
    node_image(&full, Some(&rel))?;
    node_image("docker.io/library/speaker-node:nomodule", None)?;
    ok("rmmod speaker", &run("rmmod", &["speaker"]))?;
    let reload = |why: String| -> String {
        if !module_loaded() {
            let _ = run("insmod", &["/opt/speaker/speaker.ko"]);
        }
        why
    };
    // An image without this kernel's module: the init container fails and says why.
    let (code, log) = run_load(cri, "docker.io/library/speaker-node:nomodule", "node-nomodule").map_err(reload)?;
    ensure!(code != 0, "{}", reload(format!("the init container succeeded without a module for {rel}: {log}")));
    ensure!(log.contains(&format!("no speaker.ko for kernel {rel}")), "{}", reload(format!("its log does not say why: {log}")));
    ensure!(!module_loaded(), "speaker.ko got loaded");
    // The DaemonSet's image: module loaded, runtime installed.
    let (code, log) = run_load(cri, &full, "node").map_err(reload)?;
    ensure!(code == 0, "{}", reload(format!("the init container failed ({code}): {log}")));
    ensure!(module_loaded(), "speaker.ko is not loaded after the init container: {log}");
    ensure!(log.contains("speaker-ctl ") && log.contains("speaker.ko"), "speaker-ctl version's output is not in its log: {log}");
    let link = fs::read_link("/opt/speaker/bin/speaker-runtime").map_err(|e| format!("/opt/speaker/bin/speaker-runtime: {e}"))?;
    ensure!(link == Path::new("speaker-ctl"), "speaker-runtime points to {}", link.display());
    // And the node runs speaker's pods.
    let pod = Pod::new("after-install", &[("io.speaker.profile", &format!("{PROFILES}/probe.json"))], ProfileType::Unconfined);
    let s = start_pod(cri, &pod, &[("probe", PROBE, &[], &[])])?;
    let id = s.id("probe")?;
    let up = wait_phase(&id, "running", 120);
    let stopped = stop_and_check(cri, &id, "probe");
    remove_pod(cri, &s)?;
    up?;
    stopped?;
    node_is_clean()
}
