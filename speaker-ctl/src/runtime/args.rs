//! The OCI runtime command line (crun's syntax), as clap types, like
//! youki's liboci-cli:
//!
//! ```text
//! speaker-runtime [GLOBAL OPTIONS] COMMAND [OPTIONS] [ID] [ARGS...]
//! ```
//!
//! Every option crun takes (global, and of each verb speaker takes part in:
//! `create`, `run`, `exec`, `start`, `kill`, `delete`) is typed, with
//! crun's spellings (argp's unambiguous abbreviations of long options
//! included); other verbs go to crun as given.  A line clap cannot parse is
//! crun's business only if it cannot concern speaker ([`super::guard`]):
//! speaker never lets a container that asks for it run on a line it did not
//! understand.  `--speaker-crun PATH` is speaker's own global option, taken
//! only before the command, and is removed before crun sees the line.
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// speaker's own global option.
pub const SPEAKER_CRUN_OPT: &str = "--speaker-crun";

#[derive(Debug, Parser)]
#[command(
    name = "speaker-runtime",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    allow_external_subcommands = true,
    infer_long_args = true
)]
pub struct RuntimeCli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<RuntimeCommand>,
}

/// crun's global options.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOpts {
    /// crun's state root.
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub log: Option<PathBuf>,
    #[arg(long)]
    pub log_format: Option<String>,
    #[arg(long)]
    pub log_level: Option<String>,
    #[arg(long)]
    pub rootless: Option<String>,
    #[arg(long)]
    pub cgroup_manager: Option<String>,
    #[arg(long)]
    pub criu: Option<String>,
    #[arg(long)]
    pub systemd_cgroup: bool,
    #[arg(long)]
    pub debug: bool,
    /// crun's `--version` (`-v`, `-V`).
    #[arg(short = 'v', visible_short_alias = 'V', long)]
    pub version: bool,
    /// argp's `--help` (`-?`) and `--usage`: crun prints them.
    #[arg(short = '?', long)]
    pub help: bool,
    #[arg(long)]
    pub usage: bool,
}

impl GlobalOpts {
    /// The options as crun takes them.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        let mut value = |name: &str, v: Option<OsString>| {
            if let Some(v) = v {
                out.push(name.into());
                out.push(v);
            }
        };
        value("--root", self.root.clone().map(Into::into));
        value("--log", self.log.clone().map(Into::into));
        value("--log-format", self.log_format.clone().map(Into::into));
        value("--log-level", self.log_level.clone().map(Into::into));
        value("--rootless", self.rootless.clone().map(Into::into));
        value("--cgroup-manager", self.cgroup_manager.clone().map(Into::into));
        value("--criu", self.criu.clone().map(Into::into));
        for (set, name) in [
            (self.systemd_cgroup, "--systemd-cgroup"),
            (self.debug, "--debug"),
            (self.version, "--version"),
            (self.help, "--help"),
            (self.usage, "--usage"),
        ] {
            if set {
                out.push(name.into());
            }
        }
        out
    }
}

/// The commands speaker takes part in; the rest go to crun untouched.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    Create(CreateArgs),
    Run(RunArgs),
    Start(StartArgs),
    Kill(KillArgs),
    Delete(DeleteArgs),
    /// Typed so that a line speaker does not understand is never run in a
    /// speaker container; crun gets the line as given.
    Exec(ExecArgs),
    #[command(external_subcommand)]
    Other(Vec<OsString>),
}

/// `create [OPTIONS] ID`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// The configuration file, relative to the bundle (default config.json).
    #[arg(short = 'f', long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub preserve_fds: Option<u32>,
    #[arg(long)]
    pub no_pivot: bool,
    #[arg(long)]
    pub no_new_keyring: bool,
    /// crun ignores it ("do not create a subreaper process").
    #[arg(long)]
    pub no_subreaper: bool,
    pub id: String,
}

impl CreateArgs {
    /// `create` and its options as crun takes them.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["create".into(), "--bundle".into(), self.bundle.clone().into()];
        let paths = [("--config", &self.config), ("--console-socket", &self.console_socket), ("--pid-file", &self.pid_file)];
        for (name, v) in paths {
            if let Some(v) = v {
                out.extend([name.into(), v.clone().into()]);
            }
        }
        if let Some(n) = self.preserve_fds {
            out.extend(["--preserve-fds".into(), n.to_string().into()]);
        }
        for (set, name) in [(self.no_pivot, "--no-pivot"), (self.no_new_keyring, "--no-new-keyring"), (self.no_subreaper, "--no-subreaper")]
        {
            if set {
                out.push(name.into());
            }
        }
        out.push(self.id.clone().into());
        out
    }
}

/// `run [OPTIONS] ID`: create's options plus these.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long)]
    pub keep: bool,
}

/// `start ID`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    pub id: String,
}

/// `kill [--all] [--regex] ID [SIGNAL]`.
#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    #[arg(short = 'a', long)]
    pub all: bool,
    /// ID is a regular expression (crun kills every container it matches).
    #[arg(short = 'r', long)]
    pub regex: bool,
    pub id: String,
    /// Default SIGTERM.
    pub signal: Option<String>,
}

