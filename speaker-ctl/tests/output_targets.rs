//! `-o` goes through one writer: a regular file (or a new path) is
//! replaced atomically, anything else is written where it is: a character
//! device stays a character device, a FIFO stays a FIFO (and its reader
//! gets the output), `-` and `/dev/stdout` are standard output.
#![allow(clippy::disallowed_macros)] // test output goes to the harness
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_speaker-ctl");

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("speaker-output-targets-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ctl(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("run speaker-ctl")
}

fn profile(d: &Path, name: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(
        &p,
        r#"{"schema":"speaker.profile/v1","name":"svc","phases":{"boot":{"syscalls":[{"name":"read"},{"name":"mount"}]},"running":{"syscalls":[{"name":"read"}]}}}"#,
    )
    .unwrap();
    p
}

/// A private character device like /dev/null (mknod needs root; without it,
/// /dev/null itself, whose type is all the test looks at then).
fn char_device(d: &Path) -> PathBuf {
    let p = d.join("null");
    let made =
        nix::sys::stat::mknod(&p, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::from_bits_truncate(0o666), libc::makedev(1, 3));
    if made.is_ok() {
        p
    } else {
        eprintln!("mknod failed ({made:?}): using /dev/null");
        PathBuf::from("/dev/null")
    }
}

fn assert_char_device(p: &Path, rdev: u64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    assert!(m.file_type().is_char_device(), "{} is no longer a character device: {:?}", p.display(), m.file_type());
    assert_eq!(m.rdev(), rdev, "{} is another device now", p.display());
}

/// Every verb with an output option, onto a character device.
#[test]
fn char_device_stays_a_char_device() {
    let d = dir("chardev");
    let (a, b) = (profile(&d, "a.json"), profile(&d, "b.json"));
    let dev = char_device(&d);
    let rdev = std::fs::metadata(&dev).unwrap().rdev();
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");
    for args in [
        vec!["profile", "merge", "-o", s(&dev), s(&a), s(&b)],
        vec!["profile", "export", "--phase", "boot", "-o", s(&dev), s(&a)],
        vec!["profile", "table", "--baseline", base, "--json", s(&dev), "--markdown", s(&dev), s(&a)],
        vec!["trace", "--one-shot", "-o", s(&dev), "--", "true"],
    ] {
        let o = ctl(&args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert_char_device(&dev, rdev);
    }
    // Nothing was left beside it (no temporary file, no probe).
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.iter().all(|n| ["a.json", "b.json", "null"].contains(&n.to_str().unwrap())), "{left:?}");
}

/// A FIFO stays a FIFO, and its reader gets the whole output.
#[test]
fn fifo_stays_a_fifo_and_is_read() {
    let d = dir("fifo");
    let (a, b) = (profile(&d, "a.json"), profile(&d, "b.json"));
    let fifo = d.join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for args in [vec!["profile", "merge", "-o", s(&fifo), s(&a), s(&b)], vec!["trace", "--one-shot", "-o", s(&fifo), "--", "true"]] {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                std::fs::File::open(&fifo).unwrap().read_to_string(&mut text).unwrap();
                text
            })
        };
        let o = ctl(&args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        // Checked before waiting for the reader: a replaced FIFO never
        // gets a writer, and its reader would wait forever.
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "{args:?}: the FIFO was replaced");
        let text = reader.join().unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: the reader got {text:?}: {e}"));
        assert_eq!(v["schema"], "speaker.profile/v1");
    }
}

