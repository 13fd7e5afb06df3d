// SPDX-License-Identifier: GPL-2.0

//! speaker.ko: split-phase seccomp for containers.
//!
//! A container boots under its boot-phase seccomp filter.  When it reaches
//! its running phase, `speaker-ctl switch <cid>` asks this module, through
//! `/dev/speaker`, to replace the BPF program of the container's own filter
//! with the tighter running-phase program, for every process and thread of
//! the container at once.  Stock seccomp can only stack filters, only on
//! the calling process, and never remove one.
//!
//! Layout: `abi` (the ioctl ABI, shared with speaker-ctl), `device` (the
//! misc device), `registry` (containers, and who may change them), `filter`
//! (the swap), `keep` (replaced programs, kept until their filter dies),
//! `sweep` (frees them, and keeps the module loaded meanwhile), `bpf`
//! (program checks and cache emulation), `tasks` (walking tasks under their
//! siglock; `debug`: the debug kernel's knobs for its stress scenario),
//! `mirror` (private kernel structs, checked with fault-safe
//! reads), `layout` (load-time checks), `arch` (what differs between x86_64
//! and arm64).
//!
//! Usage from userspace (see speaker-ctl for the full tool):
//!
//! ```text
//! # insmod speaker.ko
//! # speaker-ctl version
//! # speaker-ctl run --name web --profile web.json -- /usr/sbin/nginx
//! # speaker-ctl switch web
//! ```

use kernel::{
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
};

mod abi;
mod arch;
mod bpf;
mod debug;
mod device;
mod filter;
mod keep;
mod layout;
mod mirror;
mod registry;
mod sweep;
mod tasks;

/// The module's version, reported by the version ioctl (kept equal to the
/// workspace version; speaker-ctl's tests check it).
pub(crate) const MODULE_VERSION: &str = "0.1.0";

#[cfg(not(CONFIG_KASAN))]
module! {
    type: SpeakerModule,
    name: "speaker",
    authors: ["speaker developers"],
    description: "Split-phase seccomp: switch a live container's seccomp filter to its next phase",
    license: "GPL",
}

// The debug kernel's build (KASAN) has two load-time parameters that only
// the stress scenario of the thread walks uses (`debug.rs`); a production
// build has none.
#[cfg(CONFIG_KASAN)]
module! {
    type: SpeakerModule,
    name: "speaker",
    authors: ["speaker developers"],
    description: "Split-phase seccomp: switch a live container's seccomp filter to its next phase",
    license: "GPL",
    params: {
        debug_walk_gap_ms: u32 {
            default: 0,
            description: "Debug kernels only: busy-wait this long after each visit of a thread group that uses the switched filter (widens the race window for the stress scenario)",
        },
        debug_walk_per_thread: bool {
            default: false,
            description: "Debug kernels only: walk with one siglock hold per thread, the walk before issue 18 item 3 (lets the stress scenario show the race it had)",
        },
    },
}

#[pin_data(PinnedDrop)]
struct SpeakerModule {
    #[pin]
    _miscdev: MiscDeviceRegistration<device::SpeakerFile>,
}

impl kernel::InPlaceModule for SpeakerModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _miscdev <- {
                layout::check_all()?;
                // SAFETY: called once, before the device (its only user)
                // is registered just below.
                unsafe { registry::init()? };
                pr_info!("ABI {}, module {}\n", abi::SPEAKER_ABI_VERSION, MODULE_VERSION);
                release_on_error(MiscDeviceRegistration::register(MiscDeviceOptions { name: c"speaker" }))
            },
        })
    }
}

/// `init`, and on its failure (`misc_register()` failed: the module does
/// not load, so `drop` below never runs) what `drop` would release: the
/// registry and its sweeper.
fn release_on_error<T>(init: impl PinInit<T, Error>) -> impl PinInit<T, Error> {
    let run = move |slot: *mut T| {
        // SAFETY: `slot` is the caller's valid, pinned slot for a `T`, as
        // `__init` requires; we forward its contract unchanged.
        let r = unsafe { init.__init(slot) };
        if r.is_err() {
            registry::release_all();
        }
        r
    };
    // SAFETY: `run` initialises `slot` fully on `Ok` and leaves it
    // uninitialised on `Err`, as the forwarded initialiser does.
    unsafe { pin_init::pin_init_from_closure(run) }
}

#[pinned_drop]
impl PinnedDrop for SpeakerModule {
    fn drop(self: Pin<&mut Self>) {
        // No file is open (each holds a module reference), so no ioctl
        // runs, and nothing is kept (kept programs pin the module).
        registry::release_all();
        pr_info!("unloaded\n");
    }
}
