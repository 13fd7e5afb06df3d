//! Reading and writing profile files: speaker profiles (`schema:
//! speaker.profile/v1`) and Docker/OCI seccomp profiles, validated against
//! libseccomp's syscall tables.
use std::path::Path;

use super::error::ProfileError;
use super::filter::PhaseFilter;
use super::oci::{self, OciProfile};
use super::schema::{Phase, Profile, SCHEMA_V1};
use super::translate::phase_filter_at;
use super::validate::{self, Loaded};
use crate::sys::output::Target;

/// A profile file as read, before conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFile {
    Speaker(Profile),
    Oci(OciProfile),
}

/// Reads a speaker or Docker/OCI profile, telling them apart by `schema`
/// (speaker) or `defaultAction` (OCI), checked by the validator
/// ([`super::validate`]).
pub fn read_profile_file(path: impl AsRef<Path>) -> Result<ProfileFile, ProfileError> {
    Ok(match validate::load(path.as_ref())? {
        Loaded::Speaker(p) => ProfileFile::Speaker(p),
        Loaded::Oci(o) => ProfileFile::Oci(o),
    })
}

/// Reads a Docker/OCI seccomp profile (no speaker profiles).
pub fn load_oci(path: impl AsRef<Path>) -> Result<OciProfile, ProfileError> {
    let path = path.as_ref();
    match validate::load(path)? {
        Loaded::Oci(o) => Ok(o),
        Loaded::Speaker(_) => Err(ProfileError::BadList {
            path: path.to_path_buf(),
            msg: "a speaker profile, not a Docker/OCI seccomp profile (give an OCI profile, e.g. Docker's default)".to_string(),
        }),
    }
}

/// Checks every phase of a speaker profile read from `path`: default
/// action, architectures, and that libseccomp resolves every syscall on its
/// ABI (which `architectures` lists).
pub fn validate(profile: &Profile, path: &Path) -> Result<(), ProfileError> {
    if profile.schema != SCHEMA_V1 {
        return Err(ProfileError::UnknownSchema { path: path.to_path_buf(), found: format!("\"{}\"", profile.schema) });
    }
    for &phase in profile.phases.keys() {
        phase_filter_at(profile, phase, path)?;
    }
    Ok(())
}

/// Loads a speaker profile, validated ([`super::validate`]; the boot phase
/// is required), where a speaker profile is expected (`run`, the runtime,
/// `merge`, `learn`, `switch --profile`): a Docker/OCI profile is refused,
/// saying what a speaker profile could not express of it.
pub fn load_profile(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
    let path = path.as_ref();
    match validate::load(path)? {
        Loaded::Speaker(p) => runnable(p, path),
        Loaded::Oci(o) => Err(ProfileError::Problems {
            path: path.to_path_buf(),
            problems: vec![validate::oci_where_speaker_expected(&o)],
            kind_oci: true,
        }),
    }
}

/// A speaker profile as `run` and the runtime need it: every phase
/// compiles, and there is a boot phase.
fn runnable(p: Profile, path: &Path) -> Result<Profile, ProfileError> {
    validate(&p, path)?;
    if p.phase(Phase::Boot).is_none() {
        return Err(ProfileError::MissingPhase { path: path.to_path_buf(), phase: Phase::Boot });
    }
    Ok(p)
}

/// Like [`load_profile`], but a Docker/OCI profile is read as a one-phase
/// (boot) speaker profile with [`oci::to_profile`] (what it allows
/// unconditionally on x86_64), with notes saying what was dropped (for
/// `profile show`, `diff`, `table`: reading, never running).
pub fn load_profile_lossy(path: impl AsRef<Path>) -> Result<(Profile, Vec<String>), ProfileError> {
    let path = path.as_ref();
    match validate::load(path)? {
        // Checked as read (the file is read once: a pipe has no second time).
        Loaded::Speaker(p) => Ok((runnable(p, path)?, Vec::new())),
        Loaded::Oci(o) => {
            let p = oci::to_profile(&o, Phase::Boot, path)?;
            let notes = validate::oci_losses(&o)
                .into_iter()
                .map(|l| {
                    format!(
                        "{}: a Docker/OCI profile, read as one boot phase of what it allows unconditionally; left out: {l}",
                        path.display()
                    )
                })
                .collect();
            Ok((p, notes))
        }
    }
}

