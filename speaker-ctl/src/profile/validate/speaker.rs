//! The checks of a speaker profile document (`schema:
//! speaker.profile/v1`): keys, types, names, readiness, reload signals.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use super::{problem, suggestion, type_name, unknown_key, Problem};
use crate::profile::arch::Arch;
use crate::profile::error::ProfileError;
use crate::profile::readiness::Readiness;
use crate::profile::schema::{Profile, SCHEMA_V1};
use crate::sys::signals;

/// The keys of each object of a speaker profile.
pub(super) const TOP_KEYS: &[&str] =
    &["schema", "name", "default_action", "architectures", "ready", "phases", "learned", "margin", "reload", "compile", "allow", "deny"];
const PHASE_KEYS: &[&str] = &["syscalls"];
const ENTRY_KEYS: &[&str] = &["name", "arch", "nr", "count", "first_seen_ms"];
const LEARNED_KEYS: &[&str] = &["name", "arch", "count", "first_seen_unix_ms", "container"];
const RELOAD_KEYS: &[&str] = &["signals", "ready"];
const PHASE_NAMES: &[&str] = &["boot", "running", "reload", "shutdown"];

/// The checks of one speaker profile document.
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.problems.push(problem(location, message));
    }

    fn keys(&mut self, obj: &Map<String, Value>, location: &str, known: &[&str]) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                self.problems.push(unknown_key(location, k, known));
            }
        }
    }

    fn object<'v>(&mut self, v: &'v Value, location: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            other => {
                self.push(location, format!("expected an object, found {}", type_name(other)));
                None
            }
        }
    }

    fn array<'v>(&mut self, v: &'v Value, location: &str) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.push(location, format!("expected a list, found {}", type_name(other)));
                None
            }
        }
    }

    fn string<'v>(&mut self, v: &'v Value, location: &str) -> Option<&'v str> {
        match v {
            Value::String(s) if s.trim().is_empty() => {
                self.push(location, "empty string");
                None
            }
            Value::String(s) => Some(s),
            other => {
                self.push(location, format!("expected a string, found {}", type_name(other)));
                None
            }
        }
    }

    fn unsigned(&mut self, v: &Value, location: &str) {
        if !v.is_u64() {
            self.push(location, format!("expected a number of 0 or more, found {}", type_name(v)));
        }
    }

    /// A list of distinct, non-empty strings.
    fn names<'v>(&mut self, v: &'v Value, location: &str) -> Vec<(usize, &'v str)> {
        let Some(list) = self.array(v, location) else { return Vec::new() };
        let mut out = Vec::new();
        let mut seen = BTreeMap::new();
        for (i, item) in list.iter().enumerate() {
            let at = format!("{location}[{i}]");
            if let Some(s) = self.string(item, &at) {
                if let Some(first) = seen.insert(s, i) {
                    self.push(at, format!("duplicate entry '{s}' (also at [{first}])"));
                    continue;
                }
                out.push((i, s));
            }
        }
        out
    }

    fn profile(&mut self, doc: &Map<String, Value>) {
        self.keys(doc, "", TOP_KEYS);
        match doc.get("schema") {
            Some(Value::String(s)) if s == SCHEMA_V1 => {}
            Some(other) => self.push("schema", format!("unknown schema {other}: expected \"{SCHEMA_V1}\"")),
            None => self.push("schema", format!("missing: a speaker profile has \"schema\": \"{SCHEMA_V1}\"")),
        }
        if let Some(v) = doc.get("name") {
            // Shown in tables and one-line messages: one printable line.
            if let Some(n) = self.string(v, "name") {
                if let Err(why) = profile_name(n) {
                    self.push("name", why);
                }
            }
        }
        if let Some(v) = doc.get("default_action") {
            if let Some(a) = self.string(v, "default_action") {
                if let Err(why) = default_action(a) {
                    self.push("default_action", why);
                }
            }
        }
        let mut arches: BTreeSet<Arch> = [Arch::native()].into();
        if let Some(v) = doc.get("architectures") {
            arches.clear();
            let names = self.names(v, "architectures");
            if names.is_empty() && v.as_array().is_some_and(Vec::is_empty) {
                self.push("architectures", format!("empty list: name one ABI at least ({})", Arch::native().scmp_name()));
            }
            for (i, n) in names {
                match Arch::from_scmp_name(n) {
                    Some(a) => {
                        arches.insert(a);
                    }
                    None => self.push(
                        format!("architectures[{i}]"),
                        format!(
                            "unknown architecture '{n}' (expected SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_AARCH64 or SCMP_ARCH_ARM)"
                        ),
                    ),
                }
            }
        }
        if let Some(v) = doc.get("ready") {
            if let Some(r) = self.string(v, "ready") {
                if let Err(e) = Readiness::parse_as(r, "readiness condition") {
                    self.push("ready", e.to_string());
                }
            }
        }
        match doc.get("phases") {
            None => self.push("phases", "missing: a speaker profile lists its phases (\"phases\": {\"boot\": {\"syscalls\": [...]}})"),
            Some(v) => {
                if let Some(phases) = self.object(v, "phases") {
                    for (name, set) in phases {
                        let at = format!("phases.{name}");
                        if !PHASE_NAMES.contains(&name.as_str()) {
                            let hint = suggestion(name, PHASE_NAMES).map(|s| format!("did you mean '{s}'? ")).unwrap_or_default();
                            self.push(at, format!("unknown phase '{name}' ({hint}expected boot, running, reload or shutdown)"));
                            continue;
                        }
                        self.phase(set, &at, &arches);
                    }
                }
            }
        }
        if let Some(v) = doc.get("learned") {
            if let Some(learned) = self.object(v, "learned") {
                for (name, list) in learned {
                    let at = format!("learned.{name}");
                    if !PHASE_NAMES.contains(&name.as_str()) {
                        self.push(at, format!("unknown phase '{name}' (expected boot, running, reload or shutdown)"));
                        continue;
                    }
                    let Some(list) = self.array(list, &at) else { continue };
                    for (i, e) in list.iter().enumerate() {
                        let at = format!("{at}[{i}]");
                        let Some(o) = self.object(e, &at) else { continue };
                        self.keys(o, &at, LEARNED_KEYS);
                        match o.get("name") {
                            Some(n) => {
                                self.string(n, &format!("{at}.name"));
                            }
                            None => self.push(&at, "missing 'name'"),
                        }
                        for k in ["count", "first_seen_unix_ms"] {
                            match o.get(k) {
                                Some(n) => self.unsigned(n, &format!("{at}.{k}")),
                                None => self.push(&at, format!("missing '{k}'")),
                            }
                        }
                    }
                }
            }
        }
        if let Some(v) = doc.get("margin") {
            if !v.is_boolean() {
                self.push("margin", format!("expected true or false, found {}", type_name(v)));
            }
        }
        if let Some(v) = doc.get("compile") {
            if let Some(c) = self.string(v, "compile") {
                if !["strict", "balanced"].contains(&c) {
                    self.push("compile", format!("unknown compile mode '{c}' (expected strict or balanced)"));
                }
            }
        }
        let mut lists: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
        for key in ["allow", "deny"] {
            let Some(v) = doc.get(key) else { continue };
            for (i, n) in self.names(v, key) {
                if Arch::native().resolve(n).is_none() {
                    self.push(
                        format!("{key}[{i}]"),
                        format!("unknown syscall '{n}' on {} (libseccomp cannot resolve it; check the spelling)", Arch::native()),
                    );
                }
                lists.entry(key).or_default().insert(n.to_string(), i);
            }
        }
        if let (Some(a), Some(d)) = (lists.get("allow"), lists.get("deny")) {
            for (n, i) in d {
                if a.contains_key(n) {
                    self.push(format!("deny[{i}]"), format!("'{n}' is both allowed (allow) and denied (deny): keep one"));
                }
            }
        }
        if let Some(v) = doc.get("reload") {
            self.reload(v);
        }
    }

    fn phase(&mut self, set: &Value, at: &str, arches: &BTreeSet<Arch>) {
        let Some(o) = self.object(set, at) else { return };
        self.keys(o, at, PHASE_KEYS);
        let Some(list) = o.get("syscalls") else {
            self.push(at, "missing 'syscalls' (a list, possibly empty)");
            return;
        };
        let at = format!("{at}.syscalls");
        let Some(list) = self.array(list, &at) else { return };
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (i, e) in list.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let Some(o) = self.object(e, &at) else { continue };
            self.keys(o, &at, ENTRY_KEYS);
            let arch = match o.get("arch") {
                None => Some(Arch::native()),
                Some(v) => self.string(v, &format!("{at}.arch")).and_then(|a| {
                    let found = Arch::from_name(a);
                    if found.is_none() {
                        self.push(format!("{at}.arch"), format!("unknown arch '{a}' (expected x86_64, x86, x32, aarch64 or arm)"));
                    }
                    found
                }),
            };
            for k in ["nr", "count", "first_seen_ms"] {
                if let Some(v) = o.get(k) {
                    if k == "nr" {
                        if !v.is_i64() {
                            self.push(format!("{at}.nr"), format!("expected a number, found {}", type_name(v)));
                        }
                    } else {
                        self.unsigned(v, &format!("{at}.{k}"));
                    }
                }
            }
            let Some(name_v) = o.get("name") else {
                self.push(&at, "missing 'name'");
                continue;
            };
            let Some(name) = self.string(name_v, &format!("{at}.name")) else { continue };
            let Some(arch) = arch else { continue };
            let nr = arch.resolve(name);
            if let (Some(real), Some(given)) = (nr, o.get("nr").and_then(Value::as_i64)) {
                // (x32 numbers with or without the x32 bit are the same.)
                let x32 = i64::from(crate::profile::arch::X32_SYSCALL_BIT);
                if i64::from(real) & !x32 != given & !x32 {
                    self.push(
                        format!("{at}.nr"),
                        format!("{given} is not the number of '{name}' on {arch} ({real}): fix or drop \"nr\" (the name is what counts)"),
                    );
                }
            }
            if nr.is_none() {
                self.push(
                    format!("{at}.name"),
                    format!(
                        "unknown syscall '{name}' on {arch} (libseccomp cannot resolve it; check the spelling or the entry's \"arch\")"
                    ),
                );
            } else if !arches.contains(&arch) {
                self.push(
                    format!("{at}.arch"),
                    format!(
                        "syscall '{name}' is recorded for arch {arch}, which \"architectures\" does not list (add {} to \"architectures\" or drop the entry)",
                        arch.scmp_name()
                    ),
                );
            }
            if let Some(first) = seen.insert((name.to_string(), arch.name().to_string()), i) {
                self.push(at, format!("duplicate entry '{name}' ({arch}; also at [{first}])"));
            }
        }
    }

    fn reload(&mut self, v: &Value) {
        let Some(o) = self.object(v, "reload") else { return };
        self.keys(o, "reload", RELOAD_KEYS);
        match o.get("signals") {
            None => self.push("reload", "missing 'signals' (e.g. [\"SIGHUP\"])"),
            Some(s) => {
                if s.as_array().is_some_and(Vec::is_empty) {
                    self.push("reload.signals", "empty list: name the signal that reloads the service (e.g. [\"SIGHUP\"])");
                }
                let mut seen: BTreeMap<i32, usize> = BTreeMap::new();
                for (i, sig) in self.names(s, "reload.signals") {
                    let at = format!("reload.signals[{i}]");
                    match reload_signal(sig) {
                        Ok(n) => {
                            if let Some(first) = seen.insert(n, i) {
                                self.push(at, format!("duplicate signal '{sig}' (the same as [{first}])"));
                            }
                        }
                        Err(why) => self.push(at, why),
                    }
                }
            }
        }
        if let Some(r) = o.get("ready") {
            if let Some(r) = self.string(r, "reload.ready") {
                if let Err(e) = Readiness::parse_for_runtime_as(r, "readiness condition") {
                    self.push("reload.ready", e.to_string());
                }
            }
        }
    }
}

