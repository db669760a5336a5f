#!/usr/bin/env bash
# Benchmarks: `federation bench` in release mode (see docs/BENCHMARKS.md).
#
#   scripts/bench.sh                         # every scenario, 3 reps of 5 s, report in target/bench/report.md
#   scripts/bench.sh --smoke                 # a few seconds, numbers not judged (what CI runs)
#   scripts/bench.sh --scenario overhead --reps 5 --duration 10s
#
# Every argument is passed to `federation bench`. The proxy scenario needs nginx: it is installed
# from Debian packages when missing and apt-get is usable (root or sudo); otherwise that scenario
# is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
        echo "bench: installing nginx from Debian packages (proxy scenario)" >&2
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx >&2 \
            || echo "bench: could not install nginx; the proxy scenario will be skipped" >&2
    else
        echo "bench: nginx not found and apt-get unavailable; the proxy scenario will be skipped" >&2
    fi
fi

cargo build --release -p federation-cli
mkdir -p target/bench
exec target/release/federation bench --out target/bench/report.md "$@"
