//! The data stores (PostgreSQL, MariaDB) keep their data across a restart
//! under their profiles (the Debian 12 guest only).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{bundle, crun_status, remove_all_containers, rt, rt_ok, rt_to_file, service_var, share, wait_phase};
use crate::workloads::empty_log;

/// How a data store writes, reads back and checks its data and log.
pub struct Store {
    pub service: &'static str,
    /// Shell command that (re)creates a table of 500 rows.
    pub write: &'static str,
    /// Shell command printing the rows' count and checksum.
    pub read: &'static str,
    /// What its log says after a clean shutdown.
    pub clean_stop: &'static str,
    /// What its log says when it starts from an unclean stop (recovery).
    pub recovery: &'static [&'static str],
}

pub const STORES: [Store; 2] = [
    Store {
        service: "postgres",
        write: "/usr/lib/postgresql/15/bin/psql -X -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -c 'DROP TABLE IF EXISTS speaker_restart' \
                -c 'CREATE TABLE speaker_restart (id int PRIMARY KEY, v text NOT NULL)' \
                -c 'INSERT INTO speaker_restart SELECT i, md5(i::text) FROM generate_series(1, 500) i'",
        read: "/usr/lib/postgresql/15/bin/psql -X -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -tA \
               -c \"SELECT count(*) || ' ' || md5(string_agg(v, ',' ORDER BY id)) FROM speaker_restart\"",
        clean_stop: "database system is shut down",
        recovery: &["was interrupted", "not properly shut down", "automatic recovery"],
    },
    Store {
        service: "mariadb",
        write: "mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' && mysql speaker -e 'DROP TABLE IF EXISTS kept; \
                CREATE TABLE kept (id int PRIMARY KEY, v varchar(64) NOT NULL); \
                INSERT INTO kept SELECT seq, md5(seq) FROM seq_1_to_500'",
        read: "mysql -NB -e \"SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(v ORDER BY id))) FROM speaker.kept\"",
        clean_stop: "Shutdown complete",
        recovery: &["crash recovery", "Starting recovery"],
    },
];

/// `speaker-runtime run` in the foreground (it exits with the container's
/// status) of `service` as `id`, until its automatic switch.
pub fn run_store(service: &str, id: &str) -> Result<std::process::Child, String> {
    remove_all_containers();
    let cmd = service_var(&format!("{service}_cmd"));
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let profile = share().join(format!("profiles/{service}.json"));
    ensure!(profile.exists(), "no profile {} for {service} (examples/profiles/{service}.json, made by scripts/demo)", profile.display());
    let b = bundle(service, &["--profile", profile.to_str().unwrap()], &words)?;
    let mut child = rt_to_file(&["run", "--bundle", b.to_str().unwrap(), id], &format!("/srv/{id}.out"))?;
    if let Err(e) = wait_phase(id, "running", 180) {
        let _ = rt(&["delete", "--force", id]);
        let _ = child.wait();
        return Err(format!("{e}; output: {}", fs::read_to_string(format!("/srv/{id}.out")).unwrap_or_default()));
    }
    Ok(child)
}

/// Stops `id` with `speaker-runtime kill TERM` (its shutdown phase) and
/// checks a clean stop: exit status 0, the log says so, no denial.
pub fn stop_store(store: &Store, id: &str, mut child: std::process::Child, log: &str) -> Outcome {
    let d = run("speaker-ctl", &["denials", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&d.stdout).unwrap_or_default();
    ensure!(v.as_array().is_none_or(|a| a.is_empty()), "{}: denials in {id}: {}", store.service, d.stdout);
    rt_ok(&["kill", id, "TERM"])?;
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
    ensure!(st["current"] == "shutdown", "{}: phase of {id} after kill TERM: {}", store.service, st["current"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = rt(&["delete", "--force", id]);
            let _ = child.wait();
            return Err(format!("{}: {id} did not stop within 120 s of SIGTERM; log: {}", store.service, tail(log)));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = fs::read_to_string(log).unwrap_or_default();
    ensure!(status.code() == Some(0), "{}: {id} exited {status} after SIGTERM; log: {}", store.service, tail(log));
    ensure!(text.contains(store.clean_stop), "{}: {log} does not say '{}' after SIGTERM: {}", store.service, store.clean_stop, tail(log));
    ensure!(crun_status(id).is_none() && !Path::new(&format!("/run/speaker/{id}")).exists(), "{}: {id} left behind", store.service);
    Ok(())
}

/// The last lines of a log, for messages.
pub fn tail(log: &str) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// PostgreSQL and MariaDB through speaker-runtime (committed profiles):
/// rows written after the switch, a clean stop in the shutdown phase
/// (exit 0, the log says so), and after a second start (no recovery) the
/// same rows read back.
pub fn postgres_and_mariadb_keep_their_data_across_restart() -> Outcome {
    for store in &STORES {
        let log = service_var(&format!("{}_log", store.service));
        let started = Instant::now();
        empty_log(&log);
        let id = format!("{}-r1", store.service);
        let child = run_store(store.service, &id)?;
        let o = run("sh", &["-c", store.write]);
        ensure!(o.code == 0, "{}: writing the rows failed ({}): {}{}", store.service, o.code, o.stdout, o.stderr);
        let o = run("sh", &["-c", store.read]);
        let written = o.stdout.trim().to_string();
        ensure!(o.code == 0 && written.starts_with("500 "), "{}: reading the rows back: {written} {}", store.service, o.stderr);
        stop_store(store, &id, child, &log)?;

        empty_log(&log);
        let id = format!("{}-r2", store.service);
        let child = run_store(store.service, &id)?;
        let o = run("sh", &["-c", store.read]);
        let read = o.stdout.trim().to_string();
        let text = fs::read_to_string(&log).unwrap_or_default();
        let recovered: Vec<&&str> = store.recovery.iter().filter(|r| text.contains(**r)).collect();
        let res = if o.code != 0 || read != written {
            // What the engine denied and what the server logged tell a
            // profile's gap from a server that was not ready.
            let d = run("speaker-ctl", &["denials", &id]);
            Err(format!(
                "{}: after the restart the rows read '{read}' ({}), before '{written}'; denials: {}; log: {}",
                store.service,
                o.stderr.trim(),
                d.stdout.trim(),
                tail(&log)
            ))
        } else if !recovered.is_empty() {
            Err(format!("{}: the restart ran a recovery ({recovered:?}): the stop was not clean: {}", store.service, tail(&log)))
        } else {
            Ok(())
        };
        let stop = stop_store(store, &id, child, &log);
        res?;
        stop?;
        eprintln!("{}: {written} (count, md5) intact across the restart; {:.0} s", store.service, started.elapsed().as_secs_f64());
    }
    Ok(())
}
