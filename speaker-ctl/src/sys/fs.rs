//! Files: the one way input files are opened ([`open_input`],
//! [`read_input`]), atomic writes and error texts.
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory `path` lives in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync'd, then renamed over `path` (readers see the old or the
/// new file, never a partial one).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, None)
}

/// [`write_atomic`], the new file getting the permission bits and (as far
/// as this process may give them) the owner and group of `like`, the file
/// it replaces (else those of a new file).
pub fn write_atomic_like(path: &Path, bytes: &[u8], like: Option<&std::fs::Metadata>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = like.map(|m| m.mode() & 0o7777);
    let owner = like.map(|m| (m.uid(), m.gid()));
    write_atomic_inner(path, bytes, mode, owner)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    write_atomic_inner(path, bytes, mode, None)
}

fn write_atomic_inner(path: &Path, bytes: &[u8], mode: Option<u32>, owner: Option<(u32, u32)>) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir: PathBuf = dir_of(path).to_path_buf();
    let tmp = dir.join(format!(".{}.tmp.{}.{}", file_name.to_string_lossy(), std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Some((uid, gid)) = owner {
            // Best effort: only root may give a file away; the mode below
            // still applies (set after: chown clears setuid bits).
            let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
        }
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
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
    result
}

/// Opens an input file (a profile, a saved log) without waiting and
/// without surprises: a regular file, or a pipe or FIFO (`<(journalctl
/// -k)`), read until its writer closes it.  A FIFO nobody writes reads as
/// empty instead of blocking the command forever; a directory, a device
/// (`/dev/zero`, a terminal) or a socket is refused.
pub fn open_input(path: &Path) -> io::Result<std::fs::File> {
    // O_NONBLOCK: opening a FIFO without a writer does not wait for one.
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let t = f.metadata()?.file_type();
    let refused = if t.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        ""
    };
    if !refused.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{refused}, not a file (give a regular file or a pipe)")));
    }
    // Reads block again (a pipe's writer may not have written yet); a
    // FIFO without a writer still reads as end of file.
    use std::os::fd::AsRawFd;
    nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()))?;
    Ok(f)
}

/// Reads an input file ([`open_input`]) whole, refusing one larger than
/// `max` bytes (`Err(None)`; an I/O error is `Err(Some(error))`).
pub fn read_input(path: &Path, max: u64) -> Result<Vec<u8>, Option<io::Error>> {
    let f = open_input(path).map_err(Some)?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).map_err(Some)?;
    if bytes.len() as u64 > max {
        return Err(None);
    }
    Ok(bytes)
}

/// An io::Error's text without its "(os error N)" suffix.
pub fn error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The text of an errno value ("No such file or directory").
pub fn errno_text(errno: i32) -> String {
    error_text(&io::Error::from_raw_os_error(errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("speaker-sys-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_atomic(&dir.join("no/such/dir/f"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inputs_are_files_or_pipes() {
        let dir = std::env::temp_dir().join(format!("speaker-sys-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No writer: empty at once, not a wait.
        assert_eq!(read_input(&fifo, 10).unwrap(), b"");
        for (p, why) in [("/dev/zero", "a character device"), ("/dev/null", "a character device")] {
            let e = read_input(Path::new(p), 10).unwrap_err().unwrap();
            assert!(e.to_string().contains(why), "{p}: {e}");
        }
        assert_eq!(read_input(&dir, 10).unwrap_err().unwrap().raw_os_error(), Some(libc::EISDIR));
        std::fs::write(dir.join("f"), b"0123456789A").unwrap();
        assert!(read_input(&dir.join("f"), 10).unwrap_err().is_none(), "too large");
        assert_eq!(read_input(&dir.join("f"), 11).unwrap(), b"0123456789A");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errno_text_has_no_suffix() {
        assert_eq!(errno_text(libc::ENOENT), "No such file or directory");
    }
}
