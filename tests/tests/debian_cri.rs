//! Pods through containerd's CRI on Debian's own kernel: boots the Debian
//! 13 guest once (`qemu/run --kernel debian -- vm-cri`; its containerd
//! config has the `speaker` runtime handler of docs/src/kubernetes.md),
//! where a CRI client of ours (tests/cri: tonic and the k8s-cri crate's
//! CRI v1 bindings) makes the kubelet's calls; each test asserts that its
//! scenario ran inside the VM and passed.  The share has deploy/, whose
//! DaemonSet's node script the last scenario runs.

/// `extra`, then `--share target/debian_cri-share` holding a copy of deploy/.
fn share_deploy(extra: &[&str]) -> Vec<String> {
    let root = speaker_tests::host::root();
    let share = root.join("target/debian_cri-share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(share.join("deploy")).unwrap();
    for f in std::fs::read_dir(root.join("deploy")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, share.join("deploy").join(f.file_name().unwrap())).unwrap();
    }
    extra.iter().map(|s| s.to_string()).chain(["--share".to_string(), share.to_str().unwrap().to_string()]).collect()
}

speaker_tests::vm_tests!(
    runner: "vm-cri",
    timeout: 900,
    qemu_args: share_deploy(&["--kernel", "debian", "--mem", "1536"]),
    complete: every_vm_cri_scenario_has_a_test_and_its_log_is_clean,
    scenarios: [
        cri_pod_switches_to_running_and_serves,
        cri_exec_probe_runs_under_the_running_phase,
        cri_sandbox_is_not_switched,
        cri_stop_goes_through_shutdown,
        cri_pod_without_annotation_runs_unconfined_by_speaker,
        cri_missing_profile_fails_the_pod_with_a_clear_event,
        runtime_features_and_version_name_crun_and_speaker,
        deploy_node_script_loads_the_module_and_installs_the_runtime,
    ]
);
