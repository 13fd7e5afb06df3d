//! From a traced profile to what each phase's filter allows: the one place
//! where phases are compiled (`speaker-ctl run`, `speaker-runtime`,
//! `profile export`, `profile show`/`table`, the bench all call
//! [`phase_sets`]).
//!
//! Two compile modes, the same for every phase:
//!
//! * **strict**: what the traces saw (plus the safety margin of
//!   [`super::margin`] unless turned off): speaker's behaviour before the
//!   risk classification.
//! * **balanced** (the default): each phase allows what was traced in it,
//!   the *low* members of every family ([`super::risk`]) of what it traced,
//!   and the low syscalls boot traced; for a syscall with a low form
//!   (`mprotect`, `pkey_mprotect`, `mmap` without `PROT_EXEC`) used by boot
//!   or in a family the phase traced, the low form is added as an
//!   argument-conditioned rule. Nothing moderate or critical is ever added, so the critical
//!   syscalls only boot used are removed exactly as in strict.
//!
//! Then, in both modes: the margin, the widening for switches
//! ([`widen_for_switches`]: boot ∪ running, shutdown ∪ running, reload ∪
//! boot ∪ running), the profile's `allow` list (added to every phase,
//! unconditionally) and its `deny` list (removed from every phase,
//! conditional forms included). `--allow`/`--deny` on the command line (or
//! the runtime's annotations) win over the profile's lists.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::arch::Arch;
use super::error::ProfileError;
use super::filter::{Action, ArgCmp, PhaseFilter, Rule};
use super::margin;
use super::oci::{OciArg, OciProfile, OciSyscall};
use super::risk::{self, Class};
use super::schema::{Phase, Profile, SyscallEntry};
use super::translate::phase_filter_at;

/// How a profile's phases are compiled (the profile's `compile`, not to be
/// confused with the enforce/complain [`super::Mode`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompileMode {
    /// Traced (+ margin).
    Strict,
    /// Traced ∪ the low-risk members of the families of what was traced or
    /// of the low-risk syscalls boot used ∪ those boot syscalls (+ margin).
    #[default]
    Balanced,
}

impl CompileMode {
    pub const ALL: [CompileMode; 2] = [CompileMode::Strict, CompileMode::Balanced];

    pub fn name(self) -> &'static str {
        match self {
            CompileMode::Strict => "strict",
            CompileMode::Balanced => "balanced",
        }
    }
}

impl std::fmt::Display for CompileMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CompileMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "strict" => Ok(CompileMode::Strict),
            "balanced" => Ok(CompileMode::Balanced),
            _ => Err(format!("unknown compile mode '{s}' (expected strict or balanced)")),
        }
    }
}

/// What the command line (or the runtime's annotations) say over the
/// profile; `None`/empty: the profile decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    pub mode: Option<CompileMode>,
    /// `Some(false)`: `--no-margin`.
    pub margin: Option<bool>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl CompileOptions {
    pub fn mode(mode: CompileMode) -> CompileOptions {
        CompileOptions { mode: Some(mode), ..CompileOptions::default() }
    }
}

/// A rule allowing syscall `name` (native ABI) when `args` hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondRule {
    pub name: String,
    pub args: Vec<ArgCmp>,
}

/// Every phase's allowed set, ready to compile.
#[derive(Debug, Clone)]
pub struct PhaseSets {
    pub mode: CompileMode,
    /// The node the sets are for (x86_64 or aarch64): the ABI that
    /// balanced mode widens, the allow list adds to and the conditional
    /// rules are for (a profile's other ABIs get their entries as traced,
    /// widened for switches, and the margin).
    pub host: Arch,
    /// The names each phase allows unconditionally (margin, widening,
    /// allow and deny applied): the profile to compile.
    pub profile: Profile,
    /// Per phase, rules allowing a syscall's low form (not allowed
    /// unconditionally by that phase).
    pub conditional: BTreeMap<Phase, Vec<CondRule>>,
}

fn entry(name: &str, host: Arch) -> SyscallEntry {
    SyscallEntry { name: name.to_string(), arch: host.name().to_string(), nr: None, count: None, first_seen_ms: None }
}

