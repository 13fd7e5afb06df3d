//! The one output writer of every command: `-o FILE` targets and standard
//! output.
//!
//! * `-o -` is standard output (so are `/dev/stdout`, `/dev/fd/1` and
//!   `/proc/self/fd/1`).
//! * A regular file, or a path that does not exist yet, is replaced
//!   atomically (a temporary file in the same directory, fsync'd, renamed
//!   over it: readers see the old or the new file, never a partial one).
//!   A symbolic link to a regular file keeps being a link: its target is
//!   replaced.  An existing file keeps its permissions.
//! * Anything else (a character device such as `/dev/null`, a FIFO, a
//!   socket, `/dev/stdout` and the other `/dev/fd/N`, `/proc/self/fd/N`) is
//!   opened and written in place: it is never replaced by a regular file.
//! * Standard output closed by its reader (`| head -1`: `EPIPE`) is
//!   [`StdoutClosed`], which the command line turns into a quiet exit; any
//!   other failure to write it (`> /dev/full`: `ENOSPC`) is an error.
//! * Standard error is written through [`errln!`]: a message that cannot be
//!   written (`2> /dev/full`, a closed pipe) is dropped, never a panic, and
//!   never changes the exit status (there is nowhere left to report it).
//!   `println!`/`eprintln!` are refused by clippy (speaker-ctl/clippy.toml).
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::fs::{dir_of, error_text};

/// Standard output was closed by its reader (`EPIPE`): not an error of the
/// command, which ends quietly (as grep and strace do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

/// A failed write to an output target, saying which one.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {}: it is a directory (give a file name, or - for standard output)", path.display())]
    IsDirectory { path: PathBuf },
    #[error("cannot write {}: {} ({})", path.display(), error_text(error), write_hint(error))]
    Write { path: PathBuf, error: io::Error },
    #[error("cannot write to standard output: {}", error_text(.0))]
    Stdout(io::Error),
    #[error(transparent)]
    Closed(#[from] StdoutClosed),
}

/// What to do about a failed write, by its cause.
pub fn write_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => "check that the directory exists, or pick another path",
        Some(libc::EACCES) | Some(libc::EPERM) => "check the permissions of the file and its directory, or pick another path",
        Some(libc::EROFS) => "the file system is read-only: pick another path",
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "the file system is full: free some space, or pick another path",
        _ => "pick another path",
    }
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output (`-`).
    Stdout,
    /// A file path (see the module documentation for how it is written).
    Path(PathBuf),
}

/// How a path target is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Temporary file + rename over this path (the link's target for a
    /// symbolic link).
    Replace(PathBuf),
    /// Opened and written where it is (devices, FIFOs, sockets, /proc and
    /// /dev/fd paths).
    InPlace,
}

impl Target {
    /// `-` (and `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`) is standard
    /// output, anything else a path.
    pub fn parse(s: &OsStr) -> Target {
        if ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"].iter().any(|o| s == *o) {
            Target::Stdout
        } else {
            Target::Path(PathBuf::from(s))
        }
    }

    /// An optional `-o` value: none means standard output.
    pub fn or_stdout(p: Option<&Path>) -> Target {
        p.map(|p| Target::parse(p.as_os_str())).unwrap_or(Target::Stdout)
    }

    /// How it is shown in messages.
    pub fn display(&self) -> String {
        match self {
            Target::Stdout => "<stdout>".to_string(),
            Target::Path(p) => p.display().to_string(),
        }
    }

    /// Whether writing replaces a regular file (so that it can be
    /// rewritten as often as wanted, e.g. a trace in progress).
    pub fn is_replaced(&self) -> bool {
        match self {
            Target::Stdout => false,
            Target::Path(p) => matches!(method(p), Ok(Method::Replace(_))),
        }
    }

    /// Checks, before any work, that the target can be written: not a
    /// directory, and (for a replaced file) a file can be created and
    /// renamed in its directory.
    pub fn check(&self) -> Result<(), OutputError> {
        let Target::Path(path) = self else { return Ok(()) };
        match method(path)? {
            Method::InPlace => Ok(()),
            Method::Replace(real) => {
                let probe = temp_path(&real, "probe");
                let renamed = temp_path(&real, "probe2");
                let result =
                    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).and_then(|_| std::fs::rename(&probe, &renamed));
                let _ = std::fs::remove_file(&probe);
                let _ = std::fs::remove_file(&renamed);
                result.map_err(|error| OutputError::Write { path: path.clone(), error })
            }
        }
    }

    /// Writes `bytes` to the target (see the module documentation).
    pub fn write(&self, bytes: &[u8]) -> Result<(), OutputError> {
        match self {
            Target::Stdout => write_stdout(bytes),
            Target::Path(path) => write_path(path, bytes),
        }
    }
}

