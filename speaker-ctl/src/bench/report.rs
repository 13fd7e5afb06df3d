//! results.json, results.md (docs/src/benchmarks.md's tables) and the two
//! plots (switch-latency.svg, throughput.svg).
use std::fmt::Write;
use std::path::Path;

use super::error::BenchError;
use super::results::{Ratio, Results, FILTER_CASES, PROCESSES, THREADS, TRACING_MODES};
use super::stats::{spread_pct, Figure};
use super::svg::{self, Bar, Series};
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

fn range(r: &Ratio) -> String {
    match (r.min, r.max) {
        (Some(lo), Some(hi)) => format!("{} ({}–{})", num(r.value), num(lo), num(hi)),
        _ => num(r.value),
    }
}

fn reading(r: &Ratio) -> &'static str {
    match r.resolution {
        Some(x) => x.describe(),
        None if r.goal.starts_with('=') => "exact count",
        None => "one measurement",
    }
}

/// Which clock measured `suite` (the fact `clock.<suite>`), for headings.
fn clock_note(res: &Results, suite: &str) -> &'static str {
    match res.facts.get(&format!("clock.{suite}")).and_then(|v| v.as_str()) {
        Some("icount") => "icount: guest time counts instructions, 1 ns = 1 instruction",
        Some("wall") => "wall clock, moves with the host's load",
        _ => "clock not recorded",
    }
}

/// The Markdown report.
pub fn markdown(res: &Results) -> String {
    let mut m = String::new();
    let meta = &res.meta;
    let _ = writeln!(
        m,
        "Kernel {}, median (min–max) of {} rounds{}. {}.\n",
        meta.kernel,
        meta.runs,
        if meta.smoke { " (smoke run)" } else { "" },
        if meta.boots.is_empty() { format!("{}: {}", meta.suites.join(", "), meta.note) } else { meta.note.clone() }
    );
    let _ = writeln!(
        m,
        "A ratio's range is that of its per-round ratios when both figures were measured in the same rounds (filter cost, throughput), else the widest the two figures' ranges allow. **Not resolved**: the rounds straddle 1 by more than 1 %, so the run cannot tell the two apart; such a ratio is no result (its goal reads \"?\", and no plot shows it).\n"
    );
    let _ = writeln!(m, "| ratio | value (min–max) | goal | met | reading |\n|---|---|---|---|---|");
    for r in &res.ratios {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if r.goal.is_empty() => "",
            None => "?",
        };
        let reading = if r.resolved() { reading(r).to_string() } else { format!("**{}**", reading(r)) };
        let _ = writeln!(m, "| {} | {} | {} | {met} | {reading} |", r.name, range(r), r.goal);
    }
    let deep = fact(res, "filter.probe.deep");
    let _ = writeln!(
        m,
        "\n**Filter cost per syscall** (ns per call, {}; {} calls per round, the median of 9 batches; \"cached\": the kernel's action cache allows it without running the filter; \"insns\": BPF instructions run, all filters of the task)\n",
        clock_note(res, "filter"),
        fact(res, "filter.calls_per_run")
    );
    let _ = writeln!(m, "| filter | getppid | {deep} (deepest in Docker's list) | syslog (denied) | cached getppid / {deep} / syslog | insns getppid / {deep} / syslog |");
    let _ = writeln!(m, "|---|---|---|---|---|---|");
    for case in FILTER_CASES {
        let f = |p: &str| cell(res, &format!("filter.{case}.{p}"));
        let c = |k: &str| ["getppid", "deep", "denied"].map(|p| fact(res, &format!("filter.{k}.{case}.{p}"))).join(" / ");
        let _ = writeln!(m, "| {case} | {} | {} | {} | {} | {} |", f("getppid"), f("deep"), f("denied"), c("cached"), c("instructions"));
    }
    let _ = writeln!(
        m,
        "\n**Switch latency** (ms, {}; sync waits for the RCU-tasks grace period, deferred does not)\n",
        clock_note(res, "switch")
    );
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
    let _ = writeln!(
        m,
        "\n**Throughput** (requests/s, {}: nginx `ab -c 8`, redis `redis-benchmark -c 8 -t get,set`, {} requests per round; the variants interleaved round by round, a fresh container each)\n",
        clock_note(res, "throughput"),
        fact(res, "throughput.requests_per_run")
    );
    let _ = writeln!(
        m,
        "| service | no seccomp | Docker default | speaker running (speaker.ko) | speaker running (notify) | Docker / none | speaker.ko / none | notify / none | notify / speaker.ko |\n|---|---|---|---|---|---|---|---|---|"
    );
    let ratio = |name: String| match res.ratio_named(&name) {
        Some(r) if r.resolved() => format!("{} ({})", range(r), reading(r)),
        Some(r) => format!("not resolved ({})", range(r)),
        None => "–".into(),
    };
    for svc in ["nginx", "redis"] {
        let c = |v: &str| cell(res, &format!("throughput.{svc}.{v}"));
        let r = |what: &str| ratio(format!("{svc}: {what} / no seccomp"));
        let _ = writeln!(
            m,
            "| {svc} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c("none"),
            c("docker"),
            c("speaker"),
            c("notify"),
            r("Docker default"),
            r("speaker running"),
            r("notify running"),
            ratio(format!("{svc}: notify running / speaker running"))
        );
    }
    let _ = writeln!(
        m,
        "\n**Boot** (ms from `speaker-runtime run -d` to the service's first answer, {}; the same rounds as the throughput)\n",
        clock_note(res, "throughput")
    );
    let _ = writeln!(
        m,
        "| service | no seccomp | speaker.ko | notify | speaker.ko / none | notify / none | notify / speaker.ko |\n|---|---|---|---|---|---|---|"
    );
    for svc in ["nginx", "redis"] {
        let c = |v: &str| cell(res, &format!("boot.{svc}.{v}"));
        let r = |what: &str| ratio(format!("{svc} boot: {what}"));
        let _ = writeln!(
            m,
            "| {svc} | {} | {} | {} | {} | {} | {} |",
            c("none"),
            c("speaker"),
            c("notify"),
            r("speaker.ko / no seccomp"),
            r("notify / no seccomp"),
            r("notify / speaker.ko")
        );
    }
    let _ = writeln!(m, "\n**Tracing nginx** (requests/s under `ab -c 8`, {})\n", clock_note(res, "tracing"));
    let _ = writeln!(m, "| untraced | `trace --mode filter` | `trace --mode ptrace` | `strace -f` |\n|---|---|---|---|");
    let t = TRACING_MODES.map(|mode| cell(res, &format!("tracing.nginx.{mode}")));
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

