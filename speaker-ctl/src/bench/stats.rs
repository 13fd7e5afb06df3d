//! Summaries of repeated measurements: median with min–max, percentiles.
use serde::{Deserialize, Serialize};

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
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
