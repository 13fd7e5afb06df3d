# Sourced by speaker's scripts: where the cache, the tools and the kernel
# build live, and the environment every kernel/module make needs.
# shellcheck shell=bash
SPEAKER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../linux-config/version.env
. "$SPEAKER_ROOT/linux-config/version.env"
SPEAKER_CACHE=${SPEAKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speaker}
KSRC=$SPEAKER_CACHE/src/$KERNEL_DIR
export PATH=$SPEAKER_CACHE/tools/bin:$PATH
# mdBook builds the book in docs/ (scripts/build-docs); scripts/setup installs
# this version from crates.io into its own directory of the cache.
MDBOOK_VERSION=0.5.4
MDBOOK=$SPEAKER_CACHE/tools/mdbook-$MDBOOK_VERSION/bin/mdbook
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export RUST_LIB_SRC=/usr/src/rustc-$RUSTC_VERSION/library

# The kernel build is keyed by everything that changes its output: the
# kernel version, the config fragments (the arch's, see speaker_set_arch),
# the toolchain.
speaker_kernel_key() {
  {
    echo "$KERNEL_PKG=$KERNEL_PKG_VERSION"
    cat "${KCONFIGS[@]}"
    rustc --version
    "$SPEAKER_CACHE/tools/bin/bindgen" --version 2>/dev/null || echo no-bindgen
    clang$LLVM_SUFFIX --version 2>/dev/null | head -n1 || echo no-clang
  } | sha256sum | cut -c1-16
}

# speaker_set_arch ARCH (x86_64 or arm64): the architecture the kernel, the
# module and the guest's programs are built for and booted on.  Sets
#   SPEAKER_ARCH  x86_64 | arm64
#   KCONFIGS      the config fragments merged on top of tinyconfig: x86_64,
#                 linux-config/*.config; arm64, linux-config/arm64/*.config
#   KMAKE_ARCH    make's ARCH= (empty: the host's)
#   KBUILD_DIR    the kernel's build directory in the cache
#   BZIMAGE       the kernel image QEMU boots
#   KO            speaker.ko for that kernel
#   RUST_TARGET   the userspace target triple
#   GUEST_BIN_DIR where scripts/build-guest-bins puts that triple's programs:
#                 target/<triple>/release; arm64's in a cargo target
#                 directory of their own, target/build-std/<triple>/release
#                 (its -Zbuild-std build sets RUSTC_BOOTSTRAP, which the
#                 build scripts both builds share would otherwise see change
#                 at every switch of architecture: everything rebuilt, both ways)
speaker_set_arch() {
  case $1 in
    x86_64|amd64)
      SPEAKER_ARCH=x86_64 KMAKE_ARCH= RUST_TARGET=x86_64-unknown-linux-gnu
      KCONFIGS=("$SPEAKER_ROOT"/linux-config/*.config)
      KBUILD_DIR=$SPEAKER_CACHE/kernel/$KERNEL_PKG_VERSION-$(speaker_kernel_key)
      BZIMAGE=$KBUILD_DIR/arch/x86/boot/bzImage
      KO=$SPEAKER_ROOT/speaker-kmod/speaker.ko
      GUEST_BIN_DIR=$SPEAKER_ROOT/target/$RUST_TARGET/release ;;
    arm64|aarch64)
      SPEAKER_ARCH=arm64 KMAKE_ARCH=arm64 RUST_TARGET=aarch64-unknown-linux-gnu
      KCONFIGS=("$SPEAKER_ROOT"/linux-config/arm64/*.config)
      KBUILD_DIR=$SPEAKER_CACHE/kernel-arm64/$KERNEL_PKG_VERSION-$(speaker_kernel_key)
      BZIMAGE=$KBUILD_DIR/arch/arm64/boot/Image
      KO=$SPEAKER_ROOT/target/arm64/speaker.ko
      GUEST_BIN_DIR=$SPEAKER_ROOT/target/build-std/$RUST_TARGET/release ;;
    *) echo "error: unknown architecture '$1' (x86_64 or arm64)" >&2; return 2 ;;
  esac
  export SPEAKER_ARCH
}
# make for speaker's kernel of $SPEAKER_ARCH: speaker_kmake -C "$KSRC" O=... TARGETS
speaker_kmake() {
  make ${KMAKE_ARCH:+ARCH=$KMAKE_ARCH} LLVM="$LLVM_SUFFIX" "$@"
}
speaker_set_arch "${SPEAKER_ARCH:-x86_64}"

# speaker_install_changed SRC DST: puts SRC at DST (through a temporary file
# beside it) unless DST already has the same bytes: an unchanged output keeps
# its modification time, which scripts/test's check that no suite rebuilt
# anything reads (SRC and DST may be the same file: nothing to do).
speaker_install_changed() {
  cmp -s "$1" "$2" || { cp "$1" "$2.tmp" && mv "$2.tmp" "$2"; }
}

# The Debian mirror every debootstrap and apt source of speaker uses:
# $SPEAKER_DEBIAN_MIRROR, else the host's own apt configuration (the first
# URI of the deb entry that serves the host's main suite, e.g. bookworm, in
# /etc/apt/sources.list.d/*.sources (deb822) or /etc/apt/sources.list and
# sources.list.d/*.list (one-line format)).  Prints it without a trailing
# slash; fails with a message naming what it read when there is none.
# SPEAKER_APT_ETC and SPEAKER_OS_RELEASE (tests) replace /etc/apt and
# /etc/os-release.
speaker_debian_mirror() {
  if [ -n "${SPEAKER_DEBIAN_MIRROR:-}" ]; then
    echo "${SPEAKER_DEBIAN_MIRROR%/}"
    return 0
  fi
  local etc=${SPEAKER_APT_ETC:-/etc/apt} suite uri f
  suite=$(. "${SPEAKER_OS_RELEASE:-/etc/os-release}" 2>/dev/null && echo "${VERSION_CODENAME:-}") || suite=
  if [ -z "$suite" ]; then
    echo "error: cannot tell this host's Debian suite (no VERSION_CODENAME in ${SPEAKER_OS_RELEASE:-/etc/os-release}); set SPEAKER_DEBIAN_MIRROR to a Debian mirror URL" >&2
    return 1
  fi
  uri=
  for f in "$etc"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: paragraphs of "Field: value" lines (continuation lines start
    # with a blank); the entry must be enabled, of type deb, list the suite.
    uri=$(awk -v suite="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn][Oo]$/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = suites = uris = enabled = ""; field = ""
      }
      /^#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { v = $0; gsub(/^[ \t]+|[ \t]+$/, "", v); if (field == "uris") uris = uris " " v; else if (field == "suites") suites = suites " " v; next }
      {
        name = tolower($0); sub(/:.*/, "", name); v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/[ \t]+$/, "", v); field = name
        if (name == "types") types = v; else if (name == "suites") suites = v
        else if (name == "uris") uris = v; else if (name == "enabled") enabled = v
      }
      END { if (!found) flush() }' "$f")
    [ -z "$uri" ] || break
  done
  if [ -z "$uri" ]; then
    for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      # One-line format: deb [options] URI SUITE COMPONENT...
      uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }')
      [ -z "$uri" ] || break
    done
  fi
  if [ -z "$uri" ]; then
    echo "error: no Debian mirror for $suite in $etc/sources.list.d/*.sources, $etc/sources.list or $etc/sources.list.d/*.list; set SPEAKER_DEBIAN_MIRROR to a Debian mirror URL (e.g. the one apt uses)" >&2
    return 1
  fi
  echo "${uri%/}"
}
