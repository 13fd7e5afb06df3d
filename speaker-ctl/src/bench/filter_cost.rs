//! Suite 1: what a syscall costs under each filter, side by side.
//!
//! Cases: no seccomp; Docker's default profile compiled by speaker's
//! profile code (binary tree, speaker's default layout, and libseccomp's
//! linear layout); speaker's running filter (nginx's running set plus what
//! the measuring child needs) installed fresh; the same program swapped in
//! by speaker.ko from nginx's boot filter; and swapped in with an
//! application filter stacked above it. Probes: `getppid`, the harmless
//! syscall that sits deepest in Docker's linear program, and a denied one
//! (`syslog`), which no action cache covers. Rounds interleave the cases.
//! And the notify engine's one filter made from the same running set
//! (running → allow, the rest → notify), with a supervisor thread that
//! answers the denied probe: the allowed probes should cost what they cost
//! under speaker.ko's filter (both are the kernel's cached path), the
//! denied one a round trip to the supervisor.
use super::bpf_path;
use super::error::BenchError;
use super::probe::{self, Probe, Setup};
use super::results::{Results, FILTER_CASES, FILTER_PROBES};
use super::Options;
use crate::device::Device;
use crate::profile::filter::{Action, PhaseFilter, Rule};
use crate::profile::schema::Phase;
use crate::profile::{self, Arch, Layout, SockFilter};
use crate::sys::output::errln;

pub const CASES: [&str; 7] = FILTER_CASES;
pub const PROBES: [&str; 3] = FILTER_PROBES;

/// What the measuring child makes after its last filter change, besides
/// the probes.
const HARNESS: [&str; 4] = ["read", "write", "clock_gettime", "exit_group"];

fn allow(filter: &mut PhaseFilter, names: &[&str]) {
    for n in names {
        if !filter.rules.iter().any(|r| r.name == *n && r.action == Action::Allow) {
            filter.rules.push(Rule { name: n.to_string(), arch: Arch::native(), action: Action::Allow, args: vec![] });
        }
    }
}

/// `filter` for the ABI speaker-ctl runs on: unchanged when it lists that
/// ABI; else (nginx's profile, traced on x86_64, measured on arm64) its
/// rules of its first ABI moved to the native one by name, those whose
/// name the native ABI lacks (e.g. `epoll_wait`, `open` on aarch64) left
/// out, which the run reports.
fn on_native_abi(mut filter: PhaseFilter, phase: &str) -> PhaseFilter {
    let native = Arch::native();
    if filter.arches.contains(&native) {
        return filter;
    }
    let Some(&from) = filter.arches.first() else {
        filter.arches = vec![native];
        return filter;
    };
    let total = filter.rules.iter().filter(|r| r.arch == from).count();
    filter.rules.retain(|r| r.arch == from && native.resolve(&r.name).is_some());
    for r in &mut filter.rules {
        r.arch = native;
    }
    filter.arches = vec![native];
    errln!(
        "bench: nginx's {phase} set moved from {} to {} by name: {} of {total} names exist there",
        from.name(),
        native.name(),
        filter.rules.len()
    );
    filter
}

/// The harmless candidate that runs the most instructions of `prog`
/// among those it allows.
fn deepest(prog: &[SockFilter]) -> Probe {
    probe::DEEP_CANDIDATES
        .iter()
        .filter_map(|p| bpf_path::run(prog, p.nr as u32, &[p.args[0], p.args[1], p.args[2], 0, 0, 0]).map(|r| (p, r)))
        .filter(|(_, r)| r.allows())
        .max_by_key(|(_, r)| r.instructions)
        .map(|(p, _)| *p)
        .unwrap_or(probe::GETPPID)
}

