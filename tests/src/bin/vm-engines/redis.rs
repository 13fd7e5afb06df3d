//! redis through each engine: an image of the guest's own redis-server (and
//! the libraries ldd names); workload, then stop: the dump is saved in the
//! shutdown phase.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::checks::{nothing_left, ok, phase_of, wait_phase};
use crate::containerd::ctr;
use crate::podman::podman;
use crate::setup::{setup, DIR, OUT, PROFILE};

pub const REDIS_IMAGE: &str = "speaker-redis:1";

pub const REDIS_ROOT: &str = "/srv/engines/redis-image";

/// Once: REDIS_ROOT and its tarball (imported by Docker and podman).
pub fn redis_image() -> Result<String, String> {
    static TAR: OnceLock<Result<String, String>> = OnceLock::new();
    TAR.get_or_init(|| {
        let _ = fs::remove_dir_all(REDIS_ROOT);
        let ldd = ok("ldd", &run("ldd", &["/usr/bin/redis-server"]))?;
        let mut files: Vec<String> = ldd.split_whitespace().filter(|w| w.starts_with('/')).map(str::to_string).collect();
        files.push("/usr/bin/redis-server".into());
        for f in &files {
            let dst = format!("{REDIS_ROOT}{f}");
            fs::create_dir_all(Path::new(&dst).parent().unwrap()).map_err(|e| e.to_string())?;
            ok("cp", &run("cp", &["-L", f, &dst]))?;
        }
        for d in ["data", "proc", "sys", "dev", "etc", "tmp"] {
            fs::create_dir_all(format!("{REDIS_ROOT}/{d}")).map_err(|e| e.to_string())?;
        }
        let tar = format!("{DIR}/redis.tar");
        ok("tar", &run("tar", &["-C", REDIS_ROOT, "-cf", &tar, "."]))?;
        Ok(tar)
    })
    .clone()
}

pub const REDIS_CMD: [&str; 7] = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", "6379", "--dir", "/data"];

/// A fresh host directory for the container's /data.
pub fn redis_data(engine: &str) -> Result<String, String> {
    let d = format!("{OUT}/redis-{engine}");
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// The running phase with 0 errors: 20 keys, then redis-benchmark.
pub fn redis_workload(id: &str) -> Outcome {
    wait_phase(id, "running", 90)?;
    for i in 0..20 {
        let o = run("redis-cli", &["set", &format!("k{i}"), &format!("v{i}")]);
        ensure!(o.stdout.trim() == "OK", "redis-cli set: {}{}", o.stdout, o.stderr);
    }
    ok("redis-benchmark", &run("redis-benchmark", &["-q", "-n", "500", "-c", "4", "-t", "set,get,incr,lpush"]))?;
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after the workload: {:?}", phase_of(id));
    Ok(())
}

pub use speaker_tests::engines::redis_saved;

pub fn redis_args<'a>(name: &'a str, annotations: &'a [String; 2], mount: &'a str) -> Vec<&'a str> {
    let mut a = vec!["run", "-d", "--name", name, "--network", "host", "--annotation", &annotations[0], "--annotation", &annotations[1]];
    a.extend(["-v", mount, REDIS_IMAGE]);
    a.extend(REDIS_CMD);
    a.extend(["--logfile", "/data/redis.log"]);
    a
}

pub fn redis_annotations() -> [String; 2] {
    [format!("io.speaker.profile={PROFILE}"), "io.speaker.ready=port:6379".to_string()]
}

pub fn docker_redis_saves_dump_in_shutdown_phase() -> Outcome {
    setup()?;
    let tar = redis_image()?;
    ok("docker import", &run("docker", &["import", &tar, REDIS_IMAGE]))?;
    let data = redis_data("docker")?;
    let mount = format!("{data}:/data");
    let ann = redis_annotations();
    let mut args = redis_args("redis", &ann, &mount);
    args.splice(1..1, ["--runtime", "speaker"]);
    let id = ok("docker run", &run("docker", &args))?;
    let done = redis_workload(&id).and_then(|_| ok("docker stop", &run("docker", &["stop", "redis"])));
    let code = run("docker", &["inspect", "-f", "{{.State.ExitCode}}", "redis"]).stdout;
    let rm = run("docker", &["rm", "-f", "redis"]);
    done?;
    ensure!(code.trim() == "0", "redis' exit code after docker stop: {code}");
    ok("docker rm", &rm)?;
    redis_saved(&data)?;
    nothing_left(&id)
}

pub fn podman_redis_saves_dump_in_shutdown_phase() -> Outcome {
    setup()?;
    let tar = redis_image()?;
    ok("podman import", &podman(&["import", &tar, REDIS_IMAGE]))?;
    let data = redis_data("podman")?;
    let mount = format!("{data}:/data");
    let ann = redis_annotations();
    let id = ok("podman run", &podman(&redis_args("predis", &ann, &mount)))?;
    let id = id.lines().last().unwrap_or_default().to_string();
    let done = redis_workload(&id).and_then(|_| ok("podman stop", &podman(&["stop", "predis"])));
    let rm = podman(&["rm", "-f", "predis"]);
    done?;
    ok("podman rm", &rm)?;
    redis_saved(&data)?;
    nothing_left(&id)
}

pub fn containerd_redis_saves_dump_in_shutdown_phase() -> Outcome {
    setup()?;
    redis_image()?;
    let data = redis_data("containerd")?;
    let ann = redis_annotations();
    let mount = format!("type=bind,src={data},dst=/data,options=rbind:rw");
    let mut args = vec!["run", "-d", "--runc-binary", "/opt/speaker/bin/speaker-runtime", "--net-host"];
    args.extend(["--annotation", &ann[0], "--annotation", &ann[1], "--mount", &mount, "--rootfs", REDIS_ROOT, "credis"]);
    args.extend(REDIS_CMD);
    args.extend(["--logfile", "/data/redis.log"]);
    let o = Command::new("ctr").args(["-n", "speaker"]).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).output();
    let o = o.map_err(|e| format!("ctr run: {e}"))?;
    ensure!(o.status.success(), "ctr run failed: {}", String::from_utf8_lossy(&o.stderr));
    redis_workload("credis")?;
    ok("ctr task kill", &ctr(&["task", "kill", "-s", "SIGTERM", "credis"]))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ctr(&["task", "ls"]).stdout.lines().any(|l| l.starts_with("credis") && l.contains("STOPPED")) {
        ensure!(Instant::now() < deadline, "credis did not stop: {}", ctr(&["task", "ls"]).stdout);
        std::thread::sleep(Duration::from_millis(300));
    }
    ok("ctr task delete", &ctr(&["task", "delete", "credis"]))?;
    ok("ctr container delete", &ctr(&["container", "delete", "credis"]))?;
    redis_saved(&data)?;
    nothing_left("credis")
}
