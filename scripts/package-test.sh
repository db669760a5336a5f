#!/usr/bin/env bash
# The packages as their users get them, with no Rust toolchain: a package that silently needs
# cargo (a wheel that compiles on install, a Go module that links ../target, a pkg-config file
# that misses a system library) passes every in-repo test and fails for the first real user.
#
# Builds the packages (scripts/package.sh), starts the sandbox (`federation sandbox`, the CLI
# binary from target/debug), then with cargo and rustc removed from PATH:
#   1. Python: a fresh venv per CPython 3.9-3.13 found on the machine, `pip install` of the wheel
#      file, `import federation`; in one venv the examples and a subset of the tests run from it
#   2. Go: a new module in a temporary directory outside the repository, `replace` to the release
#      tree, a main that calls the sandbox; `go mod graph` must show no test-only dependency
#   3. C: a program built with `cc $(pkg-config --cflags --libs federation)` only, against the
#      installed tree, run against the sandbox (and a static link through `--static`)
#   4. one version: Cargo workspace, `federation --version`, `federation.__version__`, the
#      wheel's file name, Go `Version()`, C `federation_version()`
# Called by scripts/test.sh; runnable alone. Environment: FEDERATION_PACKAGE_PROFILE (release,
# default, or dev for a quick local run), FEDERATION_PACKAGE_DIR (default target/package).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
started=$(date +%s)

out="${FEDERATION_PACKAGE_DIR:-$root/target/package}"
export FEDERATION_PACKAGE_DIR="$out"
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
[ -n "$version" ] || fail "no version in [workspace.package] of Cargo.toml"

step "build the packages (scripts/package.sh)"
bash scripts/package.sh
built=$(date +%s)

step "the sandbox for the consumers (target/debug/federation sandbox)"
cargo build -q -p federation-cli
work="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$root/target/debug/federation" sandbox --write-config "$work/federation.yaml" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/federation.yaml" ] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.log"; fail "the sandbox exited"; }
  sleep 0.1
done
[ -s "$work/federation.yaml" ] || fail "the sandbox wrote no configuration within 30 s"
cli_version="$("$root/target/debug/federation" --version)"

# The interpreters: every CPython 3.9-3.13 that pyenv has (its shims run only the selected
# version) or that is on PATH, asked for its real executable while PATH is still whole.
pythons=()
for minor in 9 10 11 12 13; do
  candidates=("python3.$minor")
  if command -v pyenv >/dev/null; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E "^3\.$minor\.[0-9]+$" || true); do
      candidates=("$(pyenv root)/versions/$v/bin/python3.$minor" "${candidates[@]}")
    done
  fi
  for candidate in "${candidates[@]}"; do
    if exe="$("$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null)"; then
      pythons+=("$exe"); break
    fi
  done
done