/// The names of `phase` of `p` on ABI `arch`.
fn names_on(p: &Profile, phase: Phase, arch: Arch) -> BTreeSet<String> {
    p.phase(phase).map(|s| s.syscalls.iter().filter(|e| e.arch == arch.name()).map(|e| e.name.clone()).collect()).unwrap_or_default()
}

/// What `balanced` adds to a phase that traced `traced`, given what boot
/// traced (`None` for boot itself): (names allowed unconditionally, names
/// whose low form is added).  The low members of the families of
/// `traced`, and the low syscalls of `boot` (their families are not
/// widened); a syscall with a low form (`mprotect`) that either names or
/// whose family `traced` uses gets its low form.  Names of ABI `host`.
pub fn balanced_additions(traced: &BTreeSet<String>, boot: Option<&BTreeSet<String>>, host: Arch) -> (BTreeSet<String>, BTreeSet<String>) {
    let t = risk::table();
    let is_low = |n: &str| t.class(n) == Class::Low;
    let has_low_form = |n: &str| t.get(n).is_some_and(|e| e.low_form.is_some());
    let mut names = BTreeSet::new();
    let mut forms = BTreeSet::new();
    let mut add = |n: &str| {
        if traced.contains(n) || host.resolve(n).is_none() {
            return;
        }
        if is_low(n) {
            names.insert(n.to_string());
        } else if has_low_form(n) {
            forms.insert(n.to_string());
        }
    };
    // The families of what the phase traced, and of the low-risk syscalls
    // boot used (a service that read one identity at boot may read another
    // later: getpid at boot, gettid in a thread started by an operation).
    let low_boot: Vec<&String> = boot.into_iter().flatten().filter(|n| is_low(n)).collect();
    let families: BTreeSet<&str> = traced.iter().chain(low_boot.iter().copied()).filter_map(|n| t.family(n)).collect();
    for f in families {
        for e in t.members(f) {
            add(&e.name);
        }
    }
    for n in boot.into_iter().flatten() {
        add(n);
    }
    (names, forms)
}

fn check_names(list: &[String], what: &str, origin: &Path, host: Arch) -> Result<(), ProfileError> {
    for n in list {
        if host.resolve(n).is_none() {
            return Err(ProfileError::BadList {
                path: origin.to_path_buf(),
                msg: format!("{what}: unknown syscall '{n}' on {host} (libseccomp cannot resolve it)"),
            });
        }
    }
    Ok(())
}

/// The effective allow and deny lists: the command line's win over the
/// profile's (a name the command line allows is no longer denied by the
/// profile, and the other way round); a name in both lists of the same
/// origin is an error.
fn lists(p: &Profile, opts: &CompileOptions, origin: &Path, host: Arch) -> Result<(BTreeSet<String>, BTreeSet<String>), ProfileError> {
    check_names(&p.allow, "allow", origin, host)?;
    check_names(&p.deny, "deny", origin, host)?;
    check_names(&opts.allow, "--allow", origin, host)?;
    check_names(&opts.deny, "--deny", origin, host)?;
    for (a, d, what) in [(&p.allow, &p.deny, "the profile's allow and deny"), (&opts.allow, &opts.deny, "--allow and --deny")] {
        if let Some(n) = a.iter().find(|n| d.contains(n)) {
            return Err(ProfileError::BadList { path: origin.to_path_buf(), msg: format!("{what} both name '{n}'") });
        }
    }
    let allow: BTreeSet<String> = p.allow.iter().filter(|n| !opts.deny.contains(n)).chain(&opts.allow).cloned().collect();
    let deny: BTreeSet<String> = p.deny.iter().filter(|n| !opts.allow.contains(n)).chain(&opts.deny).cloned().collect();
    Ok((allow, deny))
}

/// The sets every phase of `p` (read from `origin`, for errors) allows
/// when compiled with `opts` on this machine (see the module documentation
/// for the rules).
pub fn phase_sets(p: &Profile, opts: &CompileOptions, origin: &Path) -> Result<PhaseSets, ProfileError> {
    phase_sets_on(p, opts, origin, Arch::native())
}

