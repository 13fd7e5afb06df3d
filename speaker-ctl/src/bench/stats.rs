//! Summaries of repeated measurements: median with min–max, percentiles,
//! and whether a ratio's spread lets a run tell its two sides apart.
use serde::{Deserialize, Serialize};

/// What a run can say about two figures compared as a ratio: every round
/// came out on one side of 1, or all within [`TOLERANCE`] of 1, or neither
/// (the spread is larger than the difference).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Every round above 1.
    Higher,
    /// Every round below 1.
    Lower,
    /// Every round within [`TOLERANCE`] of 1, on both sides of it.
    Equal,
    /// The rounds straddle 1 and spread further than [`TOLERANCE`].
    NotResolved,
}

/// The difference the benchmark is meant to resolve: 1 %.
pub const TOLERANCE: f64 = 0.01;

impl Resolution {
    /// Of a ratio whose rounds ranged from `min` to `max`.
    pub fn of(min: f64, max: f64) -> Resolution {
        if !(min.is_finite() && max.is_finite()) || min > max {
            Resolution::NotResolved
        } else if min > 1.0 {
            Resolution::Higher
        } else if max < 1.0 {
            Resolution::Lower
        } else if min >= 1.0 - TOLERANCE && max <= 1.0 + TOLERANCE {
            Resolution::Equal
        } else {
            Resolution::NotResolved
        }
    }

    pub fn resolved(self) -> bool {
        self != Resolution::NotResolved
    }

    /// How results.md reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Resolution::Higher => "above 1",
            Resolution::Lower => "below 1",
            Resolution::Equal => "equal within 1 %",
            Resolution::NotResolved => "not resolved",
        }
    }
}

/// Half the range of `values` relative to its middle, in percent: the
/// "±x %" they agree within (0 for fewer than two values).
pub fn spread_pct(values: &[f64]) -> f64 {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 || lo + hi == 0.0 {
        return 0.0;
    }
    (hi - lo) / (hi + lo) * 100.0
}

/// Per-round ratios `num[i] / den[i]` of two figures measured side by side
/// in the same rounds (a round where either is missing or `den` is 0
/// gives no ratio).
pub fn paired_ratios(num: &[f64], den: &[f64]) -> Vec<f64> {
    num.iter().zip(den).filter(|(_, d)| **d != 0.0).map(|(n, d)| n / d).collect()
}

/// One figure of the benchmark: the median of `runs` measurements and
/// their range.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Figure {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
    pub unit: String,
}

impl Figure {
    /// The median (the upper one for an even count) and range of `samples`;
    /// `None` when there is none.
    pub fn of(samples: &[f64], unit: &str) -> Option<Figure> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Figure { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1], runs: v.len(), unit: unit.to_string() })
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `samples`; 0 when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let f = Figure::of(&[3.0, 1.0, 2.0, 9.0, 5.0], "ms").unwrap();
        assert_eq!((f.median, f.min, f.max, f.runs), (3.0, 1.0, 9.0, 5));
        assert!(Figure::of(&[], "ms").is_none());
    }

    #[test]
    fn resolution_of_a_range() {
        // Every round on one side of 1: a difference, however small.
        assert_eq!(Resolution::of(1.002, 1.004), Resolution::Higher);
        assert_eq!(Resolution::of(0.5, 0.97), Resolution::Lower);
        // Straddling 1 within 1 %: equal at the benchmark's resolution.
        assert_eq!(Resolution::of(0.995, 1.008), Resolution::Equal);
        assert_eq!(Resolution::of(0.99, 1.01), Resolution::Equal);
        // The spread is larger than the difference.
        assert_eq!(Resolution::of(0.97, 1.05), Resolution::NotResolved);
        assert_eq!(Resolution::of(0.999, 1.02), Resolution::NotResolved);
        assert_eq!(Resolution::of(f64::NAN, 1.0), Resolution::NotResolved);
        assert!(!Resolution::NotResolved.resolved() && Resolution::Equal.resolved());
    }

    #[test]
    fn spreads_and_paired_ratios() {
        assert!((spread_pct(&[0.98, 1.0, 1.02]) - 2.0).abs() < 1e-9);
        assert_eq!(spread_pct(&[1.0]), 0.0);
        assert_eq!(spread_pct(&[]), 0.0);
        assert_eq!(paired_ratios(&[2.0, 3.0, 4.0], &[1.0, 0.0, 2.0]), vec![2.0, 2.0]);
        // The median of per-round ratios, not the ratio of medians: drift
        // that hits both sides of a round alike cancels.
        let f = Figure::of(&paired_ratios(&[10.0, 20.0, 40.0], &[10.0, 20.0, 40.0]), "ratio").unwrap();
        assert_eq!((f.median, f.min, f.max), (1.0, 1.0, 1.0));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
