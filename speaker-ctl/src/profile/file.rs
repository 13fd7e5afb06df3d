//! Reading and writing profile files: speaker profiles (`schema:
//! speaker.profile/v1`) and Docker/OCI seccomp profiles, validated against
//! libseccomp's syscall tables.
use std::path::Path;

use super::error::ProfileError;
use super::filter::PhaseFilter;
use super::oci::{self, OciProfile};
use super::schema::{Phase, Profile, SCHEMA_V1};
use super::translate::phase_filter_at;

/// A profile file as read, before conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFile {
    Speaker(Profile),
    Oci(OciProfile),
}

fn read_text(path: &Path) -> Result<String, ProfileError> {
    std::fs::read_to_string(path).map_err(|error| ProfileError::Read { path: path.to_path_buf(), error })
}

/// Reads a speaker or Docker/OCI profile, telling them apart by `schema`
/// (speaker) or `defaultAction` (OCI). Not validated.
pub fn read_profile_file(path: impl AsRef<Path>) -> Result<ProfileFile, ProfileError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ProfileError::from_serde(path, "JSON", &e))?;
    let Some(obj) = value.as_object() else {
        return Err(ProfileError::UnknownFormat { path: path.to_path_buf() });
    };
    match obj.get("schema") {
        Some(serde_json::Value::String(s)) if s == SCHEMA_V1 => {
            serde_json::from_str(&text).map(ProfileFile::Speaker).map_err(|e| ProfileError::from_serde(path, "speaker profile", &e))
        }
        Some(other) => Err(ProfileError::UnknownSchema { path: path.to_path_buf(), found: other.to_string() }),
        None if obj.contains_key("defaultAction") => {
            serde_json::from_str(&text).map(ProfileFile::Oci).map_err(|e| ProfileError::from_serde(path, "Docker/OCI seccomp profile", &e))
        }
        None => Err(ProfileError::UnknownFormat { path: path.to_path_buf() }),
    }
}

/// Reads a Docker/OCI seccomp profile (no speaker profiles).
pub fn load_oci(path: impl AsRef<Path>) -> Result<OciProfile, ProfileError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| ProfileError::from_serde(path, "Docker/OCI seccomp profile", &e))
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

/// Loads a speaker profile (validated; the boot phase is required) or a
/// Docker/OCI profile, converted to a one-phase (boot) speaker profile with
/// [`oci::to_profile`] (what it allows unconditionally on x86_64).
pub fn load_profile(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
    let path = path.as_ref();
    match read_profile_file(path)? {
        ProfileFile::Speaker(p) => {
            validate(&p, path)?;
            if p.phase(Phase::Boot).is_none() {
                return Err(ProfileError::MissingPhase { path: path.to_path_buf(), phase: Phase::Boot });
            }
            Ok(p)
        }
        ProfileFile::Oci(o) => oci::to_profile(&o, Phase::Boot, path),
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

/// Writes a profile as pretty JSON, atomically (temporary file, fsync,
/// rename: readers see the old or the new file, never a partial one).
pub fn write_profile_atomic(path: impl AsRef<Path>, profile: &Profile) -> Result<(), ProfileError> {
    let path = path.as_ref();
    let mut text = serde_json::to_string_pretty(profile).expect("a Profile always serializes");
    text.push('\n');
    crate::sys::fs::write_atomic(path, text.as_bytes()).map_err(|error| ProfileError::Write { path: path.to_path_buf(), error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::merge::tests::{entry, profile};
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
        assert!(matches!(e, ProfileError::Invalid { .. }) && e.to_string().contains("phases"), "{e}");
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
