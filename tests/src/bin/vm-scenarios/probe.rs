//! The probe container: speaker-probe run through `speaker-ctl run` with
//! given phase profiles, asked to make syscalls in each phase.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use speaker_tests::ensure;
use speaker_tests::guest::Outcome;

use crate::cache;
use crate::support::{ctl, ctl_ok, wait_until};

/// A test container running speaker-probe.
pub struct Probe {
    pub cid: String,
    pub dir: PathBuf,
    pub pid: i32,
    pub gen: u64,
    pub tasks: usize,
}

/// See [`Probe::wait_ready`].
const PROBE_TIMEOUT_SECS: u64 = 180;

impl Probe {
    pub fn start(cid: &str, phases: &[PathBuf], probe_args: &[&str], tasks: usize) -> Result<Probe, String> {
        let dir = PathBuf::from(format!("/tmp/c/{cid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("res")).map_err(|e| e.to_string())?;
        // The probes make mount and sethostname, which need CAP_SYS_ADMIN on
        // top of the default set (`run_container_gets_no_keys` checks the default).
        let mut args = vec!["run".to_string(), "--name".into(), cid.into(), "--cap-add".into(), "SYS_ADMIN".into()];
        // The host's files are read-only in the container but its volumes.
        args.extend(["--volume".into(), dir.display().to_string()]);
        if phases.len() == 1 {
            args.extend(["--profile".into(), phases[0].display().to_string()]);
        } else {
            for (flag, p) in ["--boot", "--running", "--shutdown"].iter().zip(phases) {
                args.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        args.extend(["--detach".into(), "--".into(), "speaker-probe".into(), "serve".into(), dir.display().to_string()]);
        args.extend(probe_args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = ctl_ok(&argv)?;
        let pid = out.split_whitespace().nth(1).and_then(|p| p.parse().ok()).ok_or(format!("bad run output {out:?}"))?;
        let p = Probe { cid: cid.into(), dir, pid, gen: 0, tasks };
        p.wait_ready()?;
        Ok(p)
    }

    /// How long a probe may take to start or answer: generous, since a
    /// scenario may storm the guest's two vCPUs while another guest shares
    /// the host's cores (scripts/test runs two at once); a passing probe
    /// answers in well under a second.
    pub fn wait_ready(&self) -> Outcome {
        wait_until(&format!("{} tasks of {} to be ready", self.tasks, self.cid), Duration::from_secs(PROBE_TIMEOUT_SECS), || {
            fs::read_dir(&self.dir)
                .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("ready.")).count())
                .unwrap_or(0)
                >= self.tasks
        })
    }

    pub fn send(&mut self, op: &str) -> u64 {
        self.gen += 1;
        let tmp = self.dir.join("cmd.tmp");
        fs::write(&tmp, format!("{} {op}\n", self.gen)).unwrap();
        fs::rename(&tmp, self.dir.join("cmd")).unwrap();
        self.gen
    }

    pub fn result(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.dir.join("res").join(name)).ok().map(|s| s.trim().to_string())
    }

    /// Runs `op` on every task; returns each task's result.
    pub fn all(&mut self, op: &str) -> Result<Vec<(String, String)>, String> {
        let gen = self.send(op);
        let prefix = format!("{gen}.");
        let dir = self.dir.join("res");
        let collect = || -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            let task = n.strip_prefix(&prefix)?.to_string();
                            if task.ends_with(".tmp") || task == "forked" {
                                return None;
                            }
                            Some((task, fs::read_to_string(e.path()).ok()?.trim().to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        wait_until(&format!("{} tasks of {} to answer '{op}'", self.tasks, self.cid), Duration::from_secs(PROBE_TIMEOUT_SECS), || {
            collect().len() >= self.tasks
        })?;
        Ok(collect())
    }

    /// `op` on every task must give `want`.
    pub fn expect_all(&mut self, op: &str, want: &str) -> Outcome {
        let res = self.all(op)?;
        let bad: Vec<_> = res.iter().filter(|(_, r)| r != want).collect();
        ensure!(bad.is_empty(), "{}: '{op}' gave {bad:?} (want '{want}' in all {} tasks)", self.cid, res.len());
        Ok(())
    }

    /// Runs `op` on process 0's main thread only.
    pub fn main(&mut self, op: &str) -> Result<String, String> {
        let gen = self.send(op);
        let name = format!("{gen}.p0t0");
        wait_until(&format!("{} to answer '{op}'", self.cid), Duration::from_secs(60), || self.result(&name).is_some())?;
        Ok(self.result(&name).unwrap())
    }

    pub fn switch(&self, to: &str) -> Result<String, String> {
        ctl_ok(&["switch", &self.cid, "--to", to])
    }

    /// Whether the container's action cache allows native syscall `nr`
    /// (see [`cache`]: read or derived, depending on the kernel).
    pub fn cache_allows(&self, nr: u32) -> Result<bool, String> {
        cache::allows(self.pid, cache::Abi::Native, nr)
    }

    pub fn alive(&self) -> bool {
        fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .map(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')).unwrap_or(false))
            .unwrap_or(false)
    }

    pub fn wait_gone(&self) -> Outcome {
        // The container is an orphan of init (PID 1, this runner's shell);
        // reap it if it became ours.
        wait_until(&format!("{} to exit", self.cid), Duration::from_secs(30), || {
            // SAFETY: non-blocking reap of any child.
            unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
            !self.alive()
        })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if self.alive() {
            let _ = ctl(&["stop", &self.cid, "--timeout", "2"]);
        }
        let _ = fs::remove_dir_all(format!("/run/speaker/{}", self.cid));
    }
}
