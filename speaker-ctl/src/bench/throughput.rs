//! Suite 4: what nginx (`ab`) and redis (`redis-benchmark`) serve per
//! second as OCI containers with no seccomp filter, with Docker's default
//! profile (crun installs it) and in speaker's running phase.
//!
//! The variants are interleaved: each round starts, warms up, measures and
//! stops every variant in turn (none, docker, speaker, none, docker, …), so
//! whatever drifts during the run (the host's load, the guest's caches)
//! hits every variant alike, and each ratio is the median of the per-round
//! ratios with their range ([`Results::paired_ratio`]): a ratio whose
//! rounds straddle 1 by more than 1 % is reported as not resolved.
use super::error::BenchError;
use super::results::{Results, THROUGHPUT_VARIANTS};
use super::service::{Container, Service, SERVICES};
use super::Options;

pub const VARIANTS: [&str; 3] = THROUGHPUT_VARIANTS;

const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// One measurement of `variant`: a fresh container, a warm-up (page cache,
/// the filters' action caches), then `opts.requests` requests.
fn once(opts: &Options, svc: Service, variant: &str) -> Result<f64, BenchError> {
    let c = Container::start(opts, svc, variant)?;
    svc.load(opts.requests / 4 + 1)?;
    // What the last container's teardown left to the kernel's workers runs
    // now, not during the measurement (free under -icount: an idle guest's
    // clock jumps ahead).
    std::thread::sleep(SETTLE);
    let rps = svc.load(opts.requests)?;
    drop(c);
    Ok(rps)
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    res.fact("clock.throughput", opts.clock.name());
    res.fact("throughput.requests_per_run", opts.requests);
    for svc in SERVICES {
        let name = svc.name();
        let mut rps = vec![Vec::new(); VARIANTS.len()];
        for round in 0..opts.runs {
            let line: Vec<String> = VARIANTS
                .iter()
                .enumerate()
                .map(|(i, variant)| {
                    let r = once(opts, svc, variant)?;
                    rps[i].push(r);
                    Ok(format!("{variant} {r:.0}"))
                })
                .collect::<Result<_, BenchError>>()?;
            println!("  {name} round {}: {} requests/s", round + 1, line.join(", "));
        }
        for (i, variant) in VARIANTS.iter().enumerate() {
            res.figure_rounds(format!("throughput.{name}.{variant}"), &rps[i], "requests/s");
        }
        let f = |v: &str| format!("throughput.{name}.{v}");
        res.paired_ratio(&format!("{name}: Docker default / no seccomp"), &f("docker"), &f("none"), ">= 0.99");
        res.paired_ratio(&format!("{name}: speaker running / no seccomp"), &f("speaker"), &f("none"), ">= 0.99");
        res.paired_ratio(&format!("{name}: speaker running / Docker default"), &f("speaker"), &f("docker"), "");
    }
    Ok(())
}
