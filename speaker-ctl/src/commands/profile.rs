//! `speaker-ctl profile`: export, merge, diff and show profiles.
use crate::sys::output::errln;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::{ExportFormat, ProfileCommand};
use crate::profile::schema::{Phase, Profile};
use crate::profile::{self, oci, table};
use crate::sys::output::Target;
use crate::sys::output::{out, outln};

/// Width the `show` table is wrapped to.
const SHOW_WIDTH: usize = 100;

pub fn run(cmd: ProfileCommand) -> Result<i32> {
    match cmd {
        ProfileCommand::Export { phase, format, output, no_margin, arch, compile, profile } => {
            export(phase, format, output.as_deref(), &compile.options(no_margin), arch.map(|a| a.arch()), &profile)
        }
        ProfileCommand::Validate { files } => validate(&files),
        ProfileCommand::Merge { output, inputs } => merge(&output, &inputs),
        ProfileCommand::Diff { a, b } => {
            // Exit status like diff(1): 0 same, 1 different, 2 trouble.
            match diff(&a, &b) {
                Ok(code) => Ok(code),
                Err(err) if crate::sys::output::is_stdout_closed(err.as_ref()) => Err(err),
                Err(err) => {
                    errln!("speaker-ctl: error: {err:#}");
                    Ok(2)
                }
            }
        }
        ProfileCommand::Show { json, phase, baseline, profile } => show(json, phase, baseline.as_deref(), &profile),
        ProfileCommand::Learn { cid, output, profile, from_log, phase } => {
            super::learn::run(&cid, &output, profile.as_deref(), from_log.as_deref(), phase)
        }
        ProfileCommand::Table { baseline, json, markdown, profiles } => table(&baseline, json.as_deref(), markdown.as_deref(), &profiles),
    }
}

fn table(baseline: &Path, json: Option<&Path>, markdown: Option<&Path>, profiles: &[std::path::PathBuf]) -> Result<i32> {
    let targets: Vec<(Target, bool)> = [(json, true), (markdown, false)]
        .into_iter()
        .filter_map(|(p, is_json)| p.map(|p| (Target::parse(p.as_os_str()), is_json)))
        .collect();
    // Two outputs into one replaced file: the second would overwrite the
    // first (a device, a FIFO or stdout gets both, one after the other).
    if let [(a, _), (b, _)] = targets.as_slice() {
        if a.is_replaced() && (a == b || same_file(a, b)) {
            return Err(crate::cli::UsageError(format!("--json and --markdown both name {}: give each its own file", a.display())).into());
        }
    }
    for (t, _) in &targets {
        t.check()?;
    }
    let oci = profile::load_oci(baseline).context("cannot load the baseline profile")?;
    let base = profile::docker_count(&oci, profile::Arch::X86_64).unconditional;
    let docker = table::docker_allowed(&oci);
    let mut rows = Vec::new();
    for path in profiles {
        let p = load_lossy(path)?;
        let service = p.name.clone().unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        rows.push(table::row(service, &p, base, &docker, path)?);
    }
    // With JSON or Markdown on standard output, the text table goes to
    // standard error (stdout holds the one document asked for).
    if targets.iter().any(|(t, _)| *t == Target::Stdout) {
        errln!("{}", table::render_text(&rows).trim_end());
    } else {
        out!("{}", table::render_text(&rows))?;
    }
    for (t, is_json) in targets {
        let text = if is_json { serde_json::to_string_pretty(&rows)? } else { table::render_markdown(&rows) };
        t.write(text.as_bytes())?;
    }
    Ok(0)
}

/// Whether two output targets are one existing file (a link and its
/// target, `./x` and `x`).
fn same_file(a: &Target, b: &Target) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a, b) {
        (Target::Path(a), Target::Path(b)) => match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.is_file() && (x.dev(), x.ino()) == (y.dev(), y.ino()),
            // Not there yet: the same name in the same directory.
            _ => {
                let at = |p: &Path| crate::sys::fs::dir_of(p).canonicalize().ok().map(|d| d.join(p.file_name().unwrap_or_default()));
                at(a).is_some() && at(a) == at(b)
            }
        },
        _ => false,
    }
}

