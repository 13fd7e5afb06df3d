//! What a benchmark run produces (results.json): figures (median and
//! range), ratios against their goals with the range of their rounds and
//! whether the run resolves them, and facts (cache coverage, path lengths,
//! counts, which clock measured each suite). Also the names of every
//! figure (the suites import them from here, not the other way round).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::stats::{paired_ratios, Figure, Resolution};
use super::Options;

/// The filter-cost suite's cases and probes.
pub const FILTER_CASES: [&str; 7] =
    ["none", "docker", "docker_linear", "running_fresh", "running_swapped", "running_swapped_app", "notify_running"];
pub const FILTER_PROBES: [&str; 3] = ["getppid", "deep", "denied"];
/// The throughput suite's variants (bundles `<service>-<variant>`):
/// no seccomp, Docker's default profile, speaker's profile under
/// speaker.ko (`speaker`) and under the notify engine (`notify`).
pub const THROUGHPUT_VARIANTS: [&str; 4] = ["none", "docker", "speaker", "notify"];
/// The variants whose boot time the throughput suite reports.
pub const BOOT_VARIANTS: [&str; 3] = ["none", "speaker", "notify"];
/// The tracing suite's modes.
pub const TRACING_MODES: [&str; 4] = ["untraced", "filter", "ptrace", "strace"];

/// The guest's clock a suite measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Wall clock (QEMU TCG, 2 vCPUs): moves with the host's load.
    #[default]
    Wall,
    /// QEMU's -icount (one vCPU): guest time counts instructions, 1 ns per
    /// instruction, whatever the host does.
    Icount,
}

impl Clock {
    pub fn name(self) -> &'static str {
        match self {
            Clock::Wall => "wall",
            Clock::Icount => "icount",
        }
    }

    pub fn parse(s: &str) -> Option<Clock> {
        match s {
            "wall" => Some(Clock::Wall),
            "icount" => Some(Clock::Icount),
            _ => None,
        }
    }

    pub fn note(self) -> &'static str {
        match self {
            Clock::Wall => "QEMU TCG, 2 vCPUs, wall clock: absolute times are inflated and move with the host's load (min–max shown)",
            Clock::Icount => {
                "QEMU TCG with -icount, 1 vCPU: guest time counts instructions (1 ns = 1 instruction), so these figures are instruction counts a busy host cannot move"
            }
        }
    }
}

/// Where the run happened and how.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    pub kernel: String,
    pub smoke: bool,
    pub runs: usize,
    pub wall_secs: f64,
    pub note: String,
    /// The clock of this boot (results merged from two boots: see `boots`).
    #[serde(default)]
    pub clock: Clock,
    #[serde(default)]
    pub suites: Vec<String>,
    /// The boots merged into these results (empty for one boot's).
    #[serde(default)]
    pub boots: Vec<Meta>,
}

/// A ratio of two figures (or a count) and its goal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    pub name: String,
    /// The median of the per-round ratios (paired), or the ratio of the
    /// medians (unpaired figures).
    pub value: f64,
    /// e.g. "<= 1", ">= 0.99", "= 0"; empty when there is none.
    pub goal: String,
    /// `None` without a goal, or when the range straddles it.
    pub met: Option<bool>,
    /// The range: of the per-round ratios, or for unpaired figures the
    /// widest the two ranges allow (`None`: one measurement, no range).
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Whether the range tells the two sides apart (`None` without a range).
    #[serde(default)]
    pub resolution: Option<Resolution>,
}

