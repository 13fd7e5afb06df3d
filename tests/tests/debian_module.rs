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
    let out = Command::new(root().join("scripts/build-module"))
        .args(["--kernel", "debian"])
        .output()
        .expect("cannot run scripts/build-module");
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