/// A speaker profile (a Docker/OCI one is refused).
fn load(path: &Path) -> Result<Profile> {
    Ok(profile::load_profile(path)?)
}

/// A speaker profile, or a Docker/OCI one read as one boot phase with a
/// warning saying what was left out (for reading: show, diff, table).
fn load_lossy(path: &Path) -> Result<Profile> {
    let (p, notes) = profile::load_profile_lossy(path)?;
    for n in notes {
        errln!("speaker-ctl: warning: {n}");
    }
    Ok(p)
}

/// `profile validate FILE...`: one line per problem on stdout.
fn validate(files: &[PathBuf]) -> Result<i32> {
    let mut bad = 0;
    for f in files {
        let checked = profile::check_profile_file(f);
        if !checked.problems.is_empty() {
            bad += 1;
        }
        if let Some(note) = checked.note {
            errln!("speaker-ctl: note: {note}");
        }
        for p in checked.problems {
            // A closed stdout (`| head -1`) stops the listing, not the
            // verdict: the exit status still says whether all are valid.
            if let Err(e) = outln!("{p}") {
                if !matches!(e, crate::sys::output::OutputError::Closed(_)) {
                    return Err(e.into());
                }
            }
        }
    }
    if bad > 0 {
        errln!("speaker-ctl: {bad} of {} profile{} invalid", files.len(), if files.len() == 1 { "" } else { "s" });
        return Ok(1);
    }
    errln!("speaker-ctl: {} profile{} valid", files.len(), if files.len() == 1 { "" } else { "s" });
    Ok(0)
}

fn export(
    phase: Phase,
    format: ExportFormat,
    output: Option<&Path>,
    opts: &profile::CompileOptions,
    node: Option<profile::Arch>,
    path: &Path,
) -> Result<i32> {
    let ExportFormat::Oci = format;
    let target = Target::or_stdout(output);
    target.check()?;
    let p = load(path)?;
    if p.phase(phase).is_none() {
        let have: Vec<&str> = p.phases.keys().map(|p| p.name()).collect();
        bail!("{} has no {phase} phase (it has: {}); pick one of those with --phase", path.display(), have.join(", "));
    }
    // What a container gets for that phase on each node architecture the
    // profile holds: compiled like `run` compiles it there.
    if let Some(node) = node {
        let have = oci::export::node_arches(&p);
        if !have.contains(&node) {
            let have: Vec<&str> = have.iter().map(|a| a.name()).collect();
            bail!(
                "{} has no {node} half (it is for {}); pick one of those with --arch, or leave --arch out",
                path.display(),
                have.join(", ")
            );
        }
    }
    let ex =
        oci::export_phase(&p, opts, phase, node, path).with_context(|| format!("cannot export the {phase} phase of {}", path.display()))?;
    if !ex.dropped.is_empty() {
        errln!(
            "speaker-ctl: warning: the OCI format gives a node's compat ABI the native ABI's rules, which would not keep this phase's \
             sets exact; so these {} entries are left out and their ABI denied (speaker's own `run --profile` keeps them): {}",
            ex.dropped.len(),
            ex.dropped.join(", ")
        );
    }
    let oci = &ex.oci;
    // What we write must be what `run --boot FILE` accepts, on every node.
    let label = PathBuf::from(target.display());
    for &node in &ex.nodes {
        oci::to_phase_filter_on(oci, &label, node)
            .and_then(|f| profile::compile(&f))
            .with_context(|| format!("the exported {phase} phase of {} does not compile for {node}", path.display()))?;
    }
    let mut text = serde_json::to_string_pretty(oci).context("cannot serialize the OCI profile")?;
    text.push('\n');
    target.write(text.as_bytes())?;
    match &target {
        Target::Path(out) => {
            errln!(
                "speaker-ctl: wrote {} ({phase} phase of {}, {} syscalls, {} of them in a low form only; compiled {}{})",
                out.display(),
                path.display(),
                oci.syscalls.iter().flat_map(|s| s.names.iter()).collect::<std::collections::BTreeSet<_>>().len(),
                ex.low_form_only.len(),
                ex.mode,
                if ex.nodes.len() > 1 {
                    format!("; for {}", ex.nodes.iter().map(|n| n.name()).collect::<Vec<_>>().join(" and "))
                } else {
                    String::new()
                }
            );
        }
        Target::Stdout => {}
    }
    Ok(0)
}

