//! `speaker-ctl bench`: the benchmark suites of [`speaker::bench`], inside
//! the full guest (scripts/bench boots it and collects the results).
use anyhow::Result;

use crate::bench::{self, Clock, Options};
use crate::cli::BenchArgs;
use crate::sys::output::{out, outln};

pub fn run(args: BenchArgs) -> Result<i32> {
    let smoke = args.smoke;
    // --smoke shortens what was left at its default.
    let pick = |given: u64, default: u64, short: u64| if smoke && given == default { short } else { given };
    let opts = Options {
        out: args.out,
        runs: pick(args.runs as u64, 7, 3) as usize,
        smoke,
        clock: Clock::parse(&args.clock).unwrap_or_default(),
        suites: args.suites,
        threads: args.threads,
        processes: args.processes,
        syscalls: pick(args.syscalls, 20000, 2000),
        requests: pick(args.requests, 2000, 200),
        switches: pick(args.switches as u64, 100, 10) as usize,
        baseline_secs: if smoke && args.baseline_for == std::time::Duration::from_secs(10) { 2.0 } else { args.baseline_for.as_secs_f64() },
        bundles: args.bundles,
        docker_profile: args.docker_profile,
        nginx_profile: args.nginx_profile,
    };
    let res = bench::run(&opts)?;
    let missed: Vec<&str> = res.ratios.iter().filter(|r| r.met == Some(false)).map(|r| r.name.as_str()).collect();
    outln!(
        "bench: done in {:.0} s; {} ratios, goals missed: {}",
        res.meta.wall_secs,
        res.ratios.len(),
        if missed.is_empty() { "none".into() } else { missed.join("; ") }
    )?;
    Ok(0)
}

/// `bench-payload`: idle threads in idle processes, until killed.
pub fn payload(threads: usize, processes: usize) -> Result<i32> {
    bench::switch::payload(threads, processes)?;
    Ok(0)
}

/// `bench-report DIR`: results.md and the plots again from DIR/results.json.
pub fn report(dir: &std::path::Path) -> Result<i32> {
    let res = bench::report::load(&dir.join("results.json"))?;
    bench::report::write(&res, dir)?;
    Ok(0)
}

/// `bench-merge --out DIR PARTS...`: one results.json (and results.md and
/// plots) from the boots' results.
pub fn merge(out: &std::path::Path, parts: &[std::path::PathBuf]) -> Result<i32> {
    let parts = parts.iter().map(|p| bench::report::load(p)).collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(out)?;
    bench::report::write(&bench::Results::merge(parts), out)?;
    Ok(0)
}

/// `bench-compare RUNS...`: the runs' ratios side by side.
pub fn compare(runs: &[std::path::PathBuf]) -> Result<i32> {
    let runs =
        runs.iter().map(|p| Ok((p.display().to_string(), bench::report::load(p)?))).collect::<Result<Vec<_>, bench::BenchError>>()?;
    out!("{}", bench::report::compare(&runs))?;
    Ok(0)
}
