//! What a benchmark run produces (results.json): figures (median and
//! range), ratios against their goals, and facts (cache coverage, path
//! lengths, counts).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::stats::Figure;
use super::Options;

/// Where the run happened and how.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    pub kernel: String,
    pub smoke: bool,
    pub runs: usize,
    pub wall_secs: f64,
    pub note: String,
}

/// A ratio of two figures (or a count) and its goal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
    /// e.g. "<= 1", ">= 0.99", "= 0"; empty when there is none.
    pub goal: String,
    /// `None` without a goal.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub meta: Meta,
    pub figures: BTreeMap<String, Figure>,
    pub ratios: Vec<Ratio>,
    pub facts: BTreeMap<String, serde_json::Value>,
}

pub const DEBUG_KERNEL_NOTE: &str = "measured in one boot of the VM (QEMU TCG, 2 vCPUs) on a debug kernel (KASAN, lockdep, kmemleak): absolute times are inflated, the ratios of figures measured side by side are what counts";

impl Results {
    pub fn new(opts: &Options) -> Results {
        let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        Results {
            meta: Meta { kernel, smoke: opts.smoke, runs: opts.runs, wall_secs: 0.0, note: DEBUG_KERNEL_NOTE.to_string() },
            ..Default::default()
        }
    }

    /// Records figure `name` from `samples` (nothing when empty).
    pub fn figure(&mut self, name: impl Into<String>, samples: &[f64], unit: &str) -> Option<f64> {
        let f = Figure::of(samples, unit)?;
        let m = f.median;
        self.figures.insert(name.into(), f);
        Some(m)
    }

    pub fn median(&self, name: &str) -> Option<f64> {
        self.figures.get(name).map(|f| f.median)
    }

    pub fn fact(&mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.facts.insert(name.into(), value.into());
    }

    /// Records the ratio of the medians of figures `num` and `den` (if both
    /// exist) under `name`, checked against `goal` ("<= X", ">= X",
    /// "within X%" or "").
    pub fn ratio(&mut self, name: &str, num: &str, den: &str, goal: &str) {
        if let (Some(n), Some(d)) = (self.median(num), self.median(den)) {
            if d > 0.0 {
                self.check(name, n / d, goal);
            }
        }
    }

    /// Records a value against its goal.
    pub fn check(&mut self, name: &str, value: f64, goal: &str) {
        let met = goal_met(value, goal);
        self.ratios.push(Ratio { name: name.to_string(), value, goal: goal.to_string(), met });
    }
}

fn goal_met(value: f64, goal: &str) -> Option<bool> {
    let num = |s: &str| s.trim().trim_end_matches('%').trim().parse::<f64>().ok();
    if let Some(x) = goal.strip_prefix("<=").and_then(num) {
        Some(value <= x)
    } else if let Some(x) = goal.strip_prefix(">=").and_then(num) {
        Some(value >= x)
    } else if let Some(x) = goal.strip_prefix('=').and_then(num) {
        Some(value == x)
    } else {
        goal.strip_prefix("within").and_then(num).map(|x| (value - 1.0).abs() * 100.0 <= x)
    }
}

/// The filter-cost cases (bench/filter_cost.rs measures each).
pub const CASES: [&str; 6] = ["none", "docker", "docker_linear", "running_fresh", "running_swapped", "running_swapped_app"];
/// The filter-cost probes (syscalls measured in each case).
pub const PROBES: [&str; 3] = ["getppid", "deep", "denied"];
/// The tracing modes (bench/tracing.rs times nginx under each).
pub const MODES: [&str; 4] = ["untraced", "filter", "ptrace", "strace"];

/// The thread and process counts of the switch-latency plot.
pub const THREADS: [usize; 4] = [1, 10, 100, 1000];
pub const PROCESSES: [usize; 3] = [1, 10, 100];

/// Every figure a full or smoke run with the default task counts writes
/// (the smoke test fails if one is missing).
pub fn required_figures() -> Vec<String> {
    let mut v = Vec::new();
    for case in CASES {
        for probe in PROBES {
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
        for variant in ["none", "docker", "speaker"] {
            v.push(format!("throughput.{svc}.{variant}"));
        }
    }
    for mode in MODES {
        v.push(format!("tracing.nginx.{mode}"));
    }
    v.extend(["memory.per_container".into(), "memory.per_kept_program".into(), "memory.monitor_rss".into()]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals() {
        assert_eq!(goal_met(0.98, ">= 0.99"), Some(false));
        assert_eq!(goal_met(1.0, "<= 1"), Some(true));
        assert_eq!(goal_met(1.04, "within 5%"), Some(true));
        assert_eq!(goal_met(0.94, "within 5%"), Some(false));
        assert_eq!(goal_met(0.0, "= 0"), Some(true));
        assert_eq!(goal_met(3.0, ""), None);
    }
}