/// The throughput plot's bars: per service, no seccomp (1 by definition)
/// and each variant's per-round ratio to it, a bar only when resolved.
fn throughput_bars(res: &Results) -> Vec<(String, Vec<Bar>)> {
    ["nginx", "redis"]
        .iter()
        .map(|svc| {
            let mut bars = Vec::new();
            if res.figures.contains_key(&format!("throughput.{svc}.none")) {
                let one = Figure { median: 1.0, min: 1.0, max: 1.0, runs: 1, unit: "ratio".into() };
                bars.push(Bar { label: "no seccomp".into(), figure: one, resolved: true });
            }
            for (v, label) in [
                ("Docker default", "Docker default"),
                ("speaker running", "speaker running (speaker.ko)"),
                ("notify running", "speaker running (notify)"),
            ] {
                if let Some(r) = res.ratio_named(&format!("{svc}: {v} / no seccomp")) {
                    let figure = Figure {
                        median: r.value,
                        min: r.min.unwrap_or(r.value),
                        max: r.max.unwrap_or(r.value),
                        runs: 0,
                        unit: "ratio".into(),
                    };
                    bars.push(Bar { label: label.into(), figure, resolved: r.resolved() });
                }
            }
            (svc.to_string(), bars)
        })
        .collect()
}

/// Whether a plot shows any result: the switch-latency plot when it has a
/// point, the throughput plot when a variant's ratio is resolved.
pub fn plots_with_results(res: &Results) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    if res.figures.keys().any(|k| k.starts_with("switch.sync.threads.") || k.starts_with("switch.sync.processes.")) {
        v.push(("switch-latency.svg", "switch latency against tasks"));
    }
    if throughput_bars(res).iter().flat_map(|g| &g.1).any(|b| b.resolved && b.label != "no seccomp") {
        v.push(("throughput.svg", "throughput relative to no seccomp"));
    }
    v
}

