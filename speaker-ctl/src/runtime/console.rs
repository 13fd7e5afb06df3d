//! The terminal of a speaker container `run` in the foreground: with
//! `process.terminal` and no `--console-socket`, crun's and runc's own
//! `run` make the pseudo-terminal themselves and copy between it and their
//! standard streams.  speaker-runtime's `run` is `crun create` + `start`,
//! and `crun create` wants a console socket for a terminal ("use
//! --console-socket with create when a terminal is used"), so
//! speaker-runtime is its own console socket: it receives the terminal's
//! master from crun, then relays as crun would (its standard input in raw
//! mode when that is a terminal, the window size copied).  Found by runc's
//! integration suite (`runc run` of `runc spec`'s default configuration).
use anyhow::{bail, Context, Result};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::container::notify::listener::receive_fd;
use crate::container::state::state_root;
use crate::sys::process::is_tty;

/// Whether a configuration asks for a terminal (`process.terminal`).
pub fn wants_terminal(config: &serde_json::Value) -> bool {
    config.pointer("/process/terminal").and_then(serde_json::Value::as_bool).unwrap_or(false)
}

/// A console socket of speaker-runtime's own, in a private directory
/// under speaker's state directory (removed when it is dropped).
pub struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a fresh socket for container `id`.
    pub fn bind(id: &str) -> Result<ConsoleSocket> {
        Self::bind_in(&state_root(), id)
    }

    /// [`ConsoleSocket::bind`] under `root`.
    pub fn bind_in(root: &Path, id: &str) -> Result<ConsoleSocket> {
        let dir = root.join(format!(".console-{}-{id}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot make the console socket's directory {}", dir.display()))?;
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).with_context(|| format!("cannot listen on {}", path.display()));
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(ConsoleSocket { dir, path, listener })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The terminal's master, once crun has sent it (it does during
    /// `create`, so it is waiting by the time `create` returns).
    pub fn receive(&self, timeout: Duration) -> Result<OwnedFd> {
        self.listener.set_nonblocking(true)?;
        let deadline = Instant::now() + timeout;
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    bail!("crun sent no terminal to {} within {} s", self.path.display(), timeout.as_secs())
                }
                Err(e) => return Err(e).with_context(|| format!("cannot accept on {}", self.path.display())),
            }
        };
        conn.set_nonblocking(false)?;
        receive_fd(&conn).with_context(|| format!("crun's terminal on {}", self.path.display()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The relay between a terminal's master and our standard streams.
pub struct Relay {
    /// Our standard input's settings before raw mode, to put back.
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

/// Starts relaying: the master's output to our standard output, our
/// standard input to the master (until its end).  Standard input, if it
/// is a terminal, goes into raw mode (the container's terminal does the
/// echoing and line editing) and lends its window size to the container's.
pub fn relay(master: OwnedFd) -> Result<Relay> {
    let mut saved = None;
    if is_tty(0) {
        copy_window_size(&master);
        let stdin = std::io::stdin();
        if let Ok(t) = tcgetattr(stdin.as_fd()) {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_ok() {
                saved = Some(t);
            }
        }
    }
    let input_master = std::fs::File::from(master.try_clone().context("cannot duplicate the terminal's master")?);
    // Not joined: it may sit in a read of our standard input until we exit.
    std::thread::spawn(move || {
        let mut to = input_master;
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let output = std::thread::spawn(move || {
        let mut from = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        let mut stdout = std::io::stdout();
        // EIO once the last holder of the terminal's other end is gone.
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if stdout.write_all(&buf[..n]).and_then(|_| stdout.flush()).is_err() {
                break;
            }
        }
    });
    Ok(Relay { saved, output: Some(output) })
}

impl Relay {
    /// After the container's process has exited: what it wrote is copied
    /// out (waiting at most `grace` for the terminal to close: a process
    /// it left behind may keep it open), and standard input's settings
    /// put back.
    pub fn finish(mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        if let Some(out) = self.output.take() {
            while !out.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if out.is_finished() {
                let _ = out.join();
            }
        }
        // (Drop puts the settings back.)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Our standard input's window size onto the terminal `master`.
fn copy_window_size(master: &OwnedFd) {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` into `ws`, which is
    // one; fd 0 is a terminal (checked by the caller).
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from `ws`; `master`
        // is an open terminal master.
        let _ = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::{openpty, OpenptyResult};
    use std::os::unix::net::UnixStream;

    #[test]
    fn terminal_is_what_the_configuration_says() {
        assert!(wants_terminal(&serde_json::json!({"process": {"terminal": true}})));
        assert!(!wants_terminal(&serde_json::json!({"process": {"terminal": false}})));
        assert!(!wants_terminal(&serde_json::json!({"process": {}})));
        assert!(!wants_terminal(&serde_json::json!({})));
    }

    #[test]
    fn the_master_sent_over_the_socket_is_received_and_the_socket_removed() {
        let root = std::env::temp_dir().join(format!("speaker-console-test-{}", std::process::id()));
        let sock = ConsoleSocket::bind_in(&root, "c1").unwrap();
        let path = sock.path().to_path_buf();
        assert!(path.starts_with(&root));
        let OpenptyResult { master, slave } = openpty(None, None).unwrap();
        // As crun does: connect, send the master with SCM_RIGHTS, close.
        let conn = UnixStream::connect(&path).unwrap();
        let fds = [master.as_raw_fd()];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        let iov = [std::io::IoSlice::new(b"/dev/pts/x")];
        nix::sys::socket::sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None).unwrap();
        drop(conn);
        drop(master);
        let got = sock.receive(Duration::from_secs(5)).unwrap();
        // What the container writes on its terminal comes out of the master.
        std::fs::File::from(slave.try_clone().unwrap()).write_all(b"hello\n").unwrap();
        let mut buf = [0u8; 64];
        let n = std::fs::File::from(got).read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("hello"), "{:?}", &buf[..n]);
        drop(sock);
        assert!(!path.exists() && !path.parent().unwrap().exists(), "the socket's directory is removed");
        let silent = ConsoleSocket::bind_in(&root, "c2").unwrap();
        let e = silent.receive(Duration::from_millis(50)).unwrap_err();
        assert!(e.to_string().contains("crun sent no terminal"), "{e}");
        drop(silent);
        let _ = std::fs::remove_dir_all(&root);
    }
}
