#!/usr/bin/env bash
# Installs what is missing, builds with a CMake preset and runs every test.
#   bash tools/test.sh            # dev preset: Debug, warnings as errors
#   bash tools/test.sh asan       # AddressSanitizer + UndefinedBehaviorSanitizer
#   bash tools/test.sh tsan       # ThreadSanitizer
#   bash tools/test.sh release
# Extra arguments go to ctest (e.g. -R Conformance, -L sqlite).
# Tests labelled "soak" (long runs) are skipped unless ANNALS_SOAK=1.
# ANNALS_TEST_TARGETS="a b" builds only those targets (select their tests
# with a label, -L tsan, or -R; the others would show as *_NOT_BUILT).
set -euo pipefail
cd "$(dirname "$0")/.."

preset="${1:-dev}"
shift || true
jobs="$(nproc 2>/dev/null || echo 2)"

exclude=()
if [ "${ANNALS_SOAK:-0}" != 1 ]; then exclude=(-LE soak); fi

echo "== deps"
bash tools/deps.sh
echo "== configure ($preset)"
cmake --preset "$preset"
echo "== build ($preset, $jobs jobs)"
targets=()
for t in ${ANNALS_TEST_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build --preset "$preset" -j "$jobs" "${targets[@]}"
echo "== test ($preset)"
ctest --preset "$preset" -j "$jobs" "${exclude[@]}" "$@"
echo "== ok ($preset)"
