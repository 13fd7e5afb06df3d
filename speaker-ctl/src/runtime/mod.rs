//! `speaker-runtime`: an OCI runtime that wraps crun (speaker-ctl under a
//! second name, or `speaker-ctl runtime ...`).  Bundles annotated with
//! `io.speaker.profile` get speaker's phases; everything else is crun's
//! (docs/src/engines.md is the manual).
//!
//! One file per OCI verb speaker takes part in ([`create`], [`start`],
//! [`kill`], [`delete`], [`run`]), the command line ([`args`]), crun
//! ([`crun`]), the bundle and its filters ([`bundle`], [`filters`]) and the
//! per-container [`monitor`] daemon.
pub mod args;
pub mod bundle;
pub mod console;
pub mod create;
pub mod crun;
pub mod delete;
pub mod exec;
pub mod filters;
pub mod guard;
pub mod kill;
pub mod monitor;
pub mod reprofile;
pub mod run;
pub mod start;

use crate::sys::output::errln;
use anyhow::{Context, Result};
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;

use args::{strip_speaker_crun, RuntimeCli, RuntimeCommand};
use crun::Invocation;

const PROG: &str = "speaker-runtime";

/// Entry point; `args` excludes argv[0].
pub fn main(args: Vec<OsString>) -> i32 {
    let (speaker_crun, forwarded) = strip_speaker_crun(args);
    let parsed = RuntimeCli::try_parse_from(&forwarded);
    let global = parsed.as_ref().map(|c| c.global.clone()).unwrap_or_else(|_| lenient_globals(&forwarded));
    let inv = Invocation { forwarded, speaker_crun, global };
    let result = match parsed {
        // speaker-runtime speaks for itself first: its version and crun's,
        // its own help before crun's.
        Ok(cli) if cli.command.is_none() && cli.global.version => version(&inv),
        Ok(cli) if cli.command.is_none() && cli.global.help => help(&inv),
        Ok(cli) => dispatch(&inv, cli.command),
        // A line clap cannot parse is crun's business (and its error
        // message) unless it could concern speaker: then it fails closed.
        Err(e) => match guard::refusal(&inv, &inv.forwarded) {
            Some(why) => {
                let first = e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                Err(anyhow::anyhow!("cannot parse the command line ({first}); {why}; use only options crun documents, or update speaker"))
            }
            None => inv.exec_crun(),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) if crate::sys::output::is_stdout_closed(e.as_ref()) => 0,
        Err(e) => {
            report(&inv, &error_line(&e));
            1
        }
    }
}

/// speaker-runtime's own section of `--help`, before crun's.
pub const HELP: &str = "\
speaker-runtime: an OCI runtime that wraps crun (speaker-ctl under a second name, or `speaker-ctl runtime ...`).
Containers whose OCI configuration carries the annotation io.speaker.profile get speaker's phases
(boot -> running <-> reload -> shutdown, switched live by speaker.ko); every other container, and
every command speaker takes no part in, is crun's, untouched. crun's own help follows.

