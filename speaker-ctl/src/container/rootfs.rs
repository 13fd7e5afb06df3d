//! The files a `speaker-ctl run` container sees: the host's, read-only
//! (every mount, recursively), with `/proc/sys` and `/proc/sysrq-trigger`
//! read-only too, and read-write only the directories given as volumes
//! (`--volume HOST[:CONTAINER]`), which are `nodev` and `nosuid`.  Root in
//! the container can neither rewrite a host file outside its volumes nor
//! make a usable device node anywhere (the container's `/dev` is a `nodev`
//! tmpfs, see `confine.rs`, and it lacks CAP_MKNOD).
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use crate::sys::mount_attr;

/// A host directory the container may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host's directory.
    pub host: PathBuf,
    /// Where the container sees it (an existing directory of the host's
    /// tree, which the volume covers).
    pub inside: PathBuf,
}

/// A `--volume` value speaker-ctl cannot use.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("--volume '{0}': want an absolute path HOST or HOST:CONTAINER")]
    NotAbsolute(String),
    #[error("--volume '{0}': '{1}' is not an existing directory; create it first")]
    NoDirectory(String, PathBuf),
}

impl Volume {
    /// Parses `HOST` or `HOST:CONTAINER` (absolute paths, existing
    /// directories).
    pub fn parse(spec: &str) -> Result<Volume, VolumeError> {
        let (host, inside) = match spec.split_once(':') {
            Some((h, i)) => (h, i),
            None => (spec, spec),
        };
        let (host, inside) = (PathBuf::from(host), PathBuf::from(inside));
        if !host.is_absolute() || !inside.is_absolute() {
            return Err(VolumeError::NotAbsolute(spec.to_string()));
        }
        for p in [&host, &inside] {
            if !p.is_dir() {
                return Err(VolumeError::NoDirectory(spec.to_string(), p.clone()));
            }
        }
        Ok(Volume { host, inside })
    }
}

/// In the container's first process, in its own (private) mount
/// namespace, before `/proc` and `/dev` are mounted: the volumes bound,
/// then every mount read-only but the volumes.
pub fn make_read_only(volumes: &[Volume]) -> Result<(), (&'static str, Errno)> {
    for v in volumes {
        mount(Some(v.host.as_path()), v.inside.as_path(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| ("cannot bind a volume", e))?;
    }
    mount_attr::set(Path::new("/"), mount_attr::RDONLY, 0, true)
        .map_err(|e| ("cannot make the host's files read-only (mount_setattr needs Linux 5.12 or later)", e))?;
    for v in volumes {
        mount_attr::set(&v.inside, mount_attr::NODEV | mount_attr::NOSUID, mount_attr::RDONLY, true)
            .map_err(|e| ("cannot make a volume writable", e))?;
    }
    Ok(())
}

/// After `/proc` is mounted: `/proc/sys` and `/proc/sysrq-trigger`
/// read-only (root could otherwise change the host's kernel settings).
/// A kernel without one of them (no `CONFIG_MAGIC_SYSRQ`) has nothing to
/// protect there.
pub fn protect_proc() -> Result<(), (&'static str, Errno)> {
    for p in ["/proc/sys", "/proc/sysrq-trigger"] {
        match mount(Some(p), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(("cannot bind /proc/sys or /proc/sysrq-trigger", e)),
        }
        mount_attr::set(Path::new(p), mount_attr::RDONLY | mount_attr::NOSUID | mount_attr::NODEV, 0, true)
            .map_err(|e| ("cannot make /proc/sys or /proc/sysrq-trigger read-only", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let v = Volume::parse("/tmp").unwrap();
        assert_eq!((v.host.as_path(), v.inside.as_path()), (Path::new("/tmp"), Path::new("/tmp")));
        let v = Volume::parse("/tmp:/var").unwrap();
        assert_eq!((v.host.as_path(), v.inside.as_path()), (Path::new("/tmp"), Path::new("/var")));
        assert!(matches!(Volume::parse("tmp"), Err(VolumeError::NotAbsolute(_))));
        assert!(matches!(Volume::parse("/tmp:var"), Err(VolumeError::NotAbsolute(_))));
        assert!(matches!(Volume::parse("/no/such/dir"), Err(VolumeError::NoDirectory(..))));
    }
}
