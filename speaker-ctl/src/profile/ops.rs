//! Whole-profile operations: atomic writing, merging and comparing.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::compile::{Action, Arch};
use super::error::ProfileError;
use super::schema::{Phase, PhaseSet, Profile, SyscallEntry};

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync'd, then renamed over `path` (readers see the old or the
/// new file, never a partial one).
pub fn write_file_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), ProfileError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = path.as_ref();
    let werr = |error| ProfileError::Write {
        path: path.to_path_buf(),
        error,
    };
    let file_name = path.file_name().ok_or_else(|| {
        werr(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

/// Writes a profile as pretty JSON, atomically (see [`write_file_atomic`]).
pub fn write_profile_atomic(path: impl AsRef<Path>, profile: &Profile) -> Result<(), ProfileError> {
    let mut text = serde_json::to_string_pretty(profile).expect("a Profile always serializes");
    text.push('\n');
    write_file_atomic(path, text.as_bytes())
}

/// How a syscall entry is shown: `name` on x86_64, `name/ARCH` otherwise.
pub fn entry_label(e: &SyscallEntry) -> String {
    if e.arch == Arch::native().name() {
        e.name.clone()
    } else {
        format!("{}/{}", e.name, e.arch)
    }
}

/// The sorted, distinct labels ([`entry_label`]) of a phase.
pub fn phase_labels(set: &PhaseSet) -> Vec<String> {
    set.syscalls
        .iter()
        .map(entry_label)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn normalized_action(s: &str) -> String {
    Action::parse(s, None).map_or_else(|| s.to_string(), |a| a.scmp_name().to_string())
}

/// Merges recordings (each with the file it came from, for errors): the
/// per-phase union of the syscalls. An entry seen in several inputs gets
/// the sum of the counts and the smallest `first_seen_ms`. The inputs must
/// have the same `default_action`; `architectures` are united; `name` and
/// `ready` come from the first input that has them.
pub fn merge(inputs: &[(PathBuf, Profile)]) -> Result<Profile, ProfileError> {
    let Some((path_a, first)) = inputs.first() else {
        return Ok(Profile::new(None));
    };
    let mut out = first.clone();
    let mut index: BTreeMap<Phase, BTreeMap<(String, String), usize>> = BTreeMap::new();
    for (phase, set) in &out.phases {
        let idx = index.entry(*phase).or_default();
        for (i, e) in set.syscalls.iter().enumerate() {
            idx.entry((e.name.clone(), e.arch.clone())).or_insert(i);
        }
    }
    for (path_b, p) in &inputs[1..] {
        let (a, b) = (
            normalized_action(&out.default_action),
            normalized_action(&p.default_action),
        );
        if a != b {
            return Err(ProfileError::MergeMismatch {
                path_a: path_a.clone(),
                path_b: path_b.clone(),
                field: "default_action",
                a: out.default_action.clone(),
                b: p.default_action.clone(),
            });
        }
        for arch in &p.architectures {
            if !out.architectures.contains(arch) {
                out.architectures.push(arch.clone());
            }
        }
        if out.name.is_none() {
            out.name.clone_from(&p.name);
        }
        if out.ready.is_none() {
            out.ready.clone_from(&p.ready);
        }
        for (phase, set) in &p.phases {
            let target = out.phases.entry(*phase).or_default();
            let idx = index.entry(*phase).or_default();
            for e in &set.syscalls {
                match idx.get(&(e.name.clone(), e.arch.clone())) {
                    Some(&i) => {
                        let t = &mut target.syscalls[i];
                        t.count = match (t.count, e.count) {
                            (Some(x), Some(y)) => Some(x.saturating_add(y)),
                            (x, y) => x.or(y),
                        };
                        t.first_seen_ms = match (t.first_seen_ms, e.first_seen_ms) {
                            (Some(x), Some(y)) => Some(x.min(y)),
                            (x, y) => x.or(y),
                        };
                        t.nr = t.nr.or(e.nr);
                    }
                    None => {
                        idx.insert((e.name.clone(), e.arch.clone()), target.syscalls.len());
                        target.syscalls.push(e.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The difference of one phase between two profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseDiff {
    pub phase: Phase,
    pub in_a: bool,
    pub in_b: bool,
    /// Labels ([`entry_label`]) only in A, sorted.
    pub only_a: Vec<String>,
    /// Labels only in B, sorted.
    pub only_b: Vec<String>,
}

impl PhaseDiff {
    pub fn is_empty(&self) -> bool {
        self.in_a == self.in_b && self.only_a.is_empty() && self.only_b.is_empty()
    }
}

/// The differences between two profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDiff {
    /// `(a, b)` when the default actions differ.
    pub default_action: Option<(String, String)>,
    /// `(a, b)` when the architectures differ (as sets).
    pub architectures: Option<(Vec<String>, Vec<String>)>,
    /// Every phase present in A or B, in order.
    pub phases: Vec<PhaseDiff>,
}

impl ProfileDiff {
    pub fn is_empty(&self) -> bool {
        self.default_action.is_none()
            && self.architectures.is_none()
            && self.phases.iter().all(PhaseDiff::is_empty)
    }
}

/// Compares two profiles phase by phase.
pub fn diff(a: &Profile, b: &Profile) -> ProfileDiff {
    let default_action = (normalized_action(&a.default_action)
        != normalized_action(&b.default_action))
    .then(|| (a.default_action.clone(), b.default_action.clone()));
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    let architectures = (set(&a.architectures) != set(&b.architectures))
        .then(|| (a.architectures.clone(), b.architectures.clone()));
    let empty = PhaseSet::default();
    let phases = Phase::ALL
        .into_iter()
        .filter(|p| a.phases.contains_key(p) || b.phases.contains_key(p))
        .map(|phase| {
            let la: BTreeSet<String> = phase_labels(a.phase(phase).unwrap_or(&empty))
                .into_iter()
                .collect();
            let lb: BTreeSet<String> = phase_labels(b.phase(phase).unwrap_or(&empty))
                .into_iter()
                .collect();
            PhaseDiff {
                phase,
                in_a: a.phases.contains_key(&phase),
                in_b: b.phases.contains_key(&phase),
                only_a: la.difference(&lb).cloned().collect(),
                only_b: lb.difference(&la).cloned().collect(),
            }
        })
        .collect();
    ProfileDiff {
        default_action,
        architectures,
        phases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, count: u64, first: u64) -> SyscallEntry {
        SyscallEntry {
            name: name.into(),
            arch: "x86_64".into(),
            nr: None,
            count: Some(count),
            first_seen_ms: Some(first),
        }
    }

    fn profile(phase: Phase, entries: Vec<SyscallEntry>) -> Profile {
        let mut p = Profile::new(Some("m".into()));
        p.phases.insert(phase, PhaseSet { syscalls: entries });
        p
    }

    #[test]
    fn merge_sums_and_mins() {
        let a = profile(
            Phase::Boot,
            vec![entry("read", 2, 10), entry("mount", 1, 5)],
        );
        let mut b = profile(Phase::Boot, vec![entry("read", 3, 4), entry("write", 1, 7)]);
        b.phases.insert(
            Phase::Running,
            PhaseSet {
                syscalls: vec![entry("read", 1, 100)],
            },
        );
        let m = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        let boot = &m.phases[&Phase::Boot].syscalls;
        assert_eq!(boot.len(), 3);
        assert_eq!((boot[0].count, boot[0].first_seen_ms), (Some(5), Some(4)));
        assert_eq!(m.phases[&Phase::Running].syscalls.len(), 1);
        b.default_action = "SCMP_ACT_KILL_PROCESS".into();
        let e = merge(&[("a.json".into(), a), ("b.json".into(), b)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.json") && e.contains("b.json") && e.contains("default_action"),
            "{e}"
        );
    }

    #[test]
    fn diff_phases() {
        let a = profile(Phase::Boot, vec![entry("read", 1, 1), entry("mount", 1, 1)]);
        let b = profile(Phase::Boot, vec![entry("read", 9, 9), entry("write", 1, 1)]);
        assert!(diff(&a, &a.clone()).is_empty());
        let d = diff(&a, &b);
        assert!(!d.is_empty());
        assert_eq!(d.phases[0].only_a, vec!["mount".to_string()]);
        assert_eq!(d.phases[0].only_b, vec!["write".to_string()]);
    }

    #[test]
    fn atomic_write() {
        let dir = std::env::temp_dir().join(format!("speaker-ops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.json");
        let p = profile(Phase::Boot, vec![entry("read", 1, 1)]);
        write_profile_atomic(&path, &p).unwrap();
        write_profile_atomic(&path, &p).unwrap();
        let back: Profile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, p);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty());
        let e = write_profile_atomic(dir.join("no/such/dir/p.json"), &p).unwrap_err();
        assert!(e.to_string().contains("no/such/dir/p.json"), "{e}");
    }
}
