//! Every demo service of services.sh that has a committed profile runs its
//! workload after the switch.

use std::fs;
use std::sync::Mutex;

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{phase_of, service_var, share, start_service, stop_and_delete};

/// The demo services (`services` of services.sh) that have a profile in the
/// share (a guest may carry only some of them, e.g. nginx and redis).
pub fn demo_services() -> Vec<String> {
    service_var("services").split_whitespace().filter(|s| share().join(format!("profiles/{s}.json")).exists()).map(str::to_string).collect()
}

/// Empties a service's log if it exists (the service's user owns it: a
/// new file would be root's).
pub fn empty_log(log: &str) {
    if let Ok(f) = fs::OpenOptions::new().write(true).truncate(true).open(log) {
        drop(f);
    }
}

/// The demo services whose every workload a scenario of this boot already
/// ran, with [`demo_workloads_run`]'s checks, in a container of its own
/// (`nginx_serves_after_automatic_switch`, `redis_serves_after_automatic_switch`):
/// [`every_demo_workload_runs_after_the_switch`] does not run them twice.
static SERVED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Clears what a service left of an earlier container (redis' dump and
/// append-only files) and empties its log, before its container starts.
pub fn fresh_service_files(service: &str) {
    if service == "redis" {
        let _ = fs::remove_dir_all("/srv/redis/appendonlydir");
        let _ = fs::remove_file("/srv/redis/dump.rdb");
    }
    empty_log(&service_var(&format!("{service}_log")));
}

/// Every workload of every demo service with a profile (services.sh,
/// `demo_services`) runs with 0 errors
/// in its container after the automatic switch (committed profiles), the
/// container stays in its running phase, and the service's log holds no
/// permission error.
pub fn every_demo_workload_runs_after_the_switch() -> Outcome {
    let services = demo_services();
    ensure!(!services.is_empty(), "no service of services.sh has a profile in {}/profiles", share().display());
    eprintln!("demo services with a profile: {}", services.join(" "));
    for service in &services {
        let service = service.as_str();
        if SERVED.lock().unwrap().iter().any(|s| s == service) {
            println!("  {service}: every workload ran in {service}_serves_after_automatic_switch (this boot)");
            continue;
        }
        fresh_service_files(service);
        let id = format!("{service}-all");
        start_service(service, &id)?;
        demo_workloads_run(service, &id)?;
        stop_and_delete(&id)?;
    }
    Ok(())
}

/// Runs every workload of `service` (services.sh's `<svc>_workloads`) in
/// its running container `id`: each exits 0 and leaves the container in its
/// running phase; then the service's log holds no permission error and
/// speaker records no denial.
pub fn demo_workloads_run(service: &str, id: &str) -> Outcome {
    let log = service_var(&format!("{service}_log"));
    for w in service_var(&format!("{service}_workloads")).split_whitespace() {
        let cmd = service_var(&format!("{service}_workload_{w}"));
        let o = run("sh", &["-c", &cmd]);
        ensure!(o.code == 0, "{service}: workload '{w}' failed after the switch ({}): {}{}", o.code, o.stdout, o.stderr);
        ensure!(phase_of(id).as_deref() == Some("running"), "{service}: left its running phase during '{w}'");
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    let perm: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("operation not permitted") || l.contains("permission denied") || l.contains("(1: ") || l.contains("(13: ")
        })
        .collect();
    ensure!(perm.is_empty(), "{service}: permission errors in {log}: {perm:?}");
    let d = run("speaker-ctl", &["denials", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&d.stdout).unwrap_or_default();
    ensure!(v.as_array().is_none_or(|a| a.is_empty()), "{service}: denials: {}", d.stdout);
    Ok(())
}

/// Notes that `service`'s every workload ran (see [`SERVED`]).
pub fn served(service: &str) {
    SERVED.lock().unwrap().push(service.to_string());
}
