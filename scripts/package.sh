#!/usr/bin/env bash
# The release packages, so that users need no Rust toolchain: without them a Python user compiles
# the core on `pip install`, a Go user can build federation-go only inside this repository after a
# cargo build, and a C user has no header/library/pkg-config layout to build against.
#
# Builds the C library (staticlib + cdylib) and the Python wheel with ONE cargo profile, so the
# two share every compiled dependency, then lays out under $FEDERATION_PACKAGE_DIR (default
# target/package):
#   python/   federation-<version>-cp39-abi3-manylinux_*.whl (maturin; manylinux checked by
#             maturin's audit and by `auditwheel show`) and federation-<version>.tar.gz (sdist)
#   c/        `make install` layout: include/federation.h, lib/libfederation.{a,so},
#             lib/pkgconfig/federation.pc (prefix = --prefix, default this directory)
#   go/       the Go release module: federation-go without its tests and test-only packages, with
#             build/include/federation.h and build/<platform>/libfederation.a, selected by
#             link_<goos>_<goarch>.go (`!federation_dev`). This tree is what a release tag
#             publishes; the prebuilt libraries are build outputs and never committed.
#
# Usage: scripts/package.sh [--target <rust target triple>] [--prefix <dir>]
#   --target  cross-build the libraries and the wheel for another platform (needs
#             `rustup target add <triple>` and a C cross compiler for librdkafka, see below);
#             the Go tree keeps the libraries of earlier runs for other platforms.
#   --prefix  where the C package is installed (make install PREFIX=...; default target/package/c)
# Environment:
#   FEDERATION_PACKAGE_PROFILE  cargo profile: release (default) or dev (quick local checks)
#   FEDERATION_PACKAGE_DIR      output directory (default target/package)
#   FEDERATION_PY_VENV          venv holding maturin (default target/python-venv, created if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "package.sh: $*" >&2; exit 2; }

