//! `speaker-ctl completions SHELL` and `speaker-ctl manpage DIR`: shell
//! completions and man pages generated from the clap definitions (so they
//! never drift from the command line).
use crate::sys::output::errln;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

use crate::cli::Cli;
use crate::sys::output::{write_stdout, Target};

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "speaker-ctl", &mut buf);
    write_stdout(&buf)?;
    Ok(0)
}

/// Writes `speaker-ctl.1` and one page per command (`speaker-ctl-trace.1`,
/// `speaker-ctl-profile-show.1`, ...) into `dir`.
pub fn manpages(dir: &Path) -> Result<i32> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("cannot write man pages into {}: it is not a directory (give a directory, created if missing)", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let mut written = 0;
    let mut todo = vec![("speaker-ctl".to_string(), Cli::command())];
    while let Some((name, cmd)) = todo.pop() {
        let cmd = cmd.name(name.clone()).bin_name(name.replace('-', " ").replacen("speaker ctl", "speaker-ctl", 1));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            todo.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf).with_context(|| format!("cannot render the man page of {name}"))?;
        Target::Path(dir.join(format!("{name}.1"))).write(&buf)?;
        written += 1;
    }
    errln!("speaker-ctl: wrote {written} man pages to {}", dir.display());
    Ok(0)
}
