//! results.json, results.md (the README's performance tables) and the two
//! plots (switch-latency.svg, throughput.svg).
use std::fmt::Write;
use std::path::Path;

use super::error::BenchError;
use super::results::{Results, CASES, MODES, PROCESSES, THREADS};
use super::stats::Figure;
use super::svg::{self, Series};
use crate::sys::fs::write_atomic;

fn num(v: f64) -> String {
    if v == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(res: &Results, name: &str) -> String {
    match res.figures.get(name) {
        Some(f) => format!("{} ({}–{})", num(f.median), num(f.min), num(f.max)),
        None => "–".into(),
    }
}

fn fact(res: &Results, name: &str) -> String {
    match res.facts.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Bool(b)) => (if *b { "yes" } else { "no" }).into(),
        Some(serde_json::Value::Number(n)) if n.is_f64() => n.as_f64().map(num).unwrap_or_else(|| n.to_string()),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(v) => v.to_string(),
        None => "–".into(),
    }
}

/// The Markdown report.
pub fn markdown(res: &Results) -> String {
    let mut m = String::new();
    let meta = &res.meta;
    let _ = writeln!(
        m,
        "Kernel {}, median (min–max) of {} runs{}; {}.\n",
        meta.kernel,
        meta.runs,
        if meta.smoke { " (smoke run)" } else { "" },
        meta.note
    );
    let _ = writeln!(m, "| ratio | value | goal | met |\n|---|---|---|---|");
    for r in &res.ratios {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(m, "| {} | {} | {} | {met} |", r.name, num(r.value), r.goal);
    }
    let deep = fact(res, "filter.probe.deep");
    let _ = writeln!(
        m,
        "\n**Filter cost per syscall** (ns per call; {} calls per run; \"cached\": the kernel's action cache allows it without running the filter; \"insns\": BPF instructions run, all filters of the task)\n",
        fact(res, "filter.calls_per_run")
    );
    let _ = writeln!(m, "| filter | getppid | {deep} (deepest in Docker's list) | syslog (denied) | cached getppid / {deep} / syslog | insns getppid / {deep} / syslog |");
    let _ = writeln!(m, "|---|---|---|---|---|---|");
    for case in CASES {
        let f = |p: &str| cell(res, &format!("filter.{case}.{p}"));
        let c = |k: &str| ["getppid", "deep", "denied"].map(|p| fact(res, &format!("filter.{k}.{case}.{p}"))).join(" / ");
        let _ = writeln!(m, "| {case} | {} | {} | {} | {} | {} |", f("getppid"), f("deep"), f("denied"), c("cached"), c("instructions"));
    }
    let _ = writeln!(m, "\n**Switch latency** (ms; sync waits for the RCU-tasks grace period, deferred does not)\n");
    let _ = writeln!(m, "| container | tasks | sync | deferred |\n|---|---|---|---|");
    for (kind, ns) in [("threads", &THREADS[..]), ("processes", &PROCESSES[..])] {
        for n in ns {
            let k = format!("{kind}.{n}");
            let _ = writeln!(
                m,
                "| {n} {kind} | {} | {} | {} |",
                fact(res, &format!("switch.tasks.{k}")),
                cell(res, &format!("switch.sync.{k}")),
                cell(res, &format!("switch.deferred.{k}"))
            );
        }
    }
    let _ = writeln!(m, "| nginx (speaker-runtime) | | {} | {} |", cell(res, "switch.sync.nginx"), cell(res, "switch.deferred.nginx"));
    let _ = writeln!(m, "| nginx: restart instead (delete + run until it answers) | | {} | |", cell(res, "restart.nginx"));
    let _ = writeln!(m, "\n**Requests while switching** (ms per request, {} clients)\n", 2);
    let _ = writeln!(m, "| service | window | requests | failed | p50 | p99 |\n|---|---|---|---|---|---|");
    for svc in ["nginx", "redis"] {
        for w in ["baseline", "switching"] {
            let k = format!("noloss.{svc}.{w}");
            let label =
                if w == "switching" { format!("{} switches", fact(res, &format!("noloss.{svc}.switches"))) } else { "no switch".into() };
            let _ = writeln!(
                m,
                "| {svc} | {label} | {} | {} | {} | {} |",
                fact(res, &format!("{k}.requests")),
                fact(res, &format!("{k}.failed")),
                fact(res, &format!("{k}.p50_ms")),
                fact(res, &format!("{k}.p99_ms"))
            );
        }
    }
    let _ = writeln!(m, "\n**Throughput** (requests/s: nginx `ab -c 8`, redis `redis-benchmark -c 8 -t get,set`)\n");
    let _ = writeln!(m, "| service | no seccomp | Docker default | speaker running |\n|---|---|---|---|");
    for svc in ["nginx", "redis"] {
        let c = |v: &str| cell(res, &format!("throughput.{svc}.{v}"));
        let _ = writeln!(m, "| {svc} | {} | {} | {} |", c("none"), c("docker"), c("speaker"));
    }
    let _ = writeln!(m, "\n**Tracing nginx** (requests/s under `ab -c 8`)\n");
    let _ = writeln!(m, "| untraced | `trace --mode filter` | `trace --mode ptrace` | `strace -f` |\n|---|---|---|---|");
    let t = MODES.map(|mode| cell(res, &format!("tracing.nginx.{mode}")));
    let _ = writeln!(m, "| {} |", t.join(" | "));
    let _ = writeln!(m, "\n**Memory**\n");
    let _ = writeln!(m, "| what | value |\n|---|---|");
    let _ = writeln!(m, "| speaker.ko per registered container (slab + vmalloc growth) | {} bytes |", cell(res, "memory.per_container"));
    let _ = writeln!(
        m,
        "| speaker.ko per kept program ({} instructions, {} bytes of classic BPF), slab + vmalloc growth | {} bytes |",
        fact(res, "memory.program_instructions"),
        fact(res, "memory.program_bytes_classic"),
        cell(res, "memory.per_kept_program")
    );
    let _ = writeln!(
        m,
        "| speaker.ko per kept program, estimated from its length (classic copy + bpf_prog pages) | {} bytes |",
        fact(res, "memory.per_kept_program_estimate")
    );
    for (k, v) in res.facts.iter().filter(|(k, _)| k.starts_with("memory.kept_")) {
        let _ = writeln!(m, "| programs kept ({}) | {v} |", k.trim_start_matches("memory.").replace('_', " "));
    }
    let _ = writeln!(m, "| speaker-runtime's monitor, resident | {} KiB |", cell(res, "memory.monitor_rss"));
    m
}