/// [`phase_sets`] as a node whose native ABI is `host` compiles them
/// (`profile export` computes each architecture's half this way).
pub fn phase_sets_on(p: &Profile, opts: &CompileOptions, origin: &Path, host: Arch) -> Result<PhaseSets, ProfileError> {
    let mode = opts.mode.or(p.compile).unwrap_or_default();
    let (allow, deny) = lists(p, opts, origin, host)?;
    let mut out = p.clone();
    let mut forms: BTreeMap<Phase, BTreeSet<String>> = BTreeMap::new();
    if mode == CompileMode::Balanced {
        let boot = names_on(p, Phase::Boot, host);
        let phases: Vec<Phase> = p.phases.keys().copied().collect();
        for phase in phases {
            let traced = names_on(p, phase, host);
            let (names, low_forms) = balanced_additions(&traced, (phase != Phase::Boot).then_some(&boot), host);
            let entries: Vec<SyscallEntry> = names.iter().map(|n| entry(n, host)).collect();
            add_to_phase(&mut out, phase, &entries);
            forms.insert(phase, low_forms);
        }
    }
    if let Some(m) = opts.margin {
        out.margin = Some(m);
    }
    margin::apply(&mut out);
    widen_for_switches(&mut out);
    // The low forms follow the same widening as the names.
    let get = |f: &BTreeMap<Phase, BTreeSet<String>>, ph: Phase| f.get(&ph).cloned().unwrap_or_default();
    let running = get(&forms, Phase::Running);
    let boot_forms = get(&forms, Phase::Boot);
    let mut widened = forms.clone();
    for phase in [Phase::Boot, Phase::Shutdown] {
        if out.phase(phase).is_some() && out.phase(Phase::Running).is_some() {
            widened.entry(phase).or_default().extend(running.iter().cloned());
        }
    }
    if out.phase(Phase::Reload).is_some() {
        let r = widened.entry(Phase::Reload).or_default();
        r.extend(boot_forms);
        r.extend(running);
    }
    let allow_entries: Vec<SyscallEntry> = allow.iter().map(|n| entry(n, host)).collect();
    let phases: Vec<Phase> = out.phases.keys().copied().collect();
    let mut conditional = BTreeMap::new();
    for phase in phases {
        add_to_phase(&mut out, phase, &allow_entries);
        let set = out.phases.get_mut(&phase).expect("listed phase");
        set.syscalls.retain(|e| !deny.contains(&e.name));
        let have: BTreeSet<&str> = set.syscalls.iter().filter(|e| e.arch == host.name()).map(|e| e.name.as_str()).collect();
        let t = risk::table();
        let rules: Vec<CondRule> = widened
            .get(&phase)
            .into_iter()
            .flatten()
            .filter(|n| !have.contains(n.as_str()) && !deny.contains(*n))
            .filter_map(|n| t.get(n)?.low_form.as_ref().map(|f| CondRule { name: n.clone(), args: f.arg_cmps() }))
            .collect();
        if !rules.is_empty() {
            conditional.insert(phase, rules);
        }
    }
    // A name only the allow list brought, in a profile that lacks that
    // phase, changes nothing; the lists are checked above.
    Ok(PhaseSets { mode, host, profile: out, conditional })
}

