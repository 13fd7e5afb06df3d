//! nginx through each engine: an image of the guest's own nginx (and the
//! libraries ldd names) with a minimal configuration; automatic switch on
//! port 80, workload with 0 failed requests, clean stop.

use std::fs;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::checks::{nothing_left, ok, phase_of, wait_phase};
use crate::containerd::ctr;
use crate::podman::podman;
use crate::setup::{setup, DIR, PROFILE};

pub const NGINX_IMAGE: &str = "speaker-nginx:1";

pub const NGINX_ROOT: &str = "/srv/engines/nginx-image";

pub const NGINX_CONF: &str = "worker_processes 1;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\ndaemon off;\n\
events { worker_connections 64; }\nhttp { access_log off; server { listen 127.0.0.1:80; root /www; } }\n";

pub use speaker_tests::engines::copy_with_libs;

/// Once: NGINX_ROOT and its tarball.
pub fn nginx_image() -> Result<String, String> {
    static TAR: OnceLock<Result<String, String>> = OnceLock::new();
    TAR.get_or_init(|| {
        let _ = fs::remove_dir_all(NGINX_ROOT);
        copy_with_libs("/usr/sbin/nginx", NGINX_ROOT)?;
        for d in ["etc/nginx", "www", "run", "var/log/nginx", "var/lib/nginx", "proc", "sys", "dev", "tmp"] {
            fs::create_dir_all(format!("{NGINX_ROOT}/{d}")).map_err(|e| e.to_string())?;
        }
        let files = [
            ("etc/nginx/nginx.conf", NGINX_CONF.to_string()),
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_string()),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n".to_string()),
            ("www/index.html", "speaker\n".repeat(64)),
        ];
        for (f, text) in files {
            fs::write(format!("{NGINX_ROOT}/{f}"), text).map_err(|e| e.to_string())?;
        }
        let tar = format!("{DIR}/nginx.tar");
        ok("tar", &run("tar", &["-C", NGINX_ROOT, "-cf", &tar, "."]))?;
        Ok(tar)
    })
    .clone()
}

pub fn nginx_annotations() -> [String; 2] {
    [format!("io.speaker.profile={PROFILE}"), "io.speaker.ready=port:80".to_string()]
}

/// The running phase, then 400 requests with 0 failed.
pub fn nginx_workload(id: &str) -> Outcome {
    wait_phase(id, "running", 90)?;
    let o = run("ab", &["-q", "-n", "400", "-c", "8", "http://127.0.0.1/index.html"]);
    let out = ok("ab", &o)?;
    let failed = out.lines().find(|l| l.starts_with("Failed requests:")).ok_or_else(|| format!("ab printed no summary: {out}"))?;
    ensure!(failed.split_whitespace().last() == Some("0"), "nginx workload: {failed}");
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after the workload: {:?}", phase_of(id));
    Ok(())
}

pub fn docker_nginx_serves_after_automatic_switch() -> Outcome {
    setup()?;
    let tar = nginx_image()?;
    ok("docker import", &run("docker", &["import", &tar, NGINX_IMAGE]))?;
    let ann = nginx_annotations();
    let args =
        ["run", "-d", "--name", "nginx", "--runtime", "speaker", "--network", "host", "--annotation", &ann[0], "--annotation", &ann[1]];
    let mut args = args.to_vec();
    args.extend([NGINX_IMAGE, "/usr/sbin/nginx"]);
    let id = ok("docker run", &run("docker", &args))?;
    let done = nginx_workload(&id).and_then(|_| ok("docker stop", &run("docker", &["stop", "nginx"])));
    let code = run("docker", &["inspect", "-f", "{{.State.ExitCode}}", "nginx"]).stdout;
    let rm = run("docker", &["rm", "-f", "nginx"]);
    done?;
    ensure!(code.trim() == "0", "nginx' exit code after docker stop: {code}");
    ok("docker rm", &rm)?;
    nothing_left(&id)
}

pub fn podman_nginx_serves_after_automatic_switch() -> Outcome {
    setup()?;
    let tar = nginx_image()?;
    ok("podman import", &podman(&["import", &tar, NGINX_IMAGE]))?;
    let ann = nginx_annotations();
    let args = [
        "run",
        "-d",
        "--name",
        "pnginx",
        "--network",
        "host",
        "--annotation",
        &ann[0],
        "--annotation",
        &ann[1],
        NGINX_IMAGE,
        "/usr/sbin/nginx",
    ];
    let id = ok("podman run", &podman(&args))?;
    let id = id.lines().last().unwrap_or_default().to_string();
    let done = nginx_workload(&id).and_then(|_| ok("podman stop", &podman(&["stop", "pnginx"])));
    let rm = podman(&["rm", "-f", "pnginx"]);
    done?;
    ok("podman rm", &rm)?;
    nothing_left(&id)
}

pub fn containerd_nginx_serves_after_automatic_switch() -> Outcome {
    setup()?;
    nginx_image()?;
    let ann = nginx_annotations();
    let mut args = vec!["run", "-d", "--runc-binary", "/opt/speaker/bin/speaker-runtime", "--net-host"];
    args.extend(["--annotation", &ann[0], "--annotation", &ann[1], "--rootfs", NGINX_ROOT, "cnginx", "/usr/sbin/nginx"]);
    let o = Command::new("ctr").args(["-n", "speaker"]).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).output();
    let o = o.map_err(|e| format!("ctr run: {e}"))?;
    ensure!(o.status.success(), "ctr run failed: {}", String::from_utf8_lossy(&o.stderr));
    nginx_workload("cnginx")?;
    ok("ctr task kill", &ctr(&["task", "kill", "-s", "SIGTERM", "cnginx"]))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ctr(&["task", "ls"]).stdout.lines().any(|l| l.starts_with("cnginx") && l.contains("STOPPED")) {
        ensure!(Instant::now() < deadline, "cnginx did not stop: {}", ctr(&["task", "ls"]).stdout);
        std::thread::sleep(Duration::from_millis(300));
    }
    ok("ctr task delete", &ctr(&["task", "delete", "cnginx"]))?;
    ok("ctr container delete", &ctr(&["container", "delete", "cnginx"]))?;
    nothing_left("cnginx")
}
