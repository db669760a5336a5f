#!/usr/bin/env bash
# Bounded fuzzing of the two parsers that read untrusted text (fuzz/: `config_parse`,
# `consul_parse`). Without this step a parser change that panics on some input would only be
# found by whoever remembers to run `cargo fuzz` by hand. Each target runs for a bounded time on
# the checked-in seed corpus (fuzz/corpus/<target>, never modified here) plus a working corpus
# kept under target/ so later runs start from what earlier ones found. A crash, panic, leak or
# timeout found by libFuzzer makes this script (and scripts/test.sh) fail; the input is saved
# under target/fuzz-artifacts/<target>/ and libFuzzer prints how to reproduce it.
#
# Needs the nightly toolchain (installed with rustup if missing) and cargo-fuzz (installed from
# crates.io with `cargo install cargo-fuzz --locked` if missing).
#
# `scripts/fuzz.sh --build-only` installs what is missing and builds the targets without running
# them (scripts/test.sh starts that early, in the background at the lowest CPU priority, so the
# instrumented build uses the CPU the tests leave idle while they wait on their servers).
#
# Environment:
#   FEDERATION_FUZZ_SECONDS  time per target (default 30)
#   FEDERATION_FUZZ_TARGETS  targets to run (default: "config_parse consul_parse")
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

build_only=false
case "${1:-}" in
  '') ;;
  --build-only) build_only=true ;;
  *)
    echo "usage: scripts/fuzz.sh [--build-only], got '$1'" >&2
    exit 2
    ;;
esac

seconds="${FEDERATION_FUZZ_SECONDS:-30}"
targets="${FEDERATION_FUZZ_TARGETS:-config_parse consul_parse}"
case "$seconds" in
  '' | *[!0-9]* | 0)
    echo "FEDERATION_FUZZ_SECONDS must be a whole number of seconds >= 1, got '$seconds'" >&2
    exit 2
    ;;
esac

step() { printf '\n== %s\n' "$*"; }

if ! rustup toolchain list | grep -q '^nightly'; then
  step "rustup toolchain install nightly (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  step "cargo install cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

# The instrumented build shares nothing with the workspace's builds (other toolchain and
# RUSTFLAGS): its own directory under target/, reused between runs.
build_dir="$root/target/fuzz"
fuzz=(cargo +nightly fuzz)

step "cargo fuzz build (every target; target dir $build_dir)"
(cd fuzz && "${fuzz[@]}" build --target-dir "$build_dir")
if $build_only; then
  exit 0
fi

for t in $targets; do
  seeds="$root/fuzz/corpus/$t"
  work="$root/target/fuzz-corpus/$t"
  artifacts="$root/target/fuzz-artifacts/$t"
  if [ ! -d "$seeds" ]; then
    echo "no seed corpus for fuzz target '$t' at $seeds" >&2
    exit 2
  fi
  mkdir -p "$work" "$artifacts"
  step "cargo fuzz run $t for ${seconds}s (seeds: fuzz/corpus/$t)"
  # New inputs go to the first corpus directory (the working one); the seeds are read only.
  # The per-input progress lines and the closing dictionary are dropped from the log (a finding's
  # report and the final stats stay); pipefail keeps libFuzzer's exit status.
  (cd fuzz && "${fuzz[@]}" run --target-dir "$build_dir" "$t" "$work" "$seeds" -- \
    -max_total_time="$seconds" -artifact_prefix="$artifacts/" -print_final_stats=1) 2>&1 |
    sed -E '/^#[0-9]+[[:space:]]/d; /^".*" # Uses: [0-9]+$/d'

done
printf '\nfuzzing: no findings in %s (%ss each)\n' "$targets" "$seconds"
