#!/usr/bin/env bash
# Runs every example against the embedded sandbox and checks the ops files.
#
#   Rust examples    always (cargo test of the examples crate, then each binary with --sandbox)
#   Python examples  when the `federation` package imports (maturin develop, or a built
#                    federation-py/python/federation/_federation*.so)
#   Go examples      when Go with cgo is installed and target/debug/libfederation.a is built
#                    (cargo build -p federation-ffi)
#   docs/ops         grafana-dashboard.json is valid JSON; alerts.yml has the rule-file shape
#                    (needs PyYAML: the venv of scripts/python-test.sh) and passes
#                    `promtool check rules` (promtool from PATH, else fetched by
#                    scripts/install-promtool.sh); either missing is a skip
#
# Skipped parts are reported, not failed: set FEDERATION_EXAMPLES_STRICT=1 to fail instead (CI
# jobs that built the bindings should).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"
strict="${FEDERATION_EXAMPLES_STRICT:-0}"
skipped=()

step() { printf '\n== %s\n' "$*"; }
skip() {
  echo "skipped: $*"
  skipped+=("$*")
}

step "docs/ops: alert rules and Grafana dashboard parse"
# PyYAML comes with the venv scripts/python-test.sh builds; without it the rules cannot be
# checked, which is a skip (so strict mode fails), never a silent pass.
ops_py=python3
venv_py="${FEDERATION_PY_VENV:-target/python-venv}/bin/python"
if [ -x "$venv_py" ]; then ops_py="$venv_py"; fi
python3 - <<'PY'
import json
dash = json.load(open("docs/ops/grafana-dashboard.json"))
assert dash["panels"] and all(p.get("targets") for p in dash["panels"]), "panels without queries"
print(f"{len(dash['panels'])} dashboard panels")
PY
if "$ops_py" -c 'import yaml' 2>/dev/null; then
  "$ops_py" - <<'PY'
import yaml
rules = yaml.safe_load(open("docs/ops/alerts.yml"))
names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
assert names and all(r.get("expr") for g in rules["groups"] for r in g["rules"]), "rule without expr"
print(f"{len(names)} alert rules")
PY
else
  skip "alert rules shape (PyYAML missing from $ops_py: bash scripts/python-test.sh installs it into the venv)"
fi
if promtool="$(bash scripts/install-promtool.sh)"; then
  "$promtool" check rules docs/ops/alerts.yml
else
  skip "promtool check rules (promtool unavailable; see scripts/install-promtool.sh)"
fi

step "Rust examples: test against the sandbox"
cargo test -p federation-examples
step "Rust examples: binaries with --sandbox"
cargo build -p federation-examples --bins
for bin in looma_calls_user zervigo_calls_ai; do
  echo "-- $bin"
  "target/debug/$bin" --sandbox
done

step "Python examples"
# Prefer the venv scripts/python-test.sh installs the package into; else an importable package
# on the default interpreter (e.g. after `maturin develop`).
venv_py="${FEDERATION_PY_VENV:-target/python-venv}/bin/python"
if [ -x "$venv_py" ] && "$venv_py" -c 'import federation' 2>/dev/null; then
  python_for_examples=("$venv_py")
elif python3 -c 'import federation' 2>/dev/null; then
  python_for_examples=(python3)
else
  python_for_examples=()
fi
if [ "${#python_for_examples[@]}" -gt 0 ]; then
  for example in examples/python/*.py; do
    args=()
    if grep -q -- '--sandbox' "$example"; then args=(--sandbox); fi
    echo "-- $example ${args[*]:-}"
    "${python_for_examples[@]}" -W error "$example" "${args[@]}"
  done
else
  skip "Python examples (the federation package is not installed: bash scripts/python-test.sh, or maturin develop -m federation-py/Cargo.toml)"
fi

step "Go examples"
if command -v go >/dev/null && [ -f target/debug/libfederation.a ]; then
  (
    cd examples/go
    export CGO_ENABLED=1
    # the SDK from this checkout: link target/debug (federation-go/link_dev.go)
    export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=federation_dev"
    unformatted="$(gofmt -l .)"
    if [ -n "$unformatted" ]; then
      echo "gofmt: these files need formatting:"; echo "$unformatted"; exit 1
    fi
    go vet ./...
    for cmd in looma_calls_user zervigo_calls_ai; do
      echo "-- $cmd"
      go run "./$cmd" --sandbox
    done
  )
else
  skip "Go examples (needs go and target/debug/libfederation.a: cargo build -p federation-ffi)"
fi

if [ "${#skipped[@]}" -gt 0 ]; then
  printf '\nskipped: %s\n' "${skipped[@]}"
  [ "$strict" = 1 ] && exit 1
fi
echo "examples: ok"
