//! OCI bundles that ask for speaker: annotation `io.speaker.profile` (a
//! speaker profile; a relative path is relative to the bundle), and
//! `io.speaker.ready` to override the profile's readiness condition,
//! `io.speaker.mode` (`complain` or `enforce`) for the mode it starts in.
//!
//! Under Kubernetes (containerd's CRI with `pod_annotations =
//! ["io.speaker.*"]`) every container of the pod gets the pod's
//! annotations, the sandbox (pause) container included: a sandbox is never
//! speaker's, and `io.speaker.profile.NAME` is the profile of the container
//! named NAME (`io.kubernetes.cri.container-name`), ahead of
//! `io.speaker.profile` (docs/src/kubernetes.md).
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::container::exec_filter;
use crate::profile::OciProfile;
use crate::sys::fs::write_atomic;

pub const ANNOTATION_PROFILE: &str = "io.speaker.profile";
pub const ANNOTATION_READY: &str = "io.speaker.ready";
/// `complain` or `enforce` (the default): the mode the container starts in.
pub const ANNOTATION_MODE: &str = "io.speaker.mode";
/// The engine: `auto` (default: speaker.ko when it is loaded, else
/// notify), `kmod` or `notify` (see `container::engine`).
pub const ANNOTATION_ENGINE: &str = "io.speaker.engine";
/// `strict` or `balanced`: how the profile's phases are compiled (default:
/// the profile's `compile`, else balanced).
pub const ANNOTATION_COMPILE: &str = "io.speaker.compile";
/// Comma-separated syscalls every phase allows (`--allow`).
pub const ANNOTATION_ALLOW: &str = "io.speaker.allow";
/// Comma-separated syscalls no phase allows (`--deny`).
pub const ANNOTATION_DENY: &str = "io.speaker.deny";
/// Every annotation of speaker's (`io.speaker.profile.NAME` aside).
pub const KNOWN_ANNOTATIONS: &[&str] =
    &[ANNOTATION_PROFILE, ANNOTATION_READY, ANNOTATION_MODE, ANNOTATION_COMPILE, ANNOTATION_ALLOW, ANNOTATION_DENY, ANNOTATION_ENGINE];

/// Whether `key` is one of speaker's annotations (`io.speaker.profile.NAME`
/// with a non-empty NAME included).
pub fn is_known_annotation(key: &str) -> bool {
    KNOWN_ANNOTATIONS.contains(&key) || key.strip_prefix("io.speaker.profile.").is_some_and(|n| !n.is_empty())
}

/// Whether annotation `key` was meant as one of speaker's: it starts with
/// `io.speaker.`, or its start is within two edits of it in any case
/// (`IO.SPEAKER.`, `io.speakers.`, `io.spaeker.`, `io.speaker-`).
pub fn looks_like_speakers(key: &str) -> bool {
    const PREFIX: &str = "io.speaker.";
    let lower = key.to_ascii_lowercase();
    if lower.starts_with(PREFIX) {
        return true;
    }
    // The start of the key as long as the prefix, one longer and one
    // shorter (an inserted or a dropped character).
    let starts = [PREFIX.len() - 1, PREFIX.len(), PREFIX.len() + 1];
    starts.iter().filter_map(|&n| lower.get(..n)).any(|s| crate::profile::validate::edit_distance(s, PREFIX) <= 2)
}

/// containerd's CRI: `sandbox` (the pod's pause container) or `container`.
pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// containerd's CRI: the container's name in the pod spec.
pub const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// An OCI bundle's configuration.  speaker never writes to the bundle:
/// crun gets a rewritten copy (`--config`, see `create`).
pub struct Bundle {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub config: Value,
}

/// The configuration file crun reads for bundle `dir` and `--config`
/// `config` (crun's src/create.c): `config.json` (the default, or given as
/// exactly that) inside the bundle; any other relative name against the
/// current directory, before crun changes into the bundle.
pub fn config_path(dir: &Path, config: Option<&Path>) -> PathBuf {
    match config {
        None => dir.join("config.json"),
        Some(c) if c == Path::new("config.json") => dir.join(c),
        Some(c) => std::env::current_dir().map(|d| d.join(c)).unwrap_or_else(|_| c.to_path_buf()),
    }
}

/// The largest OCI configuration speaker reads (crun's are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads `path`, refusing more than [`MAX_CONFIG_BYTES`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::sys::fs::read_input(path, MAX_CONFIG_BYTES).map_err(|e| {
        e.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {} MiB: not an OCI configuration", MAX_CONFIG_BYTES >> 20),
            )
        })
    })
}

