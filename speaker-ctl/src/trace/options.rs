//! `speaker-ctl trace`'s options, as the library takes them, and the
//! parsing of their values (durations, `--mode`).
use anyhow::{bail, Result};

use super::recording::Recording;
use crate::container::ready::Readiness;
use crate::profile::schema::{Profile, Reload, RELOAD_READY_DEFAULT};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to trace and when phases end (the options of `speaker-ctl trace`,
/// unchecked; see its `--help`).
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// `port:N`, `cmd:'...'`, `log:REGEX` or `auto` (the default).
    pub ready: Option<String>,
    pub workload: Option<String>,
    pub running_for: Option<String>,
    pub stop_after: Option<String>,
    pub auto_window: String,
    pub auto_windows: u32,
    /// `ptrace`, `filter` or `auto`.
    pub mode: String,
    pub name: Option<String>,
    pub output: PathBuf,
    pub cmd: Vec<String>,
    /// `--reload-signal`: after the running phase, send this signal and
    /// trace what the service does until `reload_ready` as its reload phase.
    pub reload_signal: Option<String>,
    /// `--reload-ready` (default `auto`).
    pub reload_ready: Option<String>,
    /// `--shutdown-timeout`: SIGKILL what is left this long after SIGTERM.
    pub shutdown_timeout: Option<Duration>,
    /// `--one-shot`: CMD runs to its end (boot is its whole run).
    pub one_shot: bool,
}

/// The reload a trace makes (`--reload-signal`, `--reload-ready`).
#[derive(Debug)]
pub struct ReloadSettings {
    pub signal: nix::sys::signal::Signal,
    pub ready: Readiness,
    /// As recorded in the profile's `reload`.
    pub entry: Reload,
}

/// [`TraceOptions`], checked.
pub struct Settings {
    pub ready: Readiness,
    /// `ready` as recorded in the profile.
    pub ready_text: String,
    pub mode: Mode,
    pub workload: Option<String>,
    pub running_for: Option<Duration>,
    pub stop_after: Option<Duration>,
    pub auto_window: Duration,
    pub auto_windows: u32,
    pub name: Option<String>,
    pub output: PathBuf,
    pub cmd: Vec<String>,
    pub reload: Option<ReloadSettings>,
    pub shutdown_timeout: Option<Duration>,
    pub one_shot: bool,
}

impl Settings {
    pub fn check(a: &TraceOptions) -> Result<Settings> {
        let (ready, ready_text) = match &a.ready {
            Some(s) => (Readiness::parse(s)?, s.trim().to_string()),
            None => (Readiness::Auto, "auto".to_string()),
        };
        let auto_window = parse_duration("--auto-window", &a.auto_window)?;
        if auto_window < Duration::from_millis(10) {
            bail!("invalid --auto-window '{}': it must be at least 10ms", a.auto_window);
        }
        if a.auto_windows == 0 {
            bail!("invalid --auto-windows 0: it must be at least 1");
        }
        if a.one_shot && (a.ready.is_some() || a.workload.is_some() || a.running_for.is_some() || a.reload_signal.is_some()) {
            bail!("--one-shot traces a command to its end: it takes no --ready, --workload, --running-for or --reload-signal");
        }
        if a.cmd.first().is_none_or(|c| c.is_empty()) {
            bail!("no command to trace: give it after '--'");
        }
        let reload = match &a.reload_signal {
            None => {
                if a.reload_ready.is_some() {
                    bail!("--reload-ready needs --reload-signal");
                }
                None
            }
            Some(sig) => Some(reload_settings(sig, a.reload_ready.as_deref())?),
        };
        Ok(Settings {
            reload,
            ready,
            mode: Mode::parse(&a.mode)?,
            ready_text,
            workload: a.workload.clone(),
            running_for: opt_duration("--running-for", a.running_for.as_deref())?,
            stop_after: opt_duration("--stop-after", a.stop_after.as_deref())?,
            auto_window,
            auto_windows: a.auto_windows,
            name: a.name.clone().or_else(|| Path::new(&a.cmd[0]).file_name().map(|n| n.to_string_lossy().into_owned())),
            output: a.output.clone(),
            cmd: a.cmd.clone(),
            shutdown_timeout: a.shutdown_timeout,
            one_shot: a.one_shot,
        })
    }
}

fn reload_settings(sig: &str, ready: Option<&str>) -> Result<ReloadSettings> {
    // The one check of a reload signal (a profile's reload.signals too).
    let signal = crate::profile::validate::reload_signal(sig)
        .and_then(|n| nix::sys::signal::Signal::try_from(n).map_err(|e| e.to_string()))
        .map_err(|e| anyhow::anyhow!("invalid --reload-signal: {e}"))?;
    let text = ready.unwrap_or(RELOAD_READY_DEFAULT).trim().to_string();
    let parsed = Readiness::parse_for_runtime(&text).map_err(|e| anyhow::anyhow!("--reload-ready: {e:#}"))?;
    Ok(ReloadSettings { signal, ready: parsed, entry: Reload { signals: vec![signal.as_str().to_string()], ready: ready.map(|_| text) } })
}

impl Settings {
    /// The profile of what `rec` recorded so far, with this trace's
    /// readiness condition and reload.
    pub fn profile_of(&self, rec: &Recording) -> Profile {
        let ready = (!self.one_shot).then(|| self.ready_text.clone());
        let mut p = rec.to_profile(self.name.clone(), ready);
        p.reload = self.reload.as_ref().map(|r| r.entry.clone());
        p
    }
}

/// Parses `500ms`, `5s`, `1.5s`, `2m`, `1h` or a bare number of seconds
/// (the one syntax of every option, `sys::duration`).
pub fn parse_duration(option: &str, s: &str) -> Result<Duration> {
    crate::sys::duration::parse(s).map_err(|e| anyhow::anyhow!("invalid {option} {e}"))
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ptrace,
    Filter,
    Auto,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "ptrace" => Ok(Mode::Ptrace),
            "filter" => Ok(Mode::Filter),
            "auto" => Ok(Mode::Auto),
            _ => bail!("invalid --mode '{s}': expected ptrace, filter or auto"),
        }
    }
}

/// Parses an optional duration option.
pub fn opt_duration(option: &str, s: Option<&str>) -> Result<Option<Duration>> {
    s.map(|v| parse_duration(option, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("-x", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("-x", "5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("-x", "1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("-x", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("-x", "3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "5x", "-1s", "1..2s", "abc"] {
            assert!(parse_duration("-x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reload_options() {
        let r = reload_settings("HUP", None).unwrap();
        assert_eq!(r.signal, nix::sys::signal::Signal::SIGHUP);
        assert_eq!(r.entry, Reload { signals: vec!["SIGHUP".into()], ready: None });
        assert!(matches!(r.ready, Readiness::Auto));
        let r = reload_settings("10", Some("cmd:true")).unwrap();
        assert_eq!(r.entry.signals, vec!["SIGUSR1".to_string()]);
        assert_eq!(r.entry.ready.as_deref(), Some("cmd:true"));
        for bad in ["NOPE", "KILL", "TERM", "34"] {
            assert!(reload_settings(bad, None).unwrap_err().to_string().contains("invalid --reload-signal"), "{bad}");
        }
        assert!(reload_settings("HUP", Some("log:x")).is_err());
    }
}