impl PhaseSets {
    /// The conditional rules of `phase` that `variant` (this set's profile,
    /// or a copy with more names) does not allow unconditionally.
    fn conditional_for<'a>(&'a self, variant: &'a Profile, phase: Phase) -> impl Iterator<Item = &'a CondRule> + 'a {
        let have = names_on(variant, phase, self.host);
        self.conditional.get(&phase).into_iter().flatten().filter(move |r| !have.contains(&r.name))
    }

    /// The filter of `phase`.
    pub fn filter(&self, phase: Phase, origin: &Path) -> Result<PhaseFilter, ProfileError> {
        self.filter_of(&self.profile, phase, origin)
    }

    /// The filter of `phase` of `variant` (a copy of [`PhaseSets::profile`]
    /// with more names, e.g. the runtime's prologue), with this set's
    /// conditional rules.
    pub fn filter_of(&self, variant: &Profile, phase: Phase, origin: &Path) -> Result<PhaseFilter, ProfileError> {
        let mut f = phase_filter_at(variant, phase, origin)?;
        for r in self.conditional_for(variant, phase) {
            f.rules.push(Rule { name: r.name.clone(), arch: self.host, action: Action::Allow, args: r.args.clone() });
        }
        Ok(f)
    }

    /// `phase` of `variant` as a Docker/OCI profile (see
    /// [`super::oci::from_phase`]), with this set's conditional rules as
    /// entries with `args`.
    pub fn oci_of(&self, variant: &Profile, phase: Phase, origin: &Path) -> Result<(OciProfile, Vec<String>), ProfileError> {
        let (mut oci, dropped) = super::oci::from_phase(variant, phase, origin, self.host)?;
        oci.syscalls.extend(self.conditional_entries(variant, phase));
        Ok((oci, dropped))
    }

    /// The conditional rules of `phase` of `variant` (see
    /// [`PhaseSets::filter_of`]) as OCI entries with `args`.
    pub fn conditional_entries(&self, variant: &Profile, phase: Phase) -> Vec<OciSyscall> {
        self.conditional_for(variant, phase)
            .map(|r| OciSyscall {
                names: vec![r.name.clone()],
                action: "SCMP_ACT_ALLOW".to_string(),
                args: r
                    .args
                    .iter()
                    .map(|a| OciArg { index: a.index, value: a.value, value_two: a.value_two, op: a.op.scmp_name().to_string() })
                    .collect(),
                comment: risk::table().get(&r.name).and_then(|e| e.low_form.as_ref()).map(|f| format!("speaker balanced: {}", f.when)),
                ..OciSyscall::default()
            })
            .collect()
    }

    /// The names phase `phase` allows unconditionally (ABI `host`).
    pub fn names(&self, phase: Phase) -> BTreeSet<String> {
        names_on(&self.profile, phase, self.host)
    }

    /// The names phase `phase` allows only in their low form.
    pub fn conditional_names(&self, phase: Phase) -> Vec<String> {
        self.conditional_for(&self.profile, phase).map(|r| r.name.clone()).collect()
    }

    /// The critical syscalls Docker's default profile allows (`docker`:
    /// unconditionally or for some arguments) that phase `phase` does not
    /// allow unconditionally (a low form is not the critical syscall).
    pub fn critical_removed(&self, phase: Phase, docker: &BTreeSet<String>) -> Vec<String> {
        let have = self.names(phase);
        docker.iter().filter(|n| risk::table().is_critical(n) && !have.contains(*n)).cloned().collect()
    }
}

/// Adds the running set to the boot and shutdown sets, and makes the reload
/// phase of a profile that reloads (`reload`, or a traced `phases.reload`)
/// boot ∪ running ∪ reload.
///
/// Why: a service serves as soon as it is ready, and the switch to the
/// running filter lands a little later, so requests served in between must
/// not be denied; the switch to shutdown lands before the signal, and the
/// service goes on with its running-phase loop until it notices it. A
/// reload re-runs part of the boot (nginx re-reads its configuration and
/// forks new workers that set themselves up as at boot) while requests go
/// on being served; what the traced reload did is added, so that timing
/// differences between the trace and production cannot break a reload. A
/// profile with `reload` but no traced reload phase reloads under its boot
/// filter.
pub fn widen_for_switches(p: &mut Profile) {
    if let Some(running) = p.phase(Phase::Running).cloned() {
        for phase in [Phase::Boot, Phase::Shutdown] {
            add_to_phase(p, phase, &running.syscalls);
        }
    }
    if p.reload.is_some() || p.phase(Phase::Reload).is_some() {
        let boot = p.phase(Phase::Boot).map(|s| s.syscalls.clone()).unwrap_or_default();
        p.phases.entry(Phase::Reload).or_default();
        add_to_phase(p, Phase::Reload, &boot);
    }
}

