//! speaker-ctl: the userspace helper of speaker (see `speaker-ctl --help`).
use clap::Parser;
use speaker::cli::{Cli, Command};
use speaker::commands;

fn main() {
    // speaker-runtime: the OCI runtime wrapper, under its own name or as
    // `speaker-ctl runtime ARGS...`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args.first().map(std::path::Path::new).and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    if name.as_deref() == Some("speaker-runtime") {
        std::process::exit(speaker::runtime::main(args.split_off(1)));
    }
    if args.get(1).map(|a| a == "runtime").unwrap_or(false) {
        std::process::exit(speaker::runtime::main(args.split_off(2)));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => commands::version::run(),
        Command::Trace(args) => commands::trace::run(args),
        Command::Profile(cmd) => commands::profile::run(cmd),
        Command::Run(args) => commands::run::run(args),
        Command::Switch(args) => commands::switch::run(args),
        Command::Stop(args) => commands::stop::run(args),
        Command::Signal(args) => commands::signal::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Denials(args) => commands::denials::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchReport { dir } => commands::bench::report(&dir),
        Command::BenchMerge { out, parts } => commands::bench::merge(&out, &parts),
        Command::BenchCompare { runs } => commands::bench::compare(&runs),
        Command::BenchPayload { threads, processes } => commands::bench::payload(threads, processes),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("speaker-ctl: error: {err:#}");
            std::process::exit(1);
        }
    }
}