fn series(res: &Results, name: &str, prefix: &str, xs: &[usize]) -> Series {
    let points = xs.iter().filter_map(|&n| res.figures.get(&format!("{prefix}.{n}")).map(|f| (n as f64, f.clone()))).collect();
    Series { name: name.to_string(), points }
}

/// Throughput relative to no seccomp (the median of "none" is 1).
fn relative(res: &Results, svc: &str, variant: &str) -> Option<Figure> {
    let base = res.median(&format!("throughput.{svc}.none"))?;
    let f = res.figures.get(&format!("throughput.{svc}.{variant}"))?;
    Some(Figure { median: f.median / base, min: f.min / base, max: f.max / base, runs: f.runs, unit: "ratio".into() })
}

/// Reads a results.json written by [`write`].
pub fn load(path: &Path) -> Result<Results, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| BenchError::Parse { what: path.display().to_string(), text: e.to_string() })
}

pub fn write(res: &Results, dir: &Path) -> Result<(), BenchError> {
    let put =
        |name: &str, text: &str| write_atomic(&dir.join(name), text.as_bytes()).map_err(|e| BenchError::io(format!("writing {name}"), e));
    let json = serde_json::to_string_pretty(res).map_err(|e| BenchError::Parse { what: "results".into(), text: e.to_string() })?;
    put("results.json", &json)?;
    let md = markdown(res);
    put("results.md", &md)?;
    let plot1 = svg::log_log(
        "speaker.ko switch latency (median, min–max)",
        "tasks in the container",
        "ms",
        &[
            series(res, "sync, threads", "switch.sync.threads", &THREADS),
            series(res, "deferred, threads", "switch.deferred.threads", &THREADS),
            series(res, "sync, processes", "switch.sync.processes", &PROCESSES),
            series(res, "deferred, processes", "switch.deferred.processes", &PROCESSES),
        ],
    );
    put("switch-latency.svg", &plot1)?;
    let groups: Vec<(String, Vec<(String, Figure)>)> = ["nginx", "redis"]
        .iter()
        .map(|svc| {
            let bars = [("none", "no seccomp"), ("docker", "Docker default"), ("speaker", "speaker running")]
                .iter()
                .filter_map(|(v, label)| relative(res, svc, v).map(|f| (label.to_string(), f)))
                .collect();
            (svc.to_string(), bars)
        })
        .collect();
    put("throughput.svg", &svg::bars("Throughput relative to no seccomp (median, min–max)", "requests/s ÷ no seccomp", &groups))?;
    println!("\n{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_every_section() {
        let mut res = Results::default();
        res.figure("switch.sync.threads.1", &[1.0, 2.0, 3.0], "ms");
        res.check("x / y", 0.5, "<= 1");
        let md = markdown(&res);
        for s in [
            "| x / y | 0.500 | <= 1 | yes |",
            "Filter cost",
            "Switch latency",
            "| 1 threads | – | 2.00 (1.00–3.00) |",
            "Throughput",
            "Tracing",
            "Memory",
        ] {
            assert!(md.contains(s), "{s} missing from\n{md}");
        }
    }
}
