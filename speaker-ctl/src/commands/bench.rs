//! `speaker-ctl bench`: the benchmark suites of [`speaker::bench`], inside
//! the full guest (scripts/bench boots it and collects the results).
use anyhow::Result;

use crate::bench::{self, Options};
use crate::cli::BenchArgs;

pub fn run(args: BenchArgs) -> Result<i32> {
    let smoke = args.smoke;
    // --smoke shortens what was left at its default.
    let pick = |given: u64, default: u64, short: u64| if smoke && given == default { short } else { given };
    let opts = Options {
        out: args.out,
        runs: pick(args.runs as u64, 7, 3) as usize,
        smoke,
        suites: args.suites,
        threads: args.threads,
        processes: args.processes,
        syscalls: pick(args.syscalls, 20000, 2000),
        requests: pick(args.requests, 100, 40),
        switches: pick(args.switches as u64, 100, 10) as usize,
        baseline_secs: if smoke && args.baseline_secs == 10.0 { 2.0 } else { args.baseline_secs },
        bundles: args.bundles,
        docker_profile: args.docker_profile,
        nginx_profile: args.nginx_profile,
    };
    let res = bench::run(&opts)?;
    let missed: Vec<&str> = res.ratios.iter().filter(|r| r.met == Some(false)).map(|r| r.name.as_str()).collect();
    println!(
        "bench: done in {:.0} s; {} ratios, goals missed: {}",
        res.meta.wall_secs,
        res.ratios.len(),
        if missed.is_empty() { "none".into() } else { missed.join("; ") }
    );
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
