//! Suite 3: no request lost. Clients hammer nginx (a new connection per
//! request) and redis (PING on kept connections) in the speaker container,
//! first without switching, then while speaker.ko switches the container
//! back and forth between its running and boot programs (both allow the
//! service) `switches` times; every failed request is counted.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::BenchError;
use super::results::Results;
use super::service::{Container, Service, SERVICES};
use super::stats::percentile;
use super::Options;
use crate::device::Device;
use crate::profile::schema::Phase;

const CLIENTS: usize = 2;

/// Runs `CLIENTS` clients of `svc` while `during` runs; latencies (ms) and
/// failures.
fn with_clients(svc: Service, during: impl FnOnce() -> Result<(), BenchError>) -> Result<(Vec<f64>, Vec<String>), BenchError> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS).map(|_| s.spawn(|| svc.hammer(|| !stop.load(Ordering::Relaxed)))).collect();
        let r = during();
        stop.store(true, Ordering::Relaxed);
        let (mut lat, mut failed) = (Vec::new(), Vec::new());
        for h in handles {
            let (l, f) = h.join().unwrap_or_default();
            lat.extend(l);
            failed.extend(f);
        }
        r.map(|_| (lat, failed))
    })
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    let dev = Device::open()?;
    for svc in SERVICES {
        let name = svc.name();
        let c = Container::start(opts, svc, "speaker")?;
        let kid = c.state()?.kernel_id().to_string();
        let [running, boot] = c.programs()?;
        let baseline = with_clients(svc, || {
            std::thread::sleep(Duration::from_secs_f64(opts.baseline_secs));
            Ok(())
        })?;
        let t = Instant::now();
        let switching = with_clients(svc, || {
            for i in 0..opts.switches {
                let (prog, phase) = if i % 2 == 0 { (&boot, Phase::Boot) } else { (&running, Phase::Running) };
                dev.switch(&kid, prog, phase.index(), 0)?;
            }
            // Let the clients see the last program for a moment too.
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        })?;
        let secs = t.elapsed().as_secs_f64();
        for (window, (lat, failed)) in [("baseline", &baseline), ("switching", &switching)] {
            res.figure(format!("noloss.{name}.{window}"), lat, "ms/request");
            res.fact(format!("noloss.{name}.{window}.requests"), lat.len() + failed.len());
            res.fact(format!("noloss.{name}.{window}.failed"), failed.len());
            res.fact(format!("noloss.{name}.{window}.p50_ms"), percentile(lat, 50.0));
            res.fact(format!("noloss.{name}.{window}.p99_ms"), percentile(lat, 99.0));
            if let Some(e) = failed.first() {
                res.fact(format!("noloss.{name}.{window}.first_failure"), e.clone());
            }
        }
        res.fact(format!("noloss.{name}.switches"), opts.switches);
        res.fact(format!("noloss.{name}.switching_secs"), secs);
        res.check(&format!("{name}: failed requests during {} switches", opts.switches), switching.1.len() as f64, "= 0");
        for p in [50.0, 99.0] {
            let (b, s) = (percentile(&baseline.0, p), percentile(&switching.0, p));
            if b > 0.0 {
                res.check(&format!("{name}: p{p} latency switching / baseline"), s / b, "");
            }
        }
        println!(
            "  {name}: baseline {} requests ({} failed), during {} switches in {secs:.1} s: {} requests ({} failed); p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms",
            baseline.0.len(),
            baseline.1.len(),
            opts.switches,
            switching.0.len(),
            switching.1.len(),
            percentile(&baseline.0, 50.0),
            percentile(&switching.0, 50.0),
            percentile(&baseline.0, 99.0),
            percentile(&switching.0, 99.0)
        );
        drop(c);
    }
    Ok(())
}
