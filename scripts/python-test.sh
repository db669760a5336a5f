#!/usr/bin/env bash
# The Python package: build and install `federation` into a venv through pip (maturin is the
# PEP 517 backend), check the stubs against the native module (mypy.stubtest), type-check the
# examples and tests (mypy --strict), run the examples, and run pytest with warnings as errors
# and a per-test timeout. scripts/test.sh and .ci/run call this; README.md shows it.
#
# Environment:
#   PYTHON                 interpreter to create the venv from (default: python3, >= 3.9)
#   FEDERATION_PY_VENV     venv directory (default: target/python-venv; reused when present)
#   FEDERATION_PY_PROFILE  cargo profile of the native module (default: dev; `release` for benchmarks)
#   PYTEST_ARGS            extra pytest arguments (e.g. "-k failover")
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

step() { printf '\n== %s\n' "$*"; }

venv="${FEDERATION_PY_VENV:-$root/target/python-venv}"
python="${PYTHON:-python3}"
profile="${FEDERATION_PY_PROFILE:-dev}"

step "python venv ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
# The PEP 517 hooks run the `maturin` executable from PATH.
export PATH="$venv/bin:$PATH"
"$py" -m pip install -q --disable-pip-version-check \
  "maturin>=1.16,<2" "pytest>=8" "pytest-timeout>=2.3" "mypy>=1.18" "typing_extensions>=4.12" \
  "pyyaml>=6" "types-PyYAML>=6"
# Test-only (issue 22): federation.prometheus and the OpenTelemetry integration are tested against
# the real libraries; neither is a dependency of the package.
"$py" -m pip install -q --disable-pip-version-check \
  "prometheus_client>=0.21,<1" "opentelemetry-api>=1.30,<2" "opentelemetry-sdk>=1.30,<2"

step "pip install ./federation-py (maturin PEP 517 backend, cargo profile $profile)"
# --no-build-isolation reuses the maturin installed above instead of downloading it again; the
# shared cargo target directory keeps the core from being rebuilt.
MATURIN_PEP517_ARGS="--profile $profile" "$py" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --no-deps --force-reinstall ./federation-py

# Run the checks from outside the source tree so `import federation` is the installed package.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

step "mypy.stubtest federation"
"$py" -m mypy.stubtest federation

step "mypy --strict (examples and tests)"
"$py" -m mypy --strict "$root/examples/python" "$root/federation-py/tests"

# scripts/test.sh sets FEDERATION_PY_EXAMPLES=skip: its examples step (scripts/examples.sh) runs
# the same examples with this venv's interpreter, so the suite runs them once, not twice.
if [ "${FEDERATION_PY_EXAMPLES:-run}" = skip ]; then
  step "examples: skipped here (FEDERATION_PY_EXAMPLES=skip; scripts/examples.sh runs them)"
else
  step "examples"
  bash "$root/scripts/python-examples.sh" "$py"
fi

step "pytest (warnings are errors, per-test timeout)"
# shellcheck disable=SC2086
"$py" -m pytest -c "$root/federation-py/pyproject.toml" --rootdir "$root/federation-py" \
  -W error -p no:cacheprovider "$root/federation-py/tests" ${PYTEST_ARGS:-}

step "Consul compatibility: py-consul against the Consul double (tests/consul-compat-py)"
# py-consul is test-only: installed here, never a dependency of the package.
"$py" -m pip install -q --disable-pip-version-check "py-consul==1.8.0"
"$py" -m mypy --strict "$root/tests/consul-compat-py"
"$py" -m pytest -c "$root/federation-py/pyproject.toml" --rootdir "$root/tests/consul-compat-py" \
  -W error -p no:cacheprovider --timeout=120 "$root/tests/consul-compat-py"

step "benchmark harness smoke run (numbers meaningless: debug build, 0.3 s per variant)"
# Baselines (aiohttp, httpx, requests, pybreaker, cachetools) run when installed; the full
# benchmark is `python benchmarks/python_bench.py` with FEDERATION_PY_PROFILE=release.
"$py" -W error "$root/benchmarks/python_bench.py" --smoke >/dev/null