/// Loads the filter of one phase (`speaker-ctl run --boot FILE --running
/// FILE`): a Docker/OCI profile (applied as a runtime would, see
/// [`oci::to_phase_filter`]) or a speaker profile with exactly one phase.
pub fn load_phase_file(path: impl AsRef<Path>) -> Result<PhaseFilter, ProfileError> {
    let path = path.as_ref();
    match read_profile_file(path)? {
        ProfileFile::Speaker(p) => {
            validate(&p, path)?;
            let phases: Vec<Phase> = p.phases.keys().copied().collect();
            match phases.as_slice() {
                [phase] => phase_filter_at(&p, *phase, path),
                _ => Err(ProfileError::PhaseCount {
                    path: path.to_path_buf(),
                    count: phases.len(),
                    phases: if phases.is_empty() {
                        "none".to_string()
                    } else {
                        phases.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                    },
                }),
            }
        }
        ProfileFile::Oci(o) => oci::to_phase_filter(&o, path),
    }
}

/// What `profile validate` found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCheck {
    /// One line per problem, `FILE: LOCATION: problem`; none: valid.
    pub problems: Vec<String>,
    /// For a valid Docker/OCI file: what it is for, and what a speaker
    /// profile could not take of it.
    pub note: Option<String>,
}

/// Everything wrong with profile file `path` as a consumer would find it:
/// for a speaker profile (`speaker-ctl run --profile`, the runtime,
/// `merge`) the validator's problems, a missing boot phase, and whatever
/// stops a phase from compiling; for a Docker/OCI one (`run --boot`,
/// Docker, `profile export`'s output) the validator's problems and whatever
/// stops it from compiling on a node of each architecture it names.
pub fn check_profile_file(path: &Path) -> FileCheck {
    let problems = |problems: Vec<String>| FileCheck { problems, note: None };
    match validate::load(path) {
        Ok(Loaded::Oci(o)) => check_phase_file(path, &o),
        Ok(Loaded::Speaker(p)) => problems(check_speaker_file(path, p)),
        Err(ProfileError::Problems { problems: found, .. }) => problems(found.iter().map(|p| format!("{}: {p}", path.display())).collect()),
        Err(ProfileError::Read { error, .. }) => {
            problems(vec![format!("{}: (file): cannot read: {}", path.display(), crate::sys::fs::error_text(&error))])
        }
        Err(e) => problems(vec![e.to_string()]),
    }
}

/// The node architectures a Docker/OCI profile names (`architectures`,
/// `archMap`), this machine's when it names none.
pub fn oci_nodes(oci: &OciProfile) -> Vec<super::Arch> {
    let named = oci.architectures.iter().chain(oci.arch_map.iter().map(|m| &m.architecture));
    let nodes: std::collections::BTreeSet<super::Arch> =
        named.filter_map(|a| super::Arch::from_scmp_name(a)).map(super::Arch::kernel).collect();
    if nodes.is_empty() {
        vec![super::Arch::native()]
    } else {
        nodes.into_iter().collect()
    }
}

fn check_phase_file(path: &Path, o: &OciProfile) -> FileCheck {
    let shown = path.display();
    let nodes = oci_nodes(o);
    let mut problems = Vec::new();
    for &node in &nodes {
        if let Err(e) = oci::to_phase_filter_on(o, path, node).and_then(|f| super::bpf::compile(&f)) {
            let text = e.to_string();
            let prefix = format!("{shown}: ");
            problems.push(if text.starts_with(&prefix) { text } else { format!("{shown}: (compile for {node}): {text}") });
        }
    }
    if !problems.is_empty() {
        return FileCheck { problems, note: None };
    }
    let lost = validate::oci_losses(o);
    let lost = if lost.is_empty() { String::new() } else { format!("; a speaker profile could not express its {}", lost.join("; ")) };
    let nodes: Vec<&str> = nodes.iter().map(|n| n.name()).collect();
    FileCheck {
        problems,
        note: Some(format!(
            "{shown}: a Docker/OCI seccomp profile for {}: the filter of one phase ('speaker-ctl run --boot FILE', \
             'docker run --security-opt seccomp=FILE'), not a speaker profile ('run --profile' and speaker-runtime take those){lost}",
            nodes.join(" and ")
        )),
    }
}

