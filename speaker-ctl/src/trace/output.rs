//! Writing the profile through the one output writer
//! ([`crate::sys::output`]): a regular file is replaced atomically, so a
//! reader never sees a torn file even while the trace is still going (it is
//! rewritten as the trace goes); a device, FIFO or `-` (standard output)
//! gets the profile once, at the end.  And checking beforehand that it can
//! be written.
use anyhow::{anyhow, Result};

use crate::profile::schema::Profile;
use crate::profile::{self, ProfileError};
use crate::sys::fs::{dir_of, error_text as io_text};
use crate::sys::output::{OutputError, Target};

fn explain(target: &Target, e: OutputError) -> anyhow::Error {
    let shown = target.display();
    match e {
        OutputError::IsDirectory { .. } => anyhow!("cannot write profile '{shown}': it is a directory (give a file name with -o)"),
        // ENOENT names the directory to check; other causes the writer's
        // hint (full, read-only, permissions).
        OutputError::Write { path, error } if error.raw_os_error() == Some(libc::ENOENT) => anyhow!(
            "cannot write profile '{shown}': {} (check that directory '{}' exists and is writable, or choose another -o path)",
            io_text(&error),
            dir_of(&path).display()
        ),
        OutputError::Write { error, .. } => {
            anyhow!("cannot write profile '{shown}': {} ({})", io_text(&error), crate::sys::output::write_hint(&error))
        }
        OutputError::Closed(c) => anyhow::Error::new(c),
        other => anyhow!("cannot write profile '{shown}': {other}"),
    }
}

/// Writes `profile` (pretty JSON) to `target`.
pub fn write_profile(target: &Target, profile: &Profile) -> Result<()> {
    match profile::write_profile(target, profile) {
        Ok(()) => Ok(()),
        Err(ProfileError::Output(e)) => Err(explain(target, e)),
        Err(e) => Err(anyhow!("cannot write profile '{}': {e}", target.display())),
    }
}

/// Checks, before anything is started, that `target` can be written.
pub fn check_writable(target: &Target) -> Result<()> {
    target.check().map_err(|e| explain(target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_check() {
        let dir = std::env::temp_dir().join(format!("speaker-write-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = Target::Path(dir.join("p.json"));
        check_writable(&p).unwrap();
        write_profile(&p, &Profile::new(Some("one".into()))).unwrap();
        write_profile(&p, &Profile::new(Some("two".into()))).unwrap();
        assert!(std::fs::read_to_string(dir.join("p.json")).unwrap().contains("\"two\""));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let e = write_profile(&Target::Path(dir.join("p.json/x")), &Profile::new(None)).unwrap_err().to_string();
        assert!(e.starts_with("cannot write profile '") && !e.contains("os error"), "{e}");
        assert!(check_writable(&Target::Path(dir.clone())).is_err());
        assert!(check_writable(&Target::Path(dir.join("p.json/x"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
