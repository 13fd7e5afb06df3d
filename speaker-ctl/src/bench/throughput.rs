//! Suite 4: what nginx (`ab`) and redis (`redis-benchmark`) serve per
//! second as OCI containers with no seccomp filter, with Docker's default
//! profile (crun installs it) and in speaker's running phase.
use super::error::BenchError;
use super::results::Results;
use super::service::{Container, SERVICES};
use super::Options;

pub const VARIANTS: [&str; 3] = ["none", "docker", "speaker"];

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    for svc in SERVICES {
        let name = svc.name();
        for variant in VARIANTS {
            let c = Container::start(opts, svc, variant)?;
            // Warm-up (page cache, and the action caches of the filters).
            svc.load(opts.requests / 4 + 1)?;
            let mut rps = Vec::new();
            for _ in 0..opts.runs {
                rps.push(svc.load(opts.requests)?);
            }
            drop(c);
            let m = res.figure(format!("throughput.{name}.{variant}"), &rps, "requests/s").unwrap_or(0.0);
            println!("  {name} ({variant}): {m:.0} requests/s");
        }
        let f = |v: &str| format!("throughput.{name}.{v}");
        res.ratio(&format!("{name}: Docker default / no seccomp"), &f("docker"), &f("none"), ">= 0.99");
        res.ratio(&format!("{name}: speaker running / no seccomp"), &f("speaker"), &f("none"), ">= 0.99");
        res.ratio(&format!("{name}: speaker running / Docker default"), &f("speaker"), &f("docker"), "");
    }
    Ok(())
}