fn check_speaker_file(path: &Path, p: Profile) -> Vec<String> {
    let shown = path.display();
    if p.phase(Phase::Boot).is_none() {
        return vec![format!("{shown}: phases: no boot phase (a profile for 'speaker-ctl run' and speaker-runtime needs phases.boot)")];
    }
    let compiled = (|| -> Result<(), ProfileError> {
        validate(&p, path)?;
        let sets = super::policy::phase_sets(&p, &super::policy::CompileOptions::default(), path)?;
        for &phase in sets.profile.phases.keys() {
            super::bpf::compile(&sets.filter(phase, path)?)?;
        }
        Ok(())
    })();
    match compiled {
        Ok(()) => Vec::new(),
        Err(e) => {
            let text = e.to_string();
            let prefix = format!("{shown}: ");
            vec![if text.starts_with(&prefix) { text } else { format!("{shown}: (compile): {text}") }]
        }
    }
}

/// A profile as written: pretty JSON and a newline.
pub fn profile_text(profile: &Profile) -> String {
    let mut text = serde_json::to_string_pretty(profile).expect("a Profile always serializes");
    text.push('\n');
    text
}

/// Writes a profile to an output target ([`Target`]: a regular file is
/// replaced atomically, a device or FIFO written in place, `-` is
/// standard output).
pub fn write_profile(target: &Target, profile: &Profile) -> Result<(), ProfileError> {
    target.write(profile_text(profile).as_bytes()).map_err(ProfileError::from)
}

/// Writes a profile as pretty JSON to `path` through [`write_profile`]
/// (atomically for a regular file: readers see the old or the new file,
/// never a partial one).
pub fn write_profile_atomic(path: impl AsRef<Path>, profile: &Profile) -> Result<(), ProfileError> {
    write_profile(&Target::Path(path.as_ref().to_path_buf()), profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::labels::tests::{entry, profile};
    use std::path::PathBuf;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("speaker-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn json_error_has_position() {
        let p = tmp("bad.json", "{\n  \"schema\": \"speaker.profile/v1\",\n  \"phases\": {,}\n}\n");
        let e = load_profile(&p).unwrap_err();
        assert!(matches!(e, ProfileError::Json { line: 3, .. }), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:3:", p.display())), "{e}");
    }

    #[test]
    fn schema_errors() {
        let p = tmp("v2.json", r#"{"schema": "speaker.profile/v2", "phases": {}}"#);
        let e = load_profile(&p).unwrap_err().to_string();
        assert!(e.contains("v2.json") && e.contains("speaker.profile/v2") && e.contains(SCHEMA_V1), "{e}");
        let p = tmp("other.json", r#"{"hello": 1}"#);
        assert!(matches!(load_profile(&p), Err(ProfileError::UnknownFormat { .. })));
        let p = tmp("nophases.json", r#"{"schema": "speaker.profile/v1"}"#);
        let e = load_profile(&p).unwrap_err();
        assert!(matches!(e, ProfileError::Problems { .. }) && e.to_string().contains("phases: missing"), "{e}");
        let p = tmp("missing.json", "");
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(load_profile(&p), Err(ProfileError::Read { .. })));
    }

    #[test]
    fn phase_file_needs_one_phase() {
        let two = r#"{"schema": "speaker.profile/v1", "phases": {
            "boot": {"syscalls": [{"name": "read"}]}, "running": {"syscalls": [{"name": "write"}]}}}"#;
        let p = tmp("two.json", two);
        load_profile(&p).unwrap();
        let e = load_phase_file(&p).unwrap_err();
        assert!(matches!(e, ProfileError::PhaseCount { count: 2, .. }), "{e}");
        let one = r#"{"schema": "speaker.profile/v1", "phases": {"running": {"syscalls": [{"name": "write"}]}}}"#;
        let p = tmp("one.json", one);
        assert_eq!(load_phase_file(&p).unwrap().rules.len(), 1);
        assert!(matches!(load_profile(&p), Err(ProfileError::MissingPhase { .. })));
    }

    #[test]
    fn atomic_write() {
        let dir = std::env::temp_dir().join(format!("speaker-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.json");
        let p = profile(Phase::Boot, vec![entry("read", 1, 1)]);
        write_profile_atomic(&path, &p).unwrap();
        write_profile_atomic(&path, &p).unwrap();
        let back: Profile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, p);
        let leftovers: Vec<_> =
            std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp.")).collect();
        assert!(leftovers.is_empty());
        let e = write_profile_atomic(dir.join("no/such/dir/p.json"), &p).unwrap_err();
        assert!(e.to_string().contains("no/such/dir/p.json"), "{e}");
    }
}
