//! The guest's setup for every engine: the probe image's files and profile,
//! its tarball, and the engines' daemons started.

use std::fs;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker_tests::engines::all_but_one_profile;
use speaker_tests::guest::{run, Outcome};

use crate::checks::ok;

pub const DIR: &str = "/srv/engines";

pub const PROFILE: &str = "/srv/engines/probe.json";

pub const OUT: &str = "/srv/engines/out";

pub const IMAGE: &str = "speaker-probe:1";

pub const PORT: &str = "8080";

pub use speaker_tests::engines::BOOT_ONLY;

/// In the image: serve, and on SIGTERM record what the phase allows.
pub const START_SH: &str = "#!/bin/sh\n\
trap 'speaker-probe try getpriority > /out/term.txt; exit 0' TERM\n\
httpd -f -p 8080 -h /www &\n\
wait\n";

/// The profile ([`all_but_one_profile`]), ready when the port answers.
pub fn write_profile() -> Outcome {
    fs::write(PROFILE, all_but_one_profile("engines-probe", &format!("port:{PORT}"))?).map_err(|e| format!("{PROFILE}: {e}"))
}

/// The image's root filesystem as a tarball: busybox (sh, httpd),
/// speaker-probe, /start.sh and a page.
pub fn image_tarball() -> Result<String, String> {
    let root = format!("{DIR}/image");
    let _ = fs::remove_dir_all(&root);
    for d in ["bin", "www", "out", "proc", "sys", "dev", "etc", "tmp"] {
        fs::create_dir_all(format!("{root}/{d}")).map_err(|e| e.to_string())?;
    }
    fs::copy("/bin/busybox", format!("{root}/bin/busybox")).map_err(|e| format!("/bin/busybox: {e}"))?;
    for applet in ["sh", "httpd", "sleep", "cat", "test"] {
        std::os::unix::fs::symlink("busybox", format!("{root}/bin/{applet}")).map_err(|e| e.to_string())?;
    }
    fs::copy("/opt/speaker/bin/speaker-probe", format!("{root}/bin/speaker-probe")).map_err(|e| format!("speaker-probe: {e}"))?;
    fs::write(format!("{root}/start.sh"), START_SH).map_err(|e| e.to_string())?;
    ok("chmod", &run("chmod", &["0755", &format!("{root}/start.sh")]))?;
    fs::write(format!("{root}/www/index.html"), "speaker\n".repeat(64)).map_err(|e| e.to_string())?;
    let tar = format!("{DIR}/image.tar");
    ok("tar", &run("tar", &["-C", &root, "-cf", &tar, "."]))?;
    Ok(tar)
}

/// Starts a daemon with its output in DIR/NAME.log and waits until
/// `check` succeeds.
pub fn start_daemon(name: &str, cmd: &str, args: &[&str], check: &[&str], secs: u64) -> Outcome {
    let log = fs::File::create(format!("{DIR}/{name}.log")).map_err(|e| e.to_string())?;
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {cmd}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if run(check[0], &check[1..]).code == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(format!("{DIR}/{name}.log")).unwrap_or_default();
            return Err(format!("{name} not up after {secs}s; its log: {}", log.lines().rev().take(15).collect::<Vec<_>>().join(" | ")));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Once: the profile, the image tarball, containerd and dockerd (on it),
/// the image imported into Docker.
pub fn setup() -> Outcome {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let t = Instant::now();
        fs::create_dir_all(OUT).map_err(|e| e.to_string())?;
        write_profile()?;
        let tar = image_tarball()?;
        start_daemon("containerd", "containerd", &[], &["ctr", "version"], 180)?;
        start_daemon(
            "dockerd",
            "dockerd",
            &[
                "--containerd",
                "/run/containerd/containerd.sock",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ],
            &["docker", "info"],
            240,
        )?;
        ok("docker import", &run("docker", &["import", &tar, IMAGE]))?;
        println!("setup: containerd, dockerd and the image in {:.1}s", t.elapsed().as_secs_f64());
        Ok(())
    })
    .clone()
}