/// How `path` is written: in place unless it is (or links to) a regular
/// file or does not exist.
pub fn method(path: &Path) -> Result<Method, OutputError> {
    // /dev/stdout, /dev/fd/N, /proc/self/fd/N: whatever they stand for is
    // written in place (renaming over them would replace a symbolic link
    // of the system, or fail).
    if in_pseudo_fs(path) {
        return Ok(Method::InPlace);
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(OutputError::IsDirectory { path: path.to_path_buf() }),
        Ok(m) if m.is_file() => {
            let real = match std::fs::symlink_metadata(path) {
                Ok(l) if l.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
                _ => path.to_path_buf(),
            };
            if in_pseudo_fs(&real) {
                return Ok(Method::InPlace);
            }
            // A file this process may not write is not replaced behind its
            // back (rename needs only the directory), as a shell's > would
            // not write it.
            nix::unistd::access(&real, nix::unistd::AccessFlags::W_OK)
                .map_err(|e| OutputError::Write { path: path.to_path_buf(), error: io::Error::from_raw_os_error(e as i32) })?;
            Ok(Method::Replace(real))
        }
        Ok(m) => {
            let t = m.file_type();
            debug_assert!(t.is_char_device() || t.is_block_device() || t.is_fifo() || t.is_socket());
            Ok(Method::InPlace)
        }
        // A new path; a dangling link is written through (the file it
        // names is made, the link stays), like a shell's >.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Method::Replace(link_target(path))),
        Err(error) => Err(OutputError::Write { path: path.to_path_buf(), error }),
    }
}

/// Where a chain of symbolic links starting at `path` ends (`path` itself
/// if it is no link; at most 40 links, as the kernel follows).
fn link_target(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(t) => p = dir_of(&p).join(t),
                Err(_) => break,
            },
            _ => break,
        }
    }
    p
}

/// Paths under /dev/fd, /dev/std*, /proc: descriptors, not files to replace.
fn in_pseudo_fs(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.starts_with("/proc/") || s.starts_with("/dev/fd/") || matches!(s.as_ref(), "/dev/stdout" | "/dev/stderr" | "/dev/stdin")
}

fn temp_path(path: &Path, tag: &str) -> PathBuf {
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir_of(path).join(format!(".{base}.{}.{tag}", std::process::id()))
}

fn write_path(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let err = |error| OutputError::Write { path: path.to_path_buf(), error };
    match method(path)? {
        Method::Replace(real) => {
            // The new file keeps the old one's permissions and owner.
            let like = std::fs::metadata(&real).ok();
            super::fs::write_atomic_like(&real, bytes, like.as_ref()).map_err(err)
        }
        Method::InPlace => {
            // No O_CREAT: it exists (or is a descriptor). O_TRUNC only
            // matters for a regular file behind /dev/fd/N, as a shell's >.
            let mut f = std::fs::OpenOptions::new().write(true).truncate(true).custom_flags(libc::O_NOCTTY).open(path).map_err(err)?;
            f.write_all(bytes).and_then(|_| f.flush()).map_err(err)
        }
    }
}

/// Maps a write error on standard output: `EPIPE` is [`StdoutClosed`].
pub fn stdout_error(e: io::Error) -> OutputError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        OutputError::Closed(StdoutClosed)
    } else {
        OutputError::Stdout(e)
    }
}

/// Writes `bytes` to standard output and flushes.
pub fn write_stdout(bytes: &[u8]) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|_| out.flush()).map_err(stdout_error)
}

/// Writes formatted text to standard output (the [`outln!`] and [`out!`]
/// macros), flushing at once (so that a follower's lines arrive as they
/// happen and a closed pipe is seen at the next line).
pub fn print(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_fmt(args).and_then(|_| out.flush()).map_err(stdout_error)
}

