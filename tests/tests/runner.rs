//! The host-side tools answer bad input with a clear message and a
//! distinct status: qemu/run's usage errors and guest timeout, and
//! scripts/setup on a machine that is not Debian 12 x86_64.
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(root().join(cmd)).args(args).envs(env.iter().copied()).output().expect("cannot run");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn qemu_run_rejects_unknown_option() {
    let (code, err) = run("qemu/run", &["--bogus", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown option '--bogus'"), "{err}");
}

#[test]
fn qemu_run_rejects_unknown_rootfs() {
    let (code, err) = run("qemu/run", &["--rootfs", "huge", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--rootfs wants small or full, got 'huge'"), "{err}");
}

#[test]
fn qemu_run_rejects_unknown_arch_and_arm64_debian_guests() {
    let (code, err) = run("qemu/run", &["--arch", "riscv64", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--arch wants x86_64 or arm64, got 'riscv64'"), "{err}");
    for args in [&["--arch", "arm64", "--rootfs", "full", "--", "true"][..], &["--arch", "arm64", "--kernel", "debian", "--", "true"]] {
        let (code, err) = run("qemu/run", args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("--arch arm64 boots speaker's kernel with the small rootfs only"), "{args:?}: {err}");
    }
}

#[test]
fn qemu_run_requires_a_command() {
    let (code, err) = run("qemu/run", &["--no-module"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing CMD"), "{err}");
    let (code, err) = run("qemu/run", &["--timeout", "soon", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--timeout wants whole seconds"), "{err}");
}

/// A guest that outlives `--timeout`: exit 124, and before qemu/run stops
/// it, the guest says what it was doing (speaker-watch's
/// `SPEAKER-VM-STUCK:` lines: here the shell that spins).
#[test]
fn qemu_run_reports_guest_timeout() {
    let out = Command::new(root().join("qemu/run"))
        .args(["--timeout", "90", "--", "sh", "-c", "while :; do :; done"])
        .output()
        .expect("cannot run qemu/run");
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("did not finish within 90s"), "{err}");
    let stuck: Vec<&str> = stdout.lines().filter(|l| l.starts_with("SPEAKER-VM-STUCK: ")).collect();
    assert!(stuck.first().is_some_and(|l| l.contains("the command still runs at 60 s")), "{stuck:?}\n{stdout}");
    assert!(stuck.iter().any(|l| l.starts_with("SPEAKER-VM-STUCK: task ") && l.contains(" (sh) R in ")), "{stuck:?}");
    assert!(stuck.last().is_some_and(|l| l.contains("load ")), "{stuck:?}");
}

/// A guest whose kernel has not reached /init by its deadline is sent an
/// NMI (the kernel's answer says where it was), stopped with its console,
/// booted once more (a kernel that hung in its own boot, before anything
/// of speaker's ran), and the second such boot fails the run: exit 125,
/// both boots in the boot log, the first marked `hung`.  (A 3 s deadline:
/// no kernel here decompresses that fast.  Given 22 s, the debug kernel's
/// answer was a panic with the stack of the task the NMI found running.)
#[test]
fn qemu_run_boots_again_once_when_the_kernel_misses_the_boot_deadline() {
    let log = std::env::temp_dir().join(format!("speaker-boots-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let (code, err) =
        run("qemu/run", &["--no-module", "--", "true"], &[("SPEAKER_VM_INIT_DEADLINE", "3"), ("SPEAKER_BOOT_LOG", log.to_str().unwrap())]);
    let boots = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(code, 125, "{err}");
    for attempt in [1, 2] {
        let said = format!("the guest kernel did not reach /init within 3s (boot attempt {attempt};");
        assert!(err.contains(&said), "no '{said}' in: {err}");
    }
    assert_eq!(err.matches("SPEAKER-VM-BOOT-RETRY").count(), 1, "{err}");
    assert_eq!(err.matches("sent the guest an NMI").count(), 2, "{err}");
    // (the firmware's, or the kernel's if it booted on in the 8 s given
    // to its answer)
    let console = err.lines().any(|l| l.contains("SeaBIOS") || l.starts_with("[ "));
    assert!(console, "the console's lines are not shown: {err}");
    let lines: Vec<&str> = boots.lines().collect();
    assert_eq!(lines.len(), 2, "{boots}");
    assert!(lines[0].starts_with("debug small ") && lines[0].ends_with(" hung"), "{boots}");
    assert!(!lines[1].ends_with(" hung"), "{boots}");
}

/// One boot for the three tests below: speaker.ko loaded, a shared directory,
/// and a command whose status is not 0 (`speaker-ctl version`, how many
/// CPUs have 5-level paging, then the share's script, which exits 7).
fn status_and_share_boot() -> &'static (Option<i32>, String) {
    static RUN: std::sync::OnceLock<(Option<i32>, String)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("speaker-share-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hello.sh"), "echo hello from the share; exit 7\n").unwrap();
        let out = Command::new(root().join("qemu/run"))
            .args([
                "--share",
                dir.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "speaker-ctl version && echo \"la57 cpus: $(grep -c la57 /proc/cpuinfo)\" && sh /mnt/share/hello.sh",
            ])
            .output()
            .expect("cannot run qemu/run");
        let _ = std::fs::remove_dir_all(&dir);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

#[test]
fn qemu_run_returns_the_command_status() {
    let (code, stdout) = status_and_share_boot();
    assert_eq!(*code, Some(7), "{stdout}");
    assert!(stdout.contains("speaker-ctl 0.1.0 (ABI 1)") && stdout.contains("speaker.ko 0.1.0 (ABI 1"), "{stdout}");
}

#[test]
fn qemu_run_shares_a_directory_read_only_copy() {
    let (code, stdout) = status_and_share_boot();
    assert_eq!(*code, Some(7), "{stdout}");
    assert!(stdout.contains("hello from the share"), "{stdout}");
}

/// speaker's x86_64 debug kernel runs with 4-level paging (`no5lvl`):
/// under 5-level paging inline KASAN reported a false wild-memory-access
/// when an interrupt came 13 ms into the boot (qemu/run's comment).
#[test]
fn debug_kernel_boots_with_4_level_paging() {
    let (_, stdout) = status_and_share_boot();
    assert!(stdout.contains("la57 cpus: 0"), "5-level paging is on: {stdout}");
}

#[test]
fn setup_refuses_other_systems() {
    let fake = std::env::temp_dir().join(format!("speaker-os-release-{}", std::process::id()));
    std::fs::write(&fake, "ID=ubuntu\nVERSION_ID=\"24.04\"\nPRETTY_NAME=\"Ubuntu 24.04\"\n").unwrap();
    let (code, err) = run("scripts/setup", &[], &[("SPEAKER_OS_RELEASE", fake.to_str().unwrap())]);
    let _ = std::fs::remove_file(&fake);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("this machine is Ubuntu 24.04; speaker's setup supports only Debian 12 (bookworm) x86_64"), "{err}");
}

/// Runs scripts/env.sh's speaker_debian_mirror with a fake /etc/apt.
fn debian_mirror(files: &[(&str, &str)], env: &[(&str, &str)]) -> (i32, String, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let etc = std::env::temp_dir().join(format!("speaker-apt-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&etc);
    std::fs::create_dir_all(etc.join("sources.list.d")).unwrap();
    for (name, text) in files {
        std::fs::write(etc.join(name), text).unwrap();
    }
    let os = etc.join("os-release");
    std::fs::write(&os, "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n").unwrap();
    let out = Command::new("bash")
        .args(["-c", ". scripts/env.sh && speaker_debian_mirror"])
        .current_dir(root())
        .env_remove("SPEAKER_DEBIAN_MIRROR")
        .env("SPEAKER_APT_ETC", &etc)
        .env("SPEAKER_OS_RELEASE", &os)
        .envs(env.iter().copied())
        .output()
        .expect("cannot run bash");
    let _ = std::fs::remove_dir_all(&etc);
    let s = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

#[test]
fn debian_mirror_comes_from_the_hosts_apt_sources() {
    // deb822: the enabled deb entry whose Suites list the host's suite
    // (not bookworm-backports, not a disabled entry), first URI.
    let deb822 = "Types: deb\nURIs: http://bpo.example/debian\nSuites: bookworm-backports\nComponents: main\n\n\
                  Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n\n\
                  # a comment\nTypes: deb deb-src\nURIs: http://mirror.example/debian/\n http://second.example/debian\n\
                  Suites: bookworm\n  bookworm-updates\nComponents: main\n";
    let (code, out, err) = debian_mirror(&[("sources.list.d/debian.sources", deb822)], &[]);
    assert_eq!((code, out.as_str()), (0, "http://mirror.example/debian"), "{err}");
    // One-line format, with options.
    let list = "# deb http://old.example/debian bookworm main\n\
                deb http://security.example/debian-security bookworm-security main\n\
                deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian bookworm main contrib\n";
    let (code, out, err) = debian_mirror(&[("sources.list", list)], &[]);
    assert_eq!((code, out.as_str()), (0, "http://ftp.example/debian"), "{err}");
    // The override wins.
    let (code, out, err) = debian_mirror(&[("sources.list", list)], &[("SPEAKER_DEBIAN_MIRROR", "http://override.example/debian")]);
    assert_eq!((code, out.as_str()), (0, "http://override.example/debian"), "{err}");
}

#[test]
fn debian_mirror_missing_is_a_clear_error() {
    let list = "deb http://security.example/debian-security bookworm-security main\n";
    let (code, out, err) = debian_mirror(&[("sources.list", list)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("no Debian mirror for bookworm in") && err.contains("set SPEAKER_DEBIAN_MIRROR"), "{err}");
}

#[test]
fn qemu_run_rejects_unknown_guest_and_trixie_on_speakers_kernel() {
    let (code, err) = run("qemu/run", &["--guest", "sid", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--guest wants bookworm or trixie, got 'sid'"), "{err}");
    let (code, err) = run("qemu/run", &["--guest", "trixie", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--guest trixie needs --kernel debian"), "{err}");
}

#[test]
fn qemu_run_boots_debian12_only_with_the_bookworm_guest() {
    let (code, err) = run("qemu/run", &["--kernel", "debian12", "--guest", "trixie", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--kernel debian12 boots the bookworm guest only"), "{err}");
    let (code, err) = run("qemu/run", &["--kernel", "debian13", "--", "true"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--kernel wants speaker, debian or debian12, got 'debian13'"), "{err}");
}

/// scripts/demo (Debian's kernel) builds the guest programs, seccomp_bpf
/// included, on a machine where speaker's kernel was never built:
/// scripts/build-selftests needs the kernel's source only.  A cache with
/// the source, the tools (the kernel key names bindgen) and the selftests' cache
/// of this machine, and no kernel.
#[test]
fn build_selftests_needs_the_kernel_source_not_its_build() {
    // The cache scripts/env.sh names (its one definition of the default).
    let env = Command::new("bash").arg("-c").arg(". scripts/env.sh && printf %s \"$SPEAKER_CACHE\"").current_dir(root()).output();
    let real = PathBuf::from(String::from_utf8(env.expect("cannot run bash").stdout).expect("cache path"));
    let cache = std::env::temp_dir().join(format!("speaker-cache-nokernel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(&cache).unwrap();
    for d in ["src", "selftests", "tools"] {
        std::os::unix::fs::symlink(real.join(d), cache.join(d)).unwrap();
    }
    let out = Command::new(root().join("scripts/build-selftests")).env("SPEAKER_CACHE", &cache).output().expect("cannot run");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    let kernel_built = cache.join("kernel").exists();
    std::fs::remove_dir_all(&cache).unwrap();
    assert!(out.status.success(), "build-selftests failed without a built kernel: {stderr}");
    assert!(stdout.trim_end().ends_with("/seccomp_bpf"), "stdout: {stdout}\nstderr: {stderr}");
    assert!(!kernel_built, "build-selftests built a kernel");
}
