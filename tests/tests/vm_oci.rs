//! VM scenarios of speaker-runtime with real OCI containers (crun, nginx,
//! redis, PostgreSQL, MariaDB): boots the full Debian guest once (`qemu/run --rootfs full --
//! vm-oci`), then each test asserts that its scenario ran and passed.
//! Every scenario runs, always (TCG, no KVM needed): `qemu/run` builds whatever is missing (kernel,
//! module, guest binaries, the guest's root filesystem) before booting.
//! The list is shared with debian_oci.rs (`vm_oci_tests!`, tests/src/host.rs).

/// The share: examples/services.sh and the committed profiles.
fn qemu_args() -> Vec<String> {
    let root = speaker_tests::host::root();
    let share = root.join("target/vm-oci-share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(share.join("profiles")).unwrap();
    std::fs::copy(root.join("examples/services.sh"), share.join("services.sh")).unwrap();
    for s in ["nginx", "redis", "postgres", "mariadb"] {
        std::fs::copy(root.join(format!("examples/profiles/{s}.json")), share.join(format!("profiles/{s}.json"))).unwrap();
    }
    ["--rootfs", "full", "--share", share.to_str().unwrap()].iter().map(|s| s.to_string()).collect()
}

speaker_tests::vm_oci_tests!(
    runner: "vm-oci",
    timeout: 2400,
    qemu_args: qemu_args(),
    complete: every_vm_oci_scenario_has_a_test_and_the_kernel_log_is_clean,
    // Only the Debian 12 guest has PostgreSQL and MariaDB.
    also: [postgres_and_mariadb_keep_their_data_across_restart],
);
