//! vm-engines: real container engines driving speaker-runtime, run as root
//! inside the Debian 13 guest (`qemu/run --kernel debian -- vm-engines
//! [NAME...]`), whose image registers speaker-runtime with them
//! (scripts/build-guest-rootfs-debian: /etc/docker/daemon.json, ...).
//!
//! No registry is reachable: the image is built here with `docker import`
//! from a tarball of busybox-static, speaker-probe and a start script
//! (busybox httpd on port 8080; on SIGTERM it records what `getpriority`
//! gets, then exits).  Its profile allows every x86_64 syscall at boot,
//! every one but `getpriority` when running, and `getpriority` again in the
//! shutdown phase: enough to see each phase from inside, whatever glibc the
//! image has.  Same output protocol as vm-scenarios.
use speaker_tests::guest::{run_scenarios, Scenario};

use crate::containerd::{
    containerd_cri_config_has_speaker_runtime, containerd_delete_leaves_nothing, containerd_exec_gets_running_filter,
    containerd_kill_goes_through_shutdown, containerd_run_switches_to_running,
};
use crate::docker::{
    docker_exec_gets_running_filter, docker_rm_leaves_nothing, docker_run_switches_to_running, docker_stop_goes_through_shutdown,
    missing_module_fails_the_container,
};
use crate::docker_arches::docker_applies_the_amd64_half_of_a_two_arch_export;
use crate::nginx::{
    containerd_nginx_serves_after_automatic_switch, docker_nginx_serves_after_automatic_switch, podman_nginx_serves_after_automatic_switch,
};
use crate::podman::{
    podman_exec_gets_running_filter, podman_rm_leaves_nothing, podman_run_switches_to_running, podman_stop_goes_through_shutdown,
};
use crate::redis::{
    containerd_redis_saves_dump_in_shutdown_phase, docker_redis_saves_dump_in_shutdown_phase, podman_redis_saves_dump_in_shutdown_phase,
};

mod checks;
mod containerd;
mod docker;
mod docker_arches;
mod nginx;
mod podman;
mod redis;
mod setup;

fn main() {
    let scenarios: &[Scenario] = &[
        ("missing_module_fails_the_container", missing_module_fails_the_container),
        ("docker_run_switches_to_running", docker_run_switches_to_running),
        ("docker_exec_gets_running_filter", docker_exec_gets_running_filter),
        ("docker_stop_goes_through_shutdown", docker_stop_goes_through_shutdown),
        ("docker_rm_leaves_nothing", docker_rm_leaves_nothing),
        ("docker_applies_the_amd64_half_of_a_two_arch_export", docker_applies_the_amd64_half_of_a_two_arch_export),
        ("podman_run_switches_to_running", podman_run_switches_to_running),
        ("podman_exec_gets_running_filter", podman_exec_gets_running_filter),
        ("podman_stop_goes_through_shutdown", podman_stop_goes_through_shutdown),
        ("podman_rm_leaves_nothing", podman_rm_leaves_nothing),
        ("containerd_cri_config_has_speaker_runtime", containerd_cri_config_has_speaker_runtime),
        ("containerd_run_switches_to_running", containerd_run_switches_to_running),
        ("containerd_exec_gets_running_filter", containerd_exec_gets_running_filter),
        ("containerd_kill_goes_through_shutdown", containerd_kill_goes_through_shutdown),
        ("containerd_delete_leaves_nothing", containerd_delete_leaves_nothing),
        ("docker_redis_saves_dump_in_shutdown_phase", docker_redis_saves_dump_in_shutdown_phase),
        ("podman_redis_saves_dump_in_shutdown_phase", podman_redis_saves_dump_in_shutdown_phase),
        ("containerd_redis_saves_dump_in_shutdown_phase", containerd_redis_saves_dump_in_shutdown_phase),
        ("docker_nginx_serves_after_automatic_switch", docker_nginx_serves_after_automatic_switch),
        ("podman_nginx_serves_after_automatic_switch", podman_nginx_serves_after_automatic_switch),
        ("containerd_nginx_serves_after_automatic_switch", containerd_nginx_serves_after_automatic_switch),
    ];
    run_scenarios(scenarios)
}
