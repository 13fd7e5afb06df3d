//! speaker-ctl: the userspace helper of speaker (see `speaker-ctl --help`).
use clap::Parser;
use speaker::cli::{Cli, Command};
use speaker::commands;

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => commands::version::run(),
        Command::Trace(args) => commands::trace::run(args),
        Command::Profile(cmd) => commands::profile::run(cmd),
        Command::Run(args) => commands::run::run(args),
        Command::Switch(args) => commands::switch::run(args),
        Command::Stop(args) => commands::stop::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchPayload { threads } => commands::bench::payload(threads),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("speaker-ctl: error: {err:#}");
            std::process::exit(1);
        }
    }
}
