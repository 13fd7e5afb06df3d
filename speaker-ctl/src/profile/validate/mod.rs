//! The one validator of profile files: every consumer (`speaker-ctl run`,
//! `switch --profile`, `profile merge/learn/show/...`, `speaker-runtime`
//! and its monitor, `profile validate`) reads a profile through
//! [`check_file`], so the same input gets the same verdict and the same
//! message everywhere.
//!
//! What it refuses (speaker profiles: [`speaker`]; Docker/OCI profiles: [`oci`]), each as one [`Problem`] (`LOCATION: what is wrong`,
//! shown as `FILE: LOCATION: problem`):
//!
//! * a file larger than [`MAX_PROFILE_BYTES`], or not JSON;
//! * a key speaker does not know, at any level (with the closest known key
//!   as a suggestion: `"defualt_action"` is not silently ignored);
//! * a value of the wrong type, an unknown action, architecture, phase,
//!   compile mode, arch of an entry, or a syscall libseccomp cannot resolve;
//! * a malformed readiness condition (`ready`, `reload.ready`), an unknown
//!   reload signal (or SIGKILL/SIGSTOP, which cannot be handled);
//! * empty names, empty lists where one entry at least is needed
//!   (`architectures`, `reload.signals`), duplicate entries (a syscall
//!   twice in a phase, a name twice in `allow`/`deny`, a signal twice in
//!   any spelling), a name in both `allow` and `deny`;
//! * a Docker/OCI seccomp profile where a speaker profile is expected
//!   (saying which of its rules a speaker profile could not express).
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::arch::Arch;
use super::error::ProfileError;
use super::oci::{applies, Applies, OciProfile};
use super::schema::Profile;

mod json;
mod oci_file;
mod speaker;

pub use json::parse_json;
pub use speaker::{check_speaker, default_action, profile_name, reload_signal, DEFAULT_ACTIONS};

/// The largest profile file speaker reads (the committed profiles are a
/// few tens of KiB; Docker's default profile is 20 KiB).
pub const MAX_PROFILE_BYTES: u64 = 8 << 20;

/// One thing wrong with a profile file: where (a JSON path such as
/// `phases.boot.syscalls[3].name`, or `LINE:COLUMN` for syntax errors) and
/// what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

fn problem(location: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { location: location.into(), message: message.into() }
}

/// Reads `path` ([`crate::sys::fs::read_input`]: a regular file or a pipe,
/// never a device or a FIFO nobody writes), at most [`MAX_PROFILE_BYTES`],
/// as UTF-8 text; a leading byte order mark is dropped.
pub fn read_limited(path: &Path) -> Result<String, ProfileError> {
    let bytes = match crate::sys::fs::read_input(path, MAX_PROFILE_BYTES) {
        Ok(b) => b,
        Err(None) => return Err(ProfileError::TooLarge { path: path.to_path_buf(), max: MAX_PROFILE_BYTES }),
        Err(Some(error)) => return Err(ProfileError::Read { path: path.to_path_buf(), error }),
    };
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProfileError::Empty { path: path.to_path_buf() });
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        ProfileError::Json { path: path.to_path_buf(), line, column, msg: format!("not UTF-8 text (byte 0x{:02x})", bytes[at]) }
    })
}

/// What a profile file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Speaker,
    Oci,
}

/// Levenshtein distance (for suggestions).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub fn suggestion<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min()
        .map(|(_, k)| k)
}

