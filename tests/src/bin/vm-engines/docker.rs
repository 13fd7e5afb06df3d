//! Docker scenarios (Docker 26.1, through containerd 1.7's runc shim with
//! BinaryName = speaker-runtime, as /etc/docker/daemon.json's "runtimes"
//! registers it): a container with speaker's annotation switches to running,
//! exec gets the running filter, stop goes through shutdown, rm leaves
//! nothing; without the module the container fails.

use std::fs;
use std::sync::Mutex;

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::checks::{nothing_left, ok, phase_of, wait_phase, workload};
use crate::setup::{setup, BOOT_ONLY, IMAGE, OUT, PORT, PROFILE};

/// The id of the Docker container of the scenarios below.
pub static DOCKER_ID: Mutex<String> = Mutex::new(String::new());

pub fn docker_id() -> Result<String, String> {
    let id = DOCKER_ID.lock().unwrap().clone();
    ensure!(!id.is_empty(), "no Docker container (docker_run_switches_to_running failed)");
    Ok(id)
}

pub fn docker_run_args<'a>(name: &'a str, annotation: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "-d",
        "--name",
        name,
        "--runtime",
        "speaker",
        "--network",
        "host",
        "--annotation",
        annotation,
        "-v",
        "/srv/engines/out:/out",
        IMAGE,
        "/start.sh",
    ]
}

/// Without speaker.ko, a container that asks for the kmod engine
/// (`io.speaker.engine=kmod`; `auto` would take the notify engine) fails
/// with speaker's message and never runs (unconfined or otherwise).
pub fn missing_module_fails_the_container() -> Outcome {
    setup()?;
    ok("rmmod speaker", &run("rmmod", &["speaker"]))?;
    let annotation = format!("io.speaker.profile={PROFILE}");
    let mut args = docker_run_args("nomod", &annotation);
    let at = args.iter().position(|a| *a == "--annotation").unwrap_or(0);
    args.splice(at..at, ["--annotation", "io.speaker.engine=kmod"]);
    let o = run("docker", &args);
    let back = run("insmod", &["/opt/speaker/speaker.ko"]);
    let _ = run("docker", &["rm", "-f", "nomod"]);
    ok("insmod speaker.ko again", &back)?;
    ensure!(o.code != 0, "docker run without speaker.ko succeeded: {}", o.stdout);
    ensure!(o.stderr.contains("needs speaker.ko"), "docker run's error does not say speaker.ko is missing: {}", o.stderr.trim());
    ensure!(run("ss", &["-Hltn", &format!("sport = :{PORT}")]).stdout.trim().is_empty(), "something listens on {PORT}");
    Ok(())
}

pub fn docker_run_switches_to_running() -> Outcome {
    setup()?;
    let _ = fs::remove_file(format!("{OUT}/term.txt"));
    let annotation = format!("io.speaker.profile={PROFILE}");
    let id = ok("docker run", &run("docker", &docker_run_args("web", &annotation)))?;
    ensure!(id.len() == 64, "docker run printed no container id: {id}");
    *DOCKER_ID.lock().unwrap() = id.clone();
    wait_phase(&id, "running", 90)?;
    workload()
}

pub fn docker_exec_gets_running_filter() -> Outcome {
    let id = docker_id()?;
    let o = ok("docker exec", &run("docker", &["exec", "web", "speaker-probe", "try", BOOT_ONLY, "getppid"]))?;
    ensure!(o.contains("getpriority: errno 1"), "docker exec in the running phase still gets getpriority: {o}");
    ensure!(o.contains("getppid: 0"), "docker exec: getppid (running phase) failed: {o}");
    ensure!(phase_of(&id).as_deref() == Some("running"), "phase after exec: {:?}", phase_of(&id));
    workload()
}

pub fn docker_stop_goes_through_shutdown() -> Outcome {
    docker_id()?;
    ok("docker stop", &run("docker", &["stop", "web"]))?;
    let term = fs::read_to_string(format!("{OUT}/term.txt")).map_err(|e| format!("the container wrote no /out/term.txt: {e}"))?;
    ensure!(term.trim() == "getpriority: 0", "on SIGTERM the container was not in its shutdown phase: {term}");
    let code = ok("docker inspect", &run("docker", &["inspect", "-f", "{{.State.ExitCode}}", "web"]))?;
    ensure!(code == "0", "exit code after docker stop: {code}");
    Ok(())
}

pub fn docker_rm_leaves_nothing() -> Outcome {
    let id = docker_id()?;
    ok("docker rm", &run("docker", &["rm", "web"]))?;
    nothing_left(&id)?;
    let left = fs::read_dir("/run/speaker").map(|d| d.count()).unwrap_or(0);
    ensure!(left == 0, "/run/speaker has {left} entries");
    Ok(())
}