fn merge(output: &Path, inputs: &[PathBuf]) -> Result<i32> {
    let target = Target::parse(output.as_os_str());
    target.check()?;
    let mut loaded = Vec::with_capacity(inputs.len());
    for path in inputs {
        loaded.push((path.clone(), load(path)?));
    }
    // Recordings of different services merged by mistake: say so.
    let names: std::collections::BTreeMap<&str, &Path> =
        loaded.iter().rev().filter_map(|(p, prof)| prof.name.as_deref().map(|n| (n, p.as_path()))).collect();
    if names.len() > 1 {
        let list: Vec<String> = names.iter().map(|(n, p)| format!("{} is '{n}'", p.display())).collect();
        errln!(
            "speaker-ctl: warning: the inputs name different services ({}); the merge is named '{}': merge only recordings of one service",
            list.join(", "),
            loaded.iter().find_map(|(_, p)| p.name.as_deref()).unwrap_or("")
        );
    }
    let merged = profile::merge(&loaded).with_context(|| format!("merging into {}", target.display()))?;
    profile::write_profile(&target, &merged)?;
    // What each input added to which phase (stdout: the report).
    for c in profile::contributions(&loaded) {
        let parts: Vec<String> = c
            .added
            .iter()
            .map(
                |(phase, names)| {
                    if names.is_empty() {
                        format!("{phase} +0")
                    } else {
                        format!("{phase} +{} ({})", names.len(), names.join(" "))
                    }
                },
            )
            .collect();
        // With the profile itself on standard output, the report goes to
        // stderr.
        let line = format!("{}: {}", c.input.display(), parts.join("; "));
        if target == Target::Stdout {
            errln!("{line}");
        } else {
            outln!("{line}")?;
        }
    }
    let counts: Vec<String> = merged.phases.iter().map(|(phase, set)| format!("{phase} {}", profile::phase_labels(set).len())).collect();
    errln!("speaker-ctl: merged {} profiles into {} ({})", inputs.len(), target.display(), counts.join(", "));
    Ok(0)
}

fn diff(a_path: &Path, b_path: &Path) -> Result<i32> {
    let a = load_lossy(a_path)?;
    let b = load_lossy(b_path)?;
    let d = profile::diff(&a, &b);
    if d.is_empty() {
        return Ok(0);
    }
    // A closed stdout cuts the listing, not the verdict (1: different).
    if let Err(e) = out!("{}", profile::diff::render(&a_path.display().to_string(), &b_path.display().to_string(), &d)) {
        if !matches!(e, crate::sys::output::OutputError::Closed(_)) {
            return Err(e.into());
        }
    }
    Ok(1)
}