triple=""
out="${FEDERATION_PACKAGE_DIR:-$root/target/package}"
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) [ $# -ge 2 ] || fail "--target needs a rust target triple"; triple="$2"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    *) fail "unknown argument '$1' (allowed: --target <triple>, --prefix <dir>)" ;;
  esac
done
prefix="${prefix:-$out/c}"
case "$prefix" in /*) ;; *) fail "--prefix must be an absolute path, got '$prefix'" ;; esac

profile="${FEDERATION_PACKAGE_PROFILE:-release}"
case "$profile" in
  release) profile_dir=release ;;
  dev) profile_dir=debug ;;
  *) fail "FEDERATION_PACKAGE_PROFILE='$profile' (allowed: release, dev)" ;;
esac

host_triple="$(rustc -vV | sed -n 's/^host: //p')"
triple="${triple:-$host_triple}"
# Go's build/<platform> directory names (link_<goos>_<goarch>.go) per Rust target triple.
case "$triple" in
  x86_64-unknown-linux-gnu) platform=linux-x86_64 ;;
  aarch64-unknown-linux-gnu) platform=linux-aarch64 ;;
  *) fail "no Go platform for target '$triple' (allowed: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu)" ;;
esac
cargo_target=()
lib_dir="$root/target/$profile_dir"
if [ "$triple" != "$host_triple" ]; then
  cargo_target=(--target "$triple")
  lib_dir="$root/target/$triple/$profile_dir"
  # librdkafka and zlib are C: cross builds need the C cross compiler and linker, e.g. on Debian
  # `apt-get install gcc-aarch64-linux-gnu` and `rustup target add aarch64-unknown-linux-gnu`.
  cross_cc="${triple%%-*}-linux-gnu-gcc"
  command -v "$cross_cc" >/dev/null || fail "cross C compiler $cross_cc not found (apt-get install gcc-${triple%%-*}-linux-gnu)"
  triple_env="$(echo "$triple" | tr 'a-z-' 'A-Z_')"
  export "CC_${triple//-/_}=$cross_cc" "AR_${triple//-/_}=${triple%%-*}-linux-gnu-ar"
  export "CARGO_TARGET_${triple_env}_LINKER=$cross_cc"
fi
version="$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "federation-ffi"))')"

step "cargo build --profile $profile -p federation-ffi -p federation-py ($triple)"
# One invocation for both, so cargo unifies their dependencies' features: built alone, the C
# library's dependencies get other features than the wheel's (pyo3's macros enable syn's
# `visit-mut`, which changes every proc-macro and so every crate above them) and the wheel would
# compile the whole tree a second time. maturin below then finds them compiled.
# Default features (testkit): the Go package federationtest and the C sandbox functions are part
# of the released library, as they are of the wheel (federation.testing).
cargo build --profile "$profile" "${cargo_target[@]}" -p federation-ffi -p federation-py

step "python wheel (maturin, profile $profile, same target directory) and sdist"
venv="${FEDERATION_PY_VENV:-$root/target/python-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.16,<2" "auditwheel>=6,<7"
rm -rf "$out/python"
# --auditwheel check: fail instead of shipping a wheel that needs libraries manylinux does not
# allow; the platform tag is the lowest manylinux the symbols allow.
"$venv/bin/maturin" build --profile "$profile" "${cargo_target[@]}" -m federation-py/Cargo.toml \
  --auditwheel check --out "$out/python"
"$venv/bin/maturin" sdist -m federation-py/Cargo.toml --out "$out/python"
wheel="$(ls "$out/python"/federation-"$version"-cp39-abi3-*.whl)"
"$venv/bin/auditwheel" show "$wheel" | tee "$out/python/auditwheel.txt"
# (auditwheel wraps its lines)
tr '\n' ' ' <"$out/python/auditwheel.txt" | grep -q 'with the following platform tag: "manylinux' ||
  fail "auditwheel: $wheel is not manylinux-compliant"

step "C package in $prefix (include/, lib/, lib/pkgconfig/federation.pc)"
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 federation-ffi/include/federation.h "$prefix/include/"
install -m 644 "$lib_dir/libfederation.a" "$prefix/lib/"
install -m 755 "$lib_dir/libfederation.so" "$prefix/lib/"
# Libs.private: what the static library needs from the system (zlib for librdkafka, the Rust
# standard library's own: unwinder, threads, dlopen, math, libutil, librt).
cat >"$prefix/lib/pkgconfig/federation.pc" <<EOF
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: federation
Description: C ABI of the federation SDK (cross-cluster discovery, failover, breakers, caching, data sync)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lfederation
Libs.private: -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
EOF

step "Go release module in $out/go (build/$platform/libfederation.a)"
go_tree="$out/go"
# Keep the libraries built earlier for other platforms; everything else is copied anew.
saved="$(mktemp -d)"
trap 'rm -rf "$saved"' EXIT
[ -d "$go_tree/build" ] && cp -a "$go_tree/build" "$saved/"
rm -rf "$go_tree"
cp -a federation-go "$go_tree"
rm -rf "$go_tree/build" "$go_tree/internal"
[ -d "$saved/build" ] && cp -a "$saved/build" "$go_tree/"
# The tests stay in the repository: with them, their packages and dependencies (internal/conformance,
# gobreaker, yaml) would become requirements of every user. The nested modules (otel, prometheus)
# are modules of their own and are kept whole.
rm -f "$go_tree"/*_test.go "$go_tree"/federationtest/*_test.go
install -d "$go_tree/build/include" "$go_tree/build/$platform"
install -m 644 federation-ffi/include/federation.h "$go_tree/build/include/"
install -m 644 "$lib_dir/libfederation.a" "$go_tree/build/$platform/"
# Go's vendoring copies only directories with Go packages: a package per build directory keeps
# them (wasmtime-go does the same); the files are never compiled into anything.
for dir in "$go_tree"/build/*/; do
  name="$(basename "$dir" | tr -c 'a-z0-9\n' '_')"
  printf '// Package %s holds prebuilt files of the federation C library, for vendoring.\npackage %s\n' \
    "$name" "$name" >"$dir/doc.go"
done
printf '%s\n' "$version" >"$go_tree/VERSION"
# The oldest Go the released packages need: range over int (Go 1.22) is the newest language
# feature they use. The repository's go.mod asks more (its tests use iterators and
# strings.SplitSeq, Go 1.24). `go vet` checks the claim: the compiler rejects newer language
# features and vet's stdversion pass newer standard-library API for the go line. (The module proxy
# here serves no Go 1.22 toolchain to build with; see README.md, "Releases".)
release_go=1.22.0
(
  cd "$go_tree"
  # The requirements of the released module are what its non-test packages import.
  export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=1
  go mod edit -go="$release_go"
  go mod tidy
  if grep -q '^require' go.mod; then
    echo "go.mod of the release module has requirements:"; cat go.mod; exit 1
  fi
  if [ "$triple" = "$host_triple" ]; then
    go vet . ./federationtest ||
      { echo "the release module needs a newer Go than $release_go (raise release_go in $0)"; exit 1; }
  fi
)
printf '\npackages (%s, profile %s, %s) in %s:\n' "$version" "$profile" "$triple" "$out"
ls -l "$out/python" "$prefix/lib" "$go_tree/build/$platform"
