//! Profiles: speaker's multi-phase format, the Docker/OCI seccomp format, and
//! their compilation to classic BPF with libseccomp.
pub mod schema;
