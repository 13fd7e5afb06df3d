//! Parsing of `speaker-ctl trace`'s option values: `--ready` specs,
//! durations and `--mode`.
use anyhow::{bail, Result};
use regex::Regex;
use std::time::Duration;

/// When the boot phase ends (`--ready`).
#[derive(Debug, Clone)]
pub enum ReadySpec {
    /// A TCP socket listening on this local port, in the traced tree's
    /// network namespace.
    Port(u16),
    /// A shell command (`sh -c`) that exits 0; polled.
    Cmd(String),
    /// A line of the service's stdout/stderr matching this regex.
    Log(Regex),
    /// No new syscall for `--auto-windows` windows of `--auto-window`.
    Auto,
}

const READY_HELP: &str = "expected port:TCP_PORT, cmd:'SHELL COMMAND', log:REGEX or auto";

impl ReadySpec {
    /// Parses a `--ready` value.
    pub fn parse(spec: &str) -> Result<ReadySpec> {
        let s = spec.trim();
        if s == "auto" {
            return Ok(ReadySpec::Auto);
        }
        let Some((kind, rest)) = s.split_once(':') else {
            bail!("malformed --ready '{spec}': {READY_HELP}");
        };
        match kind {
            "port" => match rest.trim().parse::<u16>() {
                Ok(p) if p != 0 => Ok(ReadySpec::Port(p)),
                _ => bail!(
                    "malformed --ready '{spec}': '{rest}' is not a TCP port (1-65535); {READY_HELP}"
                ),
            },
            "cmd" => {
                let cmd = strip_quotes(rest.trim());
                if cmd.trim().is_empty() {
                    bail!("malformed --ready '{spec}': the command is empty; {READY_HELP}");
                }
                Ok(ReadySpec::Cmd(cmd.to_string()))
            }
            "log" => {
                if rest.is_empty() {
                    bail!("malformed --ready '{spec}': the regex is empty; {READY_HELP}");
                }
                match Regex::new(rest) {
                    Ok(re) => Ok(ReadySpec::Log(re)),
                    Err(e) => {
                        let msg = e.to_string().replace('\n', " ");
                        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
                        bail!("malformed --ready '{spec}': invalid regex: {msg}")
                    }
                }
            }
            _ => bail!("malformed --ready '{spec}': unknown kind '{kind}'; {READY_HELP}"),
        }
    }
}

/// `'x'` or `"x"` -> `x` (for `--ready "cmd:'...'"`).
fn strip_quotes(s: &str) -> &str {
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// Parses `500ms`, `5s`, `1.5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(option: &str, s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
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
        bail!("invalid {option} '{s}': expected a duration like 500ms, 5s, 2m or 1h");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ptrace,
    Filter,
    Auto,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "ptrace" => Ok(Mode::Ptrace),
            "filter" => Ok(Mode::Filter),
            "auto" => Ok(Mode::Auto),
            _ => bail!("invalid --mode '{s}': expected ptrace, filter or auto"),
        }
    }
}

/// Parses an optional duration option.
pub fn opt_duration(option: &str, s: Option<&str>) -> Result<Option<Duration>> {
    s.map(|v| parse_duration(option, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("-x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("-x", "5s").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_duration("-x", "1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("-x", "2m").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(parse_duration("-x", "3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "5x", "-1s", "1..2s", "abc"] {
            assert!(parse_duration("-x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ready_specs() {
        assert!(matches!(
            ReadySpec::parse("port:8080").unwrap(),
            ReadySpec::Port(8080)
        ));
        assert!(matches!(ReadySpec::parse("auto").unwrap(), ReadySpec::Auto));
        match ReadySpec::parse("cmd:'test -e /x'").unwrap() {
            ReadySpec::Cmd(c) => assert_eq!(c, "test -e /x"),
            o => panic!("{o:?}"),
        }
        match ReadySpec::parse("log:listening on .*:80").unwrap() {
            ReadySpec::Log(re) => assert!(re.is_match("nginx listening on 0.0.0.0:80")),
            o => panic!("{o:?}"),
        }
        for bad in [
            "",
            "port",
            "port:",
            "port:0",
            "port:70000",
            "cmd:",
            "log:(",
            "foo:1",
            "8080",
        ] {
            let e = ReadySpec::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("malformed --ready"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }
}
