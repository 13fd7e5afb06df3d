//! Podman scenarios: run switches to running, exec gets the running filter,
//! stop goes through shutdown, rm leaves nothing.

use std::fs;
use std::sync::Mutex;

use speaker_tests::ensure;
use speaker_tests::guest::{run, Out, Outcome};

use crate::checks::{nothing_left, ok, wait_phase, workload};
use crate::setup::{setup, BOOT_ONLY, DIR, IMAGE, OUT, PROFILE};

pub const PODMAN_GLOBAL: [&str; 8] = [
    "--runtime",
    "/opt/speaker/bin/speaker-runtime",
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "file",
    "--storage-driver",
    "vfs",
];

pub fn podman(args: &[&str]) -> Out {
    let mut line: Vec<&str> = PODMAN_GLOBAL.to_vec();
    line.extend_from_slice(args);
    run("podman", &line)
}

pub static PODMAN_ID: Mutex<String> = Mutex::new(String::new());

pub fn podman_id() -> Result<String, String> {
    let id = PODMAN_ID.lock().unwrap().clone();
    ensure!(!id.is_empty(), "no podman container (podman_run_switches_to_running failed)");
    Ok(id)
}

pub fn podman_run_switches_to_running() -> Outcome {
    setup()?;
    let _ = fs::remove_file(format!("{OUT}/term.txt"));
    let tar = format!("{DIR}/image.tar");
    ok("podman import", &podman(&["import", &tar, IMAGE]))?;
    let annotation = format!("io.speaker.profile={PROFILE}");
    let o = podman(&[
        "run",
        "-d",
        "--name",
        "pweb",
        "--network",
        "host",
        "--annotation",
        &annotation,
        "-v",
        "/srv/engines/out:/out",
        IMAGE,
        "/start.sh",
    ]);
    let id = ok("podman run", &o)?;
    let id = id.lines().last().unwrap_or_default().to_string();
    ensure!(id.len() == 64, "podman run printed no container id: {id}");
    *PODMAN_ID.lock().unwrap() = id.clone();
    wait_phase(&id, "running", 90)?;
    workload()
}

pub fn podman_exec_gets_running_filter() -> Outcome {
    podman_id()?;
    let o = ok("podman exec", &podman(&["exec", "pweb", "speaker-probe", "try", BOOT_ONLY, "getppid"]))?;
    ensure!(o.contains("getpriority: errno 1") && o.contains("getppid: 0"), "podman exec in the running phase: {o}");
    workload()
}

pub fn podman_stop_goes_through_shutdown() -> Outcome {
    podman_id()?;
    ok("podman stop", &podman(&["stop", "pweb"]))?;
    let term = fs::read_to_string(format!("{OUT}/term.txt")).map_err(|e| format!("the container wrote no /out/term.txt: {e}"))?;
    ensure!(term.trim() == "getpriority: 0", "on SIGTERM the container was not in its shutdown phase: {term}");
    Ok(())
}

pub fn podman_rm_leaves_nothing() -> Outcome {
    let id = podman_id()?;
    let rm = podman(&["rm", "pweb"]);
    if rm.code != 0 {
        let _ = podman(&["rm", "-f", "pweb"]); // (so that the next scenarios find port 8080 free)
    }
    ok("podman rm", &rm)?;
    nothing_left(&id)
}