fn path_len(progs: &[&[SockFilter]], p: &Probe) -> usize {
    let args = [p.args[0], p.args[1], p.args[2], 0, 0, 0];
    progs.iter().filter_map(|prog| bpf_path::run(prog, p.nr as u32, &args)).map(|r| r.instructions).sum()
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    let dev = Device::open()?;
    let docker = profile::load_phase_file(&opts.docker_profile)?;
    let docker_tree = profile::compile_with(&docker, Layout::BinaryTree)?;
    let docker_linear = profile::compile_with(&docker, Layout::Linear)?;
    let deep = deepest(&docker_linear);
    let probes = [probe::GETPPID, deep, probe::DENIED];

    // nginx's filters as a container gets them (`profile::phase_sets`: the
    // profile's compile mode, margin and widening).
    let nginx = profile::load_profile(&opts.nginx_profile)?;
    let nginx = profile::phase_sets(&nginx, &profile::CompileOptions::default(), &opts.nginx_profile)?;
    let mut running = on_native_abi(nginx.filter(Phase::Running, &opts.nginx_profile)?, "running");
    allow(&mut running, &HARNESS);
    allow(&mut running, &[probe::GETPPID.name, deep.name]);
    let mut boot = on_native_abi(nginx.filter(Phase::Boot, &opts.nginx_profile)?, "boot");
    allow(&mut boot, &HARNESS);
    allow(&mut boot, &[probe::GETPPID.name, deep.name, "seccomp"]);
    let notify = profile::compile(&crate::container::notify::filter::from_running(&running))?;
    let running = profile::compile(&running)?;
    let boot = profile::compile(&boot)?;
    // An application's own filter: allow by default, deny one syscall.
    let app = PhaseFilter {
        default_action: Action::Allow,
        arches: vec![Arch::native()],
        rules: vec![Rule { name: "sysinfo".into(), arch: Arch::native(), action: Action::Errno(1000), args: vec![] }],
        unresolved: vec![],
    };
    let app = profile::compile(&app)?;

    let cid = format!("bench-filter-{}", std::process::id());
    let setups: [(&str, Setup, Vec<&[SockFilter]>); 7] = [
        ("none", Setup::default(), vec![]),
        ("docker", Setup { first: Some(&docker_tree), ..Default::default() }, vec![&docker_tree]),
        ("docker_linear", Setup { first: Some(&docker_linear), ..Default::default() }, vec![&docker_linear]),
        ("running_fresh", Setup { first: Some(&running), ..Default::default() }, vec![&running]),
        ("running_swapped", Setup { first: Some(&boot), swap: Some((&dev, &cid, &running)), ..Default::default() }, vec![&running]),
        (
            "running_swapped_app",
            Setup { first: Some(&boot), stacked: Some(&app), swap: Some((&dev, &cid, &running)), notify: false },
            vec![&running, &app],
        ),
        ("notify_running", Setup { first: Some(&notify), notify: true, ..Default::default() }, vec![&notify]),
    ];
    let mut samples = vec![vec![Vec::new(); probes.len()]; setups.len()];
    let mut cached = vec![None; setups.len()];
    // A warm-up round, not counted.
    for (_, setup, _) in &setups {
        probe::measure(setup, &probes, opts.syscalls / 10 + 1)?;
    }
    for _ in 0..opts.runs {
        for (i, (_, setup, _)) in setups.iter().enumerate() {
            let m = probe::measure(setup, &probes, opts.syscalls)?;
            for (j, ns) in m.ns_per_call.iter().enumerate() {
                samples[i][j].push(*ns);
            }
            cached[i] = m.cached;
        }
    }
    res.fact("filter.probe.deep", deep.name);
    res.fact("filter.calls_per_run", opts.syscalls);
    res.fact("clock.filter", opts.clock.name());
    for (i, (case, _, progs)) in setups.iter().enumerate() {
        for (j, p) in probes.iter().enumerate() {
            let probe = PROBES[j];
            if *case == "none" && probe == "denied" {
                continue;
            }
            res.figure_rounds(format!("filter.{case}.{probe}"), &samples[i][j], "ns/call");
            if *case != "none" {
                if let Some(c) = &cached[i] {
                    res.fact(format!("filter.cached.{case}.{probe}"), c.contains(&(p.nr as u32)));
                }
                res.fact(format!("filter.instructions.{case}.{probe}"), path_len(progs, p));
            }
        }
        if let Some(first) = progs.first() {
            res.fact(format!("filter.program_length.{case}"), first.len());
        }
    }
    // P1: swapped / fresh and running / Docker default, per probe (the
    // denied one runs the filters: no action cache covers it).
    for probe in PROBES {
        let f = |case: &str| format!("filter.{case}.{probe}");
        res.paired_ratio(&format!("{probe}: swapped / fresh"), &f("running_swapped"), &f("running_fresh"), "within 5%");
        res.paired_ratio(&format!("{probe}: swapped under an app filter / fresh"), &f("running_swapped_app"), &f("running_fresh"), "");
        res.paired_ratio(&format!("{probe}: running / Docker default"), &f("running_fresh"), &f("docker"), "<= 1");
        if probe != "denied" {
            res.paired_ratio(&format!("{probe}: Docker default / no seccomp"), &f("docker"), &f("none"), "");
            res.paired_ratio(
                &format!("{probe}: notify engine / speaker.ko (running)"),
                &f("notify_running"),
                &f("running_swapped"),
                "<= 1.02",
            );
        } else {
            res.paired_ratio("denied: notify engine's round trip / speaker.ko's errno", &f("notify_running"), &f("running_swapped"), "");
        }
    }
    for probe in ["deep", "denied"] {
        let f = |case: &str| format!("filter.{case}.{probe}");
        res.paired_ratio(&format!("{probe}: Docker linear / binary tree"), &f("docker_linear"), &f("docker"), "");
    }
    Ok(())
}
