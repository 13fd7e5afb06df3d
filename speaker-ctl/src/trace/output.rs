//! Writing the profile: atomically, through the profile module's
//! [`write_profile_atomic`] (temporary file in the same directory, fsync,
//! rename), so that a reader never sees a torn file even while the trace is
//! still going; and checking beforehand that it can be written.
use anyhow::{bail, Result};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use crate::profile::schema::Profile;
use crate::profile::{write_profile_atomic, ProfileError};
use crate::sys::fs::{dir_of, error_text as io_text};

fn temp_path(path: &Path, tag: &str) -> PathBuf {
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir_of(path).join(format!(".{base}.{}.{tag}", std::process::id()))
}

/// Writes `profile` (pretty JSON) to `path` atomically.
pub fn write_profile(path: &Path, profile: &Profile) -> Result<()> {
    match write_profile_atomic(path, profile) {
        Ok(()) => Ok(()),
        Err(ProfileError::Write { error, .. }) => {
            bail!("cannot write profile '{}': {}", path.display(), io_text(&error))
        }
        Err(e) => bail!("cannot write profile '{}': {e}", path.display()),
    }
}

/// Checks, before anything is started, that `path` can be written: it is not
/// a directory and a file can be created and renamed in its directory.
pub fn check_writable(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        bail!("cannot write profile '{shown}': it is a directory (give a file name with -o)");
    }
    let probe = temp_path(path, "probe");
    let result =
        OpenOptions::new().write(true).create_new(true).open(&probe).and_then(|_| std::fs::rename(&probe, temp_path(path, "probe2")));
    let _ = std::fs::remove_file(&probe);
    let _ = std::fs::remove_file(temp_path(path, "probe2"));
    if let Err(e) = result {
        bail!(
            "cannot write profile '{shown}': {} (check that directory '{}' exists and is \
             writable, or choose another -o path)",
            io_text(&e),
            dir_of(path).display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_check() {
        let dir = std::env::temp_dir().join(format!("speaker-write-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p.json");
        check_writable(&p).unwrap();
        write_profile(&p, &Profile::new(Some("one".into()))).unwrap();
        write_profile(&p, &Profile::new(Some("two".into()))).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("\"two\""));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let e = write_profile(&p.join("x"), &Profile::new(None)).unwrap_err().to_string();
        assert!(e.starts_with("cannot write profile '") && !e.contains("os error"), "{e}");
        assert!(check_writable(&dir).is_err());
        assert!(check_writable(&p.join("x")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