/// Words joined by spaces, wrapped to `width` columns.
fn wrap(words: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in words {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Docker's default seccomp profile (moby's `profiles/seccomp/default.json`),
/// the baseline of `profile show` unless `--baseline` names another.
const DOCKER_DEFAULT: &str = include_str!("../../tests/data/docker-default-seccomp.json");

fn docker_baseline(baseline: Option<&Path>) -> Result<std::collections::BTreeSet<String>> {
    let oci = match baseline {
        Some(b) => profile::load_oci(b).context("cannot load the baseline profile")?,
        None => serde_json::from_str(DOCKER_DEFAULT).context("the built-in Docker default profile")?,
    };
    Ok(table::docker_allowed(&oci))
}

fn show(json: bool, only: Option<Phase>, baseline: Option<&Path>, path: &Path) -> Result<i32> {
    let p = load_lossy(path)?;
    if let Some(phase) = only {
        let set = p.phase(phase).with_context(|| format!("{} has no {phase} phase", path.display()))?;
        for name in profile::phase_labels(set) {
            outln!("{name}")?;
        }
        return Ok(0);
    }
    let docker = docker_baseline(baseline)?;
    let counts = table::counts(&p, &docker, path)?;
    let modes: Vec<(profile::CompileMode, profile::PhaseSets)> = profile::CompileMode::ALL
        .into_iter()
        .map(|m| profile::phase_sets(&p, &profile::CompileOptions::mode(m), path).map(|s| (m, s)))
        .collect::<Result<_, _>>()?;
    if json {
        let mut map = serde_json::Map::new();
        for (phase, set) in &p.phases {
            let names = profile::phase_labels(set);
            let mut v = serde_json::json!({ "count": names.len(), "syscalls": names });
            for (m, sets) in &modes {
                v[m.name()] = serde_json::json!({
                    "count": sets.names(*phase).len() + sets.conditional_names(*phase).len(),
                    "low_form_only": sets.conditional_names(*phase),
                    "critical_removed_vs_docker": sets.critical_removed(*phase, &docker),
                    "added": sets.names(*phase).iter().filter(|n| !names.contains(n)).collect::<Vec<_>>(),
                });
            }
            map.insert(phase.name().to_string(), v);
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))?;
        outln!("{text}")?;
        return Ok(0);
    }
    let phase_w = Phase::ALL.iter().map(|p| p.name().len()).max().unwrap_or(5).max("PHASE".len());
    let count_w = "COUNT".len();
    let names_w = SHOW_WIDTH.saturating_sub(phase_w + count_w + 4).max(20);
    let mut out = format!("{:<phase_w$}  {:>count_w$}  SYSCALLS\n", "PHASE", "COUNT");
    for (phase, set) in &p.phases {
        let names = profile::phase_labels(set);
        for (i, line) in wrap(&names, names_w).iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{:<phase_w$}  {:>count_w$}  {line}\n", phase.name(), names.len()));
            } else {
                out.push_str(&format!("{:<phase_w$}  {:>count_w$}  {line}\n", "", ""));
            }
        }
    }
    // Compiled: what each mode's filter allows, and the critical syscalls
    // Docker's default allows that it removes.
    out.push_str(&format!(
        "\n{:<phase_w$}  {:>6}  {:>6}  {:>8}  {:>16}  {:>18}\n",
        "PHASE", "TRACED", "STRICT", "BALANCED", "CRITICAL-STRICT", "CRITICAL-BALANCED"
    ));
    for (phase, c) in &counts {
        out.push_str(&format!(
            "{:<phase_w$}  {:>6}  {:>6}  {:>8}  {:>16}  {:>18}\n",
            phase.name(),
            c.traced,
            c.strict,
            c.balanced,
            c.critical_removed_strict,
            c.critical_removed_balanced
        ));
    }
    let note = format!(
        "(strict/balanced: syscalls the compiled filter allows; CRITICAL-*: critical syscalls removed vs Docker's default, of the {} it allows; compiled by default: {})",
        docker.iter().filter(|n| profile::risk::table().is_critical(n)).count(),
        p.compile.unwrap_or_default()
    );
    let words = |t: &str| t.split(' ').map(str::to_string).collect::<Vec<_>>();
    for line in wrap(&words(&note), SHOW_WIDTH) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some((_, balanced)) = modes.iter().find(|(m, _)| *m == profile::CompileMode::Balanced) {
        for (phase, set) in &p.phases {
            let traced = profile::phase_labels(set);
            let added: Vec<String> = balanced.names(*phase).into_iter().filter(|n| !traced.contains(n)).collect();
            let forms = balanced.conditional_names(*phase);
            if !added.is_empty() || !forms.is_empty() {
                let mut text = format!("balanced {phase} beyond its trace (margin, widening, families): {}", added.join(" "));
                if !forms.is_empty() {
                    text.push_str(&format!("; low form only (no PROT_EXEC): {}", forms.join(" ")));
                }
                for line in wrap(&words(&text), SHOW_WIDTH) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
    }
    out!("{out}")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_lines() {
        let w: Vec<String> = ["aaa", "bb", "cccc", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(wrap(&w, 7), vec!["aaa bb", "cccc d"]);
        assert_eq!(wrap(&[], 7), vec![""]);
        assert_eq!(wrap(&w[2..3], 2), vec!["cccc"]);
    }
}