/// `delete [--force] [--regex] ID`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(short = 'r', long)]
    pub regex: bool,
    pub id: String,
}

/// `exec [OPTIONS] ID [COMMAND [ARG...]]`: crun's options; everything
/// after the id is the process's own command line.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// `-t`, `--tty`, `--tty=BOOL` (argp's optional argument: `=` only).
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tty: Option<String>,
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(long)]
    pub cgroup: Option<String>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub preserve_fds: Option<u32>,
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long)]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// crun's global options that take a value (the next word unless given as
/// `--opt=value`).
const GLOBALS_WITH_VALUE: [&str; 7] = ["--root", "--log", "--log-format", "--log-level", "--rootless", "--cgroup-manager", "--criu"];

/// Position of the command word (`exec`, `create`, …) in a line crun gets:
/// the first word after the global options and their values.
pub fn command_index(line: &[OsString]) -> Option<usize> {
    let mut i = 0;
    while i < line.len() {
        let text = line[i].to_string_lossy();
        if text == "--" {
            return (i + 1 < line.len()).then_some(i + 1);
        }
        if !text.starts_with('-') {
            return Some(i);
        }
        let takes_value = text.len() > 2 && !text.contains('=') && GLOBALS_WITH_VALUE.iter().any(|g| g.starts_with(text.as_ref()));
        i += if takes_value { 2 } else { 1 };
    }
    None
}

