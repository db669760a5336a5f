#!/usr/bin/env bash
# The whole test suite, in the order a failure is cheapest to find:
#   1. formatting and lints (Rust)
#   2. Rust unit + integration tests of every crate (core, testkit, CLI incl. a short demo run,
#      examples, conformance scenarios + chaos run, C ABI)
#   3. the Python package: pip install into a venv, stub check, pytest (scripts/python-test.sh)
#   4. the C ABI smoke test (+ valgrind) and the Go module (scripts/ffi-go-test.sh)
#   4b. the packages (wheel, Go release module, C pkg-config) used without cargo (scripts/package-test.sh)
#   5. the examples in every language and the ops files (scripts/examples.sh)
#   6. the benchmark harness in smoke mode (numbers not judged)
#   7. bounded fuzzing of the two parsers (scripts/fuzz.sh: nightly + cargo-fuzz, 30 s a target)
# This is the command README.md gives users and the one .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"

step() { printf '\n== %s\n' "$*"; }
started=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (all Rust crates)"
cargo test --workspace --no-fail-fast

step "federation-core feature opentelemetry (tracing-opentelemetry, in-memory exporter)"
# Issue 22: only the core and its test binary are rebuilt with the feature.
cargo clippy -p federation-core --features opentelemetry --lib --test otel -- -D warnings
cargo test -p federation-core --features opentelemetry --test otel

step "Python package"
bash scripts/python-test.sh

step "C ABI and Go module"
bash scripts/ffi-go-test.sh

step "packages: wheel, Go release module and C pkg-config package, used without cargo"
# Issue 22: one release build (FEDERATION_PACKAGE_PROFILE, default release) shared by the C
# library and the wheel; see scripts/package-test.sh.
bash scripts/package-test.sh

step "examples (Rust, Python, Go) and ops files"
FEDERATION_EXAMPLES_STRICT=1 bash scripts/examples.sh

step "benchmark harness smoke run"
cargo run -q -p federation-cli -- bench --smoke

step "fuzzing: config_parse and consul_parse, bounded (a finding fails)"
bash scripts/fuzz.sh

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - started ))"
