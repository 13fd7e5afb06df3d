//! What the CRI tests run in the Debian 13 guest (`vm-cri`) are made of: a
//! CRI client of the kubelet's calls ([`client`]) and OCI images made from
//! the guest's own files ([`image`]), since no registry is reachable.
pub mod client;
pub mod deploy;
pub mod image;
