//! The TAP output of kselftests (`tools/testing/selftests/kselftest_harness.h`):
//! `ok N name`, `not ok N name`, either with a `# SKIP why` (or
//! `# XFAIL why`) directive.

use std::collections::BTreeMap;

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "pass" => Some(Outcome::Pass),
            "fail" => Some(Outcome::Fail),
            "skip" => Some(Outcome::Skip),
            _ => None,
        }
    }
}

/// One parsed run: outcome per test name, and the planned test count.
#[derive(Debug, Default, Clone)]
pub struct Results {
    pub tests: BTreeMap<String, Outcome>,
    pub planned: Option<usize>,
}

impl Results {
    pub fn count(&self, o: Outcome) -> usize {
        self.tests.values().filter(|&&v| v == o).count()
    }

    /// Whether every planned test reported a result.
    pub fn complete(&self) -> bool {
        self.planned.is_some_and(|p| p > 0 && p == self.tests.len())
    }

    /// `pass=N fail=N skip=N of planned`.
    pub fn summary(&self) -> String {
        format!(
            "pass={} fail={} skip={} of {}",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Skip),
            self.planned.map(|p| p.to_string()).unwrap_or("?".into())
        )
    }
}

/// One TAP result line, if `line` is one: (name, outcome).
pub fn parse_line(line: &str) -> Option<(String, Outcome)> {
    let line = line.trim_end();
    let (ok, rest) = if let Some(r) = line.strip_prefix("ok ") { (true, r) } else { (false, line.strip_prefix("not ok ")?) };
    let (num, rest) = rest.split_once(' ')?;
    num.parse::<usize>().ok()?;
    let (name, directive) = match rest.split_once(" # ") {
        Some((n, d)) => (n.trim(), d.trim()),
        None => (rest.trim(), ""),
    };
    let upper = directive.to_ascii_uppercase();
    let outcome = if upper.starts_with("SKIP") {
        Outcome::Skip
    } else if ok || upper.starts_with("XFAIL") {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    Some((name.to_string(), outcome))
}

/// Parses a whole TAP stream (other lines are ignored; the plan is `1..N`).
pub fn parse(text: &str) -> Results {
    let mut r = Results::default();
    for l in text.lines() {
        if let Some(n) = l.trim().strip_prefix("1..").and_then(|n| n.parse().ok()) {
            r.planned.get_or_insert(n);
        } else if let Some((name, o)) = parse_line(l) {
            r.tests.insert(name, o);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kselftest_harness_output() {
        let out = "TAP version 13\n1..4\n# Starting 4 tests from 2 test cases.\n#  RUN  global.kcmp ...\n\
                   #            OK  global.kcmp\nok 1 global.kcmp\nnot ok 2 TRAP.dfl\n\
                   ok 3 global.user_notification_addfd # SKIP Kernel does not support\n\
                   ok 4 global.x # XFAIL expected\n# Totals: pass:2 fail:1 xfail:1 xpass:0 skip:1 error:0\n";
        let r = parse(out);
        assert_eq!(r.planned, Some(4));
        assert!(r.complete());
        assert_eq!(r.tests["global.kcmp"], Outcome::Pass);
        assert_eq!(r.tests["TRAP.dfl"], Outcome::Fail);
        assert_eq!(r.tests["global.user_notification_addfd"], Outcome::Skip);
        assert_eq!(r.tests["global.x"], Outcome::Pass);
        assert_eq!(r.summary(), "pass=2 fail=1 skip=1 of 4");
    }

    #[test]
    fn ignores_non_result_lines_and_detects_incomplete_runs() {
        let r = parse("1..3\n# ok 1 not.a.result\nok x bad\nok 1 a\n");
        assert_eq!(r.tests.len(), 1);
        assert!(!r.complete());
        assert_eq!(parse_line("not ok 7 fixture.variant.test # SKIP no"), Some(("fixture.variant.test".into(), Outcome::Skip)));
    }
}
