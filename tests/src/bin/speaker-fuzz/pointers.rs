//! Bad pointers: an arena of read-only, PROT_NONE and unmapped pages, and
//! the addresses (NULL, kernel, non-canonical, ...) the kernel must refuse.

use std::sync::OnceLock;

use speaker_tests::guest::cid_bytes;
use speaker_tests::{abi, ioctl};

use crate::progs::ALLOW_ONE;
use crate::rng::Rng;

/// Addresses that are not ours to hand over, and pages to misuse.
pub struct Arena {
    /// A read-only page holding a well-formed `SwitchArgs` for container `fz-ro`.
    pub ro: u64,
    /// A page that was mapped and unmapped (in a region mmap never picks).
    pub unmapped: u64,
    /// A PROT_NONE page.
    pub none: u64,
    /// The last 16 bytes of a mapping followed by the unmapped page.
    pub edge: u64,
}

pub static ARENA: OnceLock<Arena> = OnceLock::new();

pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

pub fn arena() -> &'static Arena {
    ARENA.get_or_init(|| {
        let ps = page_size();
        // Far below where mmap places things (top-down from the stack), so
        // nothing lands in the hole we punch.
        let hint = 0x10_0000_0000usize as *mut libc::c_void;
        // SAFETY: a fresh anonymous mapping at an address we reserve with
        // MAP_FIXED_NOREPLACE (never replacing an existing mapping).
        let base = unsafe {
            libc::mmap(
                hint,
                4 * ps,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        assert!(base != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        let b = base as usize;
        let ro = b;
        let args = ioctl::switch(cid_bytes("fz-ro"), &ALLOW_ONE, 1, 0, abi::SWITCH_DEFER_FREE);
        // SAFETY: page 0 of our mapping is writable and large enough; then
        // pages are re-protected or unmapped, all inside our own mapping.
        unsafe {
            std::ptr::write(ro as *mut abi::SwitchArgs, args);
            assert_eq!(libc::mprotect(ro as *mut _, ps, libc::PROT_READ), 0);
            assert_eq!(libc::mprotect((b + ps) as *mut _, ps, libc::PROT_NONE), 0);
            assert_eq!(libc::munmap((b + 3 * ps) as *mut _, ps), 0);
        }
        Arena { ro: ro as u64, none: (b + ps) as u64, edge: (b + 3 * ps - 16) as u64, unmapped: (b + 3 * ps) as u64 }
    })
}

/// A pointer the kernel must refuse (or, for the edge, partly refuse).
pub fn bad_pointer(rng: &mut Rng, kernel_writes: bool) -> u64 {
    let a = arena();
    let mut v = vec![0, 1, 0x1000, 0xffff_8880_0000_0000, 0xffff_ffff_8100_0000, 0x8000_0000_0000_0000, u64::MAX - 7];
    v.extend([a.unmapped, a.none, a.edge, a.unmapped - 1]);
    if kernel_writes {
        v.push(a.ro);
    }
    rng.pick(&v)
}
