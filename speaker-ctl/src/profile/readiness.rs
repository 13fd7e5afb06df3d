//! Readiness conditions: when a service's boot phase (or a reload) ends
//! (`trace --ready`, a profile's `ready` and `reload.ready`, annotation
//! `io.speaker.ready`).  Parsed here, where profiles are validated; the
//! probes that wait for them are `container::ready`'s.
use regex::Regex;

/// A readiness condition that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReadiness(pub String);

type Result<T> = std::result::Result<T, BadReadiness>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(BadReadiness(format!($($t)*))) };
}

/// When a service is ready, i.e. its boot phase ends (`trace --ready`,
/// a profile's `ready`, annotation `io.speaker.ready`).
#[derive(Debug, Clone)]
pub enum Readiness {
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

impl Readiness {
    /// Parses a `--ready` value.
    pub fn parse(spec: &str) -> Result<Readiness> {
        Readiness::parse_as(spec, "--ready")
    }

    /// Parses a readiness condition given as `what` (`--ready`, a
    /// profile's `ready`, ...), which the error messages name.
    pub fn parse_as(spec: &str, what: &str) -> Result<Readiness> {
        let s = spec.trim();
        if s == "auto" {
            return Ok(Readiness::Auto);
        }
        let Some((kind, rest)) = s.split_once(':') else {
            bail!("malformed {what} '{spec}': {READY_HELP}");
        };
        match kind {
            "port" => match rest.trim().parse::<u16>() {
                Ok(p) if p != 0 => Ok(Readiness::Port(p)),
                _ => bail!("malformed {what} '{spec}': '{rest}' is not a TCP port (1-65535); {READY_HELP}"),
            },
            "cmd" => {
                let cmd = strip_quotes(rest.trim());
                if cmd.trim().is_empty() {
                    bail!("malformed {what} '{spec}': the command is empty; {READY_HELP}");
                }
                Ok(Readiness::Cmd(cmd.to_string()))
            }
            "log" => {
                if rest.is_empty() {
                    bail!("malformed {what} '{spec}': the regex is empty; {READY_HELP}");
                }
                match Regex::new(rest) {
                    Ok(re) => Ok(Readiness::Log(re)),
                    Err(e) => {
                        let msg = e.to_string().replace('\n', " ");
                        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
                        bail!("malformed {what} '{spec}': invalid regex: {msg}")
                    }
                }
            }
            _ => bail!("malformed {what} '{spec}': unknown kind '{kind}'; {READY_HELP}"),
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

impl Readiness {
    /// Parses a condition for a runtime container, whose output the
    /// container engine owns (so `log:` cannot be watched).
    pub fn parse_for_runtime(s: &str) -> Result<Readiness> {
        Readiness::parse_for_runtime_as(s, "readiness condition")
    }

    /// [`Readiness::parse_for_runtime`] of a value given as `what`.
    pub fn parse_for_runtime_as(s: &str, what: &str) -> Result<Readiness> {
        match Readiness::parse_as(s, what)? {
            Readiness::Log(_) => bail!(
                "readiness condition '{s}' reads the service's output, which the container engine owns; use port:, cmd: or auto (annotation io.speaker.ready overrides the profile's)"
            ),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_specs() {
        assert!(matches!(Readiness::parse("port:8080").unwrap(), Readiness::Port(8080)));
        assert!(matches!(Readiness::parse("auto").unwrap(), Readiness::Auto));
        match Readiness::parse("cmd:'test -e /x'").unwrap() {
            Readiness::Cmd(c) => assert_eq!(c, "test -e /x"),
            o => panic!("{o:?}"),
        }
        match Readiness::parse("log:listening on .*:80").unwrap() {
            Readiness::Log(re) => assert!(re.is_match("nginx listening on 0.0.0.0:80")),
            o => panic!("{o:?}"),
        }
        for bad in ["", "port", "port:", "port:0", "port:70000", "cmd:", "log:(", "foo:1", "8080"] {
            let e = Readiness::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("malformed --ready"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn runtime_refuses_log_readiness() {
        let e = Readiness::parse_for_runtime("log:x").unwrap_err().to_string();
        assert!(e.contains("use port:, cmd: or auto"), "{e}");
        assert!(matches!(Readiness::parse_for_runtime("port:80").unwrap(), Readiness::Port(80)));
    }
}
