//! How many instructions a classic seccomp program runs for a syscall: a
//! small interpreter of the instructions libseccomp emits, over a
//! `struct seccomp_data` (the native ABI, no instruction pointer).
use crate::profile::{Arch, SockFilter};

/// The verdict of a program for one syscall and the instructions it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub ret: u32,
    pub instructions: usize,
}

impl Path {
    /// Whether the verdict lets the syscall run (`SECCOMP_RET_ALLOW`, `LOG`).
    pub fn allows(self) -> bool {
        matches!(self.ret & 0xffff_0000, 0x7fff_0000 | 0x7ffc_0000)
    }
}

fn data_word(nr: u32, args: &[u64; 6], off: u32) -> Option<u32> {
    match off {
        0 => Some(nr),
        4 => Some(Arch::native().audit_arch()),
        8 | 12 => Some(0),
        16..=60 if off.is_multiple_of(4) => {
            let a = args[((off - 16) / 8) as usize];
            Some(if off.is_multiple_of(8) { a as u32 } else { (a >> 32) as u32 })
        }
        _ => None,
    }
}

/// Runs `prog` for syscall `nr` with `args`; `None` if the program does
/// something libseccomp never emits (or runs off its end).
pub fn run(prog: &[SockFilter], nr: u32, args: &[u64; 6]) -> Option<Path> {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    let mut count = 0usize;
    while let Some(i) = prog.get(pc) {
        count += 1;
        pc += 1;
        let k = i.k;
        let jump = |cond: bool| if cond { usize::from(i.jt) } else { usize::from(i.jf) };
        match i.code {
            0x20 => a = data_word(nr, args, k)?,
            0x00 => a = k,
            0x01 => x = k,
            0x60 => a = *mem.get(k as usize)?,
            0x61 => x = *mem.get(k as usize)?,
            0x02 => *mem.get_mut(k as usize)? = a,
            0x03 => *mem.get_mut(k as usize)? = x,
            0x07 => x = a,
            0x87 => a = x,
            0x54 => a &= k,
            0x5c => a &= x,
            0x44 => a |= k,
            0x04 => a = a.wrapping_add(k),
            0x14 => a = a.wrapping_sub(k),
            0x05 => pc += k as usize,
            0x15 => pc += jump(a == k),
            0x25 => pc += jump(a > k),
            0x35 => pc += jump(a >= k),
            0x45 => pc += jump(a & k != 0),
            0x1d => pc += jump(a == x),
            0x2d => pc += jump(a > x),
            0x3d => pc += jump(a >= x),
            0x4d => pc += jump(a & x != 0),
            0x06 => return Some(Path { ret: k, instructions: count }),
            0x16 => return Some(Path { ret: a, instructions: count }),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::filter::{Action, PhaseFilter, Rule};
    use crate::profile::{compile_with, Arch, Layout};

    fn filter(names: &[&str]) -> PhaseFilter {
        PhaseFilter {
            default_action: Action::Errno(1),
            arches: vec![Arch::X86_64],
            rules: names.iter().map(|n| Rule { name: n.to_string(), arch: Arch::X86_64, action: Action::Allow, args: vec![] }).collect(),
            unresolved: vec![],
        }
    }

    #[test]
    fn verdicts_match_the_rules() {
        let f = filter(&["read", "write", "getppid"]);
        for layout in [Layout::Linear, Layout::BinaryTree] {
            let prog = compile_with(&f, layout).unwrap();
            let none = [0u64; 6];
            assert!(run(&prog, libc::SYS_getppid as u32, &none).unwrap().allows());
            assert!(run(&prog, libc::SYS_read as u32, &none).unwrap().allows());
            let denied = run(&prog, libc::SYS_mount as u32, &none).unwrap();
            assert_eq!(denied.ret, 0x0005_0001, "{layout:?}");
        }
    }

    #[test]
    fn binary_tree_is_shorter_for_long_filters() {
        let names: Vec<String> = (0..300u64).filter_map(|nr| Arch::X86_64.syscall_name(nr)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let f = filter(&names);
        let worst = |layout| {
            let prog = compile_with(&f, layout).unwrap();
            (0..300u32).map(|nr| run(&prog, nr, &[0; 6]).unwrap().instructions).max().unwrap()
        };
        let (linear, tree) = (worst(Layout::Linear), worst(Layout::BinaryTree));
        assert!(tree * 4 < linear, "tree {tree} vs linear {linear}");
    }
}
