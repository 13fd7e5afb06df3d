//! vm-oci: speaker-runtime (the OCI runtime wrapper over crun) with real
//! containers, run as root inside the full Debian guest
//! (`qemu/run --rootfs full --share DIR -- vm-oci [NAME...]`).  DIR
//! (/mnt/share, or $VM_OCI_SHARE) holds `services.sh` (examples/services.sh) and `profiles/` (the
//! committed profiles, examples/profiles: the demo services' scenarios
//! cover those of services.sh that have one there).
//!
//! Same output protocol as vm-scenarios.  Containers use the guest's own
//! root filesystem (bind-mounted, so crun pivots into a real directory)
//! and the host network, like `docker run --network host`.
use speaker_tests::guest::{run_scenarios, Scenario};

use crate::denials::{
    complain_mode_logs_and_allows_then_enforce_denies, denial_is_reported_with_container_and_phase,
    learn_adds_logged_syscall_to_the_right_phase,
};
use crate::reload::{
    ctl_run_nginx_reload_keeps_serving, foreground_runs_send_reload_signals_through_the_reload_phase, nginx_reload_keeps_serving,
};
use crate::services::{
    ctl_switch_and_status_work_on_runtime_ids, exec_into_running_container_gets_running_filter,
    foreground_run_forwards_sigterm_and_cleans_up, nginx_serves_after_automatic_switch, oci_container_without_annotation_is_untouched,
    redis_saves_dump_in_shutdown_phase, redis_serves_after_automatic_switch, running_container_denies_boot_only_syscall,
    runtime_passes_through_unknown_commands, runtime_rejects_missing_profile, runtime_rejects_profile_for_other_arch,
    runtime_reports_missing_crun,
};
use crate::stores::postgres_and_mariadb_keep_their_data_across_restart;
use crate::workloads::every_demo_workload_runs_after_the_switch;

mod containers;
mod ctl_notify;
mod denials;
mod exec;
mod fail_closed;
mod heldout;
mod notify;
mod probe;
mod reload;
mod services;
mod stores;
mod workloads;

fn main() {
    // The scenarios' bundles give cmd: readiness conditions as annotations
    // (io.speaker.ready), which speaker-runtime takes only with the
    // operator's consent (a cmd: runs as root on the host).
    std::env::set_var("SPEAKER_ANNOTATION_CMD", "allow");
    let scenarios: &[Scenario] = &[
        ("oci_container_without_annotation_is_untouched", oci_container_without_annotation_is_untouched),
        ("nginx_serves_after_automatic_switch", nginx_serves_after_automatic_switch),
        ("redis_serves_after_automatic_switch", redis_serves_after_automatic_switch),
        ("running_container_denies_boot_only_syscall", running_container_denies_boot_only_syscall),
        ("exec_into_running_container_gets_running_filter", exec_into_running_container_gets_running_filter),
        ("ctl_switch_and_status_work_on_runtime_ids", ctl_switch_and_status_work_on_runtime_ids),
        ("foreground_run_forwards_sigterm_and_cleans_up", foreground_run_forwards_sigterm_and_cleans_up),
        ("redis_saves_dump_in_shutdown_phase", redis_saves_dump_in_shutdown_phase),
        ("runtime_passes_through_unknown_commands", runtime_passes_through_unknown_commands),
        ("runtime_rejects_missing_profile", runtime_rejects_missing_profile),
        ("runtime_rejects_profile_for_other_arch", runtime_rejects_profile_for_other_arch),
        ("runtime_reports_missing_crun", runtime_reports_missing_crun),
        ("denial_is_reported_with_container_and_phase", denial_is_reported_with_container_and_phase),
        ("complain_mode_logs_and_allows_then_enforce_denies", complain_mode_logs_and_allows_then_enforce_denies),
        ("learn_adds_logged_syscall_to_the_right_phase", learn_adds_logged_syscall_to_the_right_phase),
        ("nginx_reload_keeps_serving", nginx_reload_keeps_serving),
        ("ctl_run_nginx_reload_keeps_serving", ctl_run_nginx_reload_keeps_serving),
        ("foreground_runs_send_reload_signals_through_the_reload_phase", foreground_runs_send_reload_signals_through_the_reload_phase),
        ("every_demo_workload_runs_after_the_switch", every_demo_workload_runs_after_the_switch),
        ("postgres_and_mariadb_keep_their_data_across_restart", postgres_and_mariadb_keep_their_data_across_restart),
        ("postgres_vacuum_truncate_survives_the_running_phase", heldout::postgres_vacuum_truncate_survives_the_running_phase),
        ("held_out_workloads_pass_under_balanced", heldout::held_out_workloads_pass_under_balanced),
        ("held_out_workloads_under_strict_are_reported", heldout::held_out_workloads_under_strict_are_reported),
        ("held_out_failure_is_fixed_by_complain_learn_enforce", heldout::held_out_failure_is_fixed_by_complain_learn_enforce),
        (
            "speaker_runtime_refuses_unparsed_flags_on_annotated_bundles",
            fail_closed::speaker_runtime_refuses_unparsed_flags_on_annotated_bundles,
        ),
        ("annotated_run_keeps_the_container_with_keep", fail_closed::annotated_run_keeps_the_container_with_keep),
        ("exec_during_boot_is_tightened_by_the_switch", exec::exec_during_boot_is_tightened_by_the_switch),
        ("exec_process_cannot_switch_its_container", exec::exec_process_cannot_switch_its_container),
        ("status_counts_exec_processes", exec::status_counts_exec_processes),
        ("exec_of_processes_that_exit_at_once_never_fails", exec::exec_of_processes_that_exit_at_once_never_fails),
        (
            "ctl_run_under_the_notify_engine_switches_and_records_denials",
            ctl_notify::ctl_run_under_the_notify_engine_switches_and_records_denials,
        ),
        ("notify_engine_survives_a_supervisor_kill", notify::notify_engine_survives_a_supervisor_kill),
        ("notify_engine_ignores_arguments", notify::notify_engine_ignores_arguments),
        ("auto_engine_picks_notify_without_module", notify::auto_engine_picks_notify_without_module),
        ("auto_engine_picks_kmod_when_loaded", notify::auto_engine_picks_kmod_when_loaded),
        ("one_profile_same_denials_under_both_engines", notify::one_profile_same_denials_under_both_engines),
        ("exec_denials_are_attributed_under_notify", notify::exec_denials_are_attributed_under_notify),
    ];
    run_scenarios(scenarios)
}
