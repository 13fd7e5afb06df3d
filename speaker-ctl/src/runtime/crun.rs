//! Running crun: finding it, replacing ourselves with it, or running one of
//! its commands and waiting.
use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::Pid;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::args::GlobalOpts;
use crate::container::state::ContainerState;

/// What `crun ARGS` prints on stdout (`--version`, `--help`).
pub fn output_of(crun: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(crun).args(args).output().with_context(|| format!("cannot execute {}", crun.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// One speaker-runtime invocation, as far as crun is concerned.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The command line minus speaker's own options, exactly as given.
    pub forwarded: Vec<OsString>,
    /// `--speaker-crun PATH`.
    pub speaker_crun: Option<PathBuf>,
    /// crun's global options (default when the line did not parse).
    pub global: GlobalOpts,
}

impl Invocation {
    /// The crun binary: `--speaker-crun`, else `$SPEAKER_CRUN`, else `crun`
    /// on PATH (not ourselves under that name).
    pub fn crun(&self) -> Result<PathBuf> {
        if let Some(p) = &self.speaker_crun {
            if p.is_file() {
                return Ok(p.clone());
            }
            bail!("crun not found at {} (--speaker-crun); install crun or fix the path", p.display());
        }
        if let Some(p) = std::env::var_os("SPEAKER_CRUN") {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Ok(p);
            }
            bail!("crun not found at {} ($SPEAKER_CRUN); install crun or fix the variable", p.display());
        }
        let me = std::env::current_exe().ok().and_then(|p| std::fs::canonicalize(p).ok());
        for d in std::env::split_paths(&search_path(std::env::var_os("PATH"))) {
            let c = d.join("crun");
            if c.is_file() && std::fs::canonicalize(&c).ok() != me {
                return Ok(c);
            }
        }
        bail!("crun not found in PATH; speaker-runtime wraps crun: install it (apt install crun) or pass --speaker-crun PATH")
    }

    /// Replaces this process with crun and the forwarded line (only returns
    /// on failure).
    pub fn exec_crun(&self) -> Result<i32> {
        let crun = self.crun()?;
        let err = Command::new(&crun).args(&self.forwarded).exec();
        Err(anyhow!("cannot execute {}: {err}", crun.display()))
    }

    /// Runs `crun <globals> <args>` and waits; returns its exit code.
    pub fn run_crun<S: AsRef<OsStr>>(&self, crun: &Path, args: &[S]) -> Result<i32> {
        let status = Command::new(crun)
            .args(self.global.to_args())
            .args(args)
            .status()
            .with_context(|| format!("cannot execute {}", crun.display()))?;
        Ok(status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
    }

    /// The pid of the container's first process, from `crun state`.
    pub fn crun_pid(&self, crun: &Path, id: &str) -> Result<Pid> {
        let out = Command::new(crun)
            .args(self.global.to_args())
            .args(["state", id])
            .output()
            .with_context(|| format!("cannot execute {} state", crun.display()))?;
        if !out.status.success() {
            bail!("crun state {id} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("crun state printed invalid JSON")?;
        let pid = v.get("pid").and_then(|p| p.as_i64()).filter(|p| *p > 0).ok_or_else(|| anyhow!("crun state {id} has no pid"))?;
        Ok(Pid::from_raw(pid as i32))
    }

    /// crun's state directory of container `id`.
    pub fn crun_state_dir(&self, id: &str) -> PathBuf {
        self.global.root.clone().unwrap_or_else(|| PathBuf::from("/run/crun")).join(id)
    }

    /// The speaker state of `id` if it is a speaker-runtime container under
    /// this invocation's `--root` (the same id under another root or engine
    /// is not ours).
    pub fn ours(&self, id: &str) -> Option<ContainerState> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return None;
        }
        let mine = self.crun_state_dir(id);
        ContainerState::load(id).ok().filter(|s| s.runtime.as_ref().is_some_and(|r| same_dir(&r.crun_state_dir, &mine)))
    }
}

/// Whether two directory names are the same place (as given, or once
/// resolved: `--root /run/crun/` and `/run/../run/crun`).
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// Where crun is looked for when `PATH` is unset or empty: the search path
/// of execvp(3) (`confstr(_CS_PATH)` plus the `local` directories).
/// Engines do run the runtime without `PATH`: podman runs `kill` with
/// `XDG_RUNTIME_DIR` as its whole environment.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `PATH` as given, or [`DEFAULT_PATH`] when it is unset or empty.
pub fn search_path(path: Option<OsString>) -> OsString {
    path.filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PATH.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_is_found_without_path() {
        assert_eq!(search_path(None), OsString::from(DEFAULT_PATH));
        assert_eq!(search_path(Some(OsString::new())), OsString::from(DEFAULT_PATH));
        assert_eq!(search_path(Some("/x:/y".into())), OsString::from("/x:/y"));
        assert!(std::env::split_paths(&search_path(None)).any(|d| d == Path::new("/usr/bin")));
    }
}
