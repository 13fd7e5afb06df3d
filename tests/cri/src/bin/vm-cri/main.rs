//! vm-cri: pods through containerd's CRI, driven as the kubelet drives
//! them (speaker_cri_tests::client over /run/containerd/containerd.sock),
//! run as root inside the Debian 13 guest (`qemu/run --kernel debian --
//! vm-cri [NAME...]`), whose /etc/containerd/config.toml has the `speaker`
//! runtime handler of docs/src/kubernetes.md
//! (scripts/build-guest-rootfs-debian).  The images are made here from
//! the guest's own files (no registry); deploy/speaker-node.yaml comes in
//! the share (/mnt/share/deploy).  Same output protocol as
//! vm-scenarios; the scenarios run in this order and share the pods.
use speaker_tests::guest::{run_scenarios, Scenario};

mod images;
mod node;
mod other;
mod pods;
mod serve;
mod setup;
mod stop;

fn main() {
    let scenarios: &[Scenario] = &[
        ("cri_pod_switches_to_running_and_serves", serve::cri_pod_switches_to_running_and_serves),
        ("cri_exec_probe_runs_under_the_running_phase", serve::cri_exec_probe_runs_under_the_running_phase),
        ("cri_sandbox_is_not_switched", serve::cri_sandbox_is_not_switched),
        ("cri_stop_goes_through_shutdown", stop::cri_stop_goes_through_shutdown),
        ("cri_pod_without_annotation_runs_unconfined_by_speaker", other::cri_pod_without_annotation_runs_unconfined_by_speaker),
        ("cri_missing_profile_fails_the_pod_with_a_clear_event", other::cri_missing_profile_fails_the_pod_with_a_clear_event),
        ("runtime_features_and_version_name_crun_and_speaker", other::runtime_features_and_version_name_crun_and_speaker),
        (
            "deploy_node_script_loads_the_module_and_installs_the_runtime",
            node::deploy_node_script_loads_the_module_and_installs_the_runtime,
        ),
    ];
    run_scenarios(scenarios)
}
