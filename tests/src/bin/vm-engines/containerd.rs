//! containerd scenarios (containerd 1.7: `ctr run --runc-binary`, the runc
//! shim with BinaryName, the path of a Kubernetes RuntimeClass; the image's
//! files as its rootfs): run switches to running, exec gets the running
//! filter, kill goes through shutdown, delete leaves nothing.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Out, Outcome};

use crate::checks::{nothing_left, ok, wait_phase, workload};
use crate::setup::{setup, BOOT_ONLY, DIR, OUT, PORT, PROFILE};

pub const CTR_ID: &str = "cweb";

pub fn ctr(args: &[&str]) -> Out {
    let mut line = vec!["-n", "speaker"];
    line.extend_from_slice(args);
    run("ctr", &line)
}

/// The CRI runtime `speaker` of /etc/containerd/config.toml (the stanza of
/// docs/src/kubernetes.md) is what containerd 1.7 reads.
pub fn containerd_cri_config_has_speaker_runtime() -> Outcome {
    setup()?;
    let dump = ok("containerd config dump", &run("containerd", &["config", "dump"]))?;
    let start = dump
        .find("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.speaker]")
        .ok_or_else(|| "containerd config dump has no runtimes.speaker table".to_string())?;
    let table: String = dump[start..].lines().take(40).collect::<Vec<_>>().join("\n");
    for want in [
        "runtime_type = \"io.containerd.runc.v2\"",
        "pod_annotations = [\"io.speaker.*\"]",
        "BinaryName = \"/opt/speaker/bin/speaker-runtime\"",
    ] {
        ensure!(table.contains(want), "containerd's speaker runtime lacks {want}: {table}");
    }
    Ok(())
}

pub fn containerd_run_switches_to_running() -> Outcome {
    setup()?;
    let _ = fs::remove_file(format!("{OUT}/term.txt"));
    let annotation = format!("io.speaker.profile={PROFILE}");
    let rootfs = format!("{DIR}/image");
    ensure!(run("ss", &["-Hltn", &format!("sport = :{PORT}")]).stdout.trim().is_empty(), "port {PORT} is taken before ctr run");
    let child = Command::new("ctr")
        .args([
            "-n",
            "speaker",
            "run",
            "-d",
            "--runc-binary",
            "/opt/speaker/bin/speaker-runtime",
            "--net-host",
            "--annotation",
            &annotation,
        ])
        .args(["--mount", "type=bind,src=/srv/engines/out,dst=/out,options=rbind:rw", "--rootfs", &rootfs, CTR_ID, "/start.sh"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("ctr run: {e}"))?;
    ensure!(child.status.success(), "ctr run failed: {}", String::from_utf8_lossy(&child.stderr));
    wait_phase(CTR_ID, "running", 90)?;
    workload()
}

pub fn containerd_exec_gets_running_filter() -> Outcome {
    let o = ok("ctr task exec", &ctr(&["task", "exec", "--exec-id", "try1", CTR_ID, "/bin/speaker-probe", "try", BOOT_ONLY, "getppid"]))?;
    ensure!(o.contains("getpriority: errno 1") && o.contains("getppid: 0"), "ctr task exec in the running phase: {o}");
    Ok(())
}

pub fn containerd_kill_goes_through_shutdown() -> Outcome {
    ok("ctr task kill", &ctr(&["task", "kill", "-s", "SIGTERM", CTR_ID]))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ctr(&["task", "ls"]).stdout.lines().any(|l| l.starts_with(CTR_ID) && l.contains("STOPPED")) {
        ensure!(Instant::now() < deadline, "{CTR_ID} did not stop: {}", ctr(&["task", "ls"]).stdout);
        std::thread::sleep(Duration::from_millis(300));
    }
    let term = fs::read_to_string(format!("{OUT}/term.txt")).map_err(|e| format!("the container wrote no /out/term.txt: {e}"))?;
    ensure!(term.trim() == "getpriority: 0", "on SIGTERM the container was not in its shutdown phase: {term}");
    Ok(())
}

pub fn containerd_delete_leaves_nothing() -> Outcome {
    ok("ctr task delete", &ctr(&["task", "delete", CTR_ID]))?;
    ok("ctr container delete", &ctr(&["container", "delete", CTR_ID]))?;
    nothing_left(CTR_ID)
}
