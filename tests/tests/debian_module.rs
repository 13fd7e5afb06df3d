//! speaker.ko for Debian's stock kernel: `scripts/build-module --kernel
//! debian` builds it in a trixie build root with the toolchain Debian built
//! its kernel with (cached; a cold run takes several minutes) and refuses a
//! module whose vermagic differs from Debian's own modules' or that needs a
//! symbol Debian's kernel does not export.  This test runs the build and
//! checks the result again from the host.
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// linux-config/debian.env's value of `name` (single-quoted or bare).
fn debian_env(name: &str) -> String {
    let text = std::fs::read_to_string(root().join("linux-config/debian.env")).unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("{name} missing"));
    line[name.len() + 1..].trim_matches('\'').to_string()
}

#[test]
fn debian_module_has_debians_vermagic_and_only_exported_symbols() {
    let out =
        Command::new(root().join("scripts/build-module")).args(["--kernel", "debian"]).output().expect("cannot run scripts/build-module");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/build-module --kernel debian failed:\n{err}");
    let vermagic = debian_env("DEBIAN_VERMAGIC");
    assert!(err.contains(&format!("vermagic: '{vermagic}'")), "{err}");
    assert!(err.contains("undefined symbols are in Debian's Module.symvers"), "{err}");

    // From the host, independently of the build root's tools.
    let ko = root().join("target/debian/speaker.ko");
    let info = Command::new("modinfo").args(["-F", "vermagic"]).arg(&ko).output().expect("cannot run modinfo");
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim_end_matches('\n'), vermagic);
    let info = Command::new("modinfo").args(["-F", "name"]).arg(&ko).output().expect("cannot run modinfo");
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "speaker");
}

#[test]
fn debian_kernel_boots_the_debian_guest_and_loads_speaker() {
    // qemu/run --kernel debian: Debian's own kernel and the trixie guest
    // (scripts/build-guest-rootfs-debian), speaker.ko loaded before CMD.
    let out = Command::new(root().join("qemu/run"))
        .args(["--kernel", "debian", "--timeout", "600", "--"])
        .args(["sh", "-c", "uname -r && grep -c '^speaker ' /proc/modules && speaker-ctl version && crun --version | head -n1 && exit 3"])
        .output()
        .expect("cannot run qemu/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(&debian_env("DEBIAN_KERNEL_RELEASE")), "{stdout}");
    assert!(stdout.contains("speaker-ctl 0.1.0 (ABI 1)") && stdout.contains("speaker.ko 0.1.0 (ABI 1"), "{stdout}");
    assert!(stdout.contains("crun version"), "{stdout}");
}
