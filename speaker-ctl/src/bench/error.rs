//! The benchmark's errors.
use crate::device::DeviceError;
use crate::profile::ProfileError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{what}: {source:#}")]
    Container { what: String, source: anyhow::Error },
    #[error("{cmd} failed: {msg}")]
    Command { cmd: String, msg: String },
    #[error("{what} not ready after {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("cannot parse {what}: {text}")]
    Parse { what: String, text: String },
}

impl BenchError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> BenchError {
        BenchError::Io { what: what.into(), source }
    }

    pub fn sys(what: impl Into<String>, source: nix::Error) -> BenchError {
        BenchError::Sys { what: what.into(), source }
    }

    pub fn container(what: impl Into<String>, source: anyhow::Error) -> BenchError {
        BenchError::Container { what: what.into(), source }
    }
}
