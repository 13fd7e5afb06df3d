//! One validator for every consumer: a profile with an unknown key, an
//! unknown reload signal, a malformed readiness condition, empty or
//! duplicate entries, or a Docker/OCI profile where a speaker profile is
//! expected, is refused by `profile validate`, `run`, `profile merge` and
//! speaker-runtime with the same `FILE: LOCATION: problem` line.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_speaker-ctl");
const DOCKER_DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json");

const GOOD: &str = r#"{"schema":"speaker.profile/v1","name":"svc","ready":"port:8080","reload":{"signals":["SIGHUP"]},
"phases":{"boot":{"syscalls":[{"name":"read"},{"name":"mount"}]},"running":{"syscalls":[{"name":"read"}]}}}"#;

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("speaker-profile-validate-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN).args(args).envs(env.iter().copied()).stdin(Stdio::null()).output().expect("run speaker-ctl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The defects, each as (file name, profile text, the expected problem line
/// after "FILE: ").
fn defects() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "unknown-key.json",
            GOOD.replace("\"name\":\"svc\"", "\"name\":\"svc\",\"defualt_action\":\"SCMP_ACT_LOG\""),
            "defualt_action: unknown key 'defualt_action' (did you mean 'default_action'?)",
        ),
        (
            "unknown-signal.json",
            GOOD.replace("SIGHUP", "SIGFOO"),
            "reload.signals[0]: unknown signal 'SIGFOO' (expected a name like HUP, SIGHUP or USR2, or a number from 1 to 31)",
        ),
        (
            "bad-ready.json",
            GOOD.replace("port:8080", "port:http"),
            "ready: malformed readiness condition 'port:http': 'http' is not a TCP port",
        ),
        ("empty-name.json", GOOD.replace("{\"name\":\"mount\"}", "{\"name\":\"\"}"), "phases.boot.syscalls[1].name: empty string"),
        (
            "duplicate.json",
            GOOD.replace("{\"name\":\"mount\"}", "{\"name\":\"read\"}"),
            "phases.boot.syscalls[1]: duplicate entry 'read' (x86_64; also at [0])",
        ),
        ("empty-signals.json", GOOD.replace("[\"SIGHUP\"]", "[]"), "reload.signals: empty list"),
        (
            "unknown-entry-key.json",
            GOOD.replace("{\"name\":\"mount\"}", "{\"nmae\":\"mount\"}"),
            "phases.boot.syscalls[1].nmae: unknown key 'nmae' (did you mean 'name'?)",
        ),
        // serde_json kept the last of two keys silently: the first
        // "phases" (with its boot phase) was lost.
        (
            "duplicate-key.json",
            GOOD.replace("\n\"phases\"", "\n\"phases\":{\"boot\":{\"syscalls\":[]}},\n\"phases\""),
            ":3:8: invalid JSON: the key 'phases' appears twice in one object (keep one)",
        ),
        // A default action that confines nothing was accepted.
        (
            "default-allow.json",
            GOOD.replace("\"name\":\"svc\"", "\"name\":\"svc\",\"default_action\":\"SCMP_ACT_ALLOW\""),
            "default_action: action 'SCMP_ACT_ALLOW' would allow every syscall outside the phases",
        ),
        // A stop signal as a reload signal turned every stop into a reload.
        (
            "stop-reload-signal.json",
            GOOD.replace("SIGHUP", "TERM"),
            "reload.signals[0]: signal 'TERM' cannot be a reload signal: it stops the service",
        ),
    ]
}

/// The one line naming `file` in `out`.
fn line_about(out: &str, file: &Path) -> String {
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(&*file.display().to_string())).collect();
    assert!(!lines.is_empty(), "no line names {}: {out}", file.display());
    lines[0].to_string()
}

