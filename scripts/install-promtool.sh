#!/usr/bin/env bash
# Puts Prometheus's `promtool` at target/tools/bin/promtool (prints its path), so the alert rules
# in docs/ops/alerts.yml are checked by the tool Prometheus itself loads them with, not only
# parsed as YAML. Uses promtool from PATH when there is one; otherwise downloads Debian's
# `prometheus` package (which ships promtool) with `apt-get download` and extracts only
# promtool: no server installed, no service started, no root needed. Exits non-zero, saying why,
# when neither works.
set -euo pipefail
cd "$(dirname "$0")/.."

if found="$(command -v promtool)"; then
  echo "$found"
  exit 0
fi
tools="$(pwd)/target/tools"
if [ -x "$tools/bin/promtool" ]; then
  echo "$tools/bin/promtool"
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "promtool is not installed and apt-get/dpkg-deb are missing to fetch it" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q prometheus >&2) || {
  echo "could not download the Debian package 'prometheus' (it ships promtool)" >&2
  exit 1
}
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$tools/bin"
install -m 0755 "$work/root/usr/bin/promtool" "$tools/bin/promtool"
echo "$tools/bin/promtool"