/// A profile's `name` (and `trace --name`): one printable line of at most
/// 255 bytes.
pub fn profile_name(n: &str) -> Result<(), String> {
    if n.chars().any(char::is_control) || n.len() > 255 || n.trim().is_empty() {
        return Err(format!("{n:?} is not a name: one line of at most 255 bytes, no control characters"));
    }
    Ok(())
}

/// The actions a speaker profile's `default_action` may be (what a syscall
/// outside a phase's set gets).
pub const DEFAULT_ACTIONS: &[&str] =
    &["SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"];

/// Checks a speaker profile's `default_action`: allowing (nothing would be
/// confined), tracing (no tracer: everything outside a phase fails with
/// ENOSYS) and notifying (no listener) are refused with the reason.
pub fn default_action(a: &str) -> Result<(), String> {
    if DEFAULT_ACTIONS.contains(&a) {
        return Ok(());
    }
    let why = match a {
        "SCMP_ACT_ALLOW" => "would allow every syscall outside the phases: the profile would confine nothing".to_string(),
        "SCMP_ACT_TRACE" => "needs a ptrace tracer; without one every syscall outside the phases fails with ENOSYS".to_string(),
        "SCMP_ACT_NOTIFY" => "needs a listener; speaker's notify engine is chosen with --engine notify".to_string(),
        _ => match suggestion(a, DEFAULT_ACTIONS).or_else(|| DEFAULT_ACTIONS.iter().copied().find(|d| d.eq_ignore_ascii_case(a))) {
            Some(s) => format!("unknown (did you mean '{s}'?)"),
            None => "unknown".to_string(),
        },
    };
    Err(format!(
        "action '{a}' {why} (a speaker profile's default_action is SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP or SCMP_ACT_LOG)"
    ))
}

