//! Once per boot: the profiles, containerd (with the guest's
//! /etc/containerd/config.toml: the `speaker` runtime of
//! docs/src/kubernetes.md), the images, and a CRI client.

use std::fs;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker_cri_tests::client::{Cri, CONTAINERD_SOCKET};
use speaker_tests::engines::all_but_one_profile;
use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::images::{make_images, ok, DIR};

/// Where the profiles are on the node (the DaemonSet's copy of the
/// ConfigMap, docs/src/kubernetes.md).
pub const PROFILES: &str = "/etc/speaker/profiles";

/// Files the containers write (mounted as /out, /data).
pub const OUT: &str = "/srv/cri/out";

pub use speaker_tests::engines::BOOT_ONLY;

/// The profile `name` ([`all_but_one_profile`]), ready when `ready` holds.
pub fn write_profile(name: &str, ready: &str) -> Outcome {
    let path = format!("{PROFILES}/{name}.json");
    fs::write(&path, all_but_one_profile(&format!("cri-{name}"), ready)?).map_err(|e| format!("{path}: {e}"))
}

/// The node's sandbox image: containerd's CRI `sandbox_image`.
pub fn sandbox_image() -> Result<String, String> {
    let dump = ok("containerd config dump", &run("containerd", &["config", "dump"]))?;
    let line = dump
        .lines()
        .find(|l| l.trim_start().starts_with("sandbox_image = "))
        .ok_or_else(|| "containerd config dump has no sandbox_image".to_string())?;
    Ok(line.split('"').nth(1).unwrap_or_default().to_string())
}

/// Starts containerd (its log: DIR/containerd.log) and waits until its
/// CRI service answers Version.
fn start_containerd() -> Result<Cri, String> {
    let log = fs::File::create(format!("{DIR}/containerd.log")).map_err(|e| e.to_string())?;
    Command::new("containerd")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start containerd: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    while Instant::now() < deadline {
        if run("ctr", &["version"]).code == 0 {
            match Cri::connect(CONTAINERD_SOCKET).and_then(|c| c.version().map(|v| (c, v))) {
                Ok((c, v)) => {
                    println!("  CRI: {} {} (API {})", v.runtime_name, v.runtime_version, v.runtime_api_version);
                    ensure!(v.runtime_api_version == "v1", "containerd's CRI speaks {}, not v1", v.runtime_api_version);
                    return Ok(c);
                }
                Err(e) => last = e,
            }
            // containerd runs without its CRI plugin when the plugin's
            // config is invalid (a warning in its log): no point waiting.
            let log = fs::read_to_string(format!("{DIR}/containerd.log")).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains("failed to load plugin io.containerd.grpc.v1.cri")) {
                return Err(format!("containerd did not load its CRI plugin: {l}"));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = fs::read_to_string(format!("{DIR}/containerd.log")).unwrap_or_default();
    Err(format!(
        "containerd's CRI did not answer in 180 s ({last}); its log: {}",
        log.lines().rev().take(15).collect::<Vec<_>>().join(" | ")
    ))
}

/// The CRI client, after the set-up (once).
pub fn cri() -> Result<&'static Cri, String> {
    static CRI: OnceLock<Result<Cri, String>> = OnceLock::new();
    CRI.get_or_init(|| {
        let t = Instant::now();
        for d in [DIR, OUT, PROFILES] {
            fs::create_dir_all(d).map_err(|e| format!("{d}: {e}"))?;
        }
        write_profile("nginx", "port:80")?;
        write_profile("redis", "port:6379")?;
        write_profile("probe", "port:8080")?;
        let cri = start_containerd()?;
        make_images(&sandbox_image()?)?;
        let df = run("df", &["-h", "/", "/tmp"]).stdout;
        println!(
            "  set-up: containerd, its CRI and 4 images in {:.1}s; {}",
            t.elapsed().as_secs_f64(),
            df.lines().skip(1).collect::<Vec<_>>().join(" | ")
        );
        Ok(cri)
    })
    .as_ref()
    .map_err(|e| format!("set-up failed: {e}"))
}
