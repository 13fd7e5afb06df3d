//! The one duration syntax of every option: `500ms`, `10s`, `1.5s`, `2m`,
//! `1h`, `250us`, or a bare number of seconds.
use std::time::Duration;

/// What the syntax error says.
pub const DURATION_HELP: &str = "expected a duration like 500ms, 10s, 2m or 1h (a bare number is seconds)";

/// Parses a duration (see the module documentation).
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    let secs = v * scale;
    if num.is_empty() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("'{s}': {DURATION_HELP}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration as the syntax writes it (`1.5s`, `500ms`, `2m`).
// `%` rather than `is_multiple_of`: the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 60_000 == 0 && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_syntax() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "s", "5x", "-1s", "1..2s", "abc"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            [show(Duration::from_secs(120)), show(Duration::from_millis(500)), show(Duration::from_secs(10))],
            ["2m", "500ms", "10s"]
        );
    }
}
