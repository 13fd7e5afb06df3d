//! Guest-side pieces shared by the container engines' scenarios
//! (`vm-engines`: Docker, podman, containerd) and the CRI's (`vm-cri`, in
//! the speaker-cri-tests crate): the all-but-one probe profile, images'
//! files copied with their libraries, and the check that redis saved on
//! shutdown.
use std::fs;
use std::path::Path;

use speaker::profile::arch::Arch;

use crate::guest::{run, Out, Outcome};

/// The syscall the probe profiles' running phase denies (boot and shutdown
/// allow it).
pub const BOOT_ONLY: &str = "getpriority";

/// `o`'s trimmed stdout if it succeeded; else an error naming `what`.
pub fn ok(what: &str, o: &Out) -> Result<String, String> {
    ensure!(o.code == 0, "{what} failed ({}): {}{}", o.code, o.stdout.trim(), o.stderr.trim());
    Ok(o.stdout.trim().to_string())
}

/// A speaker profile named `name`, ready when `ready` holds: every syscall
/// libseccomp knows on x86_64 at boot, all but [`BOOT_ONLY`] when running,
/// [`BOOT_ONLY`] again at shutdown (`strict`: getpriority is low-risk, and
/// only strict keeps it out of running).
pub fn all_but_one_profile(name: &str, ready: &str) -> Result<String, String> {
    let all: Vec<String> = (0..1024u64).filter_map(|nr| Arch::X86_64.syscall_name(nr)).collect();
    ensure!(all.len() > 300 && all.iter().any(|n| n == BOOT_ONLY), "libseccomp knows only {} x86_64 syscalls", all.len());
    let entries = |names: &mut dyn Iterator<Item = &String>| names.map(|n| serde_json::json!({ "name": n })).collect::<Vec<_>>();
    let p = serde_json::json!({
        "schema": "speaker.profile/v1",
        "name": name,
        "ready": ready,
        "margin": false,
        "compile": "strict",
        "phases": {
            "boot": { "syscalls": entries(&mut all.iter()) },
            "running": { "syscalls": entries(&mut all.iter().filter(|n| *n != BOOT_ONLY)) },
            "shutdown": { "syscalls": [{ "name": BOOT_ONLY }] },
        }
    });
    serde_json::to_string_pretty(&p).map_err(|e| e.to_string())
}

/// Copies `bin` and the libraries ldd names (none for a static binary)
/// into `root`, at the same paths.
pub fn copy_with_libs(bin: &str, root: &str) -> Outcome {
    let ldd = run("ldd", &[bin]);
    // (A static binary: "not a dynamic executable", exit 1.)
    let mut files: Vec<&str> = ldd.stdout.split_whitespace().filter(|w| w.starts_with('/')).collect();
    files.push(bin);
    for f in files {
        let dst = format!("{root}{f}");
        let dir = Path::new(&dst).parent().ok_or(format!("{dst} has no parent"))?;
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        ok("cp", &run("cp", &["-L", f, &dst]))?;
    }
    Ok(())
}

/// After a stop: redis (its data in `data`) saved its dump on shutdown,
/// with no error in its log.
pub fn redis_saved(data: &str) -> Outcome {
    let log = fs::read_to_string(format!("{data}/redis.log")).unwrap_or_default();
    ensure!(log.contains("DB saved on disk"), "redis did not save on shutdown: {log}");
    // (Docker, containerd and the CRI give the container a hard
    // RLIMIT_NOFILE below the 10032 redis asks for: the kernel's EPERM,
    // logged, is not speaker's.)
    let lower = log.to_lowercase();
    let bad: Vec<&str> =
        lower.lines().filter(|l| (l.contains("error") || l.contains("not permitted")) && !l.contains("maximum open files")).collect();
    ensure!(bad.is_empty(), "errors in redis' log: {}", bad.join(" | "));
    let dump = fs::metadata(format!("{data}/dump.rdb")).map(|m| m.len()).unwrap_or(0);
    ensure!(dump > 0, "no dump.rdb in {data}");
    Ok(())
}
