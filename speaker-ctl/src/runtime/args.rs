//! The OCI runtime command line (runc/crun style), parsed just enough to
//! find the command, the container id and the few options speaker needs;
//! everything else is forwarded to crun exactly as given.
//!
//! ```text
//! speaker-runtime [GLOBAL OPTIONS] COMMAND [OPTIONS] [ID] [ARGS...]
//! ```
use std::ffi::OsString;
use std::path::PathBuf;

/// Global options that take a value (`--root DIR` or `--root=DIR`).
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--log", "--log-format", "--log-level", "--rootless", "--cgroup-manager", "--criu"];

/// speaker's own global options, removed before crun sees the line.
pub const SPEAKER_CRUN_OPT: &str = "--speaker-crun";

/// A parsed invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Every argument after argv[0] minus speaker's own options, as given.
    pub forwarded: Vec<OsString>,
    /// The global options (forwarded form, before the command).
    pub globals: Vec<String>,
    /// `--speaker-crun PATH`.
    pub crun: Option<PathBuf>,
    /// `--root DIR`: crun's state root.
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_format: Option<String>,
    /// The command (`create`, `start`, ...), if any.
    pub command: Option<String>,
    /// The arguments after the command.
    pub rest: Vec<String>,
}

fn lossy(a: &OsString) -> String {
    a.to_string_lossy().into_owned()
}

/// Splits `--name=value` into (`--name`, Some(value)).
fn split_eq(a: &str) -> (&str, Option<&str>) {
    match a.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n, Some(v)),
        _ => (a, None),
    }
}

/// Parses argv[1..].
pub fn parse(args: &[OsString]) -> Invocation {
    let mut inv = Invocation::default();
    let mut i = 0;
    while i < args.len() {
        let a = lossy(&args[i]);
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (name, value) = split_eq(&a);
        let takes_value = GLOBAL_WITH_VALUE.contains(&name) || name == SPEAKER_CRUN_OPT;
        let (value, used) = match (takes_value, value) {
            (true, Some(v)) => (Some(v.to_string()), 1),
            (true, None) => (args.get(i + 1).map(lossy), 2),
            (false, _) => (None, 1),
        };
        match name {
            SPEAKER_CRUN_OPT => inv.crun = value.map(PathBuf::from),
            _ => {
                match name {
                    "--root" => inv.root = value.clone().map(PathBuf::from),
                    "--log" => inv.log = value.clone().map(PathBuf::from),
                    "--log-format" => inv.log_format = value.clone(),
                    _ => {}
                }
                for a in &args[i..(i + used).min(args.len())] {
                    inv.forwarded.push(a.clone());
                    inv.globals.push(lossy(a));
                }
            }
        }
        i += used;
    }
    if i < args.len() {
        inv.command = Some(lossy(&args[i]));
        inv.rest = args[i + 1..].iter().map(lossy).collect();
        inv.forwarded.extend(args[i..].iter().cloned());
    }
    inv
}

/// A command's own options and positional arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandArgs {
    /// (option name as written without `=value`, value).
    pub options: Vec<(String, Option<String>)>,
    pub positionals: Vec<String>,
}

impl CommandArgs {
    /// The value of the first of `names` given (the last occurrence wins).
    pub fn value(&self, names: &[&str]) -> Option<&str> {
        self.options.iter().rev().find(|(n, _)| names.contains(&n.as_str())).and_then(|(_, v)| v.as_deref())
    }

    pub fn flag(&self, names: &[&str]) -> bool {
        self.options.iter().any(|(n, _)| names.contains(&n.as_str()))
    }
}

