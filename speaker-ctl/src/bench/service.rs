//! nginx and redis as the benchmark runs them: OCI containers through
//! speaker-runtime (`speaker-ctl runtime`, crun underneath) from the
//! bundles qemu/bench/bench-guest.sh writes, readiness probes, one-request
//! clients and the load tools (ab, redis-benchmark).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::BenchError;
use super::Options;
use crate::container::state::ContainerState;
use crate::device::Device;
use crate::profile::schema::Phase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Nginx,
    Redis,
}

pub const SERVICES: [Service; 2] = [Service::Nginx, Service::Redis];

/// redis-benchmark gets this many times the requests of ab: redis serves
/// several times more per second, and redis-benchmark times a test in whole
/// milliseconds (its rate is only as fine as a test is long).
pub const REDIS_FACTOR: u64 = 4;

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Nginx => "nginx",
            Service::Redis => "redis",
        }
    }

    fn addr(self) -> &'static str {
        match self {
            Service::Nginx => "127.0.0.1:80",
            Service::Redis => "127.0.0.1:6379",
        }
    }

    /// One request on a new connection (nginx: GET /, redis: PING).
    pub fn request(self) -> Result<(), String> {
        let mut c = TcpStream::connect(self.addr()).map_err(|e| format!("connect: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
        match self {
            Service::Nginx => http_get(&mut c),
            Service::Redis => redis_ping(&mut c),
        }
    }

    /// Requests on one connection while `keep_going()` (redis keeps its
    /// connection, as clients do; nginx gets a new one per request, as ab
    /// without -k): latency of each in ms, and the failures.
    pub fn hammer(self, keep_going: impl Fn() -> bool) -> (Vec<f64>, Vec<String>) {
        let (mut lat, mut failed) = (Vec::new(), Vec::new());
        let mut conn: Option<TcpStream> = None;
        while keep_going() {
            let t = Instant::now();
            let r = match self {
                Service::Nginx => self.request(),
                Service::Redis => {
                    if conn.is_none() {
                        conn = TcpStream::connect(self.addr()).ok();
                        if let Some(c) = &conn {
                            let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                        }
                    }
                    match conn.as_mut() {
                        Some(c) => redis_ping(c),
                        None => Err("connect failed".into()),
                    }
                }
            };
            match r {
                Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1e3),
                Err(e) => {
                    conn = None;
                    failed.push(e);
                }
            }
        }
        (lat, failed)
    }

    /// Requests per second of the service's load tool (`ab -n N -c 8`,
    /// `redis-benchmark -n N×REDIS_FACTOR -c 8 -t get,set`: the mean of GET
    /// and SET); fails on a failed request.
    pub fn load(self, requests: u64) -> Result<f64, BenchError> {
        let requests = if self == Service::Redis { requests.saturating_mul(REDIS_FACTOR) } else { requests };
        let n = requests.max(1).to_string();
        // ab refuses a concurrency above the number of requests.
        let c = requests.clamp(1, 8).to_string();
        let (prog, args): (&str, Vec<&str>) = match self {
            Service::Nginx => ("ab", vec!["-q", "-n", &n, "-c", &c, "http://127.0.0.1/"]),
            Service::Redis => ("redis-benchmark", vec!["-q", "-n", &n, "-c", &c, "-t", "get,set"]),
        };
        let text = output(prog, &args)?;
        let parse_err = || BenchError::Parse { what: format!("{prog}'s output"), text: text.chars().take(2000).collect() };
        match self {
            Service::Nginx => {
                let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
                let failed = field("Failed requests:").ok_or_else(parse_err)?;
                let complete = field("Complete requests:").ok_or_else(parse_err)?;
                if failed != "0" || complete != n || text.contains("Non-2xx") {
                    return Err(BenchError::Command { cmd: "ab".into(), msg: format!("{complete} complete, {failed} failed") });
                }
                let rps = field("Requests per second:").ok_or_else(parse_err)?;
                rps.split_whitespace().next().and_then(|v| v.parse().ok()).ok_or_else(parse_err)
            }
            Service::Redis => {
                let rates: Vec<f64> = text
                    .split(['\r', '\n'])
                    .filter(|l| l.contains("requests per second") && (l.starts_with("SET:") || l.starts_with("GET:")))
                    .filter(|l| l.contains("p50"))
                    .filter_map(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
                    .collect();
                if rates.len() != 2 {
                    return Err(parse_err());
                }
                Ok(rates.iter().sum::<f64>() / 2.0)
            }
        }
    }
}

fn http_get(c: &mut TcpStream) -> Result<(), String> {
    c.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).map_err(|e| format!("receive: {e}"))?;
    if buf.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("response: {:?}", String::from_utf8_lossy(&buf[..buf.len().min(40)])))
    }
}

fn redis_ping(c: &mut TcpStream) -> Result<(), String> {
    c.write_all(b"*1\r\n$4\r\nPING\r\n").map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 7];
    c.read_exact(&mut buf).map_err(|e| format!("receive: {e}"))?;
    if &buf == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(format!("reply: {:?}", String::from_utf8_lossy(&buf)))
    }
}

