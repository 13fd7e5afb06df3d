//! `speaker-runtime`: an OCI runtime that wraps crun (speaker-ctl under a
//! second name, or `speaker-ctl runtime ...`).  Bundles annotated with
//! `io.speaker.profile` get speaker's phases; everything else is crun's
//! (the README's "OCI containers" section is the manual).
//!
//! One file per OCI verb speaker takes part in ([`create`], [`start`],
//! [`kill`], [`delete`], [`run`]), the command line ([`args`]), crun
//! ([`crun`]), the bundle and its filters ([`bundle`], [`filters`]) and the
//! per-container [`monitor`] daemon.
pub mod args;
pub mod bundle;
pub mod create;
pub mod crun;
pub mod delete;
pub mod filters;
pub mod kill;
pub mod monitor;
pub mod run;
pub mod start;

use anyhow::Result;
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;

use args::{strip_speaker_crun, RuntimeCli, RuntimeCommand};
use crun::Invocation;

const PROG: &str = "speaker-runtime";

/// Entry point; `args` excludes argv[0].
pub fn main(args: Vec<OsString>) -> i32 {
    let (speaker_crun, forwarded) = strip_speaker_crun(args);
    // A line clap cannot parse is crun's business (and its error message).
    let cli = RuntimeCli::try_parse_from(&forwarded).ok();
    let inv = Invocation { forwarded, speaker_crun, global: cli.as_ref().map(|c| c.global.clone()).unwrap_or_default() };
    match dispatch(&inv, cli.and_then(|c| c.command)) {
        Ok(code) => code,
        Err(e) => {
            report(&inv, &format!("{e:#}"));
            1
        }
    }
}

/// Prints an error on stderr and, like runc/crun, into `--log` (JSON lines
/// with `--log-format json`, which containerd shows to the user).
fn report(inv: &Invocation, msg: &str) {
    eprintln!("{PROG}: error: {msg}");
    if let Some(log) = &inv.global.log {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let line = if inv.global.log_format.as_deref() == Some("json") {
                serde_json::json!({"level": "error", "msg": format!("{PROG}: {msg}")}).to_string()
            } else {
                format!("{PROG}: error: {msg}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}

fn dispatch(inv: &Invocation, command: Option<RuntimeCommand>) -> Result<i32> {
    match command {
        Some(RuntimeCommand::Create(a)) => create::create(inv, &a),
        Some(RuntimeCommand::Start(a)) => start::start(inv, &a.id),
        Some(RuntimeCommand::Kill(a)) => kill::kill(inv, &a),
        Some(RuntimeCommand::Delete(a)) => delete::delete(inv, &a),
        Some(RuntimeCommand::Run(a)) => run::run(inv, &a),
        Some(RuntimeCommand::Other(_)) | None => inv.exec_crun(),
    }
}