fn unknown_key(location: &str, key: &str, known: &[&str]) -> Problem {
    let at = if location.is_empty() { key.to_string() } else { format!("{location}.{key}") };
    let hint = match suggestion(key, known) {
        Some(s) => format!("did you mean '{s}'?"),
        None => format!("known keys: {}", known.join(", ")),
    };
    problem(at, format!("unknown key '{key}' ({hint})"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What a speaker profile cannot express of an OCI profile (for the
/// messages): the names of rules with argument conditions, with
/// capability conditions, and with actions other than allowing.
pub fn oci_losses(oci: &OciProfile) -> Vec<String> {
    let host = Arch::native();
    let (mut args, mut caps, mut other) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for e in &oci.syscalls {
        let target = match applies(e, host) {
            Applies::No => continue,
            Applies::CapGated => &mut caps,
            Applies::Yes if e.action != "SCMP_ACT_ALLOW" => &mut other,
            Applies::Yes if !e.args.is_empty() => &mut args,
            Applies::Yes => continue,
        };
        target.extend(e.all_names().map(str::to_string));
    }
    let mut out = Vec::new();
    for (what, set) in [("argument conditions", args), ("capability conditions", caps), ("actions other than allow", other)] {
        if !set.is_empty() {
            let names: Vec<String> = set.into_iter().collect();
            let shown = if names.len() > 8 { format!("{}, ... ({} names)", names[..8].join(", "), names.len()) } else { names.join(", ") };
            out.push(format!("rules with {what}: {shown}"));
        }
    }
    out
}

/// Reads and checks a profile file: its kind, and either the problems or
/// nothing.  (The speaker profile or OCI profile itself: [`load`].)
pub fn check_file(path: &Path) -> Result<(Kind, Vec<Problem>), ProfileError> {
    match load(path) {
        Ok(Loaded::Speaker(_)) => Ok((Kind::Speaker, Vec::new())),
        Ok(Loaded::Oci(_)) => Ok((Kind::Oci, Vec::new())),
        Err(ProfileError::Problems { problems, kind_oci, .. }) => Ok((if kind_oci { Kind::Oci } else { Kind::Speaker }, problems)),
        Err(e) => Err(e),
    }
}

/// A profile file, read and checked.
#[derive(Debug, Clone)]
pub enum Loaded {
    Speaker(Profile),
    Oci(OciProfile),
}

/// Reads `path` (size-capped), tells a speaker profile (`schema`) from a
/// Docker/OCI one (`defaultAction`) and checks it; any problem is
/// [`ProfileError::Problems`] (all of them, the first in the message).
pub fn load(path: &Path) -> Result<Loaded, ProfileError> {
    let text = read_limited(path)?;
    let doc: Value = parse_json(&text).map_err(|e| ProfileError::from_serde(path, "JSON", &e))?;
    let problems = |problems: Vec<Problem>, kind_oci| ProfileError::Problems { path: path.to_path_buf(), problems, kind_oci };
    let Some(obj) = doc.as_object() else {
        return Err(ProfileError::UnknownFormat { path: path.to_path_buf() });
    };
    if obj.contains_key("schema") {
        return check_speaker(&text, &doc, path).map(Loaded::Speaker).map_err(|p| problems(p, false));
    }
    // An OCI profile (or one whose defaultAction is misspelt).
    let oci_like = obj.keys().any(|k| oci_file::TOP_KEYS.contains(&k.as_str()) || suggestion(k, oci_file::TOP_KEYS).is_some());
    if obj.contains_key("defaultAction") || (oci_like && !obj.contains_key("phases")) {
        let found = oci_file::check(obj);
        if !found.is_empty() {
            return Err(problems(found, true));
        }
        let oci: OciProfile = serde_json::from_str(&text).map_err(|e| ProfileError::from_serde(path, "Docker/OCI seccomp profile", &e))?;
        return Ok(Loaded::Oci(oci));
    }
    // Neither: a speaker profile with a typo'd or missing schema?
    if obj.keys().any(|k| speaker::TOP_KEYS.contains(&k.as_str()) || suggestion(k, speaker::TOP_KEYS).is_some()) {
        return check_speaker(&text, &doc, path).map(Loaded::Speaker).map_err(|p| problems(p, false));
    }
    Err(ProfileError::UnknownFormat { path: path.to_path_buf() })
}

/// The problem of an OCI profile given where a speaker profile is expected.
pub fn oci_where_speaker_expected(oci: &OciProfile) -> Problem {
    let lost = oci_losses(oci);
    let lost = if lost.is_empty() { String::new() } else { format!("; a speaker profile cannot express its {}", lost.join("; ")) };
    problem(
        "(file)",
        format!(
            "a Docker/OCI seccomp profile, not a speaker profile: it has no phases{lost}. \
             Trace the service with 'speaker-ctl trace', or use the file for one phase ('speaker-ctl run --boot FILE --running FILE')"
        ),
    )
}

#[cfg(test)]
mod libseccomp_names {
    #[test]
    fn libseccomp_names_are_unique_per_number() {
        let all: Vec<String> = (0..1024u64).filter_map(|nr| crate::profile::Arch::X86_64.syscall_name(nr)).collect();
        let set: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(set.len(), all.len(), "duplicates among {} names", all.len());
        assert!(all.iter().all(|n| !n.is_empty()), "empty names");
    }
}