/// A reload signal of a profile: a name (`HUP`, `SIGHUP`) or number of a
/// signal a service can handle, that is not a stop: SIGTERM and SIGINT
/// switch a container to its shutdown phase (`docker stop`, `speaker-ctl
/// stop`), so as a reload signal they would turn every stop into a reload.
pub fn reload_signal(s: &str) -> Result<i32, String> {
    use nix::sys::signal::Signal;
    let n = signals::parse(s);
    match n.and_then(|n| Signal::try_from(n).ok()) {
        Some(Signal::SIGKILL | Signal::SIGSTOP) => Err(format!("signal '{s}' cannot be a reload signal: a service cannot handle it")),
        Some(Signal::SIGTERM | Signal::SIGINT) => Err(format!(
            "signal '{s}' cannot be a reload signal: it stops the service (speaker switches to the shutdown phase on it); use HUP, USR1 or USR2"
        )),
        Some(sig) => Ok(sig as i32),
        None => match n {
            Some(n) if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) => Err(format!(
                "signal '{s}' is a real-time signal, which speaker does not take as a reload signal; use HUP, USR1 or USR2"
            )),
            _ => Err(format!("unknown signal '{s}' (expected a name like HUP, SIGHUP or USR2, or a number from 1 to 31)")),
        },
    }
}

