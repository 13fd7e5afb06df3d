//! The VM scenarios of speaker-runtime with real OCI containers (as in
//! vm_oci.rs, the same list: `vm_oci_tests!`) on Debian's own kernel: boots
//! the Debian 13 guest once (`qemu/run --kernel debian -- vm-oci`) with the
//! speaker.ko built for it, then each test asserts that its scenario ran
//! and passed.
//!
//! The profiles are the Debian 13 guest's own, examples/profiles/debian13/
//! (traced there by `scripts/demo --guest trixie --all --update-profiles`):
//! trixie's glibc 2.41, nginx and redis make syscalls bookworm's do not
//! (`fstat` above all), so the bookworm guest's examples/profiles/ would
//! deny them in the running phase.

/// The share: examples/services.sh and every Debian 13 profile.
fn qemu_args() -> Vec<String> {
    let root = speaker_tests::host::root();
    let share = root.join("target/debian-oci-share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(share.join("profiles")).unwrap();
    std::fs::copy(root.join("examples/services.sh"), share.join("services.sh")).unwrap();
    let dir = root.join("examples/profiles/debian13");
    let mut copied = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::copy(&p, share.join("profiles").join(p.file_name().unwrap())).unwrap();
            copied.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    for s in ["nginx", "redis"] {
        assert!(copied.iter().any(|c| c == s), "no Debian 13 profile for {s} in {}", dir.display());
    }
    ["--kernel", "debian", "--mem", "1024", "--share", share.to_str().unwrap()].iter().map(|s| s.to_string()).collect()
}

speaker_tests::vm_oci_tests!(
    runner: "vm-oci",
    timeout: 900,
    qemu_args: qemu_args(),
    complete: every_vm_oci_scenario_has_a_test_on_debians_kernel_and_its_log_is_clean,
    // (the data stores are the Debian 12 guest's only: vm_oci.rs)
    also: [],
);