/// Parses a command's arguments; `with_value` lists the options that take
/// a value (long `--x` and short `-x`, which may also be glued: `-bDIR`).
/// Parsing stops at `--` or, if `stop_at_first` is set, after the first
/// positional (everything after it is positional: exec's command line).
pub fn parse_command(rest: &[String], with_value: &[&str], stop_at_first: bool) -> CommandArgs {
    let mut out = CommandArgs::default();
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        if a == "--" {
            out.positionals.extend(rest[i + 1..].iter().cloned());
            break;
        }
        if a.starts_with("--") {
            let (name, value) = split_eq(a);
            if with_value.contains(&name) && value.is_none() {
                out.options.push((name.to_string(), rest.get(i + 1).cloned()));
                i += 2;
            } else {
                out.options.push((name.to_string(), value.map(str::to_string)));
                i += 1;
            }
            continue;
        }
        if a.starts_with('-') && a.len() > 1 {
            let name = &a[..2];
            if with_value.contains(&name) {
                if a.len() > 2 {
                    out.options.push((name.to_string(), Some(a[2..].trim_start_matches('=').to_string())));
                    i += 1;
                } else {
                    out.options.push((name.to_string(), rest.get(i + 1).cloned()));
                    i += 2;
                }
            } else {
                out.options.push((a.clone(), None));
                i += 1;
            }
            continue;
        }
        out.positionals.push(a.clone());
        i += 1;
        if stop_at_first {
            out.positionals.extend(rest[i..].iter().cloned());
            break;
        }
    }
    out
}

/// Options of `create` and `run` that take a value.
pub const CREATE_WITH_VALUE: &[&str] = &["--bundle", "-b", "--console-socket", "--pid-file", "--preserve-fds", "--config", "-f"];

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn globals_are_split_from_the_command_and_speaker_options_removed() {
        let inv = parse(&os(&[
            "--root", "/run/r", "--log=/l.json", "--log-format", "json", "--systemd-cgroup", "--speaker-crun", "/x/crun", "create",
            "--bundle", "/b", "id1",
        ]));
        assert_eq!(inv.root, Some(PathBuf::from("/run/r")));
        assert_eq!(inv.log, Some(PathBuf::from("/l.json")));
        assert_eq!(inv.log_format.as_deref(), Some("json"));
        assert_eq!(inv.crun, Some(PathBuf::from("/x/crun")));
        assert_eq!(inv.command.as_deref(), Some("create"));
        assert_eq!(inv.rest, vec!["--bundle", "/b", "id1"]);
        assert_eq!(inv.globals, vec!["--root", "/run/r", "--log=/l.json", "--log-format", "json", "--systemd-cgroup"]);
        let fwd: Vec<String> = inv.forwarded.iter().map(lossy).collect();
        assert_eq!(
            fwd,
            vec!["--root", "/run/r", "--log=/l.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "id1"]
        );
    }

    #[test]
    fn no_command_is_none() {
        let inv = parse(&os(&["--version"]));
        assert_eq!(inv.command, None);
        assert_eq!(inv.globals, vec!["--version"]);
    }

    #[test]
    fn create_options_in_every_spelling() {
        for line in [
            vec!["--bundle", "/b", "--pid-file", "/p", "c1"],
            vec!["--bundle=/b", "--pid-file=/p", "c1"],
            vec!["-b", "/b", "--no-pivot", "--pid-file", "/p", "c1"],
            vec!["-b/b", "--pid-file", "/p", "c1"],
        ] {
            let line: Vec<String> = line.into_iter().map(String::from).collect();
            let c = parse_command(&line, CREATE_WITH_VALUE, false);
            assert_eq!(c.value(&["--bundle", "-b"]), Some("/b"), "{line:?}");
            assert_eq!(c.value(&["--pid-file"]), Some("/p"), "{line:?}");
            assert_eq!(c.positionals, vec!["c1"], "{line:?}");
        }
    }

    #[test]
    fn exec_command_line_is_kept_whole() {
        let line: Vec<String> = ["--env", "A=1", "-t", "c1", "ls", "-l", "--", "x"].iter().map(|s| s.to_string()).collect();
        let c = parse_command(&line, &["--env", "-e", "--cwd", "--process", "-p", "--user", "-u"], true);
        assert_eq!(c.positionals, vec!["c1", "ls", "-l", "--", "x"]);
        assert!(c.flag(&["-t"]));
    }
}