/// Adds `entries` missing from phase `phase` of `p` (if it has that phase).
pub fn add_to_phase(p: &mut Profile, phase: Phase, entries: &[SyscallEntry]) {
    if let Some(set) = p.phases.get_mut(&phase) {
        for e in entries {
            if !set.syscalls.iter().any(|b| b.name == e.name && b.arch == e.arch) {
                set.syscalls.push(e.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::file::load_profile;
    use crate::profile::oci::docker_sets;
    use crate::profile::translate::tests::profile;

    fn docker() -> BTreeSet<String> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-default-seccomp.json")).unwrap();
        let oci: OciProfile = serde_json::from_str(&text).unwrap();
        let s = docker_sets(&oci, Arch::X86_64);
        s.unconditional.into_iter().chain(s.with_args).collect()
    }

    fn committed() -> Vec<std::path::PathBuf> {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/profiles"));
        let mut v = Vec::new();
        for dir in [root.to_path_buf(), root.join("debian13")] {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "json") {
                    v.push(p);
                }
            }
        }
        v.sort();
        assert!(v.len() >= 6, "{v:?}");
        v
    }

    fn with(names: &[(&str, &str)], phase: Phase, more: &[&str]) -> Profile {
        let mut p = profile(names);
        p.phases.insert(phase, super::super::schema::PhaseSet { syscalls: more.iter().map(|n| entry(n, Arch::native())).collect() });
        p.margin = Some(false);
        p
    }

    #[test]
    fn balanced_removes_the_same_critical_syscalls_as_strict_for_every_committed_profile() {
        let docker = docker();
        for path in committed() {
            let p = load_profile(&path).unwrap();
            let strict = phase_sets(&p, &CompileOptions::mode(CompileMode::Strict), &path).unwrap();
            let balanced = phase_sets(&p, &CompileOptions::mode(CompileMode::Balanced), &path).unwrap();
            for &phase in p.phases.keys() {
                let (s, b) = (strict.critical_removed(phase, &docker), balanced.critical_removed(phase, &docker));
                assert_eq!(s, b, "{}: {phase}", path.display());
                assert!(
                    strict.names(phase).is_subset(&balanced.names(phase)),
                    "{}: {phase}: balanced dropped a strict syscall",
                    path.display()
                );
                // Nothing critical that the strict filter lacks.
                for n in balanced.names(phase).difference(&strict.names(phase)) {
                    assert_eq!(risk::table().class(n), Class::Low, "{}: {phase}: balanced added {n}", path.display());
                }
            }
            // The critical syscalls boot alone used are gone from running.
            if p.phase(Phase::Running).is_some() {
                let running = balanced.names(Phase::Running);
                for n in names_on(&p, Phase::Boot, Arch::native()).difference(&names_on(&p, Phase::Running, Arch::native())) {
                    if risk::table().is_critical(n) {
                        assert!(!running.contains(n), "{}: {n} (boot only) allowed in running", path.display());
                    }
                }
            }
        }
    }

    #[test]
    fn balanced_fixes_the_issues_running_phase_failures() {
        let p = load_profile(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/profiles/postgres.json"))).unwrap();
        let s = phase_sets(&p, &CompileOptions::default(), Path::new("postgres.json")).unwrap();
        assert_eq!(s.mode, CompileMode::Balanced);
        let running = s.names(Phase::Running);
        assert!(running.contains("ftruncate"), "VACUUM truncation");
        assert!(
            !running.contains("mprotect") && s.conditional_names(Phase::Running).contains(&"mprotect".to_string()),
            "dlopen of plpgsql"
        );
        let m = load_profile(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/profiles/mariadb.json"))).unwrap();
        let s = phase_sets(&m, &CompileOptions::default(), Path::new("mariadb.json")).unwrap();
        for n in ["madvise", "shutdown"] {
            assert!(s.names(Phase::Running).contains(n), "mariadb running lacks {n}");
        }
        for n in ["setuid", "setgid", "setgroups", "io_uring_setup", "execve"] {
            assert!(!s.names(Phase::Running).contains(n), "mariadb running has {n}");
        }
        // Strict is today's: traced + margin.
        let strict = phase_sets(&p, &CompileOptions::mode(CompileMode::Strict), Path::new("postgres.json")).unwrap();
        let want: BTreeSet<String> =
            names_on(&p, Phase::Running, Arch::native()).into_iter().chain(margin::names().map(str::to_string)).collect();
        assert_eq!(strict.names(Phase::Running), want);
        assert!(strict.conditional.is_empty());
    }

    #[test]
    fn families_boot_and_low_forms() {
        // running traced pread64 and mmap; boot used getpriority, setuid, mprotect.
        let p = with(&[("getpriority", "x86_64"), ("setuid", "x86_64"), ("mprotect", "x86_64")], Phase::Running, &["pread64", "mmap"]);
        let s = phase_sets(&p, &CompileOptions::default(), Path::new("t")).unwrap();
        let r = s.names(Phase::Running);
        for n in ["read", "readv", "preadv2", "getpriority", "madvise", "mremap", "munmap", "mmap", "pread64"] {
            assert!(r.contains(n), "{n} missing: {r:?}");
        }
        for n in ["setuid", "write", "mprotect", "pkey_mprotect"] {
            assert!(!r.contains(n), "{n} must not be allowed unconditionally");
        }
        assert_eq!(s.conditional_names(Phase::Running), vec!["mprotect".to_string(), "pkey_mprotect".to_string()]);
        // The conditional rule compiles, and tests PROT_EXEC on arg 2.
        let f = s.filter(Phase::Running, Path::new("t")).unwrap();
        let rule = f.rules.iter().find(|r| r.name == "mprotect").unwrap();
        assert_eq!(rule.args, vec![ArgCmp { index: 2, op: super::super::filter::CmpOp::MaskedEq, value: 4, value_two: 0 }]);
        crate::profile::compile(&f).unwrap();
        let (oci, _) = s.oci_of(&s.profile, Phase::Running, Path::new("t")).unwrap();
        let e = oci.syscalls.iter().find(|e| e.names == ["mprotect"]).unwrap();
        assert_eq!((e.args[0].index, e.args[0].op.as_str(), e.args[0].value), (2, "SCMP_CMP_MASKED_EQ", 4));
        // What the runtime reads back compiles the same way.
        let back = crate::profile::oci::to_phase_filter(&oci, Path::new("t")).unwrap();
        assert!(back.rules.iter().any(|r| r.name == "mprotect" && !r.args.is_empty()));
        // The boot filter widens with running's low forms too; boot has mprotect itself.
        assert!(s.names(Phase::Boot).contains("mprotect"));
    }

    #[test]
    fn allow_and_deny_lists_and_the_command_line_wins() {
        let mut p = with(&[("execve", "x86_64"), ("mprotect", "x86_64")], Phase::Running, &["read", "ptrace"]);
        p.allow = vec!["mprotect".into()];
        p.deny = vec!["ptrace".into()];
        let s = phase_sets(&p, &CompileOptions::default(), Path::new("t")).unwrap();
        let r = s.names(Phase::Running);
        assert!(r.contains("mprotect") && !r.contains("ptrace"), "{r:?}");
        assert!(s.conditional_names(Phase::Running).is_empty(), "mprotect is allowed whole");
        assert!(!s.names(Phase::Boot).contains("ptrace"), "deny is for every phase");
        let opts = CompileOptions { deny: vec!["mprotect".into()], allow: vec!["ptrace".into()], ..CompileOptions::default() };
        let s = phase_sets(&p, &opts, Path::new("t")).unwrap();
        let r = s.names(Phase::Running);
        assert!(!r.contains("mprotect") && r.contains("ptrace"), "{r:?}");
        assert!(s.conditional_names(Phase::Running).is_empty(), "a denied name loses its low form too");
        let bad = CompileOptions { allow: vec!["nope".into()], ..CompileOptions::default() };
        let e = phase_sets(&p, &bad, Path::new("t.json")).unwrap_err().to_string();
        assert!(e.contains("t.json") && e.contains("nope"), "{e}");
        let both = CompileOptions { allow: vec!["read".into()], deny: vec!["read".into()], ..CompileOptions::default() };
        assert!(matches!(phase_sets(&p, &both, Path::new("t")), Err(ProfileError::BadList { .. })));
        // The profile's compile key, overridden by the options.
        p.compile = Some(CompileMode::Strict);
        assert_eq!(phase_sets(&p, &CompileOptions::default(), Path::new("t")).unwrap().mode, CompileMode::Strict);
        assert_eq!(phase_sets(&p, &CompileOptions::mode(CompileMode::Balanced), Path::new("t")).unwrap().mode, CompileMode::Balanced);
        assert_eq!("balanced".parse::<CompileMode>(), Ok(CompileMode::Balanced));
        assert!("enforce".parse::<CompileMode>().is_err());
    }

    #[test]
    fn the_margin_is_low_risk() {
        for n in margin::names() {
            assert_eq!(risk::table().class(n), Class::Low, "{n}");
        }
    }
}
