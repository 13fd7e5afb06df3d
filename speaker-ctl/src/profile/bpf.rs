//! Compiling a [`PhaseFilter`] to a classic BPF program with libseccomp.
//!
//! * one libseccomp context per ABI of the filter (x86_64, and i386 / x32
//!   only when the profile lists them), merged into one program;
//! * the "bad architecture" action is the filter's default action (when that
//!   denies), so a syscall made through an ABI the profile does not list is
//!   denied like any syscall outside the set;
//! * `no_new_privs` is *not* requested by the program (`CTL_NNP` off): the
//!   installer decides;
//! * the syscall comparisons are laid out as a binary tree
//!   (`SCMP_FLTATR_CTL_OPTIMIZE` = 2, [`DEFAULT_LAYOUT`]) rather than
//!   libseccomp's default linear list: `speaker-ctl bench` measures both on
//!   Docker's default profile, where a denied syscall runs ~600
//!   instructions of the list against ~17 of the tree (allowed syscalls
//!   the kernel's action cache covers run none either way; see
//!   docs/src/benchmarks.md);
//! * the program is exported with `seccomp_export_bpf` into a memfd and read
//!   back as [`SockFilter`]s.
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpArch, ScmpArgCompare, ScmpFilterContext, ScmpSyscall};

use super::arch::Arch;
use super::error::ProfileError;
use super::filter::{parse_program, PhaseFilter, Rule, SockFilter};

fn seccomp_err(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> ProfileError {
    let what = what.into();
    move |error| ProfileError::Seccomp { what, error }
}

fn rule_err(rule: &Rule, msg: impl Into<String>) -> ProfileError {
    ProfileError::Rule { name: rule.name.clone(), arch: rule.arch.name(), msg: msg.into() }
}

/// A libseccomp context holding only `arch`, with the filter's attributes.
fn arch_context(filter: &PhaseFilter, arch: Arch, layout: Layout) -> Result<ScmpFilterContext, ProfileError> {
    let what = format!("creating the {arch} context");
    let mut ctx = ScmpFilterContext::new(filter.default_action.scmp()).map_err(seccomp_err(&what))?;
    if ScmpArch::native() != arch.scmp() {
        ctx.add_arch(arch.scmp()).map_err(seccomp_err(&what))?;
        ctx.remove_arch(ScmpArch::native()).map_err(seccomp_err(&what))?;
    }
    ctx.set_act_badarch(filter.default_action.bad_arch_action().scmp()).map_err(seccomp_err(&what))?;
    ctx.set_ctl_nnp(false).map_err(seccomp_err(&what))?;
    if layout == Layout::BinaryTree {
        ctx.set_ctl_optimize(2).map_err(seccomp_err(&what))?;
    }
    Ok(ctx)
}

fn add_rule(ctx: &mut ScmpFilterContext, filter: &PhaseFilter, rule: &Rule) -> Result<(), ProfileError> {
    if rule.action == filter.default_action {
        // libseccomp refuses rules whose action is the default one; they
        // are redundant anyway.
        return Ok(());
    }
    if rule.arch.resolve(&rule.name).is_none() {
        return Err(rule_err(rule, format!("libseccomp does not know it on {}", rule.arch)));
    }
    // Rules take the *native* number (possibly a libseccomp pseudo number),
    // which libseccomp translates to each ABI of the context.
    let syscall = ScmpSyscall::from_name(&rule.name).map_err(|e| rule_err(rule, e.to_string()))?;
    let action = rule.action.scmp();
    let add = |ctx: &mut ScmpFilterContext, conds: &[ScmpArgCompare]| {
        if conds.is_empty() { ctx.add_rule(action, syscall) } else { ctx.add_rule_conditional(action, syscall, conds) }
            .map(|_| ())
            .map_err(|e| rule_err(rule, e.to_string()))
    };
    if let Some(a) = rule.args.iter().find(|a| a.index > 5) {
        return Err(rule_err(rule, format!("argument index {} out of range 0..=5", a.index)));
    }
    let conds: Vec<ScmpArgCompare> = rule.args.iter().map(|a| a.scmp()).collect();
    let mut indexes = rule.args.iter().map(|a| a.index).collect::<Vec<_>>();
    indexes.sort_unstable();
    let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
    if repeated {
        // Like runc: several conditions on the same argument become one
        // rule each (alternatives), as libseccomp cannot AND them.
        for c in &conds {
            add(ctx, std::slice::from_ref(c))?;
        }
        Ok(())
    } else {
        add(ctx, &conds)
    }
}

/// How libseccomp lays out the syscall comparisons of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One comparison after the other (libseccomp's default): a syscall
    /// near the end of a long list runs every comparison before it.
    Linear,
    /// A binary tree of comparisons (`SCMP_FLTATR_CTL_OPTIMIZE` = 2):
    /// about log2(n) comparisons for any syscall.
    BinaryTree,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Linear => "linear",
            Layout::BinaryTree => "binary tree",
        }
    }
}

