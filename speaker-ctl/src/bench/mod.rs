//! `speaker-ctl bench`: what speaker costs, measured side by side in one
//! boot of the guest. scripts/bench boots twice: the CPU-cost suites
//! (filter, throughput, tracing, memory) under QEMU's -icount, where guest
//! time counts instructions and a busy host cannot move a figure, and the
//! wall-clock suites (switch, service: switch latency, restart vs switch,
//! requests while switching) without it; `speaker-ctl bench-merge` joins
//! the two results.
//!
//! One file per suite: [`filter_cost`] (a syscall under no filter, Docker's
//! default profile, speaker's running filter fresh, swapped in, and swapped
//! under an application's stacked filter), [`switch`] (switch latency
//! against tasks), [`restart`] (against restarting the nginx container), [`no_loss`]
//! (requests while switching), [`throughput`] (nginx and redis under each
//! filter), [`tracing`] (nginx under each tracer), [`memory`] (what
//! speaker.ko and the monitor hold). [`report`] and [`svg`] write the
//! table and the plots; [`results`] holds what is written.
pub mod bpf_path;
pub mod error;
pub mod filter_cost;
pub mod memory;
pub mod no_loss;
pub mod probe;
pub mod report;
pub mod restart;
pub mod results;
pub mod service;
pub mod stats;
pub mod svg;
pub mod switch;
pub mod throughput;
pub mod tracing;

use std::path::PathBuf;

pub use error::BenchError;
pub use results::{required_figures, Clock, Ratio, Results};
pub use stats::{Figure, Resolution};

/// The suites, in the order they run.
pub const SUITES: [&str; 6] = ["filter", "switch", "service", "throughput", "tracing", "memory"];

/// What to measure and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where results.json, results.md and the plots go.
    pub out: PathBuf,
    /// Measurements per figure (the median and range are reported).
    pub runs: usize,
    /// A short run (few iterations), every figure still present.
    pub smoke: bool,
    /// The guest's clock (scripts/bench boots with `qemu/run --icount` for
    /// the CPU-cost suites and says so).
    pub clock: Clock,
    /// Suites to run (names from [`SUITES`]).
    pub suites: Vec<String>,
    pub threads: Vec<usize>,
    pub processes: Vec<usize>,
    /// Syscalls per filter-cost measurement.
    pub syscalls: u64,
    /// Requests per throughput measurement (ab, redis-benchmark).
    pub requests: u64,
    /// Switches while clients hammer a service.
    pub switches: usize,
    /// Seconds of the no-switch baseline of the no-loss suite.
    pub baseline_secs: f64,
    /// Holds the OCI bundles `nginx-none`, `nginx-docker`, `nginx-speaker`
    /// and the same for redis (see qemu/bench/bench-guest.sh).
    pub bundles: PathBuf,
    /// Docker's default seccomp profile (OCI JSON).
    pub docker_profile: PathBuf,
    /// nginx's speaker profile (its running set is the running filter of
    /// the filter-cost suite).
    pub nginx_profile: PathBuf,
}

impl Options {
    fn wants(&self, suite: &str) -> bool {
        self.suites.iter().any(|s| s == suite)
    }
}

/// Runs the chosen suites and writes results.json, results.md and the
/// plots into `opts.out`; prints progress and the table on stdout.
pub fn run(opts: &Options) -> Result<Results, BenchError> {
    if opts.runs == 0 {
        return Err(BenchError::Usage("--runs must be at least 1".into()));
    }
    if let Some(s) = opts.suites.iter().find(|s| !SUITES.contains(&s.as_str())) {
        return Err(BenchError::Usage(format!("unknown suite '{s}' (suites: {})", SUITES.join(", "))));
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| BenchError::io(format!("creating {}", opts.out.display()), e))?;
    let mut res = Results::new(opts);
    let mut failed = false;
    let started = std::time::Instant::now();
    let step = |name: &str| println!("bench [{:.0}s] {name}", started.elapsed().as_secs_f64());
    if opts.wants("filter") {
        step("filter cost per syscall");
        let r = filter_cost::run(opts, &mut res);
        failed |= suite(&mut res, "filter_cost", r);
    }
    if opts.wants("switch") {
        step("switch latency against tasks");
        let r = switch::run(opts, &mut res);
        failed |= suite(&mut res, "switch", r);
    }
    if opts.wants("service") {
        step("nginx under speaker: switch vs restart, monitor memory");
        let r = restart::run(opts, &mut res);
        failed |= suite(&mut res, "restart", r);
        step("nginx and redis under speaker: no request lost while switching");
        let r = no_loss::run(opts, &mut res);
        failed |= suite(&mut res, "no_loss", r);
    }
    if opts.wants("throughput") {
        step("service throughput: no seccomp, Docker's default, speaker's running phase");
        let r = throughput::run(opts, &mut res);
        failed |= suite(&mut res, "throughput", r);
    }
    if opts.wants("tracing") {
        step("tracing cost on nginx");
        let r = tracing::run(opts, &mut res);
        failed |= suite(&mut res, "tracing", r);
    }
    if opts.wants("memory") {
        step("speaker.ko's memory per container and per kept program");
        let r = memory::run(opts, &mut res);
        failed |= suite(&mut res, "memory", r);
    }
    res.meta.wall_secs = started.elapsed().as_secs_f64();
    step("writing results");
    report::write(&res, &opts.out)?;
    if failed {
        return Err(BenchError::Usage(format!("a suite failed (see above; what it measured is in {})", opts.out.display())));
    }
    Ok(res)
}

/// Reports a suite's error (recorded as fact `error.<name>`) without
/// stopping the others; true if it failed.
fn suite(res: &mut Results, name: &str, r: Result<(), BenchError>) -> bool {
    match r {
        Ok(()) => false,
        Err(e) => {
            println!("bench: {name} failed: {e}");
            res.fact(format!("error.{name}"), e.to_string());
            true
        }
    }
}
