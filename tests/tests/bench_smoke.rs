//! `scripts/bench --smoke` (two boots of the full guest, one under -icount
//! for the CPU-cost figures and one on the wall clock; few iterations)
//! writes every figure of the benchmark, the ratios with their ranges, both
//! plots, and leaves the guest kernel's logs free of reports.
use std::process::Command;

#[test]
fn bench_smoke_writes_every_figure() {
    let root = speaker_tests::host::root();
    let out = root.join("target/bench-smoke");
    let status = Command::new(root.join("scripts/bench"))
        .args(["--smoke", "--out", out.to_str().unwrap()])
        .current_dir(&root)
        .status()
        .expect("cannot run scripts/bench");
    assert!(status.success(), "scripts/bench --smoke failed ({status}); log: {}", out.join("bench.log").display());
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let res: speaker::bench::Results = serde_json::from_str(&text).expect("results.json parses");
    let missing: Vec<String> = speaker::bench::required_figures().into_iter().filter(|f| !res.figures.contains_key(f)).collect();
    assert!(missing.is_empty(), "figures missing from results.json: {missing:?}");
    assert!(!res.ratios.is_empty(), "no ratio in results.json");
    let clocks: Vec<speaker::bench::Clock> = res.meta.boots.iter().map(|b| b.clock).collect();
    assert_eq!(clocks, [speaker::bench::Clock::Icount, speaker::bench::Clock::Wall], "the boots merged into results.json");
    // The P1 and P4 ratios come from interleaved rounds: each has a range
    // and a reading (resolved or not).
    for name in [
        "getppid: swapped / fresh",
        "deep: running / Docker default",
        "nginx: speaker running / no seccomp",
        "redis: Docker default / no seccomp",
        "nginx: notify running / speaker running",
        "redis boot: notify / speaker.ko",
    ] {
        let r = res.ratios.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no ratio '{name}' in results.json"));
        assert!(r.min.is_some() && r.max.is_some() && r.resolution.is_some(), "ratio '{name}' has no range: {r:?}");
    }
    for plot in ["switch-latency.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap_or_default();
        assert!(svg.starts_with("<svg") && (svg.contains("<circle") || svg.contains("<rect x")), "{plot} is not a plot");
    }
    let log = std::fs::read_to_string(out.join("kernel.log")).unwrap_or_default();
    let trouble = speaker_tests::guest::kernel_trouble(&log);
    assert!(trouble.is_empty(), "the guest kernel log has reports:\n{}", trouble.join("\n"));
}