/// `println!` that returns a [`Result`] (`OutputError`) instead of
/// panicking when standard output is closed or fails.
macro_rules! outln {
    () => { $crate::sys::output::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::sys::output::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that returns a [`Result`] (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::sys::output::print(format_args!($($arg)*)) };
}

/// Writes formatted text to standard error (the [`errln!`] macro); a
/// failure is ignored (see the module documentation).
pub fn print_err(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.flush());
}

/// `eprintln!` that never panics: a message standard error cannot take is
/// dropped.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::sys::output::print_err(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics (see [`errln!`]).
macro_rules! err {
    ($($arg:tt)*) => { $crate::sys::output::print_err(format_args!($($arg)*)) };
}

pub(crate) use {err, errln, out, outln};

/// An error and its causes on one line, each cause once (a context that
/// already quotes its cause does not repeat it), without the "(os error
/// N)" of I/O errors: what speaker-ctl and speaker-runtime print after
/// "error: ".
pub fn error_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(|c| strip_os_error(&c.to_string())) {
        if out.contains(&cause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause);
    }
    out
}

/// `text` without the " (os error N)" std appends to I/O errors.
fn strip_os_error(text: &str) -> String {
    let mut s = text.to_string();
    while let Some(i) = s.find(" (os error ") {
        match s[i..].find(')') {
            Some(j) => s.replace_range(i..i + j + 1, ""),
            None => break,
        }
    }
    s
}

/// Whether an error (or any of its causes) is a closed standard output.
pub fn is_stdout_closed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<StdoutClosed>().is_some() || matches!(c.downcast_ref::<OutputError>(), Some(OutputError::Closed(_))) {
            return true;
        }
        // Wrapped `#[error(transparent)]` (e.g. a ProfileError): the
        // wrapper shows, and is, the closed stdout.
        if c.to_string() == StdoutClosed.to_string() {
            return true;
        }
        cur = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("speaker-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn regular_files_are_replaced_and_keep_their_mode() {
        let d = dir("regular");
        let p = d.join("f");
        let t = Target::Path(p.clone());
        assert!(t.is_replaced());
        t.check().unwrap();
        t.write(b"one").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        t.write(b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file left");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_to_regular_files_stay_links() {
        let d = dir("link");
        std::fs::write(d.join("real"), b"old").unwrap();
        std::os::unix::fs::symlink("real", d.join("link")).unwrap();
        Target::Path(d.join("link")).write(b"new").unwrap();
        assert!(std::fs::symlink_metadata(d.join("link")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(d.join("real")).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn devices_and_descriptors_are_written_in_place() {
        assert_eq!(method(Path::new("/dev/null")).unwrap(), Method::InPlace);
        assert_eq!(method(Path::new("/dev/stdout")).unwrap(), Method::InPlace);
        assert_eq!(method(Path::new("/proc/self/fd/1")).unwrap(), Method::InPlace);
        Target::Path("/dev/null".into()).write(b"x").unwrap();
        assert!(matches!(method(Path::new("/")), Err(OutputError::IsDirectory { .. })));
        assert_eq!(Target::parse(OsStr::new("-")), Target::Stdout);
    }

    #[test]
    fn error_lines_name_each_cause_once_without_os_error_numbers() {
        let io = anyhow::Error::from(io::Error::from_raw_os_error(libc::ENOENT));
        let e = io.context("reading /x: No such file or directory (os error 2)");
        assert_eq!(error_line(&e), "reading /x: No such file or directory");
        let e = anyhow::anyhow!("No such file or directory").context("cannot read /x: No such file or directory").context("container 'c'");
        assert_eq!(error_line(&e), "container 'c': cannot read /x: No such file or directory");
    }

    #[test]
    fn closed_stdout_is_recognised_through_anyhow() {
        let e = anyhow::Error::from(stdout_error(io::Error::from(io::ErrorKind::BrokenPipe))).context("printing");
        assert!(is_stdout_closed(e.as_ref()));
        let e = anyhow::Error::from(stdout_error(io::Error::from(io::ErrorKind::Other)));
        assert!(!is_stdout_closed(e.as_ref()));
    }
}
