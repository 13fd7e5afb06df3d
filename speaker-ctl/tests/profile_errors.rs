//! Error messages name the file, the syscall and what was expected.
use std::path::PathBuf;

use speaker::profile::{self, ProfileError};

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speaker-profile-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn unknown_syscall_names_syscall_and_file() {
    let p = write(
        "typo.json",
        r#"{"schema": "speaker.profile/v1", "phases": {"boot": {"syscalls": [
            {"name": "read"}, {"name": "opennat"}]}}}"#,
    );
    for e in [profile::load_profile(&p).unwrap_err(), profile::load_phase_file(&p).unwrap_err()] {
        assert!(matches!(e, ProfileError::Problems { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("phases.boot.syscalls[1].name: unknown syscall 'opennat' on x86_64"), "{msg}");
        assert!(msg.contains("opennat") && msg.contains(&p.display().to_string()), "{msg}");
    }
}

#[test]
fn unknown_schema_names_file_and_expected_schema() {
    let p = write("future.json", r#"{"schema": "speaker.profile/v9", "phases": {}}"#);
    let msg = profile::load_phase_file(&p).unwrap_err().to_string();
    assert!(msg.contains("future.json"), "{msg}");
    assert!(msg.contains("speaker.profile/v9") && msg.contains("speaker.profile/v1"), "{msg}");
}

#[test]
fn invalid_json_has_file_line_and_column() {
    let p = write("broken.json", "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n}\n");
    let e = profile::load_phase_file(&p).unwrap_err();
    match &e {
        ProfileError::Json { line, column, .. } => assert_eq!((*line, *column), (4, 1)),
        other => panic!("{other}"),
    }
    assert!(e.to_string().starts_with(&format!("{}:4:1: invalid JSON", p.display())), "{e}");
}

#[test]
fn x86_entry_needs_x86_architecture() {
    let p = write(
        "compat.json",
        r#"{"schema": "speaker.profile/v1", "phases": {"boot": {"syscalls": [
            {"name": "read"}, {"name": "socketcall", "arch": "x86"}]}}}"#,
    );
    let msg = profile::load_phase_file(&p).unwrap_err().to_string();
    assert!(msg.contains("socketcall") && msg.contains("SCMP_ARCH_X86") && msg.contains("compat.json"), "{msg}");
    let p = write(
        "compat-ok.json",
        r#"{"schema": "speaker.profile/v1", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "phases": {"boot": {"syscalls": [{"name": "read"}, {"name": "socketcall", "arch": "x86"}]}}}"#,
    );
    let f = profile::load_phase_file(&p).unwrap();
    assert_eq!(f.rules.len(), 2);
    profile::compile(&f).unwrap();
}

#[test]
fn phase_file_with_several_phases_is_refused() {
    let p = write(
        "multi.json",
        r#"{"schema": "speaker.profile/v1", "phases": {"boot": {"syscalls": [{"name": "read"}]},
            "running": {"syscalls": [{"name": "read"}]}}}"#,
    );
    let msg = profile::load_phase_file(&p).unwrap_err().to_string();
    assert!(msg.contains("multi.json") && msg.contains("boot, running"), "{msg}");
}

#[test]
fn bad_default_action_is_named() {
    let p = write(
        "action.json",
        r#"{"schema": "speaker.profile/v1", "default_action": "SCMP_ACT_DENY",
            "phases": {"boot": {"syscalls": [{"name": "read"}]}}}"#,
    );
    let msg = profile::load_profile(&p).unwrap_err().to_string();
    assert!(msg.contains("SCMP_ACT_DENY") && msg.contains("action.json"), "{msg}");
}
