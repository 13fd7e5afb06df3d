//! `speaker-ctl profile learn`: add what a container was logged doing to
//! the right phase of its profile, show the diff, write.
use crate::sys::output::{err, errln};
use anyhow::{Context, Result};
use std::path::Path;

use crate::container::denials::{observations, Source};
use crate::container::state::ContainerState;
use crate::profile::learn::learn;
use crate::profile::schema::Phase;
use crate::profile::{self};
use crate::sys::output::out;
use crate::sys::output::Target;

pub fn run(cid: &str, output: &Path, base: Option<&Path>, from_log: Option<&Path>, phase: Option<Phase>) -> Result<i32> {
    let target = Target::parse(output.as_os_str());
    target.check()?;
    let base_path = match base {
        Some(p) => p.to_path_buf(),
        None => ContainerState::load(cid)
            .ok()
            .and_then(|s| s.runtime.map(|r| r.profile))
            .with_context(|| format!("which profile did container '{cid}' start from? give --profile FILE"))?,
    };
    let base = profile::load_profile(&base_path)?;
    let source = match from_log {
        Some(p) => Source::File(p),
        None => Source::Kmsg,
    };
    let obs = observations(cid, &source, phase)?;
    let learned = learn(&base, &obs);
    let d = profile::diff(&base, &learned);
    // With the profile itself on standard output, the report goes to stderr.
    let to_stdout = target != Target::Stdout;
    let say = |text: String| -> Result<()> {
        if to_stdout {
            out!("{text}")?;
        } else {
            err!("{text}");
        }
        Ok(())
    };
    if d.is_empty() {
        say(format!("nothing to learn: container '{cid}' was logged doing nothing its profile does not allow\n"))?;
    } else {
        say(profile::diff::render(&base_path.display().to_string(), &target.display(), &d))?;
        for o in &obs {
            say(format!("  {} {}: {} record{}\n", o.phase, o.name, o.count, if o.count == 1 { "" } else { "s" }))?;
        }
    }
    profile::write_profile(&target, &learned)?;
    errln!("speaker-ctl: wrote {}", target.display());
    Ok(0)
}