/// Removes `--speaker-crun PATH` (or `--speaker-crun=PATH`) from the global
/// options (before the command: the container's own arguments are never
/// touched); returns the path and the line crun gets.
pub fn strip_speaker_crun(args: Vec<OsString>) -> (Option<PathBuf>, Vec<OsString>) {
    let mut out = Vec::with_capacity(args.len());
    let mut crun = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let text = a.to_string_lossy().into_owned();
        if text == "--" || !text.starts_with('-') {
            // The command: the rest of the line is the verb's.
            out.push(a);
            break;
        }
        if crun.is_none() && text == SPEAKER_CRUN_OPT {
            crun = Some(it.next().map(PathBuf::from).unwrap_or_default());
            continue;
        }
        if let Some(v) = text.strip_prefix(SPEAKER_CRUN_OPT).and_then(|r| r.strip_prefix('=')).filter(|_| crun.is_none()) {
            crun = Some(PathBuf::from(v));
            continue;
        }
        // A global option that takes the next word (argp accepts any
        // unambiguous abbreviation, `--ro` for `--root`).
        let takes_value = text.len() > 2 && !text.contains('=') && GLOBALS_WITH_VALUE.iter().any(|g| g.starts_with(text.as_str()));
        out.push(a);
        if takes_value {
            out.extend(it.next());
        }
    }
    out.extend(it);
    (crun, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn parse(v: &[&str]) -> RuntimeCli {
        RuntimeCli::try_parse_from(os(v)).unwrap()
    }

    #[test]
    fn globals_are_split_from_the_command_and_speaker_options_removed() {
        let (crun, line) = strip_speaker_crun(os(&[
            "--root",
            "/run/r",
            "--log=/l.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "--speaker-crun",
            "/x/crun",
            "create",
            "--bundle",
            "/b",
            "id1",
        ]));
        assert_eq!(crun, Some(PathBuf::from("/x/crun")));
        assert_eq!(
            line,
            os(&["--root", "/run/r", "--log=/l.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "id1"])
        );
        let cli = RuntimeCli::try_parse_from(line).unwrap();
        assert_eq!(cli.global.root, Some(PathBuf::from("/run/r")));
        assert_eq!(cli.global.log, Some(PathBuf::from("/l.json")));
        assert_eq!(cli.global.log_format.as_deref(), Some("json"));
        assert_eq!(cli.global.to_args(), os(&["--root", "/run/r", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup"]));
        let Some(RuntimeCommand::Create(c)) = cli.command else { panic!("not create") };
        assert_eq!((c.bundle, c.id), (PathBuf::from("/b"), "id1".to_string()));
        let (crun, _) = strip_speaker_crun(os(&["--speaker-crun=/y", "state", "c"]));
        assert_eq!(crun, Some(PathBuf::from("/y")));
    }

    #[test]
    fn no_command_and_unknown_commands_are_crun_business() {
        assert!(parse(&[]).command.is_none());
        let Some(RuntimeCommand::Other(line)) = parse(&["--systemd-cgroup", "frobnicate", "--x", "y"]).command else { panic!() };
        assert_eq!(line, os(&["frobnicate", "--x", "y"]));
        assert!(RuntimeCli::try_parse_from(os(&["--no-such-global", "state", "c"])).is_err());
    }

    #[test]
    fn create_options_in_every_spelling() {
        for line in [
            vec!["create", "--bundle", "/b", "--pid-file", "/p", "c1"],
            vec!["create", "--bundle=/b", "--pid-file=/p", "c1"],
            vec!["create", "-b", "/b", "--no-pivot", "--pid-file", "/p", "c1"],
            vec!["create", "-b/b", "--pid-file", "/p", "c1"],
        ] {
            let Some(RuntimeCommand::Create(c)) = parse(&line).command else { panic!("{line:?}") };
            assert_eq!(c.bundle, PathBuf::from("/b"), "{line:?}");
            assert_eq!(c.pid_file, Some(PathBuf::from("/p")), "{line:?}");
            assert_eq!(c.id, "c1", "{line:?}");
            let again = RuntimeCli::try_parse_from(c.to_args()).unwrap();
            assert!(matches!(again.command, Some(RuntimeCommand::Create(ref d)) if d.bundle == c.bundle && d.no_pivot == c.no_pivot));
        }
    }

    #[test]
    fn run_kill_and_delete_lines() {
        let Some(RuntimeCommand::Run(r)) = parse(&["run", "-d", "--bundle", "/b", "c1"]).command else { panic!() };
        assert!(r.detach && r.create.id == "c1");
        let Some(RuntimeCommand::Kill(k)) = parse(&["kill", "c1", "KILL"]).command else { panic!() };
        assert_eq!((k.id.as_str(), k.signal.as_deref()), ("c1", Some("KILL")));
        let Some(RuntimeCommand::Delete(d)) = parse(&["delete", "-f", "c1"]).command else { panic!() };
        assert!(d.force && d.id == "c1");
    }

    #[test]
    fn the_command_word_is_found_after_the_globals() {
        let line = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(command_index(&line(&["--root", "/r", "--log=/l", "--debug", "exec", "c1", "ls"])), Some(4));
        assert_eq!(command_index(&line(&["--ro", "exec", "exec", "c1"])), Some(2));
        assert_eq!(command_index(&line(&["--root", "/r"])), None);
    }

    #[test]
    fn exec_lines_are_typed_and_the_process_arguments_left_alone() {
        let Some(RuntimeCommand::Exec(e)) = parse(&["exec", "--env", "A=1", "-t", "c1", "ls", "-l", "--", "x"]).command else { panic!() };
        assert_eq!((e.id.as_str(), e.tty.as_deref(), e.env.clone()), ("c1", Some("true"), vec!["A=1".to_string()]));
        assert_eq!(e.command, os(&["ls", "-l", "--", "x"]));
        let Some(RuntimeCommand::Exec(e)) = parse(&["exec", "--tty=false", "-u", "0:0", "--cap", "CAP_KILL", "-d", "c1", "sh"]).command
        else {
            panic!()
        };
        assert_eq!((e.tty.as_deref(), e.user.as_deref(), e.detach), (Some("false"), Some("0:0"), true));
        // speaker's own option after the command belongs to the process.
        let (crun, line) = strip_speaker_crun(os(&["exec", "ct", "echo", "a", "--speaker-crun", "X", "b"]));
        assert_eq!((crun, line), (None, os(&["exec", "ct", "echo", "a", "--speaker-crun", "X", "b"])));
        let (crun, line) = strip_speaker_crun(os(&["--root", "--speaker-crun", "--speaker-crun", "/c", "exec", "ct", "x"]));
        assert_eq!((crun, line), (Some(PathBuf::from("/c")), os(&["--root", "--speaker-crun", "exec", "ct", "x"])), "a value is no option");
    }

    #[test]
    fn every_crun_option_of_create_and_run_parses() {
        // crun's src/create.c and src/run.c, every option, long and short.
        let Some(RuntimeCommand::Create(c)) = parse(&[
            "create",
            "-b",
            "/b",
            "-f",
            "c.json",
            "--console-socket",
            "/s",
            "--preserve-fds",
            "2",
            "--no-pivot",
            "--pid-file",
            "/p",
            "--no-subreaper",
            "--no-new-keyring",
            "c1",
        ])
        .command
        else {
            panic!()
        };
        assert!(c.no_subreaper && c.no_pivot && c.no_new_keyring && c.preserve_fds == Some(2));
        assert!(c.to_args().contains(&OsString::from("--no-subreaper")), "crun gets every option back");
        let Some(RuntimeCommand::Run(r)) = parse(&["run", "--keep", "-d", "--no-subreaper", "-b", "/b", "c1"]).command else { panic!() };
        assert!(r.keep && r.detach && r.create.no_subreaper);
        // argp's abbreviations of long options.
        let Some(RuntimeCommand::Create(c)) = parse(&["--log-f", "json", "create", "--bund", "/b", "--no-sub", "c1"]).command else {
            panic!()
        };
        assert!(c.no_subreaper && c.bundle == Path::new("/b"));
        for line in [&["--version"][..], &["-v"], &["-V"], &["--help"], &["--usage"], &["-?"]] {
            assert!(parse(line).command.is_none(), "{line:?}");
        }
    }

    #[test]
    fn lines_with_options_crun_does_not_have_do_not_parse() {
        for line in
            [&["create", "--frobnicate", "c1"][..], &["run", "--bundle", "/b", "--new-flag", "c1"], &["exec", "--new-flag", "c1", "ls"]]
        {
            assert!(RuntimeCli::try_parse_from(os(line)).is_err(), "{line:?} parsed");
        }
    }
}
