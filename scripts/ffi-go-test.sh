#!/usr/bin/env bash
# The C ABI and Go module checks: header drift, C smoke test (plain and under valgrind), and
# go vet / gofmt / go test -race for federation-go. Called by scripts/test.sh; runnable alone.
#
# Needs: gcc, valgrind (apt-get install valgrind), Go with cgo (1.26 for the test modules; the
# federation-go module itself asks for 1.22).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

step() { printf '\n== %s\n' "$*"; }
# federation-go links ../target/debug/libfederation.a with -tags federation_dev (federation-go/link_dev.go).
target_dir=target
lib="$target_dir/debug/libfederation.a"
link_libs=(-lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

step "cargo build -p federation-ffi (static library, debug profile)"
cargo build -p federation-ffi

step "C header is up to date (regenerate: FEDERATION_BLESS_HEADER=1 cargo test -p federation-ffi --test header)"
cargo test -p federation-ffi --test header

step "C smoke test: compile and link against $lib"
smoke="$target_dir/federation-ffi-smoke"
gcc -std=c11 -Wall -Wextra -Werror -I federation-ffi/include \
  federation-ffi/tests/smoke.c "$lib" "${link_libs[@]}" -o "$smoke"
"$smoke"

step "C smoke test under valgrind"
# Definitely and indirectly lost blocks are errors. "Possibly lost" ones are not reported: the
# process-global runtime is never shut down, so at exit its worker threads (thread-local areas)
# and parked tasks still hold memory through interior pointers (hash tables, Arc contents),
# which valgrind classifies as possibly lost although it is reachable.
valgrind --quiet --leak-check=full --show-possibly-lost=no \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$smoke"

# The go build cache does not hash headers outside the module: key the cgo compile on the
# header's content so a changed ABI is never linked against stale Go objects. Same for the static
# library, which cgo names only in LDFLAGS: without its hash in the key a rebuilt
# libfederation.a can be silently skipped and an old one linked into the tests.
header_sum="$(sha256sum federation-ffi/include/federation.h | cut -c1-16)"
lib_sum="$(sha256sum "$lib" | cut -c1-16)"
export CGO_ENABLED=1
# Inside the repository the Go modules link the workspace's debug build (federation-go/link_dev.go);
# without the tag they would look for the prebuilt library of the release tree (scripts/package.sh).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=federation_dev"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DFEDERATION_HEADER_SUM=$header_sum -DFEDERATION_LIB_SUM=$lib_sum"

# go vet and gofmt in module directory $1, then the rest of the arguments run there.
go_module() {
  local dir="$1"; shift
  (
    cd "$dir"
    go vet ./...
    local unformatted
    unformatted="$(gofmt -l .)"
    if [ -n "$unformatted" ]; then
      echo "gofmt: these files need formatting:"; echo "$unformatted"; exit 1
    fi
    "$@"
  )
}

step "go vet / gofmt / go test -race (federation-go)"
go_module federation-go go test -race -count=1 ./...

step "Consul compatibility: the official Consul Go client against the Consul double (tests/consul-compat-go)"
# A test-only module (github.com/hashicorp/consul/api v1.34.5); federation-go does not depend on
# it. It links the same static library, so the same cache keys apply.
go_module tests/consul-compat-go go test -count=1 ./...

step "Data sync across languages: Go publishes, Python applies, and the reverse (tests/sync-cross)"
# The zervigo side is a Go program (tests/sync-cross/main.go, its own module); the looma side is
# the Python package in the venv scripts/python-test.sh installed (scripts/test.sh runs that
# first); one real Kafka broker from the testkit.
go_module tests/sync-cross go build -o "$root/target/sync-cross" .
py="${FEDERATION_PY_VENV:-$root/target/python-venv}/bin/python"
if "$py" -c "import federation" 2>/dev/null; then
  (cd tests/sync-cross && FEDERATION_SYNC_CROSS_BIN="$root/target/sync-cross" \
    "$py" -m pytest -q -p no:cacheprovider -W error test_sync_cross.py)
elif [ -n "${CI:-}" ]; then
  echo "no Python package in $py: run scripts/python-test.sh first"; exit 1
else
  echo "skipped: no Python package in $py (run scripts/python-test.sh first)"
fi

step "Observability modules: client_golang collector and OpenTelemetry (federation-go/prometheus, federation-go/otel)"
# Nested modules (issue 22), so the core module's users do not get client_golang or otel. They
# link the same static library, so the same cache keys apply.
for module in federation-go/prometheus federation-go/otel; do
  go_module "$module" go test -race -count=1 ./...
done