# The README's quickstarts, as a new user copies them: the code block after `<!-- package-test: $1 -->`.
readme_block() {
  awk -v marker="<!-- package-test: $1 -->" '
    $0 == marker { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$root/README.md"
}
readme_block python >"$work/quickstart.py"
readme_block go >"$work/quickstart.go"
[ -s "$work/quickstart.py" ] && [ -s "$work/quickstart.go" ] || fail "README.md lost a quickstart block"

default_python="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

step "PATH without cargo and rustc"
no_rust_path=""
IFS=: read -r -a path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  if [ -x "$dir/cargo" ] || [ -x "$dir/rustc" ] || [ -x "$dir/rustup" ]; then continue; fi
  no_rust_path="${no_rust_path:+$no_rust_path:}$dir"
done
export PATH="$no_rust_path"
if command -v cargo >/dev/null || command -v rustc >/dev/null; then fail "cargo or rustc still on PATH"; fi
echo "cargo: not found; rustc: not found (PATH=$PATH)"
unset CARGO CARGO_HOME RUSTUP_HOME RUSTUP_TOOLCHAIN

wheel="$(ls "$out"/python/federation-"$version"-cp39-abi3-manylinux_*.whl)"
step "1. Python: pip install $(basename "$wheel") into fresh venvs"
[ "${#pythons[@]}" -gt 0 ] || fail "no CPython 3.9-3.13 on the machine"
checked=()
for exe in "${pythons[@]}"; do
  tag="$("$exe" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  venv="$work/venv-$tag"
  "$exe" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index "$wheel"
  got="$(cd "$work" && "$venv/bin/python" -c 'import federation; print(federation.__version__)')"
  [ "$got" = "$version" ] || fail "CPython $tag: federation.__version__ is '$got', want '$version'"
  checked+=("$tag")
  echo "CPython $tag: import federation -> $got"
done
echo "checked: ${checked[*]}"

# The examples and tests run in the venv of the default python3 (the one scripts/python-test.sh uses).
venv="$work/venv-$default_python"
[ -x "$venv/bin/python" ] || venv="$work/venv-${checked[0]}"
py="$venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check "pytest>=8" "pytest-timeout>=2.3" "pyyaml>=6"
(
  cd "$work"
  site="$("$py" -c 'import federation, os; print(os.path.dirname(federation.__file__))')"
  case "$site" in "$venv"/*) ;; *) fail "federation imported from $site, not from the venv" ;; esac
  bash "$root/scripts/python-examples.sh" "$py"
  echo "-- README quickstart (Python)"
  "$py" -W error "$work/quickstart.py"
  # A subset: calls, errors, failover and the cache (the sandbox from federation.testing).
  "$py" -m pytest -q -c "$root/federation-py/pyproject.toml" --rootdir "$root/federation-py" \
    -W error -p no:cacheprovider "$root/federation-py/tests/test_calls.py" \
    "$root/federation-py/tests/test_errors.py" "$root/federation-py/tests/test_failover.py" \
    "$root/federation-py/tests/test_cache_health.py"
)

step "2. Go: a new module outside the repository, replace => $out/go"
consumer="$work/go-consumer"
mkdir -p "$consumer"
cp "$root/tests/package/go-consumer/main.go" "$consumer/"
go_line="$(sed -n 's/^go //p' "$out/go/go.mod")"
(
  cd "$consumer"
  export GOFLAGS=-mod=mod CGO_ENABLED=1
  go mod init example.com/consumer >/dev/null 2>&1
  go mod edit -go="$go_line" -require=github.com/federation/federation-go@v0.0.0 \
    -replace=github.com/federation/federation-go="$out/go"
  go mod tidy
  graph="$(go mod graph)"
  echo "go mod graph:"; echo "$graph"
  if echo "$graph" | grep -Eq 'gobreaker|yaml|prometheus|opentelemetry'; then
    fail "the consumer's module graph has a test-only or optional dependency"
  fi
  go vet .
  go build -o consumer .
  ./consumer "$work/federation.yaml" | tee "$work/go.out"
)
(
  # The README's Go quickstart, in a module of its own made the way the README says.
  mkdir "$work/hello" && cd "$work/hello"
  cp "$work/quickstart.go" main.go
  go mod init example.com/hello >/dev/null 2>&1
  go mod edit -require=github.com/federation/federation-go@v0.0.0 \
    -replace=github.com/federation/federation-go="$out/go"
  GOFLAGS=-mod=mod go mod tidy
  echo "-- README quickstart (Go)"
  go run .
)
go_version="$(sed -n 's/^version=\([^ ]*\) status=200 .*/\1/p' "$work/go.out")"

step "3. C: cc \$(pkg-config --cflags --libs federation) against $out/c"
export PKG_CONFIG_PATH="$out/c/lib/pkgconfig"
pkg-config --exists --print-errors federation
[ "$(pkg-config --modversion federation)" = "$version" ] || fail "federation.pc Version is not $version"
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc -std=c11 -Wall -Wextra -Werror "$root/tests/package/consumer.c" \
  $(pkg-config --cflags --libs federation) -o "$work/consumer-c"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir federation)" "$work/consumer-c" "$work/federation.yaml" | tee "$work/c.out"
# Static: the archive first, then the system libraries Libs.private names.
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$root/tests/package/consumer.c" $(pkg-config --cflags federation) \
  -Wl,--as-needed -Wl,-Bstatic -lfederation -Wl,-Bdynamic $(pkg-config --static --libs federation) \
  -o "$work/consumer-c-static"
if readelf -d "$work/consumer-c-static" | grep -q 'libfederation'; then fail "the static build needs libfederation.so"; fi
"$work/consumer-c-static" "$work/federation.yaml"
c_version="$(sed -n 's/^version=\([^ ]*\) status=200 .*/\1/p' "$work/c.out")"

step "4. one version"
wheel_version="$(basename "$wheel" | cut -d- -f2)"
py_version="$(cd "$work" && "$py" -c 'import federation; print(federation.__version__)')"
printf '%-28s %s\n' "Cargo.toml workspace" "$version" "federation --version" "$cli_version" \
  "wheel file name" "$wheel_version" "federation.__version__" "$py_version" \
  "Go Version()" "$go_version" "C federation_version()" "$c_version" \
  "Go release tree VERSION" "$(cat "$out/go/VERSION")"
for got in "${cli_version#federation }" "$wheel_version" "$py_version" "$go_version" "$c_version" "$(cat "$out/go/VERSION")"; do
  [ "$got" = "$version" ] || fail "a version differs from the workspace's $version: '$got'"
done

printf '\npackage checks passed (build %ss, checks %ss; CPython %s)\n' \
  "$((built - started))" "$(( $(date +%s) - built ))" "${checked[*]}"
