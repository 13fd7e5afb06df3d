//! oci-bundle: writes an OCI bundle's config.json for the VM scenarios and
//! the demo, shaped like the ones Docker generates (Docker's default
//! capabilities and open-files limit, masked and read-only paths, no new
//! privileges off).
//!
//! ```text
//! oci-bundle DIR [--rootfs PATH] [--profile FILE] [--ready SPEC] [--annotation KEY=VALUE]... [--netns]
//!                [--hostname NAME] [--seccomp OCI.json] -- CMD [ARGS...]
//! ```
//!
//! `--rootfs` defaults to `DIR/rootfs`; `--profile` and `--ready` become
//! the annotations `io.speaker.profile` and `io.speaker.ready`; without
//! `--netns` the container shares the host's network (like `docker run
//! --network host`); `--seccomp` puts an OCI seccomp profile in
//! `linux.seccomp` (what Docker does with its default profile).
use serde_json::{json, Value};
use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: oci-bundle DIR [--rootfs PATH] [--profile FILE] [--ready SPEC] [--annotation KEY=VALUE]... [--netns] [--hostname NAME] [--seccomp OCI.json] -- CMD [ARGS...]");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else { usage() };
    let (mut rootfs, mut profile, mut ready, mut netns, mut hostname, mut seccomp) = (None, None, None, false, None, None);
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut cmd = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rootfs" => rootfs = args.next(),
            "--profile" => profile = args.next(),
            "--ready" => ready = args.next(),
            "--annotation" => match args.next().as_deref().and_then(|a| a.split_once('=')) {
                Some((k, v)) => extra.push((k.to_string(), v.to_string())),
                None => usage(),
            },
            "--netns" => netns = true,
            "--hostname" => hostname = args.next(),
            "--seccomp" => seccomp = args.next(),
            "--" => {
                cmd = args.by_ref().collect();
                break;
            }
            _ => usage(),
        }
    }
    if cmd.is_empty() {
        usage();
    }
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    if netns {
        namespaces.push(json!({"type": "network"}));
    }
    let mut annotations = serde_json::Map::new();
    if let Some(p) = profile {
        annotations.insert("io.speaker.profile".into(), Value::String(p));
    }
    for (k, v) in extra {
        annotations.insert(k, Value::String(v));
    }
    if let Some(r) = ready {
        annotations.insert("io.speaker.ready".into(), Value::String(r));
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    });
    if let Some(s) = seccomp {
        let text = std::fs::read_to_string(&s).unwrap_or_else(|e| {
            eprintln!("oci-bundle: cannot read {s}: {e}");
            std::process::exit(1)
        });
        linux["seccomp"] = serde_json::from_str(&text).unwrap_or_else(|e| {
            eprintln!("oci-bundle: {s} is not JSON: {e}");
            std::process::exit(1)
        });
    }
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": cmd,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/speaker/bin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
            "noNewPrivileges": false
        },
        "root": {"path": rootfs.unwrap_or_else(|| "rootfs".into()), "readonly": false},
        "hostname": hostname.unwrap_or_else(|| "container".into()),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "annotations": annotations,
        "linux": linux,
    });
    std::fs::create_dir_all(&dir).expect("create the bundle directory");
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).expect("write config.json");
}
