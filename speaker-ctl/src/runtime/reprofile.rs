//! A new profile for a live container, without a restart (`speaker-ctl
//! switch CID --profile FILE`, after `speaker-ctl profile learn`): every
//! phase is compiled again from FILE exactly as at the container's start
//! (speaker-runtime's containers from their bundle's annotations and the
//! copy of the configuration crun was given; `speaker-ctl run`'s from the
//! profile alone), and the programs kept in its state directory (and, for
//! runtime containers, those of processes started by `exec`) are replaced.
//! The filter the container runs changes only at the next switch, which
//! the caller makes right after.
use anyhow::{bail, Context, Result};
use std::path::Path;

use super::bundle::Bundle;
use super::create::CRUN_CONFIG;
use super::filters::BundleFilters;
use crate::container::exec_filter;
use crate::container::phases::from_profile_with;
use crate::container::state::{ContainerState, PhaseRecord};
use crate::profile::CompileOptions;

/// Recompiles container `cid`'s phases from `path`; the new profile must
/// have the same phases as the container's.
pub fn reprofile(cid: &str, path: &Path) -> Result<()> {
    ContainerState::load(cid)?;
    let _lock = ContainerState::lock(cid)?;
    let mut st = ContainerState::load(cid)?;
    let (phases, exec) = match &st.runtime {
        Some(rt) => {
            let copy = ContainerState::dir_of(cid).join(CRUN_CONFIG);
            let bundle = Bundle::open(&rt.bundle, Some(&copy))
                .with_context(|| format!("container '{cid}': cannot read the configuration it was started with"))?;
            let f = BundleFilters::compile(&bundle, path)?;
            (f.phases, Some((f.exec_progs, f.exec_oci)))
        }
        None => (from_profile_with(path, &CompileOptions::default())?, None),
    };
    let had: Vec<_> = st.phases.iter().map(|p| p.phase).collect();
    let has: Vec<_> = phases.iter().map(|p| p.phase).collect();
    if had != has {
        bail!(
            "{} has the phases {has:?} but container '{cid}' has {had:?}; a live container keeps its phases (restart it to change them)",
            path.display()
        );
    }
    st.save_programs(&phases)?;
    st.phases = phases.iter().map(PhaseRecord::of).collect();
    if let Some((progs, oci)) = exec {
        exec_filter::save(cid, &progs, &oci)?;
    }
    if let Some(rt) = st.runtime.as_mut() {
        rt.profile = path.to_path_buf();
    }
    st.save()?;
    st.log(&format!("profile replaced by {} (takes effect at the next switch)", path.display()));
    Ok(())
}
