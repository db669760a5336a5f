#!/usr/bin/env bash
# Runs every example in examples/python with the given interpreter, warnings as errors, so an
# example that rots (an API change, a new warning) fails CI instead of the first user who copies
# it. Examples that can also target a real federation take --sandbox to run self-contained.
# Usage: scripts/python-examples.sh <python> (run from any directory; output is discarded).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <python interpreter>" >&2; exit 2; }
py="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
for example in "$root"/examples/python/*.py; do
  args=()
  if grep -q -- '--sandbox' "$example"; then args=(--sandbox); fi
  echo "-- $(basename "$example") ${args[*]:-}"
  "$py" -W error "$example" "${args[@]}" >/dev/null
done