Annotations (config.json `annotations`, or `--annotation` of docker, podman, ctr; under Kubernetes
pod annotations passed by containerd's `pod_annotations = [\"io.speaker.*\"]`):
  io.speaker.profile=PATH       the speaker profile (relative to the bundle unless absolute)
  io.speaker.profile.NAME=PATH  the profile of CRI container NAME (ahead of io.speaker.profile)
  io.speaker.ready=SPEC         when boot ends: port:N or auto (default: the profile's `ready`); cmd:'SHELL CMD'
                                only with SPEAKER_ANNOTATION_CMD=allow (it runs as root on the host)
  io.speaker.mode=MODE          enforce (default) or complain (denials allowed and logged)
  io.speaker.compile=MODE       strict or balanced (default: the profile's `compile`, else balanced)
  io.speaker.allow=A,B          syscalls every phase allows; io.speaker.deny=A,B: syscalls none allows
  io.speaker.engine=ENGINE      auto (default), kmod (speaker.ko) or notify (seccomp user notification)
  Any other io.speaker.* annotation is refused (a typo must not run the container without speaker).

Environment:
  SPEAKER_CRUN=PATH       the crun to run (else --speaker-crun PATH before the command, else crun on PATH)
  SPEAKER_STATE_DIR=DIR   speaker's state (default /run/speaker)
  SPEAKER_ANNOTATION_CMD=allow  take cmd: readiness conditions from io.speaker.ready (leave unset on a shared node)

Engine configuration:
  Docker:     /etc/docker/daemon.json {\"runtimes\": {\"speaker\": {\"path\": \"/usr/local/bin/speaker-runtime\"}}}
              docker run --runtime speaker --annotation io.speaker.profile=/etc/speaker/web.json IMAGE
  podman:     podman --runtime /usr/local/bin/speaker-runtime run --annotation io.speaker.profile=... IMAGE
  containerd: ctr run --runc-binary /usr/local/bin/speaker-runtime --annotation io.speaker.profile=... IMAGE ID
              (Kubernetes: a RuntimeClass whose runc options have BinaryName = speaker-runtime)

Examples:
  speaker-runtime --version
  speaker-runtime run -d --bundle /srv/containers/web web
  speaker-runtime kill web HUP          # a reload signal of the profile: through the reload phase
  speaker-runtime delete web

Exit status: crun's for what crun does; 1 when speaker refuses or fails (the reason on stderr and in --log).
Engines: io.speaker.engine=auto (default: speaker.ko when /dev/speaker works, else the notify engine,
seccomp user notification on any kernel >= 5.10), kmod, or notify; `speaker-ctl status` shows which.

--- crun ---
";

/// `--version`: speaker's version, then crun's (or why there is none).
fn version(inv: &Invocation) -> Result<i32> {
    let mut text = format!("speaker-runtime {} (speaker, ABI {})\n", env!("CARGO_PKG_VERSION"), crate::abi::SPEAKER_ABI_VERSION);
    match inv.crun().and_then(|c| crun::output_of(&c, &["--version"])) {
        Ok(v) => text.push_str(&v),
        Err(e) => text.push_str(&format!("crun: {}\n", error_line(&e))),
    }
    crate::sys::output::write_stdout(text.as_bytes())?;
    Ok(0)
}

/// `--help`: speaker's section, then crun's help.
fn help(inv: &Invocation) -> Result<i32> {
    let mut text = HELP.to_string();
    match inv.crun().and_then(|c| crun::output_of(&c, &["--help"])) {
        Ok(v) => text.push_str(&v),
        Err(e) => text.push_str(&format!("(crun's help is not available: {})\n", error_line(&e))),
    }
    crate::sys::output::write_stdout(text.as_bytes())?;
    Ok(0)
}

/// The global options of a line that did not parse as a whole, as far as
/// they parse on their own (for `--log` and `--root`).
fn lenient_globals(line: &[OsString]) -> args::GlobalOpts {
    // The longest prefix that parses (the globals alone do).
    let end = line.len().min(64);
    (0..=end).rev().find_map(|n| RuntimeCli::try_parse_from(&line[..n]).ok()).map(|c| c.global).unwrap_or_default()
}

/// An error and its causes on one line (the one format of both
/// programs, [`crate::sys::output::error_line`]).
pub fn error_line(e: &anyhow::Error) -> String {
    crate::sys::output::error_line(e)
}

/// Prints an error on stderr and, like runc/crun, into `--log` (JSON lines
/// with `--log-format json`, which containerd shows to the user, with
/// crun's fields: `msg`, `level`, `time`).
fn report(inv: &Invocation, msg: &str) {
    errln!("{PROG}: error: {msg}");
    if let Some(log) = &inv.global.log {
        // crun's `--log` also takes `file:PATH`.
        let log = log.to_str().and_then(|l| l.strip_prefix("file:")).map(std::path::PathBuf::from).unwrap_or_else(|| log.clone());
        // O_NONBLOCK: a FIFO nobody reads is not written (ENXIO), not waited on
        // (the error was printed, then speaker-runtime hung).
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(log) {
            let line = if inv.global.log_format.as_deref() == Some("json") {
                serde_json::json!({"msg": format!("{PROG}: {msg}"), "level": "error", "time": rfc3339_now()}).to_string()
            } else {
                format!("{PROG}: error: {msg}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The current UTC time as crun writes it (`2026-12-06T13:38:21.123456Z`).
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_micros())
}

/// Seconds since the epoch as an RFC 3339 UTC time with microseconds.
pub fn rfc3339(secs: i64, micros: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn dispatch(inv: &Invocation, command: Option<RuntimeCommand>) -> Result<i32> {
    match command {
        Some(RuntimeCommand::Create(a)) => create::create(inv, &a),
        Some(RuntimeCommand::Start(a)) => start::start(inv, &a.id),
        Some(RuntimeCommand::Kill(a)) => kill::kill(inv, &a),
        Some(RuntimeCommand::Delete(a)) => delete::delete(inv, &a),
        Some(RuntimeCommand::Run(a)) => run::run(inv, &a),
        // crun applies the container's current exec filter (kept in its
        // state directory, see container::exec_filter); speaker.ko then
        // adds it to the container.
        Some(RuntimeCommand::Exec(a)) => exec::exec(inv, &a),
        // `restore` makes a container from a bundle and a checkpoint: never
        // one of speaker's (its phases cannot be restored).
        Some(RuntimeCommand::Other(line)) if line.first().is_some_and(|v| v == "restore") => match guard::refusal(inv, &line) {
            Some(why) => anyhow::bail!("restore is not supported for speaker containers: {why}"),
            None => inv.exec_crun(),
        },
        // What an engine probes before it uses a runtime: crun's features,
        // plus speaker's own.
        Some(RuntimeCommand::Other(line)) if line.first().is_some_and(|v| v == "features") && line.len() == 1 => features(inv),
        Some(RuntimeCommand::Other(_)) | None => inv.exec_crun(),
    }
}

/// The prefix of speaker's annotations, as `features` lists it.
pub const ANNOTATION_PREFIX: &str = "io.speaker.";

/// `features` (OCI runtime-spec features.md): crun's JSON, with speaker's
/// annotations added to `potentiallyUnsafeConfigAnnotations` (they change
/// what the container may do: a profile, `complain`, extra syscalls) and
/// speaker's version, ABI and engines under `annotations`.
fn features(inv: &Invocation) -> Result<i32> {
    let crun = inv.crun()?;
    let out = std::process::Command::new(&crun).arg("features").output().with_context(|| format!("cannot execute {}", crun.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} features failed ({}): {}",
        crun.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let merged = merge_features(&String::from_utf8_lossy(&out.stdout))?;
    let mut text = serde_json::to_string_pretty(&merged)?;
    text.push('\n');
    crate::sys::output::write_stdout(text.as_bytes())?;
    Ok(0)
}

/// crun's features JSON with speaker's added (see [`features`]).
pub fn merge_features(crun_json: &str) -> Result<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(crun_json).context("crun features printed no JSON object")?;
    let obj = v.as_object_mut().context("crun features printed JSON that is not an object")?;
    let unsafe_list = obj.entry("potentiallyUnsafeConfigAnnotations").or_insert_with(|| serde_json::json!([]));
    let list = unsafe_list.as_array_mut().context("crun's potentiallyUnsafeConfigAnnotations is not a list")?;
    if !list.iter().any(|a| a == ANNOTATION_PREFIX) {
        list.push(ANNOTATION_PREFIX.into());
    }
    let ann = obj.entry("annotations").or_insert_with(|| serde_json::json!({}));
    let ann = ann.as_object_mut().context("crun's features annotations is not an object")?;
    ann.insert("io.speaker.version".into(), env!("CARGO_PKG_VERSION").into());
    ann.insert("io.speaker.abi".into(), crate::abi::SPEAKER_ABI_VERSION.to_string().into());
    ann.insert("io.speaker.engines".into(), "kmod,notify".into());
    ann.insert("io.speaker.annotations".into(), bundle::KNOWN_ANNOTATIONS.join(",").into());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(rfc3339(1_796_564_301, 123_456), "2026-12-06T13:38:21.123456Z");
    }

    #[test]
    fn error_lines_name_each_cause_once() {
        let e = anyhow::anyhow!("No such file or directory").context("cannot read /x: No such file or directory").context("container 'c'");
        assert_eq!(error_line(&e), "container 'c': cannot read /x: No such file or directory");
    }

    #[test]
    fn features_are_cruns_plus_speakers_annotations() {
        // (The shape of crun 1.21's `crun features`, shortened.)
        let crun = r#"{"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0+dev", "hooks": ["prestart", "poststop"],
            "linux": {"namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]},
            "annotations": {"io.github.seccomp.libseccomp.version": "2.6.0", "run.oci.crun.checkpoint.enabled": "true"},
            "potentiallyUnsafeConfigAnnotations": ["module.wasm.image/variant", "io.kubernetes.cri.container-type", "run.oci."]}"#;
        let v = merge_features(crun).unwrap();
        assert_eq!(v["ociVersionMax"], "1.1.0+dev");
        assert_eq!(v["linux"]["namespaces"][6], "uts");
        assert_eq!(v["annotations"]["io.github.seccomp.libseccomp.version"], "2.6.0");
        assert_eq!(v["annotations"]["io.speaker.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["annotations"]["io.speaker.abi"], crate::abi::SPEAKER_ABI_VERSION.to_string());
        assert!(v["annotations"]["io.speaker.annotations"].as_str().unwrap().split(',').any(|a| a == "io.speaker.profile"));
        let list = v["potentiallyUnsafeConfigAnnotations"].as_array().unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[3], "io.speaker.");
        // Twice through: still listed once; no list or annotations at all: made.
        assert_eq!(merge_features(&v.to_string()).unwrap()["potentiallyUnsafeConfigAnnotations"].as_array().unwrap().len(), 4);
        let bare = merge_features(r#"{"ociVersionMin": "1.0.0"}"#).unwrap();
        assert_eq!(bare["potentiallyUnsafeConfigAnnotations"], serde_json::json!(["io.speaker."]));
        assert!(merge_features("crun: unknown command").is_err());
        assert!(merge_features("[1]").is_err());
    }

    #[test]
    fn globals_of_unparsed_lines_still_give_the_log() {
        let line: Vec<OsString> = ["--log", "/l", "--log-format", "json", "create", "--frob", "c"].iter().map(OsString::from).collect();
        let g = lenient_globals(&line);
        assert_eq!((g.log.as_deref(), g.log_format.as_deref()), (Some(std::path::Path::new("/l")), Some("json")));
    }
}