impl Ratio {
    /// Resolved: a range on one side of 1 or within 1 % of it (a count
    /// without a range is exact).
    pub fn resolved(&self) -> bool {
        self.resolution.is_none_or(Resolution::resolved)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub meta: Meta,
    pub figures: BTreeMap<String, Figure>,
    pub ratios: Vec<Ratio>,
    pub facts: BTreeMap<String, serde_json::Value>,
    /// The samples of paired figures, in round order (`filter.*`,
    /// `throughput.*`), for per-round ratios.
    #[serde(default)]
    pub rounds: BTreeMap<String, Vec<f64>>,
}

impl Results {
    pub fn new(opts: &Options) -> Results {
        let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        Results {
            meta: Meta {
                kernel,
                smoke: opts.smoke,
                runs: opts.runs,
                note: opts.clock.note().to_string(),
                clock: opts.clock,
                suites: opts.suites.clone(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// One set of results from the boots' (figures, ratios and facts of
    /// all; the first's kernel and run count; each boot's meta in `boots`).
    pub fn merge(parts: Vec<Results>) -> Results {
        let mut out = Results::default();
        for p in parts {
            if out.meta.kernel.is_empty() {
                out.meta.kernel = p.meta.kernel.clone();
                out.meta.runs = p.meta.runs;
                out.meta.clock = p.meta.clock;
            }
            out.meta.smoke |= p.meta.smoke;
            out.meta.wall_secs += p.meta.wall_secs;
            out.meta.suites.extend(p.meta.suites.iter().cloned());
            if p.meta.boots.is_empty() {
                out.meta.boots.push(p.meta.clone());
            } else {
                out.meta.boots.extend(p.meta.boots.iter().cloned());
            }
            out.figures.extend(p.figures);
            out.ratios.extend(p.ratios);
            out.facts.extend(p.facts);
            out.rounds.extend(p.rounds);
        }
        out.meta.note = out.meta.boots.iter().map(|b| format!("{}: {}", b.suites.join(", "), b.note)).collect::<Vec<_>>().join("; ");
        out
    }

    /// Records figure `name` from `samples` (nothing when empty).
    pub fn figure(&mut self, name: impl Into<String>, samples: &[f64], unit: &str) -> Option<f64> {
        let f = Figure::of(samples, unit)?;
        let m = f.median;
        self.figures.insert(name.into(), f);
        Some(m)
    }

    /// Records figure `name` and keeps its samples in round order, for
    /// [`Results::paired_ratio`].
    pub fn figure_rounds(&mut self, name: impl Into<String>, samples: &[f64], unit: &str) -> Option<f64> {
        let name = name.into();
        self.rounds.insert(name.clone(), samples.to_vec());
        self.figure(name, samples, unit)
    }

    pub fn median(&self, name: &str) -> Option<f64> {
        self.figures.get(name).map(|f| f.median)
    }

    pub fn fact(&mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.facts.insert(name.into(), value.into());
    }

    /// Records the ratio of figures `num` and `den` (if both exist) under
    /// `name`, checked against `goal` ("<= X", ">= X", "within X%" or ""):
    /// the ratio of their medians, its range the widest their ranges allow.
    pub fn ratio(&mut self, name: &str, num: &str, den: &str, goal: &str) {
        if let (Some(n), Some(d)) = (self.figures.get(num), self.figures.get(den)) {
            if d.median > 0.0 && d.min > 0.0 {
                let (value, min, max) = (n.median / d.median, n.min / d.max, n.max / d.min);
                self.push(name, value, Some((min, max)), goal);
            }
        }
    }

    /// Records the ratio of two figures measured side by side in the same
    /// rounds ([`Results::figure_rounds`]): the median and range of the
    /// per-round ratios, so drift that hits a round's both sides cancels.
    pub fn paired_ratio(&mut self, name: &str, num: &str, den: &str, goal: &str) {
        let (Some(n), Some(d)) = (self.rounds.get(num), self.rounds.get(den)) else { return };
        if let Some(f) = Figure::of(&paired_ratios(n, d), "ratio") {
            self.push(name, f.median, Some((f.min, f.max)), goal);
        }
    }

    /// Records a single value (a count, or a ratio of single measurements)
    /// against its goal: no range.
    pub fn check(&mut self, name: &str, value: f64, goal: &str) {
        self.push(name, value, None, goal);
    }

    fn push(&mut self, name: &str, value: f64, range: Option<(f64, f64)>, goal: &str) {
        let (met, resolution) = match range {
            Some((min, max)) => {
                let r = Resolution::of(min, max);
                (goal_met(min, max, r, goal), Some(r))
            }
            None => (goal_met(value, value, Resolution::of(value, value), goal), None),
        };
        let (min, max) = (range.map(|r| r.0), range.map(|r| r.1));
        self.ratios.push(Ratio { name: name.to_string(), value, goal: goal.to_string(), met, min, max, resolution });
    }

    pub fn ratio_named(&self, name: &str) -> Option<&Ratio> {
        self.ratios.iter().find(|r| r.name == name)
    }
}

/// A ratio's goal.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    Exactly(f64),
    /// Within this many percent of 1.
    Within(f64),
}

impl Goal {
    fn parse(goal: &str) -> Option<Goal> {
        let num = |s: &str| s.trim().trim_end_matches('%').trim().parse::<f64>().ok();
        if let Some(x) = goal.strip_prefix("<=") {
            num(x).map(Goal::AtMost)
        } else if let Some(x) = goal.strip_prefix(">=") {
            num(x).map(Goal::AtLeast)
        } else if let Some(x) = goal.strip_prefix('=') {
            num(x).map(Goal::Exactly)
        } else {
            goal.strip_prefix("within").and_then(num).map(Goal::Within)
        }
    }

    /// `Some(true)` if every value from `min` to `max` meets it,
    /// `Some(false)` if none does, `None` if the range straddles it.
    fn over(self, min: f64, max: f64) -> Option<bool> {
        let (yes, no) = match self {
            Goal::AtMost(x) => (max <= x, min > x),
            Goal::AtLeast(x) => (min >= x, max < x),
            Goal::Exactly(x) => (min == x && max == x, x < min || x > max),
            Goal::Within(p) => {
                let (lo, hi) = (1.0 - p / 100.0 - 1e-12, 1.0 + p / 100.0 + 1e-12);
                (min >= lo && max <= hi, max < lo || min > hi)
            }
        };
        if yes {
            Some(true)
        } else if no {
            Some(false)
        } else {
            None
        }
    }
}

/// Whether the range `min`–`max` meets `goal` (see [`Goal::over`]); a
/// range straddling the goal that is [`Resolution::Equal`] meets it when 1
/// does (equal at the benchmark's resolution). `None` without a goal.
fn goal_met(min: f64, max: f64, resolution: Resolution, goal: &str) -> Option<bool> {
    let g = Goal::parse(goal)?;
    g.over(min, max).or_else(|| (resolution == Resolution::Equal && g.over(1.0, 1.0) == Some(true)).then_some(true))
}

/// The thread and process counts of the switch-latency plot.
pub const THREADS: [usize; 4] = [1, 10, 100, 1000];
pub const PROCESSES: [usize; 3] = [1, 10, 100];

/// Every figure a full or smoke run with the default task counts writes
/// (the smoke test fails if one is missing).
pub fn required_figures() -> Vec<String> {
    let mut v = Vec::new();
    for case in FILTER_CASES {
        for probe in FILTER_PROBES {
            if case != "none" || probe != "denied" {
                v.push(format!("filter.{case}.{probe}"));
            }
        }
    }
    for mode in ["sync", "deferred"] {
        for n in THREADS {
            v.push(format!("switch.{mode}.threads.{n}"));
        }
        for n in PROCESSES {
            v.push(format!("switch.{mode}.processes.{n}"));
        }
        v.push(format!("switch.{mode}.nginx"));
    }
    v.push("restart.nginx".into());
    for svc in ["nginx", "redis"] {
        for w in ["baseline", "switching"] {
            v.push(format!("noloss.{svc}.{w}"));
        }
        for variant in THROUGHPUT_VARIANTS {
            v.push(format!("throughput.{svc}.{variant}"));
        }
        for variant in BOOT_VARIANTS {
            v.push(format!("boot.{svc}.{variant}"));
        }
    }
    for mode in TRACING_MODES {
        v.push(format!("tracing.nginx.{mode}"));
    }
    v.extend(["memory.per_container".into(), "memory.per_kept_program".into(), "memory.monitor_rss".into()]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn met(value: f64, goal: &str) -> Option<bool> {
        goal_met(value, value, Resolution::of(value, value), goal)
    }

    #[test]
    fn goals_of_single_values() {
        assert_eq!(met(0.98, ">= 0.99"), Some(false));
        assert_eq!(met(1.0, "<= 1"), Some(true));
        assert_eq!(met(1.04, "within 5%"), Some(true));
        assert_eq!(met(0.94, "within 5%"), Some(false));
        assert_eq!(met(0.0, "= 0"), Some(true));
        assert_eq!(met(2.0, "= 0"), Some(false));
        assert_eq!(met(3.0, ""), None);
    }

    #[test]
    fn goals_of_ranges() {
        let g = |min: f64, max: f64, goal: &str| goal_met(min, max, Resolution::of(min, max), goal);
        // The whole range meets it, or none of it does.
        assert_eq!(g(0.95, 0.99, "<= 1"), Some(true));
        assert_eq!(g(1.02, 1.3, "<= 1"), Some(false));
        assert_eq!(g(0.97, 1.04, "within 5%"), Some(true));
        assert_eq!(g(1.06, 1.2, "within 5%"), Some(false));
        // A range straddling the goal cannot tell.
        assert_eq!(g(0.9, 1.1, "<= 1"), None);
        assert_eq!(g(0.9, 1.2, "within 5%"), None);
        assert_eq!(g(0.8, 1.1, ">= 0.99"), None);
        // Equal to 1 within 1 % meets "<= 1": the benchmark resolves 1 %.
        assert_eq!(g(0.998, 1.003, "<= 1"), Some(true));
    }

    #[test]
    fn paired_ratios_cancel_drift_and_say_when_unresolved() {
        let mut r = Results::default();
        // Both sides slow down together from round to round (host drift):
        // the per-round ratio stays 1.1, the ratio of unpaired ranges
        // spreads over 0.55–2.2.
        r.figure_rounds("a", &[110.0, 220.0, 165.0], "ns");
        r.figure_rounds("b", &[100.0, 200.0, 150.0], "ns");
        r.paired_ratio("a / b", "a", "b", "<= 1");
        r.ratio("a / b unpaired", "a", "b", "<= 1");
        let p = r.ratio_named("a / b").unwrap();
        assert!((p.value - 1.1).abs() < 1e-9 && (p.min.unwrap() - 1.1).abs() < 1e-9 && (p.max.unwrap() - 1.1).abs() < 1e-9);
        assert_eq!((p.resolution, p.met), (Some(Resolution::Higher), Some(false)));
        let u = r.ratio_named("a / b unpaired").unwrap();
        assert_eq!((u.resolution, u.met), (Some(Resolution::NotResolved), None));
        assert!(!u.resolved() && p.resolved());
        // A count has no range and is exact.
        r.check("failed", 0.0, "= 0");
        let c = r.ratio_named("failed").unwrap();
        assert!(c.resolved() && c.met == Some(true) && c.min.is_none());
    }

    #[test]
    fn merged_boots_keep_everything() {
        let mut a = Results::default();
        a.meta.clock = Clock::Icount;
        a.meta.suites = vec!["filter".into()];
        a.figure("filter.none.getppid", &[1.0], "ns/call");
        let mut b = Results::default();
        b.meta.suites = vec!["switch".into()];
        b.figure("switch.sync.threads.1", &[2.0], "ms");
        let m = Results::merge(vec![a, b]);
        assert_eq!(m.figures.len(), 2);
        assert_eq!(m.meta.boots.iter().map(|b| b.clock).collect::<Vec<_>>(), vec![Clock::Icount, Clock::Wall]);
        assert_eq!(m.meta.suites, vec!["filter", "switch"]);
        // Older results.json (no range, no rounds) still parse.
        let old = r#"{"meta":{"kernel":"k","smoke":true,"runs":3,"wall_secs":1.0,"note":""},"figures":{},"ratios":[{"name":"x","value":1.0,"goal":"","met":null}],"facts":{}}"#;
        let r: Results = serde_json::from_str(old).unwrap();
        assert!(r.ratios[0].resolved() && r.meta.clock == Clock::Wall);
    }
}