#[test]
fn validate_run_merge_and_the_runtime_refuse_with_the_same_message() {
    let d = dir("same");
    let good = d.join("good.json");
    std::fs::write(&good, GOOD).unwrap();
    let o = ctl(&["profile", "validate", s(&good)], &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "nothing to say about a valid profile");
    for (name, body, want) in defects() {
        let f = d.join(name);
        std::fs::write(&f, &body).unwrap();
        // A location of the file itself (LINE:COLUMN) follows its name.
        let expected = format!("{}{}{want}", f.display(), if want.starts_with(':') { "" } else { ": " });

        let o = ctl(&["profile", "validate", s(&good), s(&f)], &[]);
        assert_eq!(o.status.code(), Some(1), "validate {name}");
        let v = text(&o.stdout);
        assert!(v.lines().all(|l| l.starts_with(&*f.display().to_string())), "validate {name}: only lines about it: {v}");
        assert!(line_about(&v, &f).starts_with(&expected), "validate {name}: {v}\nwant {expected}");

        let o = ctl(&["run", "--name", "v1", "--profile", s(&f), "--", "true"], &[]);
        assert_eq!(o.status.code(), Some(1), "run {name}");
        let e = text(&o.stderr);
        assert!(e.starts_with(&format!("speaker-ctl: error: {expected}")), "run {name}: {e}\nwant {expected}");

        let o = ctl(&["profile", "merge", "-o", s(&d.join("m.json")), s(&good), s(&f)], &[]);
        assert_eq!(o.status.code(), Some(1), "merge {name}");
        assert!(text(&o.stderr).contains(&expected), "merge {name}: {}", text(&o.stderr));

        // speaker-runtime: crun is a stand-in that must never run.
        let bundle = d.join(format!("bundle-{name}"));
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            format!(r#"{{"ociVersion":"1.0.2","process":{{"args":["true"]}},"annotations":{{"io.speaker.profile":"{}"}}}}"#, f.display()),
        )
        .unwrap();
        let o = ctl(&["runtime", "create", "--bundle", s(&bundle), "v1"], &[("SPEAKER_CRUN", "/bin/echo")]);
        assert_eq!(o.status.code(), Some(1), "runtime {name}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "", "runtime {name}: crun ran");
        assert!(text(&o.stderr).contains(&expected), "runtime {name}: {}\nwant {expected}", text(&o.stderr));
    }
}

/// Every problem of a file is listed, one line each.
#[test]
fn validate_lists_every_problem() {
    let d = dir("every");
    let f = d.join("many.json");
    let body = GOOD.replace("SIGHUP", "SIGFOO").replace("port:8080", "port:").replace("\"name\":\"svc\"", "\"nmae\":\"svc\"");
    std::fs::write(&f, body).unwrap();
    let o = ctl(&["profile", "validate", s(&f)], &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    for loc in ["nmae: unknown key", "ready: malformed", "reload.signals[0]: unknown signal"] {
        assert!(out.contains(&format!("{}: {loc}", f.display())), "{loc}: {out}");
    }
    // run names the first and how to see the rest.
    let o = ctl(&["run", "--name", "v2", "--profile", s(&f), "--", "true"], &[]);
    assert!(text(&o.stderr).contains("(and 2 more problems: 'speaker-ctl profile validate"), "{}", text(&o.stderr));
}

/// A Docker/OCI profile: `profile validate` checks it as `run --boot` and
/// Docker read it (compiled for each architecture it names), and says
/// which of its rules a speaker profile cannot express; where a speaker
/// profile is expected, it is refused.
#[test]
fn oci_profile_where_a_speaker_profile_is_expected() {
    let o = ctl(&["profile", "validate", DOCKER_DEFAULT], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("a Docker/OCI seccomp profile for x86_64 and aarch64") && err.contains("not a speaker profile"), "{err}");
    for name in ["clone", "clone3", "personality", "socket"] {
        assert!(err.contains(name), "{name}: {err}");
    }
    // One that does not compile (an argument index past 5) is invalid.
    let d = std::env::temp_dir().join(format!("speaker-validate-oci-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let bad = d.join("bad-oci.json");
    std::fs::write(
        &bad,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let o = ctl(&["profile", "validate", s(&bad)], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("out of range"), "{}", text(&o.stdout));
    let o = ctl(&["run", "--name", "v3", "--profile", DOCKER_DEFAULT, "--", "true"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("not a speaker profile"), "{}", text(&o.stderr));
    // Shown, it is read as one boot phase with a warning of what was left out.
    let o = ctl(&["profile", "show", "--phase", "boot", DOCKER_DEFAULT], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("warning:") && text(&o.stderr).contains("argument conditions"), "{}", text(&o.stderr));
}

/// What is not a profile file is refused at once, in one line: a FIFO
/// nobody writes (before: validate, show, run waited forever), a device
/// (before: /dev/zero was read up to the size cap, and `denials
/// --from-log /dev/zero` without end), a directory; an empty file and text
/// that is not UTF-8 say so and where.  A pipe is read (`<(cmd)`), once; a
/// byte order mark is no error.
#[test]
fn inputs_that_are_not_profile_files() {
    let d = dir("inputs");
    let fifo = d.join("fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let empty = d.join("empty.json");
    std::fs::write(&empty, " \n").unwrap();
    let latin1 = d.join("latin1.json");
    std::fs::write(&latin1, b"{\"schema\":\"speaker.profile/v1\",\n\"name\":\"caf\xe9\"}").unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["profile", "validate", s(&fifo)], format!("{}: the file is empty", fifo.display())),
        (vec!["profile", "show", s(&fifo)], format!("{}: the file is empty", fifo.display())),
        (vec!["run", "--name", "f1", "--profile", s(&fifo), "--", "true"], format!("{}: the file is empty", fifo.display())),
        (vec!["profile", "validate", "/dev/zero"], "/dev/zero: (file): cannot read: a character device, not a file".into()),
        (vec!["profile", "show", "/dev/zero"], "cannot read /dev/zero: a character device, not a file".into()),
        (vec!["profile", "validate", s(&d)], format!("{}: (file): cannot read: Is a directory", d.display())),
        (vec!["profile", "validate", s(&empty)], format!("{}: the file is empty", empty.display())),
        (vec!["profile", "validate", s(&latin1)], format!("{}:2:12: invalid JSON: not UTF-8 text (byte 0xe9)", latin1.display())),
        (vec!["denials", "--from-log", "/dev/zero"], "cannot read /dev/zero: a character device, not a file".into()),
        (vec!["profile", "table", "--baseline", s(&fifo), DOCKER_DEFAULT], format!("{}: the file is empty", fifo.display())),
    ];
    for (args, want) in &cases {
        let start = std::time::Instant::now();
        let mut child = Command::new(BIN).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                panic!("{args:?} hangs");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
        let all = text(&o.stdout) + &text(&o.stderr);
        assert!(all.contains(want.as_str()), "{args:?}: {all}\nwant {want}");
    }
    // A pipe as the profile (here /dev/stdin; `<(cat p.json)` alike) is
    // read, once, by every reader; a byte order mark is passed over.
    for args in
        [&["profile", "show", "/dev/stdin"][..], &["profile", "validate", "/dev/stdin"], &["profile", "merge", "-o", "-", "/dev/stdin"]]
    {
        let mut child = Command::new(BIN).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, format!("\u{feff}{GOOD}").as_bytes()).unwrap();
        drop(stdin);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
    }
}

/// Files larger than any profile are refused before they are parsed.
#[test]
fn oversized_files_are_refused() {
    let d = dir("big");
    let f = d.join("big.json");
    let mut body = String::from("{\"schema\":\"speaker.profile/v1\",\"name\":\"");
    body.push_str(&"x".repeat(9 << 20));
    body.push_str("\",\"phases\":{\"boot\":{\"syscalls\":[]}}}");
    std::fs::write(&f, body).unwrap();
    let o = ctl(&["profile", "validate", s(&f)], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("larger than 8 MiB"), "{}", text(&o.stdout));
}

/// The committed profiles are valid.
#[test]
fn committed_profiles_are_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/profiles");
    let mut files: Vec<String> = Vec::new();
    for d in [root.to_string(), format!("{root}/debian13")] {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                files.push(e.path().display().to_string());
            }
        }
    }
    assert!(files.len() >= 4);
    let mut args = vec!["profile", "validate"];
    args.extend(files.iter().map(String::as_str));
    let o = ctl(&args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
}

/// merge: one entry per signal whatever its spelling, and a warning when
/// the inputs name different services.
#[test]
fn merge_deduplicates_and_warns_of_other_services() {
    let d = dir("merge");
    let (a, b, out) = (d.join("a.json"), d.join("b.json"), d.join("m.json"));
    std::fs::write(&a, GOOD).unwrap();
    std::fs::write(&b, GOOD.replace("\"svc\"", "\"other\"").replace("\"SIGHUP\"", "\"HUP\", \"USR2\"")).unwrap();
    let o = ctl(&["profile", "merge", "-o", s(&out), s(&a), s(&b)], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(e.contains("warning: the inputs name different services") && e.contains("'svc'") && e.contains("'other'"), "{e}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m["reload"]["signals"], serde_json::json!(["SIGHUP", "USR2"]));
    assert_eq!(m["phases"]["boot"]["syscalls"].as_array().unwrap().len(), 2);
    let o = ctl(&["profile", "validate", s(&out)], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

/// speaker-runtime refuses an io.speaker.* annotation it does not know (a
/// typo would run the container without speaker).
#[test]
fn runtime_refuses_unknown_speaker_annotations() {
    let d = dir("annotation");
    std::fs::write(
        d.join("config.json"),
        r#"{"ociVersion":"1.0.2","process":{"args":["true"]},"annotations":{"io.speaker.profil":"/p.json"}}"#,
    )
    .unwrap();
    let o = ctl(&["runtime", "create", "--bundle", s(&d), "a1"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "crun ran");
    assert!(text(&o.stderr).contains("unknown annotation io.speaker.profil (did you mean io.speaker.profile?)"), "{}", text(&o.stderr));
    // Known ones (and CRI's per-container form) are not refused for that.
    std::fs::write(
        d.join("config.json"),
        r#"{"ociVersion":"1.0.2","process":{"args":["true"]},"annotations":{"io.speaker.profile.web":"/p.json","io.kubernetes.cri.container-name":"db"}}"#,
    )
    .unwrap();
    let o = ctl(&["runtime", "create", "--bundle", s(&d), "a2"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// Annotations that were meant as speaker's but would have run the
/// container without it (before: handed to crun, exit 0): the prefix in
/// another case or misspelt, an empty value (before: the profile path named
/// the bundle directory), a syscall unknown to `io.speaker.allow` (before:
/// reported as `--allow`), the profile annotation twice (before: the last
/// one won).  Other engines' annotations stay crun's business.
#[test]
fn runtime_refuses_near_misses_of_speaker_annotations() {
    let d = dir("near-miss");
    let p = d.join("p.json");
    std::fs::write(&p, GOOD).unwrap();
    let p = p.display().to_string();
    let cases = [
        (format!(r#""IO.SPEAKER.PROFILE":"{p}""#), "unknown annotation IO.SPEAKER.PROFILE (did you mean io.speaker.profile?)"),
        (format!(r#""io.speakers.profile":"{p}""#), "unknown annotation io.speakers.profile (did you mean io.speaker.profile?)"),
        (format!(r#""io.speaker-profile":"{p}""#), "unknown annotation io.speaker-profile (did you mean io.speaker.profile?)"),
        (
            format!(r#""io.spaeker.mode":"complain","io.speaker.profile":"{p}""#),
            "unknown annotation io.spaeker.mode (did you mean io.speaker.mode?)",
        ),
        (r#""io.speaker.profile":" ""#.to_string(), "annotation io.speaker.profile is empty; give it a value or remove it"),
        (format!(r#""io.speaker.profile":"{p}","io.speaker.engine":"""#), "annotation io.speaker.engine is empty"),
        (
            format!(r#""io.speaker.profile":"{p}","io.speaker.allow":"read,mprotct""#),
            "annotation io.speaker.allow of CONFIG: unknown syscall 'mprotct' on x86_64",
        ),
        (format!(r#""io.speaker.profile":"{p}","io.speaker.profile":"/other.json""#), "the key 'io.speaker.profile' appears twice"),
    ];
    let config = d.join("config.json");
    for (annotations, want) in &cases {
        std::fs::write(&config, format!(r#"{{"ociVersion":"1.0.2","process":{{"args":["true"]}},"annotations":{{{annotations}}}}}"#))
            .unwrap();
        let o = ctl(
            &["runtime", "create", "--bundle", s(&d), "n1"],
            &[("SPEAKER_CRUN", "/bin/echo"), ("SPEAKER_STATE_DIR", s(&d.join("state")))],
        );
        assert_eq!(o.status.code(), Some(1), "{annotations}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "", "{annotations}: crun ran");
        let want = want.replace("CONFIG", s(&config));
        assert!(text(&o.stderr).contains(&want), "{annotations}: {}\nwant {want}", text(&o.stderr));
        assert_eq!(text(&o.stderr).lines().count(), 1, "{annotations}: one line: {}", text(&o.stderr));
    }
    // Other engines' and the image's annotations: crun's business.
    std::fs::write(
        &config,
        r#"{"ociVersion":"1.0.2","process":{"args":["true"]},"annotations":{"io.kubernetes.cri.container-type":"container",
        "io.podman.annotations.seccomp":"x","org.opencontainers.image.title":"speaker","io.containerd.x":"y"}}"#,
    )
    .unwrap();
    let o = ctl(&["runtime", "create", "--bundle", s(&d), "n2"], &[("SPEAKER_CRUN", "/bin/echo")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), format!("create --bundle {} n2", d.display()));
}

/// A Docker/OCI profile is checked where it is read (`run --boot`,
/// `profile table/show --baseline`, `profile validate`), with the same
/// line: before, a misspelt key (`"syscals"`) read as a profile without
/// rules (a baseline of 0 syscalls, a boot phase that allows nothing) and
/// an unknown action was left out of the table.
#[test]
fn oci_profiles_are_checked_where_read() {
    let d = dir("oci-checks");
    let good = d.join("good.json");
    std::fs::write(&good, GOOD).unwrap();
    let cases = [
        (
            "typo.json",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscals":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            "syscals: unknown key 'syscals' (did you mean 'syscalls'?)",
        ),
        (
            "action.json",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALOW"}]}"#,
            "syscalls[0].action: unknown action 'SCMP_ACT_ALOW' (did you mean 'SCMP_ACT_ALLOW'?)",
        ),
        (
            "case.json",
            r#"{"defaultaction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            "defaultaction: unknown key 'defaultaction' (did you mean 'defaultAction'?)",
        ),
    ];
    for (name, body, want) in cases {
        let f = d.join(name);
        std::fs::write(&f, body).unwrap();
        let expected = format!("{}: {want}", f.display());
        for args in [
            vec!["profile", "validate", s(&f)],
            vec!["profile", "table", "--baseline", s(&f), s(&good)],
            vec!["profile", "show", "--baseline", s(&f), s(&good)],
            vec!["profile", "show", s(&f)],
            vec!["run", "--name", "o1", "--boot", s(&f), "--running", s(&f), "--", "/nonexistent/cmd"],
        ] {
            let o = ctl(&args, &[]);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
            let all = text(&o.stdout) + &text(&o.stderr);
            assert!(all.contains(&expected), "{args:?}: {all}\nwant {expected}");
        }
    }
    // Docker's default profile passes every check, as a baseline and for one phase.
    let o = ctl(&["profile", "table", "--baseline", DOCKER_DEFAULT, s(&good)], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}
