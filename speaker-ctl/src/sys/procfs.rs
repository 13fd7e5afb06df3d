//! Scans of /proc: processes, tasks, namespaces, seccomp state and
//! listening TCP ports.
use std::io;
use std::path::PathBuf;

/// The pids of all processes (numeric entries of /proc).
pub fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())).collect()
}

/// A field of `/proc/<pid>/status` (the text after `name:`, trimmed).
pub fn status_field(pid: i32, name: &str) -> io::Result<Option<String>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_string())))
}

/// The state letter of a `/proc/.../stat` line (the field after the
/// command's closing parenthesis; the command may hold any character).
fn stat_state(stat: &str) -> Option<&str> {
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').next())
}

/// Is process `pid` alive (and not a zombie)?
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_state(&stat).is_some_and(|s| s != "Z"),
        Err(_) => false,
    }
}

/// Where process `pid`'s threads wait, for a message: each distinct
/// "STATE in WCHAN" of its tasks (`S in do_sys_poll`), or "gone".
pub fn wait_points(pid: i32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return "gone".into() };
    let mut points: Vec<String> = Vec::new();
    let until = std::time::Instant::now() + WCHAN_PATIENCE;
    for task in dir.flatten() {
        let Some(point) = wait_point(&task.path(), until) else { continue };
        if !points.contains(&point) {
            points.push(point);
        }
    }
    if points.is_empty() {
        "gone".into()
    } else {
        points.join(", ")
    }
}

/// How long [`wait_points`] reads again the tasks whose wait channel reads
/// empty, all together (a kernel without kallsyms never names one).
const WCHAN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// One task's "STATE in WCHAN" (or its state alone), `None` if it is gone.
/// The kernel names no wait channel while a task runs or is runnable, even
/// for a moment (a service that polls wakes up often, and a loaded machine
/// leaves it queued longer), and the state and the channel are two reads.
/// So the two are read again, a millisecond apart, until they agree (a
/// sleeping state, then a channel) or `until`: a task that never sleeps
/// meanwhile is reported by its state alone (`R`: busy).
fn wait_point(task: &std::path::Path, until: std::time::Instant) -> Option<String> {
    loop {
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        let state = stat_state(&stat).unwrap_or("?").to_string();
        let wchan = std::fs::read_to_string(task.join("wchan")).unwrap_or_default();
        let wchan = wchan.trim();
        let asleep = !matches!(state.as_str(), "R" | "Z" | "X" | "?");
        if asleep && !wchan.is_empty() && wchan != "0" {
            return Some(format!("{state} in {wchan}"));
        }
        if matches!(state.as_str(), "Z" | "X") || std::time::Instant::now() >= until {
            return Some(state);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The processes `tracer` traces (`TracerPid:` of their status).
pub fn traced_by(tracer: u32) -> Vec<i32> {
    let me = tracer.to_string();
    pids().into_iter().filter(|&pid| status_field(pid, "TracerPid").ok().flatten().as_deref() == Some(me.as_str())).collect()
}

/// The namespace `/proc/<pid>/ns/<kind>` links to.
pub fn namespace(pid: i32, kind: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()
}

/// One pid per network namespace among `pids`.
pub fn one_per_netns(pids: Vec<i32>) -> Vec<i32> {
    let mut seen = std::collections::HashSet::new();
    pids.into_iter().filter(|&pid| namespace(pid, "net").is_some_and(|ns| seen.insert(ns))).collect()
}

/// The number of threads of process `pid` (0 if it is gone).
pub fn task_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// The threads of every process in the PID namespace of `pid`.
pub fn tasks_in_pid_namespace(pid: i32) -> Option<usize> {
    let ns = namespace(pid, "pid")?;
    Some(pids().into_iter().filter(|&p| namespace(p, "pid").as_ref() == Some(&ns)).map(task_count).sum())
}

/// The processes in the PID namespace of `pid`, if that namespace is not
/// this process's own (a container's, not the host's); `None` otherwise.
pub fn pids_in_other_pid_namespace(pid: i32) -> Option<Vec<i32>> {
    let ns = namespace(pid, "pid")?;
    if namespace(std::process::id() as i32, "pid").as_ref() == Some(&ns) {
        return None;
    }
    Some(pids().into_iter().filter(|&p| namespace(p, "pid").as_ref() == Some(&ns)).collect())
}

/// `Seccomp_filters:` of `/proc/PID/status`: how many filters the task has.
pub fn seccomp_filter_count(pid: i32) -> io::Result<u32> {
    status_field(pid, "Seccomp_filters")?
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/status has no Seccomp_filters line")))
}

/// Local ports in LISTEN state (`st` 0A) in a `/proc/<pid>/net/tcp{,6}` text.
pub fn listening_ports(text: &str) -> impl Iterator<Item = u16> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut f = line.split_whitespace();
        let local = f.nth(1)?;
        let state = f.nth(1)?;
        if state != "0A" {
            return None;
        }
        u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
    })
}

/// The TCP ports listening in the network namespace of `pid`, sorted;
/// `None` if `pid`'s files cannot be read (it is gone).
pub fn listening_ports_of(pid: i32) -> Option<Vec<u16>> {
    let mut any = false;
    let mut ports = Vec::new();
    for f in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) {
            any = true;
            ports.extend(listening_ports(&text));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    any.then_some(ports)
}

/// Whether a TCP socket listens on `port` in the network namespace of `pid`;
/// `None` if `pid`'s files cannot be read (it is gone).
pub fn port_listening(pid: i32, port: u16) -> Option<bool> {
    listening_ports_of(pid).map(|ports| ports.contains(&port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
";
        let ports: Vec<u16> = listening_ports(text).collect();
        assert_eq!(ports, vec![8080]);
        let text6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(listening_ports(text6).collect::<Vec<_>>(), vec![80]);
    }

    #[test]
    fn own_process_is_seen() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(task_count(me) >= 1);
        assert!(seccomp_filter_count(me).is_ok());
        assert!(pids().contains(&me));
    }
}