impl Bundle {
    /// Reads the bundle's configuration file ([`config_path`]).
    pub fn open(dir: &Path, config: Option<&Path>) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).with_context(|| format!("bundle directory {} does not exist", dir.display()))?;
        let config_path = config_path(&dir, config);
        let original = read_capped(&config_path).with_context(|| format!("cannot read the bundle's {}", config_path.display()))?;
        // Strict: with a key twice (two io.speaker.profile), which one
        // would crun and speaker each take?  Such a file that concerns
        // speaker is refused (asks_for_speaker fails closed).
        let text = std::str::from_utf8(&original).with_context(|| format!("{} is not UTF-8 text", config_path.display()))?;
        let config: Value =
            crate::profile::validate::parse_json(text).with_context(|| format!("{} is not valid JSON", config_path.display()))?;
        Ok(Bundle { dir, config_path, config })
    }

    /// Whether the bundle at `dir` asks for speaker, failing closed: a
    /// configuration speaker cannot read or parse that mentions speaker's
    /// annotations, or a speaker annotation whose value is not a string, is
    /// an error, never "not speaker's".  `Ok(None)`: crun's business.
    pub fn asks_for_speaker(dir: &Path, config: Option<&Path>) -> Result<Option<(Bundle, PathBuf)>> {
        let b = match Bundle::open(dir, config) {
            Ok(b) => b,
            Err(e) => {
                let path = config_path(&std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()), config);
                if super::guard::mentions_speaker(&path) {
                    return Err(e.context(format!("{} asks for speaker but speaker cannot read it; fix the file", path.display())));
                }
                return Ok(None);
            }
        };
        if let Some(a) = b.config.pointer("/annotations").and_then(Value::as_object) {
            if let Some((k, _)) = a.iter().find(|(k, v)| k.starts_with("io.speaker.") && !v.is_string()) {
                anyhow::bail!(
                    "{}: annotation {k} is not a string; annotation values are strings (OCI runtime spec)",
                    b.config_path.display()
                );
            }
            // An empty value is no choice (an empty profile path named the
            // bundle directory).
            if let Some((k, _)) = a.iter().find(|(k, v)| is_known_annotation(k) && v.as_str().is_some_and(|v| v.trim().is_empty())) {
                anyhow::bail!("{}: annotation {k} is empty; give it a value or remove it", b.config_path.display());
            }
            // A typo in one of speaker's annotations would run the
            // container without speaker (or without what was asked): refused,
            // near misses of the prefix (IO.SPEAKER.PROFILE,
            // io.speakers.profile, io.speaker-profile) too.
            if let Some(k) = a.keys().find(|k| !is_known_annotation(k) && looks_like_speakers(k)) {
                let hint = crate::profile::validate::suggestion(k, KNOWN_ANNOTATIONS)
                    .map(|s| format!("did you mean {s}?"))
                    .unwrap_or_else(|| format!("speaker's are {}", KNOWN_ANNOTATIONS.join(", ")));
                anyhow::bail!(
                    "{}: unknown annotation {k} ({hint}); fix it, or remove it to run the container without speaker",
                    b.config_path.display()
                );
            }
        }
        Ok(b.profile_path().map(|p| (b, p)))
    }

    pub fn annotation(&self, key: &str) -> Option<String> {
        self.config.pointer("/annotations").and_then(|a| a.get(key)).and_then(Value::as_str).map(str::to_string)
    }

    /// The speaker profile the bundle asks for, if any (none for a CRI
    /// sandbox; `io.speaker.profile.NAME` first for CRI container NAME).
    pub fn profile_path(&self) -> Option<PathBuf> {
        if self.annotation(CRI_CONTAINER_TYPE).as_deref() == Some("sandbox") {
            return None;
        }
        let named = self.annotation(CRI_CONTAINER_NAME).and_then(|n| self.annotation(&format!("{ANNOTATION_PROFILE}.{n}")));
        named.or_else(|| self.annotation(ANNOTATION_PROFILE)).map(|p| {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                self.dir.join(p)
            }
        })
    }

    pub fn process_args(&self) -> Vec<String> {
        self.config
            .pointer("/process/args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// Replaces `linux.seccomp` with `oci`.
    pub fn set_seccomp(&mut self, oci: &OciProfile) -> Result<()> {
        exec_filter::set_seccomp(&mut self.config, oci, &self.config_path)
    }

    /// Writes the (rewritten) configuration to `path`, for crun's
    /// `--config`; the bundle's own file is left as it is.
    pub fn save_copy(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.config)?;
        write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn setup(name: &str, profile: &str, annotations: &str) -> (PathBuf, Bundle) {
        let dir = std::env::temp_dir().join(format!("speaker-bundle-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("profile.json"), profile).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"ociVersion":"1.0.2","process":{{"args":["svc","--x"]}},"annotations":{{{annotations}}}}}"#),
        )
        .unwrap();
        let b = Bundle::open(&dir, None).unwrap();
        (dir, b)
    }

    pub(crate) const PROFILE: &str = r#"{"schema":"speaker.profile/v1","ready":"port:80","margin":false,"phases":{
        "boot":{"syscalls":[{"name":"getpriority"},{"name":"bind"}]},
        "running":{"syscalls":[{"name":"accept4"}]},
        "shutdown":{"syscalls":[{"name":"fsync"}]}}}"#;

    #[test]
    fn set_seccomp_replaces_only_linux_seccomp() {
        let (_d, mut b) = setup("set", PROFILE, r#""io.speaker.profile":"profile.json""#);
        let oci: OciProfile =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["accept4"],"action":"SCMP_ACT_ALLOW"}]}"#)
                .unwrap();
        b.set_seccomp(&oci).unwrap();
        let copy = b.dir.join("copy.json");
        let before = std::fs::read(&b.config_path).unwrap();
        b.save_copy(&copy).unwrap();
        assert_eq!(std::fs::read(&b.config_path).unwrap(), before, "the bundle's file was changed");
        let again = Bundle::open(&b.dir, Some(&copy)).unwrap();
        assert_eq!(again.config["linux"]["seccomp"]["syscalls"][0]["names"][0], "accept4");
        assert_eq!(again.process_args(), vec!["svc", "--x"]);
    }

    #[test]
    fn malformed_speaker_bundles_fail_closed() {
        let (d, _) = setup("closed-type", PROFILE, r#""io.speaker.profile":7"#);
        let e = Bundle::asks_for_speaker(&d, None).err().expect("a number as profile is an error");
        assert!(e.to_string().contains("annotation io.speaker.profile is not a string"), "{e}");
        std::fs::write(d.join("config.json"), r#"{"annotations":{"io.speaker.profile":"p.json",}}"#).unwrap();
        let e = Bundle::asks_for_speaker(&d, None).err().expect("unparsable annotated bundle is an error");
        assert!(format!("{e:#}").contains("asks for speaker but speaker cannot read it"), "{e:#}");
        std::fs::write(d.join("config.json"), r#"{"annotations":{"org.x":"y"}}"#).unwrap();
        assert!(Bundle::asks_for_speaker(&d, None).unwrap().is_none());
        assert!(Bundle::asks_for_speaker(&d.join("nope"), None).unwrap().is_none(), "no bundle: crun's error");
        let (d, _) = setup("closed-ok", PROFILE, r#""io.speaker.profile":"profile.json""#);
        assert_eq!(Bundle::asks_for_speaker(&d, None).unwrap().map(|(_, p)| p), Some(d.canonicalize().unwrap().join("profile.json")));
    }

    #[test]
    fn config_files_resolve_as_crun_resolves_them() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config_path(Path::new("/b"), None), PathBuf::from("/b/config.json"));
        assert_eq!(config_path(Path::new("/b"), Some(Path::new("config.json"))), PathBuf::from("/b/config.json"));
        assert_eq!(config_path(Path::new("/b"), Some(Path::new("./config.json"))), cwd.join("./config.json"));
        assert_eq!(config_path(Path::new("/b"), Some(Path::new("o.json"))), cwd.join("o.json"));
        assert_eq!(config_path(Path::new("/b"), Some(Path::new("/abs.json"))), PathBuf::from("/abs.json"));
    }

    #[test]
    fn cri_sandboxes_are_not_speakers_and_named_profiles_come_first() {
        let (_d, b) = setup("cri-sandbox", PROFILE, r#""io.speaker.profile":"/p.json","io.kubernetes.cri.container-type":"sandbox""#);
        assert_eq!(b.profile_path(), None);
        let (_d, b) = setup(
            "cri-named",
            PROFILE,
            r#""io.speaker.profile":"/p.json","io.speaker.profile.web":"/web.json","io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"web""#,
        );
        assert_eq!(b.profile_path(), Some(PathBuf::from("/web.json")));
        let (_d, b) = setup(
            "cri-other",
            PROFILE,
            r#""io.speaker.profile":"/p.json","io.speaker.profile.web":"/web.json","io.kubernetes.cri.container-name":"sidecar""#,
        );
        assert_eq!(b.profile_path(), Some(PathBuf::from("/p.json")));
        let (_d, b) = setup("cri-none", PROFILE, r#""io.speaker.profile.web":"/web.json","io.kubernetes.cri.container-name":"sidecar""#);
        assert_eq!(b.profile_path(), None);
    }
}