/// `-o -` and `-o /dev/stdout` are standard output (here a pipe): the
/// profile arrives there and /dev/stdout is left alone.
#[test]
fn dash_and_dev_stdout_are_standard_output() {
    let d = dir("stdout");
    let (a, b) = (profile(&d, "a.json"), profile(&d, "b.json"));
    let before = std::fs::symlink_metadata("/dev/stdout").unwrap();
    for out in ["-", "/dev/stdout"] {
        let o = ctl(&["profile", "merge", "-o", out, s(&a), s(&b)]);
        assert!(o.status.success(), "-o {out}: {}", String::from_utf8_lossy(&o.stderr));
        // Only the profile: the report of what each input added is on stderr.
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("-o {out}: {e}"));
        assert_eq!(v["name"], "svc", "-o {out}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("a.json: boot +2"), "{}", String::from_utf8_lossy(&o.stderr));
        let o = ctl(&["trace", "--one-shot", "-o", out, "--", "true"]);
        assert!(o.status.success(), "trace -o {out}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["name"], "true");
    }
    let after = std::fs::symlink_metadata("/dev/stdout").unwrap();
    assert_eq!((before.file_type().is_symlink(), before.ino()), (after.file_type().is_symlink(), after.ino()), "/dev/stdout was replaced");
}

/// A regular file is replaced atomically and keeps its mode; a symbolic
/// link keeps being a link to the file it named.
#[test]
fn regular_files_are_replaced_and_links_followed() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir("regular");
    let (a, b) = (profile(&d, "a.json"), profile(&d, "b.json"));
    let out = d.join("out.json");
    std::fs::write(&out, "old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = ctl(&["profile", "merge", "-o", s(&out), s(&a), s(&b)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&out).unwrap().contains("speaker.profile/v1"));
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o640);
    let link = d.join("current.json");
    std::os::unix::fs::symlink("out.json", &link).unwrap();
    let o = ctl(&["profile", "export", "--phase", "running", "-o", s(&link), s(&a)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced by a file");
    assert!(std::fs::read_to_string(&out).unwrap().contains("defaultAction"));
    let o = ctl(&["profile", "merge", "-o", s(&d), s(&a)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("it is a directory"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `-o /dev/full` in every verb with an output option: exit 1 and one line
/// that says the file system is full (before, the hint said to check that
/// the directory exists).
#[test]
fn a_full_device_is_an_error_that_says_so() {
    let d = dir("full");
    let (a, b) = (profile(&d, "a.json"), profile(&d, "b.json"));
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");
    for args in [
        vec!["profile", "merge", "-o", "/dev/full", s(&a), s(&b)],
        vec!["profile", "export", "--phase", "boot", "-o", "/dev/full", s(&a)],
        vec!["profile", "table", "--baseline", base, "--json", "/dev/full", s(&a)],
        vec!["trace", "--one-shot", "-o", "/dev/full", "--", "true"],
    ] {
        let o = ctl(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        assert!(
            errors[0].contains("/dev/full") && errors[0].contains("No space left on device (the file system is full"),
            "{args:?}: {err}"
        );
    }
}

/// A dangling link is written through (before: replaced by a regular
/// file, its target never made); a replaced file keeps its owner (before:
/// root's `-o` gave the user's file to root) and mode; a file this process
/// may not write is not replaced behind its back (before: the rename
/// needed only the directory).
#[test]
fn links_owners_and_read_only_files() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let d = dir("owners");
    let a = profile(&d, "a.json");
    let link = d.join("dangling.json");
    std::os::unix::fs::symlink("made.json", &link).unwrap();
    let o = ctl(&["profile", "export", "--phase", "boot", "-o", s(&link), s(&a)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(d.join("made.json")).unwrap().contains("defaultAction"), "its target was not made");

    let root = nix::unistd::geteuid().is_root();
    let owned = d.join("owned.json");
    std::fs::write(&owned, "old").unwrap();
    // As root: a user's file stays the user's.  Otherwise: our own.
    let (uid, gid) = if root { (4321, 4321) } else { (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()) };
    std::os::unix::fs::chown(&owned, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&owned, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = ctl(&["profile", "export", "--phase", "boot", "-o", s(&owned), s(&a)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = std::fs::metadata(&owned).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (uid, gid, 0o640), "owner or mode changed");
    assert!(std::fs::read_to_string(&owned).unwrap().contains("defaultAction"));

    // A read-only file, written by a user who may not write it (as root:
    // nobody, in a directory nobody may write).
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ro = d.join("ro.json");
    std::fs::write(&ro, "old").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["profile", "export", "--phase", "boot", "-o", s(&ro), s(&a)]).stdin(Stdio::null());
    if root {
        cmd.uid(65534).gid(65534);
    }
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot write {}: Permission denied", ro.display())), "{err}");
    assert_eq!(std::fs::read_to_string(&ro).unwrap(), "old");
}

/// `trace -o -`: standard output holds the profile only; what the traced
/// command and the workload print goes to standard error (before, the
/// command's "hello" came first on stdout and the profile was no JSON
/// document any more).
#[test]
fn trace_to_stdout_holds_only_the_profile() {
    for args in [
        &["trace", "--one-shot", "-o", "-", "--", "sh", "-c", "echo hello"][..],
        &[
            "trace",
            "--ready",
            "log:hello",
            "--running-for",
            "100ms",
            "--workload",
            "echo from-workload",
            "-o",
            "-",
            "--",
            "sh",
            "-c",
            "echo hello; exec sleep 30",
        ],
        &[
            "trace",
            "--ready",
            "auto",
            "--running-for",
            "100ms",
            "--auto-window",
            "50ms",
            "-o",
            "-",
            "--",
            "sh",
            "-c",
            "echo hello; exec sleep 30",
        ],
    ] {
        let o = ctl(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON document ({e}): {}", String::from_utf8_lossy(&o.stdout)));
        assert_eq!(v["schema"], "speaker.profile/v1");
        assert!(err.contains("hello"), "{args:?}: the command's output is lost: {err}");
        if args.contains(&"--workload") {
            assert!(err.contains("from-workload"), "{args:?}: the workload's output is lost: {err}");
        }
    }
}

/// `profile table`: `--json` and `--markdown` naming one regular file is a
/// usage error before any output (before: the Markdown overwrote the JSON,
/// exit 0; a device gets both, see char_device_stays_a_char_device); with
/// one of them on standard output, that output is the one document
/// (before: the text table came first on stdout).
#[test]
fn table_outputs_do_not_collide() {
    let d = dir("table");
    let a = profile(&d, "a.json");
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");
    let out = d.join("t.out");
    let dotted = format!("{}/./t.out", d.display());
    for (json, md) in [(s(&out), dotted.as_str()), (s(&out), s(&out))] {
        let o = ctl(&["profile", "table", "--baseline", base, "--json", json, "--markdown", md, s(&a)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--json {json} --markdown {md}: {err}");
        assert!(err.contains("--json and --markdown both name"), "{err}");
        assert!(o.stdout.is_empty(), "output before the refusal");
        assert!(!out.exists(), "written before the refusal");
    }
    let o = ctl(&["profile", "table", "--baseline", base, "--json", "-", "--markdown", s(&out), s(&a)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON alone");
    assert!(v.is_array());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SERVICE"), "the text table goes to stderr");
    assert!(std::fs::read_to_string(&out).unwrap().contains('|'));
}
