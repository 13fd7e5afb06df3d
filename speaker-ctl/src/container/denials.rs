//! Denials: seccomp's audit records (`type=1326`) of containers' own
//! filters (installed with `SECCOMP_FILTER_FLAG_LOG`, so every syscall they
//! do not allow is reported), attributed to a container by pid (speaker.ko's
//! list of the processes using the container's filter, `Device::pids`) and
//! to a phase by the switch times in the container's state.
//!
//! A record's `pid=` can only be matched while that process lives, so
//! whoever sees records as they arrive (the runtime's monitor, `speaker-ctl
//! denials --follow`) keeps the attributed ones in the container's
//! `denials.jsonl`; later readings of the kernel log use those first.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::engine::Engine;
use super::state::ContainerState;
use crate::device::Device;
use crate::profile::learn::{self, Observation};
use crate::profile::schema::Phase;
use crate::profile::SeccompRecord;
use crate::sys::audit::AuditLog;
use crate::sys::kmsg::Kmsg;
use crate::sys::poll::wait_readable;

/// One attributed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The container, if the pid used one's filter (`None`: unattributed).
    pub cid: Option<String>,
    pub phase: Option<Phase>,
    #[serde(flatten)]
    pub record: SeccompRecord,
}

impl Denial {
    pub fn action(&self) -> &'static str {
        self.record.action()
    }

    /// One line for logs: `phase pid comm syscall action`.
    pub fn summary(&self) -> String {
        format!(
            "{} pid {} ({}) {} {}",
            self.phase.map(|p| p.name()).unwrap_or("-"),
            self.record.pid,
            self.record.comm,
            self.record.syscall_label(),
            self.action()
        )
    }
}

fn store(cid: &str) -> PathBuf {
    ContainerState::dir_of(cid).join("denials.jsonl")
}

/// Appends `d` to its container's store (only while the container's
/// state directory exists).
pub fn append(d: &Denial) {
    let Some(cid) = &d.cid else { return };
    let dir = ContainerState::dir_of(cid);
    if !dir.is_dir() {
        return;
    }
    if let (Ok(mut f), Ok(line)) = (std::fs::OpenOptions::new().create(true).append(true).open(store(cid)), serde_json::to_string(d)) {
        let _ = writeln!(f, "{line}");
    }
}

/// The denials kept in `cid`'s store.
pub fn saved(cid: &str) -> Vec<Denial> {
    let Ok(f) = std::fs::File::open(store(cid)) else { return Vec::new() };
    std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect()
}

/// Maps pids to the containers whose filters they use now.
pub struct Attributor {
    only: Option<String>,
    states: Vec<ContainerState>,
    pids: HashMap<u32, usize>,
}

impl Attributor {
    /// For every container with a state (or only `only`).
    pub fn new(only: Option<&str>) -> Attributor {
        let mut a = Attributor { only: only.map(str::to_string), states: Vec::new(), pids: HashMap::new() };
        a.refresh();
        a
    }

    /// Reads the containers' states and their processes again.
    pub fn refresh(&mut self) {
        self.states = match &self.only {
            Some(cid) => ContainerState::load(cid).into_iter().collect(),
            None => ContainerState::list(),
        };
        self.pids.clear();
        let dev = Device::open().ok();
        for (i, st) in self.states.iter().enumerate() {
            if st.pid > 0 {
                self.pids.insert(st.pid as u32, i);
            }
            if st.engine == Engine::Notify {
                // No kernel list of the container's processes: those in
                // its PID namespace (processes started by `exec` after a
                // switch have a filter of their own, not the supervised
                // one, and are found only this way).
                for pid in crate::sys::procfs::pids_in_other_pid_namespace(st.pid).unwrap_or_default() {
                    self.pids.insert(pid as u32, i);
                }
            } else if let Some(dev) = &dev {
                for pid in dev.pids(st.kernel_id()).unwrap_or_default() {
                    self.pids.insert(pid, i);
                }
            }
        }
    }

    /// The states read by the last refresh.
    pub fn states(&self) -> &[ContainerState] {
        &self.states
    }

    /// Attributes `rec` by its pid (reading the containers' processes
    /// again if it is not known yet).
    pub fn attribute(&mut self, rec: SeccompRecord) -> Denial {
        if !self.pids.contains_key(&rec.pid) {
            self.refresh();
        }
        // A record from before the container started is another process's
        // that had the same pid.
        // (The state is read again: a follower outlives switches.)
        if let Some(i) = self.pids.get(&rec.pid).copied() {
            if let Ok(fresh) = ContainerState::load(&self.states[i].cid) {
                self.states[i] = fresh;
            }
        }
        let st = self.pids.get(&rec.pid).map(|i| &self.states[*i]);
        match st.and_then(|st| Some((st, st.phase_at(rec.time_unix_ms)?))) {
            Some((st, phase)) => Denial { cid: Some(st.cid.clone()), phase: Some(phase), record: rec },
            None => Denial { cid: None, phase: None, record: rec },
        }
    }
}

/// Where records come from.
pub enum Source<'a> {
    /// The kernel log now (`/dev/kmsg`).
    Kmsg,
    /// A saved kernel log (`dmesg`, `journalctl -k`) or auditd log.
    File(&'a Path),
}

