//! What speaker-ctl remembers about the containers it started, under
//! `/run/speaker/<cid>/` (or `$SPEAKER_STATE_DIR/<cid>/`):
//! `state.json` plus one compiled program per phase (`<phase>.bpf`, raw
//! `struct sock_filter` array), so that a switch never depends on profile
//! files that may have changed since the start.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

use super::engine::Engine;
use super::phases::CompiledPhase;
use crate::profile::schema::{Phase, Reload};
use crate::profile::{parse_program, program_to_bytes, Mode, SockFilter};
use crate::sys::fs::write_atomic;
use crate::sys::procfs::pid_alive;

/// Errors a caller must tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no container '{cid}' (no state in {dir}); 'speaker-ctl status' lists the running ones")]
    Unknown { cid: String, dir: String },
    #[error("invalid container id '{0}': use 1-1024 characters of A-Z a-z 0-9 _ . + - (not . or ..)")]
    BadId(String),
}

/// The longest container id speaker accepts (runtimes' ids: Docker's are 64
/// hex digits; speaker.ko knows ids by their first 63 bytes, see
/// [`kernel_id`]).
pub const MAX_ID_LEN: usize = 1024;

/// Checks a container id as runc does (`[A-Za-z0-9_.+-]`, not `.` or
/// `..`): ids name directories under the state root, so nothing else may
/// pass.  Every verb that takes an id checks it (clap's parser, and
/// [`ContainerState::load`] and [`ContainerState::lock`] again).
pub fn check_id(cid: &str) -> std::result::Result<(), StateError> {
    let ok = !cid.is_empty()
        && cid.len() <= MAX_ID_LEN
        && cid != "."
        && cid != ".."
        && cid.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(cid.to_string()))
    }
}

/// The largest state.json speaker reads (a container's switches and
/// denials are a few KiB to a few MiB).
pub const MAX_STATE_BYTES: u64 = 64 << 20;

pub fn state_root() -> PathBuf {
    std::env::var_os("SPEAKER_STATE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/speaker"))
}

/// One phase as recorded at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub phase: Phase,
    pub allowed: u32,
    pub instructions: usize,
}

impl PhaseRecord {
    /// What state.json records of a compiled phase.
    pub fn of(p: &CompiledPhase) -> PhaseRecord {
        PhaseRecord { phase: p.phase, allowed: p.allowed, instructions: p.prog.len() }
    }
}

/// What `speaker-runtime` adds for the OCI containers it wraps (written by
/// the runtime layer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuntimeRecord {
    /// crun's state directory of this container (`<root>/<id>`).
    pub crun_state_dir: PathBuf,
    /// Where the container came from (for people reading state.json).
    pub bundle: PathBuf,
    pub profile: PathBuf,
    /// The readiness condition the monitor waits for.
    #[serde(default)]
    pub ready: Option<String>,
    #[serde(default)]
    pub monitor_pid: Option<i32>,
    /// Set by the monitor once speaker.ko has the container.
    #[serde(default)]
    pub registered: bool,
    /// Why the monitor gave up, if it did.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub ready_unix_ms: Option<u64>,
}

/// One phase change (or mode change) of a live container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    pub phase: Phase,
    #[serde(default)]
    pub mode: Mode,
    /// `CLOCK_REALTIME_COARSE` just before the switch, in milliseconds:
    /// the clock of audit records' `audit(SECONDS.MILLIS:...)` stamps, so
    /// a record stamped at or after it belongs to this phase.
    pub at_unix_ms: u64,
    /// `CLOCK_MONOTONIC` at the same moment, in microseconds (the clock of
    /// `/dev/kmsg` timestamps; informational).
    #[serde(default)]
    pub at_monotonic_us: u64,
}

impl SwitchRecord {
    /// A record of a change to `phase` in `mode`, made now.
    pub fn now(phase: Phase, mode: Mode) -> SwitchRecord {
        use nix::time::{clock_gettime, ClockId};
        let ms = |c| clock_gettime(c).map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000).unwrap_or(0);
        let mono = clock_gettime(ClockId::CLOCK_MONOTONIC).map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000).unwrap_or(0);
        SwitchRecord { phase, mode, at_unix_ms: ms(ClockId::CLOCK_REALTIME_COARSE), at_monotonic_us: mono }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub cid: String,
    /// PID of the container's first process (host PID namespace).
    pub pid: i32,
    pub cmd: Vec<String>,
    pub started_unix_ms: u64,
    pub phases: Vec<PhaseRecord>,
    pub current: Phase,
    #[serde(default)]
    pub last_switch_unix_ms: Option<u64>,
    /// The id speaker.ko knows the container by, when it differs from
    /// `cid` (runtime ids longer than the ABI's 63 bytes, e.g. Docker's 64
    /// hex digits, are cut to 63).
    #[serde(default, rename = "kernel_cid", skip_serializing_if = "Option::is_none")]
    pub kernel_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeRecord>,
    /// The mode of the current phase.
    #[serde(default)]
    pub mode: Mode,
    /// The start (boot phase) and every switch since, in order: denials
    /// are attributed to the phase whose span holds their time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<SwitchRecord>,
    /// The profile's `reload` (which signals reload the service, and when
    /// a reload is over): see `container::reload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<Reload>,
    /// Which engine enforces the phases (kmod when absent: states written
    /// before the notify engine).
    #[serde(default)]
    pub engine: Engine,
}