/// Runs `prog args` and returns its stdout; an error names its stderr.
pub fn output(prog: &str, args: &[&str]) -> Result<String, BenchError> {
    let cmd = format!("{prog} {}", args.join(" "));
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BenchError::Command { cmd: cmd.clone(), msg: e.to_string() })?;
    if !out.status.success() {
        let msg = format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        return Err(BenchError::Command { cmd, msg });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `speaker-runtime ARGS` (this binary as `speaker-ctl runtime`).
/// Its output goes to a file, not a pipe: `run -d` leaves the monitor and
/// the container holding whatever it got as stdout and stderr.
pub fn runtime(args: &[&str]) -> Result<(), BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("finding speaker-ctl's own path", e))?;
    let cmd = format!("speaker-runtime {}", args.join(" "));
    let log = std::env::temp_dir().join(format!("speaker-bench-runtime-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).map_err(|e| BenchError::io(format!("creating {}", log.display()), e))?;
    let err = file.try_clone().map_err(|e| BenchError::io("dup", e))?;
    let status = Command::new(exe)
        .arg("runtime")
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| BenchError::Command { cmd: cmd.clone(), msg: e.to_string() })?;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(BenchError::Command { cmd, msg: format!("{status}: {}", text.trim()) });
    }
    Ok(())
}

/// Polls `ok` every 20 ms for up to `secs`.
pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Result<(), BenchError> {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > Duration::from_secs(secs) {
            return Err(BenchError::Timeout { what: what.to_string(), secs });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// An OCI container of the benchmark, deleted (forcibly) when dropped.
pub struct Container {
    pub id: String,
    pub service: Service,
    /// From `run -d` to the service's first answer (its boot).
    pub booted: Duration,
}

impl Container {
    pub fn bundle(opts: &Options, service: Service, variant: &str) -> PathBuf {
        opts.bundles.join(format!("{}-{variant}", service.name()))
    }

    /// `speaker-runtime run -d` of bundle `<service>-<variant>`; returns
    /// once the service answers (and, for the variants under a speaker
    /// profile, `speaker` and `notify`, once the monitor switched it to its
    /// running phase).
    pub fn start(opts: &Options, service: Service, variant: &str) -> Result<Container, BenchError> {
        let id = format!("bench-{}-{variant}", service.name());
        let _ = runtime(&["delete", "--force", &id]);
        let bundle = Self::bundle(opts, service, variant);
        let t0 = Instant::now();
        runtime(&["run", "-d", "--bundle", &bundle.display().to_string(), &id])?;
        let mut c = Container { id, service, booted: Duration::ZERO };
        c.wait_answer()?;
        c.booted = t0.elapsed();
        if matches!(variant, "speaker" | "notify") {
            c.wait_running()?;
        }
        Ok(c)
    }

    /// Waits until the service answers (polled every 5 ms: the boot time
    /// is read from it).
    fn wait_answer(&self) -> Result<(), BenchError> {
        let start = Instant::now();
        while self.service.request().is_err() {
            if start.elapsed() > Duration::from_secs(180) {
                return Err(BenchError::Timeout { what: format!("{} answering", self.id), secs: 180 });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits until the service answers (and is in its running phase).
    pub fn wait_ready(&self, running: bool) -> Result<(), BenchError> {
        self.wait_answer()?;
        if running {
            self.wait_running()?;
        }
        Ok(())
    }

    /// Waits for the switch to the running phase: speaker.ko's status of
    /// the container, or under the notify engine (nothing in the kernel
    /// changes) the phase its state records.
    fn wait_running(&self) -> Result<(), BenchError> {
        let what = format!("{}'s switch to its running phase", self.id);
        let st = self.state()?;
        if st.engine == crate::container::engine::Engine::Notify {
            return wait_until(&what, 180, || ContainerState::load(&self.id).is_ok_and(|s| s.current == Phase::Running));
        }
        let dev = Device::open()?;
        let kid = st.kernel_id().to_string();
        wait_until(&what, 180, || dev.status(Some(&kid)).ok().and_then(|s| s.first().map(|e| e.phase)) == Some(Phase::Running.index()))
    }

    pub fn state(&self) -> Result<ContainerState, BenchError> {
        ContainerState::load(&self.id).map_err(|e| BenchError::container(format!("loading {}'s state", self.id), e))
    }

    /// The container's compiled running and boot programs.
    pub fn programs(&self) -> Result<[Vec<crate::profile::SockFilter>; 2], BenchError> {
        let st = self.state()?;
        let prog = |p| {
            st.program(p, crate::profile::Mode::Enforce).map_err(|e| BenchError::container(format!("reading {}'s {p} program", self.id), e))
        };
        Ok([prog(Phase::Running)?, prog(Phase::Boot)?])
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = runtime(&["delete", "--force", &self.id]);
        let svc = self.service;
        let _ = wait_until("the port to close", 30, || svc.request().is_err());
    }
}