/// Checks the text of a speaker profile; the problems, and the profile if
/// there are none.
pub fn check_speaker(text: &str, doc: &Value, path: &Path) -> Result<Profile, Vec<Problem>> {
    let Some(obj) = doc.as_object() else {
        return Err(vec![problem("(top)", format!("expected an object, found {}", type_name(doc)))]);
    };
    let mut c = Checker { problems: Vec::new() };
    c.profile(obj);
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    // The checks above cover the schema; serde is the last word.
    serde_json::from_str::<Profile>(text).map_err(|e| match ProfileError::from_serde(path, "speaker profile", &e) {
        ProfileError::Invalid { line, column, msg, .. } | ProfileError::Json { line, column, msg, .. } => {
            vec![problem(format!("{line}:{column}"), msg)]
        }
        other => vec![problem("(file)", other.to_string())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let doc: Value = serde_json::from_str(text).unwrap();
        match check_speaker(text, &doc, Path::new("p.json")) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    const OK: &str = r#"{"schema":"speaker.profile/v1","phases":{"boot":{"syscalls":[{"name":"read"}]}}}"#;

    #[test]
    fn a_good_profile_has_no_problem() {
        assert!(problems(OK).is_empty());
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        let p = problems(&OK.replace("\"phases\"", "\"defualt_action\":\"SCMP_ACT_LOG\",\"phases\""));
        assert_eq!(p, ["defualt_action: unknown key 'defualt_action' (did you mean 'default_action'?)"]);
        let p = problems(&OK.replace("{\"name\":\"read\"}", "{\"nmae\":\"read\"}"));
        assert!(p.iter().any(|l| l.starts_with("phases.boot.syscalls[0].nmae: unknown key 'nmae' (did you mean 'name'?)")), "{p:?}");
        let p = problems(&OK.replace("\"boot\"", "\"boott\""));
        assert!(p[0].starts_with("phases.boott: unknown phase 'boott' (did you mean 'boot'?"), "{p:?}");
    }

    #[test]
    fn reload_signals_and_readiness_are_checked() {
        let p = problems(&OK.replace("\"phases\"", "\"reload\":{\"signals\":[\"SIGFOO\"]},\"phases\""));
        assert_eq!(p, ["reload.signals[0]: unknown signal 'SIGFOO' (expected a name like HUP, SIGHUP or USR2, or a number from 1 to 31)"]);
        let p = problems(&OK.replace("\"phases\"", "\"reload\":{\"signals\":[\"HUP\",\"SIGHUP\",\"KILL\"]},\"phases\""));
        assert_eq!(p.len(), 2, "{p:?}");
        // A stop signal as a reload signal would turn every stop into a
        // reload (kill checks reload signals first); real-time signals are
        // not taken (they were reported as 'unknown').
        for (sig, why) in [("SIGTERM", "it stops the service"), ("INT", "it stops the service"), ("34", "real-time signal")] {
            let p = problems(&OK.replace("\"phases\"", &format!("\"reload\":{{\"signals\":[\"{sig}\"]}},\"phases\"")));
            assert!(p.len() == 1 && p[0].contains(why), "{sig}: {p:?}");
        }
        let p = problems(&OK.replace("\"phases\"", "\"ready\":\"port:http\",\"phases\""));
        assert!(p[0].starts_with("ready: malformed readiness condition 'port:http'"), "{p:?}");
        let p = problems(&OK.replace("\"phases\"", "\"reload\":{\"signals\":[\"HUP\"],\"ready\":\"log:x\"},\"phases\""));
        assert!(p[0].starts_with("reload.ready: "), "{p:?}");
    }

    #[test]
    fn default_actions_that_confine_nothing_are_refused() {
        for (a, why) in [
            ("SCMP_ACT_ALLOW", "confine nothing"),
            ("SCMP_ACT_TRACE", "ENOSYS"),
            ("SCMP_ACT_NOTIFY", "listener"),
            ("scmp_act_log", "did you mean 'SCMP_ACT_LOG'"),
        ] {
            let p = problems(&OK.replace("\"phases\"", &format!("\"default_action\":\"{a}\",\"phases\"")));
            assert!(p.len() == 1 && p[0].starts_with("default_action: ") && p[0].contains(why), "{a}: {p:?}");
        }
        for a in DEFAULT_ACTIONS {
            assert!(problems(&OK.replace("\"phases\"", &format!("\"default_action\":\"{a}\",\"phases\""))).is_empty(), "{a}");
        }
        // A recorded number that is not the name's.
        let p = problems(&OK.replace("{\"name\":\"read\"}", "{\"name\":\"read\",\"nr\":59}"));
        assert_eq!(
            p,
            ["phases.boot.syscalls[0].nr: 59 is not the number of 'read' on x86_64 (0): fix or drop \"nr\" (the name is what counts)"]
        );
        assert!(problems(&OK.replace("{\"name\":\"read\"}", "{\"name\":\"read\",\"nr\":0}")).is_empty());
    }

    #[test]
    fn names_are_one_printable_line() {
        let p = problems(&OK.replace("\"phases\"", "\"name\":\"web\\nforged line\",\"phases\""));
        assert_eq!(p, ["name: \"web\\nforged line\" is not a name: one line of at most 255 bytes, no control characters"]);
        assert!(problems(&OK.replace("\"phases\"", "\"name\":\"web-1.2 (prod)\",\"phases\"")).is_empty());
    }

    #[test]
    fn empty_and_duplicate_entries() {
        let p = problems(&OK.replace("{\"name\":\"read\"}", "{\"name\":\"read\"},{\"name\":\"\"},{\"name\":\"read\"}"));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("phases.boot.syscalls[1].name: empty string"), "{p:?}");
        assert!(p[1].contains("duplicate entry 'read'"), "{p:?}");
        let p = problems(&OK.replace("\"phases\"", "\"allow\":[\"mprotect\",\"mprotect\"],\"deny\":[\"mprotect\"],\"phases\""));
        assert_eq!(p.len(), 2, "{p:?}");
        let p = problems(&OK.replace("\"phases\"", "\"architectures\":[],\"phases\""));
        assert!(p.iter().any(|l| l.contains("empty list")), "{p:?}");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggestion("defualt_action", TOP_KEYS), Some("default_action"));
        assert_eq!(suggestion("Schema", TOP_KEYS), Some("schema"));
        assert_eq!(suggestion("completely_else", TOP_KEYS), None);
    }
}
