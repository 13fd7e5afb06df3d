//! `speaker-ctl profile learn`: add what a container was logged doing to
//! the right phase of its profile, show the diff, write.
use anyhow::{Context, Result};
use std::path::Path;

use crate::container::denials::{observations, Source};
use crate::container::state::ContainerState;
use crate::profile::learn::learn;
use crate::profile::schema::Phase;
use crate::profile::{self};

pub fn run(cid: &str, output: &Path, base: Option<&Path>, from_log: Option<&Path>, phase: Option<Phase>) -> Result<i32> {
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
    if d.is_empty() {
        println!("nothing to learn: container '{cid}' was logged doing nothing its profile does not allow");
    } else {
        print!("{}", profile::diff::render(&base_path.display().to_string(), &output.display().to_string(), &d));
        for o in &obs {
            println!("  {} {}: {} record{}", o.phase, o.name, o.count, if o.count == 1 { "" } else { "s" });
        }
    }
    profile::write_profile_atomic(output, &learned).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("speaker-ctl: wrote {}", output.display());
    Ok(0)
}
