//! speaker-pause: the pod sandbox's process (what Kubernetes' `pause`
//! does): holds the pod's namespaces, reaps the children that reach it,
//! and exits 0 on SIGTERM or SIGINT.  The CRI tests' sandbox image has it
//! as its entrypoint (no registry to pull `registry.k8s.io/pause` from).
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

fn main() {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        set.add(s);
    }
    if let Err(e) = set.thread_block() {
        eprintln!("speaker-pause: cannot block SIGTERM, SIGINT and SIGCHLD: {e}");
        std::process::exit(1);
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(s) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    if s == WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("speaker-pause: sigwait: {e}");
                std::process::exit(1);
            }
        }
    }
}