/// The id speaker.ko gets for container id `cid`: itself if it fits the
/// ABI (63 bytes), else its first 63 bytes (ids that need this are
/// hex digests, so the cut stays unique in practice; a clash is refused by
/// the module as a duplicate).
pub fn kernel_id(cid: &str) -> String {
    let max = crate::abi::CID_LEN - 1;
    if cid.len() <= max {
        return cid.to_string();
    }
    let mut end = max;
    while !cid.is_char_boundary(end) {
        end -= 1;
    }
    cid[..end].to_string()
}

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl ContainerState {
    /// The id speaker.ko knows this container by.
    pub fn kernel_id(&self) -> &str {
        self.kernel_id.as_deref().unwrap_or(&self.cid)
    }

    /// Appends a line to the container's log (`<dir>/monitor.log`).
    pub fn log(&self, msg: &str) {
        let path = Self::dir_of(&self.cid).join("monitor.log");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{} {msg}", now_unix_ms());
        }
    }

    /// Takes the container's lock (an exclusive flock on `<dir>/lock`),
    /// held until the returned file is dropped: phase switches of one
    /// container (the runtime's monitor, `kill`, `speaker-ctl switch`) are
    /// serialised by it.
    pub fn lock(cid: &str) -> Result<nix::fcntl::Flock<std::fs::File>> {
        check_id(cid)?;
        let dir = Self::dir_of(cid);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .with_context(|| format!("cannot lock {}", path.display()))
    }

    pub fn dir_of(cid: &str) -> PathBuf {
        state_root().join(cid)
    }

    pub fn load(cid: &str) -> Result<ContainerState> {
        check_id(cid)?;
        let dir = Self::dir_of(cid);
        let file = dir.join("state.json");
        // Through the one input opener: a FIFO or device put there is
        // refused or read as empty, never waited on (every verb that lists
        // containers hung on one), and the size is capped.
        let bytes = match crate::sys::fs::read_input(&file, MAX_STATE_BYTES) {
            Ok(b) => b,
            Err(Some(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Unknown { cid: cid.to_string(), dir: dir.display().to_string() }.into())
            }
            Err(Some(e)) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
            Err(None) => anyhow::bail!(
                "{} is larger than {} MiB: not speaker's; remove {} to forget the container",
                file.display(),
                MAX_STATE_BYTES >> 20,
                dir.display()
            ),
        };
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is corrupt; remove {} to forget the container", file.display(), dir.display()))
    }

    pub fn save(&self) -> Result<()> {
        check_id(&self.cid)?;
        let dir = Self::dir_of(&self.cid);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let text = serde_json::to_string_pretty(self)?;
        write_atomic(&dir.join("state.json"), text.as_bytes()).with_context(|| format!("cannot write {}", dir.join("state.json").display()))
    }

    /// Saves both programs (enforce, complain) of every phase.
    pub fn save_programs(&self, phases: &[CompiledPhase]) -> Result<()> {
        for p in phases {
            self.save_program(p.phase, Mode::Enforce, &p.prog)?;
            self.save_program(p.phase, Mode::Complain, &p.complain)?;
        }
        Ok(())
    }

    fn program_path(&self, phase: Phase, mode: Mode) -> PathBuf {
        match mode {
            Mode::Enforce => Self::dir_of(&self.cid).join(format!("{phase}.bpf")),
            Mode::Complain => Self::dir_of(&self.cid).join(format!("{phase}.complain.bpf")),
        }
    }

    pub fn save_program(&self, phase: Phase, mode: Mode, prog: &[SockFilter]) -> Result<()> {
        let path = self.program_path(phase, mode);
        write_atomic(&path, &program_to_bytes(prog)).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn program(&self, phase: Phase, mode: Mode) -> Result<Vec<SockFilter>> {
        let path = self.program_path(phase, mode);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        parse_program(&bytes).with_context(|| format!("{} is corrupt", path.display()))
    }

    /// The phase the container was in at `unix_ms` (an audit record's
    /// time), from the switches recorded; `None` before it started.
    pub fn phase_at(&self, unix_ms: u64) -> Option<Phase> {
        // Records carry a coarse clock (up to a tick behind): a second of
        // slack before the start.
        self.switches
            .iter()
            .rev()
            .find(|s| s.at_unix_ms <= unix_ms)
            .map(|s| s.phase)
            .or_else(|| (unix_ms + 1000 >= self.started_unix_ms).then_some(Phase::Boot))
    }

    pub fn record(&self, phase: Phase) -> Option<&PhaseRecord> {
        self.phases.iter().find(|p| p.phase == phase)
    }

    pub fn remove(cid: &str) {
        if check_id(cid).is_err() {
            return;
        }
        let _ = std::fs::remove_dir_all(Self::dir_of(cid));
    }

    /// Containers with a state directory.
    pub fn list() -> Vec<ContainerState> {
        Self::scan().0
    }

    /// Every container's state, and what stands in the state root but
    /// cannot be read as one (a corrupt or foreign state.json: the error
    /// says which, and how to forget it).  Entries with no state.json are
    /// not containers and are left out of both.
    pub fn scan() -> (Vec<ContainerState>, Vec<anyhow::Error>) {
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        if let Ok(rd) = std::fs::read_dir(state_root()) {
            for e in rd.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                match ContainerState::load(&name) {
                    Ok(s) => out.push(s),
                    Err(e) if e.downcast_ref::<StateError>().is_some() => {}
                    Err(e) => bad.push(e),
                }
            }
        }
        out.sort_by(|a, b| a.cid.cmp(&b.cid));
        (out, bad)
    }

    /// Is the container's first process still alive (and not a zombie)?
    pub fn alive(&self) -> bool {
        pid_alive(self.pid)
    }
}