fn records(source: &Source) -> Result<Vec<SeccompRecord>> {
    match source {
        Source::Kmsg => {
            let mut k = Kmsg::open().context("cannot read the kernel log /dev/kmsg (needs root)")?;
            let mut out = Vec::new();
            while let Some(line) = k.next_record(None).context("cannot read /dev/kmsg")? {
                out.extend(SeccompRecord::parse(&line));
            }
            Ok(out)
        }
        // A saved log may hold lines that are not UTF-8 (binary junk,
        // another encoding): each line is decoded on its own, lossily, so
        // the records around them are still read.
        Source::File(p) => {
            // Streamed (an audit log may be large), through the one input
            // opener: a pipe is read, a device or a FIFO nobody writes is
            // not waited on.
            use std::io::BufRead;
            let read = |e| anyhow::anyhow!("cannot read {}: {}", p.display(), crate::sys::fs::error_text(&e));
            let f = crate::sys::fs::open_input(p).map_err(read)?;
            let mut out = Vec::new();
            for line in std::io::BufReader::new(f).split(b'\n') {
                out.extend(SeccompRecord::parse(&String::from_utf8_lossy(&line.map_err(read)?)));
            }
            Ok(out)
        }
    }
}

/// The denials of every container (or only `only`'s), oldest first: the
/// stored ones, then the records of `source` attributed now.
/// Unattributed records are included only without `only`.
pub fn collect(only: Option<&str>, source: &Source) -> Result<Vec<Denial>> {
    let mut att = Attributor::new(only);
    let mut all: BTreeMap<(u64, u64), Denial> = BTreeMap::new();
    for st in att.states() {
        for d in saved(&st.cid) {
            all.insert(d.record.key(), d);
        }
    }
    for rec in records(source)? {
        if all.contains_key(&rec.key()) {
            continue;
        }
        let d = att.attribute(rec);
        if only.is_none() || d.cid.as_deref() == only {
            all.insert(d.record.key(), d);
        }
    }
    Ok(all.into_values().filter(|d| only.is_none() || d.cid.as_deref() == only).collect())
}

/// Follows the kernel log from its oldest buffered record, calling
/// `each` with every record (attributed as it arrives, and stored in its
/// container's `denials.jsonl`) until `stop()` holds (checked at least
/// every `tick`).  With `only`, other containers' and unattributed records
/// are passed over (not handed to `each`).
pub fn follow(only: Option<&str>, tick: Duration, mut stop: impl FnMut() -> bool, mut each: impl FnMut(&Denial)) -> Result<()> {
    let mut att = Attributor::new(only);
    let mut seen: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    for st in att.states() {
        seen.extend(saved(&st.cid).iter().map(|d| d.record.key()));
    }
    let mut live = LiveLog::open()?;
    while !stop() {
        let Some(line) = live.next_record(tick)? else { continue };
        let Some(rec) = SeccompRecord::parse(&line) else { continue };
        if !seen.insert(rec.key()) {
            continue;
        }
        let d = att.attribute(rec);
        if only.is_some() && d.cid.as_deref() != only {
            continue;
        }
        append(&d);
        each(&d);
    }
    Ok(())
}

/// The kernel's records as they come: the kernel log's buffered ones
/// first, then new ones from the kernel log and, where the caller may read
/// it, from the audit multicast group, which gets every record even when
/// the kernel log's rate limit drops them (see [`AuditLog`]).  A record
/// seen through both comes twice (callers de-duplicate by its key).
struct LiveLog {
    kmsg: Kmsg,
    audit: Option<AuditLog>,
}

impl LiveLog {
    fn open() -> Result<LiveLog> {
        // Subscribed before the kernel log's backlog is read, so that no
        // record falls between the two.
        let audit = AuditLog::open().ok();
        let kmsg = Kmsg::open().context("cannot read the kernel log /dev/kmsg (needs root)")?;
        Ok(LiveLog { kmsg, audit })
    }

    /// The next record; `None` if none came within `tick`.
    fn next_record(&mut self, tick: Duration) -> Result<Option<String>> {
        if let Some(line) = self.kmsg.next_record(None).context("cannot read /dev/kmsg")? {
            return Ok(Some(line));
        }
        let Some(audit) = &mut self.audit else {
            return self.kmsg.next_record(Some(tick)).context("cannot read /dev/kmsg");
        };
        if let Some(line) = audit.next_record(None).context("cannot read the audit socket")? {
            return Ok(Some(line));
        }
        if !wait_readable(&[self.kmsg.fd(), audit.fd()], tick).context("cannot wait for the kernel's records")? {
            return Ok(None);
        }
        self.ready()
    }

    /// Whatever arrived while polling (no waiting).
    fn ready(&mut self) -> Result<Option<String>> {
        if let Some(line) = self.kmsg.next_record(None).context("cannot read /dev/kmsg")? {
            return Ok(Some(line));
        }
        match &mut self.audit {
            Some(a) => a.next_record(None).context("cannot read the audit socket"),
            None => Ok(None),
        }
    }
}

/// What container `cid` was logged doing, per phase, for `profile learn`:
/// its attributed records in `source` (and its store).  With `phase`,
/// every record is counted in that phase instead; a container whose state
/// is gone can only be learned that way, from every record of `source`.
pub fn observations(cid: &str, source: &Source, phase: Option<Phase>) -> Result<Vec<Observation>> {
    let sightings: Vec<(Phase, SeccompRecord)> = if ContainerState::load(cid).is_ok() {
        collect(Some(cid), source)?.into_iter().filter_map(|d| Some((phase.or(d.phase)?, d.record))).collect()
    } else {
        let phase = phase.with_context(|| {
            format!("no container '{cid}' (its state is gone, so its records cannot be told apart): give --phase to learn every record of the log into one phase")
        })?;
        records(source)?.into_iter().map(|r| (phase, r)).collect()
    };
    Ok(learn::observations(
        sightings.into_iter().filter_map(|(p, r)| Some((p, r.syscall.clone()?, r.arch.clone()?, r.time_unix_ms))),
        Some(cid),
    ))
}