/// The layout [`compile`] uses (the faster one in `speaker-ctl bench`).
pub const DEFAULT_LAYOUT: Layout = Layout::BinaryTree;

/// The libseccomp context of a filter (all its ABIs merged).
fn build_context(filter: &PhaseFilter, layout: Layout) -> Result<ScmpFilterContext, ProfileError> {
    let mut arches: Vec<Arch> = Vec::new();
    for a in &filter.arches {
        if !arches.contains(a) {
            arches.push(*a);
        }
    }
    if arches.is_empty() {
        arches.push(Arch::native());
    }
    if let Some(rule) = filter.rules.iter().find(|r| !arches.contains(&r.arch)) {
        return Err(rule_err(rule, "the filter does not list this architecture"));
    }
    let mut merged: Option<ScmpFilterContext> = None;
    for arch in arches {
        let mut ctx = arch_context(filter, arch, layout)?;
        for rule in filter.rules.iter().filter(|r| r.arch == arch) {
            add_rule(&mut ctx, filter, rule)?;
        }
        match merged.as_mut() {
            None => merged = Some(ctx),
            Some(m) => {
                m.merge(ctx).map_err(seccomp_err(format!("merging the {arch} context")))?;
            }
        }
    }
    Ok(merged.expect("at least one architecture"))
}

/// Compiles a phase filter to a classic BPF program (libseccomp, laid out
/// as [`DEFAULT_LAYOUT`]).
pub fn compile(filter: &PhaseFilter) -> Result<Vec<SockFilter>, ProfileError> {
    compile_with(filter, DEFAULT_LAYOUT)
}

/// [`compile`] with a chosen layout.
pub fn compile_with(filter: &PhaseFilter, layout: Layout) -> Result<Vec<SockFilter>, ProfileError> {
    let ctx = build_context(filter, layout)?;
    export_bpf(&ctx)
}

/// libseccomp's pseudo-code listing of the compiled filter (for debugging).
pub fn compile_pfc(filter: &PhaseFilter) -> Result<String, ProfileError> {
    let ctx = build_context(filter, DEFAULT_LAYOUT)?;
    let mut file = memfd()?;
    ctx.export_pfc(&file).map_err(seccomp_err("exporting the PFC listing"))?;
    let bytes = read_back(&mut file)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn memfd() -> Result<std::fs::File, ProfileError> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd =
        memfd_create(c"speaker-bpf", MemFdCreateFlag::MFD_CLOEXEC).map_err(|e| ProfileError::Export { error: std::io::Error::from(e) })?;
    Ok(std::fs::File::from(fd))
}

fn read_back(file: &mut std::fs::File) -> Result<Vec<u8>, ProfileError> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_end(&mut buf)).map_err(|error| ProfileError::Export { error })?;
    Ok(buf)
}

