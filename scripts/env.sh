# Sourced by speaker's scripts: where the cache, the tools and the kernel
# build live, and the environment every kernel/module make needs.
# shellcheck shell=bash
SPEAKER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../linux-config/version.env
. "$SPEAKER_ROOT/linux-config/version.env"
SPEAKER_CACHE=${SPEAKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speaker}
KSRC=$SPEAKER_CACHE/src/$KERNEL_DIR
export PATH=$SPEAKER_CACHE/tools/bin:$PATH
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export RUST_LIB_SRC=/usr/src/rustc-$RUSTC_VERSION/library

# The kernel build is keyed by everything that changes its output.
speaker_kernel_key() {
  {
    echo "$KERNEL_PKG=$KERNEL_PKG_VERSION"
    cat "$SPEAKER_ROOT"/linux-config/*.config
    rustc --version
    "$SPEAKER_CACHE/tools/bin/bindgen" --version 2>/dev/null || echo no-bindgen
    clang$LLVM_SUFFIX --version 2>/dev/null | head -n1 || echo no-clang
  } | sha256sum | cut -c1-16
}
KBUILD_DIR=$SPEAKER_CACHE/kernel/$KERNEL_PKG_VERSION-$(speaker_kernel_key)
BZIMAGE=$KBUILD_DIR/arch/x86/boot/bzImage
