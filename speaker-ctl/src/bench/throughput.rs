//! Suite 4: what nginx (`ab`) and redis (`redis-benchmark`) serve per
//! second as OCI containers with no seccomp filter, with Docker's default
//! profile (crun installs it) and in speaker's running phase, under
//! speaker.ko (`speaker`) and under the notify engine (`notify`); and how
//! long each takes to boot (from `run -d` to its first answer: under the
//! notify engine every boot-only syscall is a round trip to the
//! supervisor).
//!
//! The variants are interleaved: each round starts, warms up, measures and
//! stops every variant in turn (none, docker, speaker, none, docker, …), so
//! whatever drifts during the run (the host's load, the guest's caches)
//! hits every variant alike, and each ratio is the median of the per-round
//! ratios with their range ([`Results::paired_ratio`]): a ratio whose
//! rounds straddle 1 by more than 1 % is reported as not resolved.
use super::error::BenchError;
use super::results::{Results, BOOT_VARIANTS, THROUGHPUT_VARIANTS};
use super::service::{Container, Service, SERVICES};
use super::Options;

pub const VARIANTS: [&str; 4] = THROUGHPUT_VARIANTS;

const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// One measurement of `variant`: a fresh container (its boot time, ms), a
/// warm-up (page cache, the filters' action caches), then `opts.requests`
/// requests (requests/s).
fn once(opts: &Options, svc: Service, variant: &str) -> Result<(f64, f64), BenchError> {
    let c = Container::start(opts, svc, variant)?;
    let boot_ms = c.booted.as_secs_f64() * 1e3;
    svc.load(opts.requests / 4 + 1)?;
    // What the last container's teardown left to the kernel's workers runs
    // now, not during the measurement (free under -icount: an idle guest's
    // clock jumps ahead).
    std::thread::sleep(SETTLE);
    let rps = svc.load(opts.requests)?;
    drop(c);
    Ok((rps, boot_ms))
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    res.fact("clock.throughput", opts.clock.name());
    res.fact("throughput.requests_per_run", opts.requests);
    for svc in SERVICES {
        let name = svc.name();
        let mut rps = vec![Vec::new(); VARIANTS.len()];
        let mut boot = vec![Vec::new(); VARIANTS.len()];
        for round in 0..opts.runs {
            let line: Vec<String> = VARIANTS
                .iter()
                .enumerate()
                .map(|(i, variant)| {
                    let (r, b) = once(opts, svc, variant)?;
                    rps[i].push(r);
                    boot[i].push(b);
                    Ok(format!("{variant} {r:.0} ({b:.0} ms boot)"))
                })
                .collect::<Result<_, BenchError>>()?;
            println!("  {name} round {}: {} requests/s", round + 1, line.join(", "));
        }
        for (i, variant) in VARIANTS.iter().enumerate() {
            res.figure_rounds(format!("throughput.{name}.{variant}"), &rps[i], "requests/s");
            if BOOT_VARIANTS.contains(variant) {
                res.figure_rounds(format!("boot.{name}.{variant}"), &boot[i], "ms");
            }
        }
        let f = |v: &str| format!("throughput.{name}.{v}");
        res.paired_ratio(&format!("{name}: Docker default / no seccomp"), &f("docker"), &f("none"), ">= 0.99");
        res.paired_ratio(&format!("{name}: speaker running / no seccomp"), &f("speaker"), &f("none"), ">= 0.99");
        res.paired_ratio(&format!("{name}: speaker running / Docker default"), &f("speaker"), &f("docker"), "");
        res.paired_ratio(&format!("{name}: notify running / no seccomp"), &f("notify"), &f("none"), ">= 0.99");
        res.paired_ratio(&format!("{name}: notify running / speaker running"), &f("notify"), &f("speaker"), ">= 0.99");
        let b = |v: &str| format!("boot.{name}.{v}");
        res.paired_ratio(&format!("{name} boot: speaker.ko / no seccomp"), &b("speaker"), &b("none"), "");
        res.paired_ratio(&format!("{name} boot: notify / no seccomp"), &b("notify"), &b("none"), "");
        res.paired_ratio(&format!("{name} boot: notify / speaker.ko"), &b("notify"), &b("speaker"), "");
    }
    Ok(())
}
