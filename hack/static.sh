#!/usr/bin/env bash
# Builds a fully static release binary of trainjob-gc for x86_64-unknown-linux-gnu and checks
# that it needs no shared library, so it runs in a `scratch` or distroless/static image.
# Prints the binary's path and size. The Dockerfile's build stage runs this script too.
#
# Needs: cargo, the glibc static libraries (libc6-dev on Debian), file and ldd.
set -euo pipefail

target=x86_64-unknown-linux-gnu
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

log() { printf '[static] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$host" != "$target" ]; then
  fail "this script builds for $target, but the Rust host is ${host:-unknown}; run it on x86_64 Linux or in the Dockerfile's build stage"
fi

# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros, which run on the
# host. Proc macros are shared libraries that rustc loads, so +crt-static would break them. The
# host's own target needs no download.
log "building $target with +crt-static"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
  cargo build --release --locked --target "$target"

binary=${CARGO_TARGET_DIR:-$repo/target}/$target/release/trainjob-gc
[ -x "$binary" ] || fail "cargo finished but $binary is missing"

# file prints "statically linked" for a static executable and "static-pie linked" for a static
# position-independent one, which is what rustc produces for +crt-static on this target.
description=$(file --brief "$binary")
case $description in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) fail "$binary is not statically linked; file reports: $description" ;;
esac

# For a static executable ldd prints "not a dynamic executable" and exits 1, and for a static-pie
# it prints "statically linked" and exits 0, so the output is checked and the status is not.
ldd_output=$(ldd "$binary" 2>&1 || true)
case $ldd_output in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) fail "ldd lists shared libraries for $binary:"$'\n'"$ldd_output" ;;
esac

size=$(stat --format=%s "$binary")
echo "$binary"
echo "size: $size bytes ($(numfmt --to=iec-i --suffix=B "$size"))"
