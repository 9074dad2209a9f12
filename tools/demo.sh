#!/usr/bin/env bash
# The main job: builds the bank example and the annals tool in release mode
# (build/release/tools/annals/annals, as the README says) and runs the demo on
# an embedded SQLite file (default bank-demo.db in the current directory; the
# demo starts that file afresh on every run).
#   bash tools/demo.sh [FILE]
#   bash tools/demo.sh --postgres
# With --postgres the same demo runs on PostgreSQL: on a throwaway server
# (tools/pg_scratch.sh) that is started first and stopped and removed at the
# end, even when the demo fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
postgres=0
if [ "${1:-}" = "--postgres" ]; then
  postgres=1
  shift
fi
if [ $# -gt 1 ] || { [ $postgres = 1 ] && [ $# -gt 0 ]; }; then
  echo "usage: bash tools/demo.sh [FILE] | bash tools/demo.sh --postgres" >&2
  exit 2
fi
file="${1:-bank-demo.db}"

bash "$root/tools/deps.sh" >&2
(cd "$root" && cmake --preset release >/dev/null && cmake --build --preset release --target bank annals_cli >&2)
if [ $postgres = 0 ]; then
  bash "$root/examples/bank/demo.sh" "$root/build/release/examples/bank/bank" "$file"
  exit
fi

# shellcheck source=tools/pg_scratch.sh
. "$root/tools/pg_scratch.sh"
trap pg_scratch_stop EXIT
pg_scratch_start
echo "(a throwaway PostgreSQL server at $PG_SCRATCH_DIR; it is stopped and removed at the end)"
bash "$root/examples/bank/demo.sh" "$root/build/release/examples/bank/bank" "$PG_SCRATCH_URL"
echo "(the throwaway server is being stopped and removed: explore the same commands against a"
echo " server of yours, bank --db postgresql://USER@HOST/DB --help)"
