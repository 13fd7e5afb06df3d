//! speaker-ctl: the userspace helper of speaker (see `speaker-ctl --help`).
use clap::Parser;
use speaker::cli::{Cli, Command, UsageError};
use speaker::commands;
use speaker::sys::output::{error_line, is_stdout_closed, print_err, write_stdout};

fn main() {
    // speaker-runtime: the OCI runtime wrapper, under its own name or as
    // `speaker-ctl runtime ARGS...`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args.first().map(std::path::Path::new).and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let runtime = name.as_deref() == Some("speaker-runtime") || args.get(1).is_some_and(|a| a == "runtime");
    commands::install_panic_hook(if runtime { "speaker-runtime" } else { "speaker-ctl" });
    if runtime {
        let rest = args.split_off(if name.as_deref() == Some("speaker-runtime") { 1 } else { 2 });
        let code = commands::guarded(|| Ok(speaker::runtime::main(rest)));
        std::process::exit(code.unwrap_or(1));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(clap_exit(&e)),
    };
    let result = commands::guarded(|| dispatch(cli.command));
    match result {
        Ok(code) => std::process::exit(code),
        // The reader of our output went away (`| head -1`): as grep does,
        // stop quietly; nothing failed that anyone is waiting to hear of.
        Err(err) if is_stdout_closed(err.as_ref()) => std::process::exit(0),
        Err(err) if err.downcast_ref::<UsageError>().is_some() => {
            print_err(format_args!("speaker-ctl: error: {err} (see 'speaker-ctl --help')\n"));
            std::process::exit(2);
        }
        Err(err) => {
            print_err(format_args!("speaker-ctl: error: {}\n", error_line(&err)));
            std::process::exit(1);
        }
    }
}

/// What clap's own answers exit with: usage errors 2 (on stderr), `--help`
/// and `--version` 0 once written to stdout, through the one output writer
/// (clap's `exit()` ignores a failed write: `--help > /dev/full` would
/// claim success).
fn clap_exit(e: &clap::Error) -> i32 {
    use std::io::IsTerminal;
    if e.use_stderr() {
        let text = if std::io::stderr().is_terminal() { e.render().ansi().to_string() } else { e.render().to_string() };
        print_err(format_args!("{text}"));
        return e.exit_code();
    }
    let text = if std::io::stdout().is_terminal() { e.render().ansi().to_string() } else { e.render().to_string() };
    match write_stdout(text.as_bytes()) {
        Ok(()) => e.exit_code(),
        Err(err) if is_stdout_closed(&err) => 0,
        Err(err) => {
            print_err(format_args!("speaker-ctl: error: {err}\n"));
            1
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Version => commands::version::run(),
        Command::Trace(args) => commands::trace::run(args),
        Command::Profile(cmd) => commands::profile::run(cmd),
        Command::Run(args) => commands::run::run(args),
        Command::Switch(args) => commands::switch::run(args),
        Command::Stop(args) => commands::stop::run(args),
        Command::Signal(args) => commands::signal::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Denials(args) => commands::denials::run(args),
        Command::Completions { shell } => commands::docs::completions(shell),
        Command::Manpage { dir } => commands::docs::manpages(&dir),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchReport { dir } => commands::bench::report(&dir),
        Command::BenchMerge { out, parts } => commands::bench::merge(&out, &parts),
        Command::BenchCompare { runs } => commands::bench::compare(&runs),
        Command::BenchPayload { threads, processes } => commands::bench::payload(threads, processes),
    }
}