/// Three (or more) runs' ratios side by side, each with its spread across
/// the runs (`speaker-ctl bench-compare`): what "reproducible within
/// ±2 %" is checked against.
pub fn compare(runs: &[(String, Results)]) -> String {
    let mut m = String::new();
    let names: Vec<&str> = runs.first().map(|(_, r)| r.ratios.iter().map(|x| x.name.as_str()).collect()).unwrap_or_default();
    let _ = writeln!(m, "| ratio | {} | spread across runs |", runs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(m, "|---|{}---|", "---|".repeat(runs.len()));
    for name in names {
        let vals: Vec<Option<f64>> = runs.iter().map(|(_, r)| r.ratio_named(name).map(|x| x.value)).collect();
        let present: Vec<f64> = vals.iter().flatten().copied().collect();
        let cells: Vec<String> = vals.iter().map(|v| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into())).collect();
        let _ = writeln!(m, "| {name} | {} | ±{:.2} % |", cells.join(" | "), spread_pct(&present));
    }
    m
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
    let title = format!("Throughput relative to no seccomp (median and min–max of per-round ratios; {})", clock_note(res, "throughput"));
    put("throughput.svg", &svg::bars(&title, "requests/s ÷ no seccomp", &throughput_bars(res)))?;
    let images: String = plots_with_results(res).iter().map(|(file, alt)| format!("![{alt}](docs/src/bench/{file})\n")).collect();
    put("plots.md", &images)?;
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

    #[test]
    fn unresolved_throughput_is_reported_not_plotted() {
        let mut res = Results::default();
        // Interleaved rounds: docker/none straddles 1 by 10 %, speaker/none
        // is 0.9 in every round.
        res.figure_rounds("throughput.nginx.none", &[100.0, 100.0, 100.0], "requests/s");
        res.figure_rounds("throughput.nginx.docker", &[90.0, 110.0, 100.0], "requests/s");
        res.figure_rounds("throughput.nginx.speaker", &[90.0, 90.0, 90.0], "requests/s");
        res.paired_ratio("nginx: Docker default / no seccomp", "throughput.nginx.docker", "throughput.nginx.none", ">= 0.99");
        res.paired_ratio("nginx: speaker running / no seccomp", "throughput.nginx.speaker", "throughput.nginx.none", ">= 0.99");
        let md = markdown(&res);
        assert!(md.contains("| nginx: Docker default / no seccomp | 1.00 (0.900–1.10) | >= 0.99 | ? | **not resolved** |"), "{md}");
        assert!(md.contains("| nginx: speaker running / no seccomp | 0.900 (0.900–0.900) | >= 0.99 | **no** | below 1 |"), "{md}");
        let bars = throughput_bars(&res);
        let resolved: Vec<(&str, bool)> = bars[0].1.iter().map(|b| (b.label.as_str(), b.resolved)).collect();
        assert_eq!(resolved, vec![("no seccomp", true), ("Docker default", false), ("speaker running (speaker.ko)", true)]);
        assert_eq!(plots_with_results(&res), vec![("throughput.svg", "throughput relative to no seccomp")]);
        // Nothing resolved: the plot is left out of the book.
        res.ratios.retain(|r| r.name.contains("Docker"));
        assert!(plots_with_results(&res).is_empty());
    }

    #[test]
    fn compare_prints_each_run_and_the_spread() {
        let run = |v: f64| {
            let mut r = Results::default();
            r.check("getppid: swapped / fresh", v, "");
            ("run".to_string(), r)
        };
        let text = compare(&[run(0.99), run(1.0), run(1.01)]);
        assert!(text.contains("| getppid: swapped / fresh | 0.9900 | 1.0000 | 1.0100 | ±1.00 % |"), "{text}");
    }
}
