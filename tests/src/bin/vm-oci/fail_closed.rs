//! speaker-runtime fails closed: a command line it does not understand
//! never runs a container that asks for speaker, nor acts on one; crun's
//! own options (here `--no-subreaper`, which went to crun untouched before
//! and gave a container with no filter at all) go through speaker.
use std::fs;
use std::path::Path;

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{
    bundle, crun_status, phase_of, remove_all_containers, rt, rt_ok, rt_to_file, state_pid, stop_and_delete, wait_phase,
};
use crate::probe::{probe_cmd, probe_dir, probe_profile, wait_probe_ready};

/// `speaker-runtime ARGS` with its streams in /srv/ID.out (a container it
/// creates would hold a pipe open): exit code and output.
fn rt_file(args: &[&str], id: &str) -> Result<(i32, String), String> {
    let out = format!("/srv/{id}.out");
    let st = rt_to_file(args, &out)?.wait().map_err(|e| e.to_string())?;
    Ok((st.code().unwrap_or(-1), fs::read_to_string(&out).unwrap_or_default()))
}

/// The `Seccomp:` mode of `pid` (2: filtered).
fn seccomp_mode(pid: i64) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Seccomp:")).unwrap_or("?").trim().to_string()
}

pub fn speaker_runtime_refuses_unparsed_flags_on_annotated_bundles() -> Outcome {
    remove_all_containers();
    let profile = probe_profile()?;
    let id = "closed1";
    let dir = probe_dir(id)?;
    let ready = format!("cmd:test -e {}/go", dir.display());
    let b = bundle(id, &["--profile", profile.to_str().unwrap(), "--ready", &ready], &["speaker-probe", "serve", dir.to_str().unwrap()])?;
    let bs = b.to_str().unwrap();
    let before = fs::read(b.join("config.json")).map_err(|e| e.to_string())?;

    // Options crun may take one day: refused, nothing created, bundle as it was.
    for line in [
        &["create", "--no-such-option", "--bundle", bs, id][..],
        &["--no-such-global", "create", "--bundle", bs, id],
        &["run", "-d", "--bundle", bs, "--no-such-option", id],
        &["restore", "--bundle", bs, "--image-path", "/srv/none", id],
    ] {
        let (code, out) = rt_file(line, id)?;
        ensure!(code == 1, "speaker-runtime {}: exit {code}, expected 1: {out}", line.join(" "));
        ensure!(out.contains("asks for speaker"), "speaker-runtime {}: no reason given: {out}", line.join(" "));
        ensure!(crun_status(id).is_none(), "speaker-runtime {}: crun has the container ({:?})", line.join(" "), crun_status(id));
        ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state left by a refused line");
    }
    ensure!(fs::read(b.join("config.json")).unwrap_or_default() == before, "the bundle's config.json was changed");

    // crun's own `--no-subreaper`: the container runs under its boot filter.
    let (code, out) = rt_file(&["create", "--no-subreaper", "--bundle", bs, id], id)?;
    ensure!(code == 0, "create --no-subreaper: exit {code}: {out}");
    rt_ok(&["start", id])?;
    wait_phase(id, "boot", 10)?;
    wait_probe_ready(&dir, id)?;
    let pid = state_pid(id);
    ensure!(seccomp_mode(pid) == "2", "create --no-subreaper: the container's Seccomp mode is {} (2: filtered)", seccomp_mode(pid));
    ensure!(fs::read(b.join("config.json")).unwrap_or_default() == before, "create rewrote the bundle's config.json");
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority in the boot phase: {r}");
    fs::write(dir.join("go"), "").map_err(|e| e.to_string())?;
    wait_phase(id, "running", 20)?;
    let r = probe_cmd(&dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority after the switch: {r}, expected errno 1 (EPERM)");

    // Lines about a speaker container that do not parse: refused, the
    // container untouched.
    for line in
        [&["kill", "--no-such-option", id, "KILL"][..], &["exec", "--no-such-option", id, "true"], &["delete", "--no-such", "-f", id]]
    {
        let o = rt(line);
        ensure!(
            o.code == 1 && o.stderr.contains("is a speaker container"),
            "speaker-runtime {}: exit {}: {}",
            line.join(" "),
            o.code,
            o.stderr
        );
    }
    ensure!(crun_status(id).as_deref() == Some("running"), "{id} after the refused lines: {:?}", crun_status(id));
    ensure!(phase_of(id).as_deref() == Some("running"), "{id} left its running phase");

    // speaker's own option after the command is the process's argument.
    let o = rt_ok(&["exec", id, "echo", "a", "--speaker-crun", "X", "b"])?;
    ensure!(o.trim() == "a --speaker-crun X b", "exec's arguments were changed: {o:?}");
    let o = rt_ok(&["exec", id, "speaker-probe", "try", "getpriority"])?;
    ensure!(o.trim() == "getpriority: errno 1", "exec after the switch: {o}");
    stop_and_delete(id)?;

    // A plain bundle on such a line: crun's business, crun's answer.
    let plain = bundle("closed-plain", &[], &["true"])?;
    let line = ["create", "--no-such-option", "--bundle", plain.to_str().unwrap(), "closed2"];
    let (code, out) = rt_file(&line, "closed2")?;
    let c = run("crun", &line);
    ensure!(code == c.code && code != 0, "plain bundle, unknown option: speaker-runtime exit {code} ({out}), crun exit {}", c.code);
    ensure!(crun_status("closed2").is_none(), "crun created closed2");
    Ok(())
}

/// An annotated `run --keep` keeps the stopped container, for `delete`.
pub fn annotated_run_keeps_the_container_with_keep() -> Outcome {
    remove_all_containers();
    let profile = probe_profile()?;
    let id = "keep1";
    let b = bundle(id, &["--profile", profile.to_str().unwrap()], &["true"])?;
    let (code, out) = rt_file(&["run", "--keep", "--bundle", b.to_str().unwrap(), id], id)?;
    ensure!(code == 0, "run --keep: exit {code}: {out}");
    ensure!(crun_status(id).as_deref() == Some("stopped"), "run --keep: crun status {:?}, expected stopped", crun_status(id));
    rt_ok(&["delete", id])?;
    ensure!(crun_status(id).is_none() && !Path::new(&format!("/run/speaker/{id}")).exists(), "delete after run --keep left {id}");
    Ok(())
}
