#!/usr/bin/env bash
# The main job: builds the bank example and the annals tool in release mode
# (build/release/tools/annals/annals, as the README says) and runs the demo on
# an embedded SQLite file (default bank-demo.db in the current directory; the
# demo starts that file afresh on every run).
#   bash tools/demo.sh [FILE]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
file="${1:-bank-demo.db}"

bash "$root/tools/deps.sh" >&2
(cd "$root" && cmake --preset release >/dev/null && cmake --build --preset release --target bank annals_cli >&2)
bash "$root/examples/bank/demo.sh" "$root/build/release/examples/bank/bank" "$file"
