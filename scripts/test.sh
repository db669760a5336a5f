#!/usr/bin/env bash
# The whole test suite, in the order a failure is cheapest to find:
#   1. formatting and lints (Rust)
#   2. Rust unit + integration tests of every crate (core, testkit, CLI incl. a short demo run,
#      examples, conformance scenarios + chaos run, C ABI)
#   3. the Python package: pip install into a venv, stub check, pytest (scripts/python-test.sh)
#   4. the C ABI smoke test (+ valgrind) and the Go module (scripts/ffi-go-test.sh)
#   4b. the packages (wheel, Go release module, C pkg-config) used without cargo (scripts/package-test.sh)
#   5. the examples in every language and the ops files (scripts/examples.sh)
#   (the benchmark harness in smoke mode runs in step 2: federation-cli/tests/bench_smoke.rs)
#   6. bounded fuzzing of the two parsers (scripts/fuzz.sh: nightly + cargo-fuzz, 30 s a target)
# This is the command README.md gives users and the one .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"

started=$(date +%s)
# Each step says when it started (seconds into the suite), so a slow step shows in the CI log.
step() { printf '\n== [%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

# The fuzz targets' instrumented build (nightly, its own target dir) shares nothing with the
# steps below and takes ~6 CPU-minutes. It starts now at the lowest CPU priority, so it only uses
# the CPU the tests leave idle while they wait on their loopback servers; the fuzz step waits
# for it. Its log is printed there. Stopped with the suite if the suite stops early.
fuzz_build_log=target/fuzz-build.log
mkdir -p target
# its own process group (setsid), so stopping it stops the cargo and rustc processes under it
setsid nice -n 19 bash scripts/fuzz.sh --build-only >"$fuzz_build_log" 2>&1 &
fuzz_build_pid=$!
trap 'kill -- -"$fuzz_build_pid" 2>/dev/null || true' EXIT

step "cargo test (all Rust crates)"
# Built once; the conformance chaos run (two seeds of 30 s, mostly loopback waits) then runs as
# its own test binary alongside the other tests, which skip it by name. Its output is kept in a
# log, printed and checked when the others are done.
chaos_bin=$(cargo test --workspace --no-run --message-format=json-render-diagnostics |
  python3 scripts/test_binary.py federation-conformance chaos)
chaos_log=target/chaos-test.log
(cd federation-conformance && exec "$chaos_bin" --exact chaos_invariants_hold) >"$chaos_log" 2>&1 &
chaos_pid=$!
trap 'kill -- -"$fuzz_build_pid" 2>/dev/null || true; kill "$chaos_pid" 2>/dev/null || true' EXIT
rest_status=0
cargo test --workspace --no-fail-fast -- --skip chaos_invariants_hold || rest_status=$?
chaos_status=0
wait "$chaos_pid" || chaos_status=$?
printf '\n-- federation-conformance chaos run (alongside the tests above) --\n'
cat "$chaos_log"
if [ "$rest_status" -ne 0 ] || [ "$chaos_status" -ne 0 ]; then
  echo "cargo test failed (tests: exit $rest_status, chaos run: exit $chaos_status)" >&2
  exit 1
fi

step "federation-core feature opentelemetry (tracing-opentelemetry, in-memory exporter)"
# Issue 22: only the core and its test binary are rebuilt with the feature.
cargo clippy -p federation-core --features opentelemetry --lib --test otel -- -D warnings
cargo test -p federation-core --features opentelemetry --test otel

step "Python package"
# the Python examples run once, in the examples step below (same venv, same interpreter)
FEDERATION_PY_EXAMPLES=skip bash scripts/python-test.sh

step "C ABI and Go module"
bash scripts/ffi-go-test.sh

step "packages: wheel, Go release module and C pkg-config package, used without cargo"
# Issue 22. The suite packages the dev build it has already compiled (the ffi library and the
# Python module above): what is checked here (installed and used with no cargo on PATH, manylinux
# compliance, pkg-config flags, Go build constraints, one version) does not depend on the
# optimisation level, and a cold release build costs 7-10 more minutes on a 2-core CI machine.
# Releases run `scripts/package.sh` (default profile release); FEDERATION_PACKAGE_PROFILE=release
# here checks those artifacts the same way.
FEDERATION_PACKAGE_PROFILE="${FEDERATION_PACKAGE_PROFILE:-dev}" bash scripts/package-test.sh

step "examples (Rust, Python, Go) and ops files"
FEDERATION_EXAMPLES_STRICT=1 bash scripts/examples.sh

step "fuzzing: config_parse and consul_parse, bounded (a finding fails)"
fuzz_build_status=0
wait "$fuzz_build_pid" || fuzz_build_status=$?
cat "$fuzz_build_log"
if [ "$fuzz_build_status" -ne 0 ]; then
  echo "the fuzz targets' build failed (exit $fuzz_build_status); its log is above" >&2
  exit 1
fi
bash scripts/fuzz.sh

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - started ))"
