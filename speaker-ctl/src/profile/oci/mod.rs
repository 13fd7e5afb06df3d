//! The Docker/OCI seccomp profile format (`defaultAction`, `syscalls[]`,
//! ...): its types here, the translations from and to speaker's types in
//! [`translate`], `profile export`'s in [`export`], and the counts `profile
//! table` shows in [`stats`].
use serde::{Deserialize, Serialize};

pub mod export;
mod stats;
mod translate;

pub use export::{export_phase, Exported};
pub use stats::{docker_count, DockerCount};
pub use translate::{
    applies, docker_sets, filter_arches, from_phase, to_phase_filter, to_phase_filter_on, to_profile, Applies, DockerSets,
};

/// A Docker/OCI seccomp profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciProfile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<OciArchMap>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<OciSyscall>,
}

/// `archMap[]`: the ABIs to use on a host of architecture `architecture`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub sub_architectures: Vec<String>,
}

/// `syscalls[]`: one rule for several names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciSyscall {
    #[serde(default, deserialize_with = "null_default")]
    pub names: Vec<String>,
    /// Old Docker format: a single name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OciArg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "OciFilter::is_empty")]
    pub includes: OciFilter,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "OciFilter::is_empty")]
    pub excludes: OciFilter,
}

impl OciSyscall {
    /// `names`, plus the old-format `name`.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str).chain(self.name.as_deref())
    }
}

/// `args[]`: one argument condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciArg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// `includes` / `excludes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciFilter {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl OciFilter {
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// `null` reads as the default (Docker writes `"args": null`, `"subArchitectures": null`).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
