//! The checks of a Docker/OCI seccomp profile document where speaker reads
//! one (`run --boot`, `profile table/show --baseline`): a key the format
//! does not have (`"syscals"` read as no rule at all), an action that is
//! none, a value of the wrong type.  Syscall names libseccomp does not
//! know are left alone, as runc and crun leave them (Docker's default
//! profile names syscalls of newer kernels).
use serde_json::{Map, Value};

use super::{problem, type_name, unknown_key, Problem};

/// The keys of each object of an OCI profile (the runtime spec's
/// `linux.seccomp`, and Docker's `archMap`, `comment`, `includes`,
/// `excludes`).
pub(super) const TOP_KEYS: &[&str] =
    &["defaultAction", "defaultErrnoRet", "architectures", "archMap", "flags", "listenerPath", "listenerMetadata", "syscalls"];
const RULE_KEYS: &[&str] = &["names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"];
const ARG_KEYS: &[&str] = &["index", "value", "valueTwo", "op"];
const FILTER_KEYS: &[&str] = &["caps", "arches", "minKernel"];
const ARCH_MAP_KEYS: &[&str] = &["architecture", "subArchitectures"];
/// What libseccomp (and so runc and crun) take as an action.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn keys(&mut self, o: &Map<String, Value>, at: &str, known: &[&str]) {
        for k in o.keys().filter(|k| !known.contains(&k.as_str())) {
            self.problems.push(unknown_key(at, k, known));
        }
    }

    fn object<'v>(&mut self, v: &'v Value, at: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            // Docker writes null for what it leaves out.
            Value::Null => None,
            other => {
                self.problems.push(problem(at, format!("expected an object, found {}", type_name(other))));
                None
            }
        }
    }

    fn list<'v>(&mut self, v: &'v Value, at: &str) -> &'v [Value] {
        match v {
            Value::Array(a) => a,
            Value::Null => &[],
            other => {
                self.problems.push(problem(at, format!("expected a list, found {}", type_name(other))));
                &[]
            }
        }
    }

    fn action(&mut self, v: Option<&Value>, at: &str) {
        match v {
            None => self.problems.push(problem(at, "missing (an action such as SCMP_ACT_ERRNO or SCMP_ACT_ALLOW)")),
            Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => {}
            Some(Value::String(a)) => {
                let hint = super::suggestion(a, ACTIONS)
                    .or_else(|| ACTIONS.iter().copied().find(|k| k.eq_ignore_ascii_case(a)))
                    .map(|s| format!("did you mean '{s}'?"))
                    .unwrap_or_else(|| format!("expected one of {}", ACTIONS.join(", ")));
                self.problems.push(problem(at, format!("unknown action '{a}' ({hint})")));
            }
            Some(other) => self.problems.push(problem(at, format!("expected an action name, found {}", type_name(other)))),
        }
    }

    /// An errno a syscall can return (`defaultErrnoRet`, `errnoRet`).
    fn errno(&mut self, v: Option<&Value>, at: &str) {
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 4095) => {}
            Some(other) => self.problems.push(problem(at, format!("{other} is not an errno (a number from 0 to 4095, e.g. 1 for EPERM)"))),
        }
    }

    fn profile(&mut self, doc: &Map<String, Value>) {
        self.keys(doc, "", TOP_KEYS);
        self.action(doc.get("defaultAction"), "defaultAction");
        self.errno(doc.get("defaultErrnoRet"), "defaultErrnoRet");
        let non_empty = |k: &str| doc.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
        if non_empty("architectures") && non_empty("archMap") {
            // moby and containers/common (podman, CRI-O) refuse the file.
            self.problems.push(problem("archMap", "both 'architectures' and 'archMap': Docker and podman refuse the file; keep one"));
        }
        if let Some(v) = doc.get("archMap") {
            for (i, m) in self.list(v, "archMap").iter().enumerate() {
                let at = format!("archMap[{i}]");
                if let Some(o) = self.object(m, &at) {
                    self.keys(o, &at, ARCH_MAP_KEYS);
                }
            }
        }
        let Some(rules) = doc.get("syscalls") else { return };
        for (i, rule) in self.list(rules, "syscalls").iter().enumerate() {
            let at = format!("syscalls[{i}]");
            let Some(o) = self.object(rule, &at) else { continue };
            self.keys(o, &at, RULE_KEYS);
            self.action(o.get("action"), &format!("{at}.action"));
            self.errno(o.get("errnoRet"), &format!("{at}.errnoRet"));
            if !o.contains_key("names") && !o.contains_key("name") {
                self.problems.push(problem(&at, "no 'names': the rule names no syscall"));
            }
            if let Some(args) = o.get("args") {
                for (j, a) in self.list(args, &format!("{at}.args")).iter().enumerate() {
                    let at = format!("{at}.args[{j}]");
                    if let Some(a) = self.object(a, &at) {
                        self.keys(a, &at, ARG_KEYS);
                    }
                }
            }
            for f in ["includes", "excludes"] {
                if let Some(v) = o.get(f) {
                    let at = format!("{at}.{f}");
                    if let Some(fo) = self.object(v, &at) {
                        self.keys(fo, &at, FILTER_KEYS);
                    }
                }
            }
        }
    }
}

/// The problems of an OCI profile document (an object with
/// `defaultAction`); none: the types are serde's to check.
pub fn check(doc: &Map<String, Value>) -> Vec<Problem> {
    let mut c = Checker { problems: Vec::new() };
    c.profile(doc);
    c.problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let doc: Value = serde_json::from_str(text).unwrap();
        check(doc.as_object().unwrap()).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn typos_of_an_oci_profile_are_named() {
        let p = problems(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscals":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#);
        assert_eq!(p, ["syscals: unknown key 'syscals' (did you mean 'syscalls'?)"]);
        let p = problems(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALOW"}]}"#);
        assert_eq!(p, ["syscalls[0].action: unknown action 'SCMP_ACT_ALOW' (did you mean 'SCMP_ACT_ALLOW'?)"]);
        let p = problems(
            r#"{"defaultAction":"scmp_act_errno","syscalls":[{"nmes":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ","valu2":0}]}]}"#,
        );
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("defaultAction: unknown action 'scmp_act_errno' (did you mean 'SCMP_ACT_ERRNO'?)"), "{p:?}");
        // errnos out of range (run said the action was unknown, table took them).
        let p = problems(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":-1}]}"#,
        );
        assert_eq!(
            p,
            [
                "defaultErrnoRet: 70000 is not an errno (a number from 0 to 4095, e.g. 1 for EPERM)",
                "syscalls[0].errnoRet: -1 is not an errno (a number from 0 to 4095, e.g. 1 for EPERM)"
            ]
        );
        // Docker's nulls, every key of the format, names libseccomp may not know.
        let p = problems(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":null,"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":null}],
            "flags":[],"listenerPath":"/s","listenerMetadata":"","syscalls":[{"names":["read","some_future_call"],"action":"SCMP_ACT_NOTIFY","errnoRet":1,"args":null,
            "comment":"","includes":{"caps":["CAP_SYS_ADMIN"],"arches":["amd64"],"minKernel":"5.8"},"excludes":{}}]}"#,
        );
        assert!(p.is_empty(), "{p:?}");
        let p = problems(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}],"syscalls":[]}"#,
        );
        assert_eq!(p, ["archMap: both 'architectures' and 'archMap': Docker and podman refuse the file; keep one"]);
    }

    #[test]
    fn dockers_default_profile_has_no_problem() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json")).unwrap();
        assert_eq!(problems(&text), Vec::<String>::new());
    }
}
