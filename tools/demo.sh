#!/usr/bin/env bash
# The main job: builds the demo in release mode and runs it on an embedded
# SQLite file (default demo.db in the current directory).
#   bash tools/demo.sh [FILE]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
file="${1:-demo.db}"

bash "$root/tools/deps.sh" >&2
(cd "$root" && cmake --preset release >/dev/null && cmake --build --preset release --target annals_demo >&2)
"$root/build/release/examples/demo/demo" "$file"