/// Exports a libseccomp context's BPF program (libseccomp 2.5 only exports
/// to a file descriptor).
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, ProfileError> {
    let mut file = memfd()?;
    ctx.export_bpf(&file).map_err(seccomp_err("exporting the BPF program"))?;
    let bytes = read_back(&mut file)?;
    parse_program(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::arch::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
    use crate::profile::filter::{Action, ArgCmp, CmpOp};
    use crate::profile::schema::Phase;
    use crate::profile::translate::tests::profile;
    use crate::profile::translate::{allowed_count, phase_filter};
    use std::collections::BTreeSet;

    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;

    #[test]
    fn compile_checks_arch_first() {
        let p = profile(&[("read", "x86_64"), ("exit_group", "x86_64")]);
        let prog = compile(&phase_filter(&p, Phase::Boot).unwrap()).unwrap();
        // ld [4] (seccomp_data.arch); jeq AUDIT_ARCH_X86_64
        assert_eq!((prog[0].code, prog[0].k), (BPF_LD_W_ABS, 4));
        assert_eq!((prog[1].code, prog[1].k), (BPF_JEQ_K, AUDIT_ARCH_X86_64));
        // x32 numbers are rejected.
        assert!(prog.iter().any(|i| i.k == X32_SYSCALL_BIT));
        // No i386 branch.
        assert!(!prog.iter().any(|i| i.k == AUDIT_ARCH_I386));
        // Every return is ALLOW or ERRNO(EPERM).
        let rets: BTreeSet<u32> = prog.iter().filter(|i| i.code == BPF_RET_K).map(|i| i.k).collect();
        assert_eq!(rets, BTreeSet::from([0x7fff_0000, 0x0005_0001]));
    }

    #[test]
    fn compile_with_i386() {
        let mut p = profile(&[("read", "x86_64"), ("socketcall", "x86"), ("read", "x86")]);
        p.architectures.push("SCMP_ARCH_X86".into());
        let f = phase_filter(&p, Phase::Boot).unwrap();
        let prog = compile(&f).unwrap();
        assert!(prog.iter().any(|i| i.code == BPF_JEQ_K && i.k == AUDIT_ARCH_I386));
        let pfc = compile_pfc(&f).unwrap();
        assert!(pfc.contains("x86_64") && pfc.contains("x86"), "{pfc}");
        assert_eq!(allowed_count(&f), 1);
    }

    #[test]
    fn compile_arg_rules() {
        let f = PhaseFilter {
            default_action: Action::KillProcess,
            arches: vec![Arch::X86_64],
            rules: vec![
                Rule {
                    name: "personality".into(),
                    arch: Arch::X86_64,
                    action: Action::Allow,
                    args: vec![
                        ArgCmp { index: 0, op: CmpOp::Eq, value: 0, value_two: 0 },
                        ArgCmp { index: 0, op: CmpOp::Eq, value: 8, value_two: 0 },
                    ],
                },
                Rule {
                    name: "clone".into(),
                    arch: Arch::X86_64,
                    action: Action::Allow,
                    args: vec![ArgCmp { index: 0, op: CmpOp::MaskedEq, value: 0x7E02_0000, value_two: 0 }],
                },
                Rule { name: "clone3".into(), arch: Arch::X86_64, action: Action::Errno(38), args: vec![] },
            ],
            unresolved: vec![],
        };
        let prog = compile(&f).unwrap();
        assert!(prog.iter().any(|i| i.k == 0x7E02_0000));
        assert!(prog.iter().any(|i| i.code == BPF_RET_K && i.k == 0x0005_0026));
        assert!(prog.iter().any(|i| i.code == BPF_RET_K && i.k == 0x8000_0000));
        let mut bad = f.clone();
        bad.rules[0].args[0].index = 6;
        assert!(compile(&bad).unwrap_err().to_string().contains("personality"));
        let mut bad = f;
        bad.rules[0].arch = Arch::X86;
        assert!(compile(&bad).is_err());
    }
}
