//! Failing closed: a command line speaker-runtime does not understand (an
//! option crun gained after this speaker, a typo, a flag some engine starts
//! passing) goes to crun as given only if it cannot concern speaker.  It
//! concerns speaker if any bundle it could name asks for speaker, or if any
//! of its words names one of speaker's containers: crun would otherwise
//! create the container under whatever filter its config.json carries (none
//! at all, for an annotated bundle), or act on a speaker container behind
//! speaker's back.
//!
//! The test over-approximates on purpose: every word that could be a
//! bundle directory (`-b`/`--bundle` values, the current directory) with
//! every word that could be a configuration file (`-f`/`--config` values,
//! `config.json`), and the file's raw bytes rather than its parse (a file
//! speaker cannot parse but crun might still counts if it mentions
//! `io.speaker.`).  A refused line is never one crun alone would have run
//! unconfined by speaker's choice.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::crun::Invocation;

/// The annotation prefix that marks a bundle as speaker's.
pub const SPEAKER_ANNOTATION_PREFIX: &[u8] = b"io.speaker.";

/// Why a line must not reach crun.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("{file} asks for speaker ({prefix}* annotation); speaker-runtime never runs such a container on a line it does not understand, since crun would run it without its phases")]
    Bundle { file: String, prefix: &'static str },
    #[error("'{id}' is a speaker container; speaker-runtime never lets crun act on it from a line it does not understand")]
    Container { id: String },
}

/// Returns why `line` (the whole forwarded line, globals included) must
/// not go to crun, or `None` if it cannot concern speaker.
pub fn refusal(inv: &Invocation, line: &[OsString]) -> Option<Refusal> {
    for file in candidate_configs(line, &std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))) {
        if mentions_speaker(&file) {
            return Some(Refusal::Bundle { file: file.display().to_string(), prefix: "io.speaker." });
        }
    }
    line.iter().filter_map(|w| w.to_str()).find(|w| inv.ours(w).is_some()).map(|id| Refusal::Container { id: id.to_string() })
}

/// Whether the file at `path` exists and mentions speaker's annotations
/// anywhere (unreadable files do not: crun cannot read them either).
pub fn mentions_speaker(path: &Path) -> bool {
    // Bounded: a configuration larger than this is not a bundle's.
    const MAX: u64 = 64 << 20;
    let Ok(f) = std::fs::File::open(path) else { return false };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut bytes = Vec::new();
    use std::io::Read;
    if f.take(MAX).read_to_end(&mut bytes).is_err() {
        return false;
    }
    bytes.windows(SPEAKER_ANNOTATION_PREFIX.len()).any(|w| w == SPEAKER_ANNOTATION_PREFIX)
}

/// The values of option `short`/`long` anywhere in `line`, in every
/// spelling argp takes: `-bV`, `-b V`, `--bundle V`, `--bundle=V`, and any
/// abbreviation of the long name down to two letters after `--` (an
/// over-approximation: a word that only looks like the option still
/// counts).
fn option_values(line: &[OsString], short: char, long: &str) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).cloned();
        if let Some(name) = w.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            if name.len() >= 2 && long.starts_with(name) {
                out.extend(value.or(next));
            }
        } else if let Some(cluster) = w.strip_prefix('-') {
            // A cluster of short options: `-db DIR`, `-dbDIR`.
            if let Some(pos) = cluster.find(short) {
                let rest = &cluster[pos + short.len_utf8()..];
                if rest.is_empty() {
                    out.extend(next);
                } else {
                    out.push(rest.to_string());
                }
            }
        }
    }
    out
}

/// Every configuration file `line` could make crun read, resolved as crun
/// resolves them (src/create.c): `config.json` inside the bundle, any other
/// relative name against the current directory.
pub fn candidate_configs(line: &[OsString], cwd: &Path) -> Vec<PathBuf> {
    let mut bundles: Vec<PathBuf> = vec![cwd.to_path_buf()];
    bundles.extend(option_values(line, 'b', "bundle").into_iter().map(|b| cwd.join(b)));
    let mut configs: Vec<String> = vec!["config.json".into()];
    configs.extend(option_values(line, 'f', "config"));
    let mut out = Vec::new();
    for c in &configs {
        let paths: Vec<PathBuf> = if c == "config.json" {
            bundles.iter().map(|b| b.join(c)).collect()
        } else {
            // Either resolution, to be safe: crun's, and the bundle's.
            std::iter::once(cwd.join(c)).chain(bundles.iter().map(|b| b.join(c))).collect()
        };
        for p in paths {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn option_values_in_every_spelling() {
        let line = os(&["--root", "/r", "create", "-b", "/b1", "--bundle=/b2", "--bund", "/b3", "-db/b4", "--no-such", "c1"]);
        assert_eq!(option_values(&line, 'b', "bundle"), vec!["/b1", "/b2", "/b3", "/b4"]);
        assert_eq!(option_values(&os(&["create", "-f", "x.json", "--config=y.json", "c"]), 'f', "config"), vec!["x.json", "y.json"]);
        assert!(option_values(&os(&["create", "c1"]), 'b', "bundle").is_empty());
    }

    #[test]
    fn configs_are_resolved_as_crun_resolves_them() {
        let cwd = Path::new("/cwd");
        let c = candidate_configs(&os(&["create", "--frob", "-b", "/b", "-f", "other.json", "c1"]), cwd);
        for want in ["/cwd/config.json", "/b/config.json", "/cwd/other.json", "/b/other.json"] {
            assert!(c.contains(&PathBuf::from(want)), "{want} not in {c:?}");
        }
        let c = candidate_configs(&os(&["create", "--config=/abs.json", "c1"]), cwd);
        assert!(c.contains(&PathBuf::from("/abs.json")), "{c:?}");
    }

    #[test]
    fn annotated_bundles_are_refused_and_plain_ones_are_not() {
        let dir = std::env::temp_dir().join(format!("speaker-guard-{}", std::process::id()));
        let plain = dir.join("plain");
        let annotated = dir.join("annotated");
        let broken = dir.join("broken");
        for (d, text) in [
            (&plain, r#"{"annotations":{"org.example":"x"}}"#),
            (&annotated, r#"{"annotations":{"io.speaker.profile":"/p.json"}}"#),
            // Not JSON speaker can read; still speaker's.
            (&broken, r#"{"annotations":{"io.speaker.profile":"/p.json",}"#),
        ] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("config.json"), text).unwrap();
        }
        let inv = Invocation::default();
        let line = |b: &Path| os(&["create", "--no-such-flag", "--bundle", b.to_str().unwrap(), "guard-test-c1"]);
        assert_eq!(refusal(&inv, &line(&plain)), None);
        let r = refusal(&inv, &line(&annotated)).expect("annotated bundle refused");
        assert!(r.to_string().contains("annotated/config.json asks for speaker"), "{r}");
        assert!(refusal(&inv, &line(&broken)).is_some());
        assert!(!mentions_speaker(&dir.join("no-such-file")));
        assert!(!mentions_speaker(&dir), "a directory is no configuration");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
