"""Prints the path of one test binary from `cargo test --no-run --message-format=json` output.

Usage: cargo test --no-run --message-format=json-render-diagnostics | python3 test_binary.py PACKAGE TARGET

scripts/test.sh runs one slow test binary by itself, alongside the rest of the suite; running it
through `cargo test -p PACKAGE` instead would resolve features for that package alone and
rebuild much of the workspace. Fails, naming what it looked for, when no such binary was built.
"""

import json
import sys


def package_name(package_id: str) -> str:
    # "path+file:///work/x/federation-conformance#0.1.0" or "registry+...#name@1.2.3"
    tail = package_id.rsplit("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: test_binary.py PACKAGE TARGET", file=sys.stderr)
        return 2
    package, target = sys.argv[1], sys.argv[2]
    found = None
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("reason") != "compiler-artifact" or not message.get("executable"):
            continue
        if message["target"]["name"] == target and package_name(message["package_id"]) == package:
            found = message["executable"]
    if found is None:
        print(f"no test binary '{target}' of package '{package}' was built", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
