#!/usr/bin/env bash
# Builds the libFuzzer targets with the "fuzz" preset (clang 14, ASan + UBSan)
# and runs each one on its seed corpus for ANNALS_FUZZ_SECONDS (default 10).
# A crash, a leak, a sanitizer report or a broken property fails the run; the
# input that caused it is left in the work directory printed at the end.
#   bash fuzz/run.sh                          # all targets, 10 s each
#   ANNALS_FUZZ_SECONDS=600 bash fuzz/run.sh  # longer
#   bash fuzz/run.sh decode                   # one target
#   ANNALS_FUZZ_BUILD_DIR=build/x bash fuzz/run.sh   # another build folder
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${ANNALS_FUZZ_SECONDS:-10}"
build="${ANNALS_FUZZ_BUILD_DIR:-build/fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(decode stream_id export_line json_object seal fast_decode); fi

echo "== configure (fuzz) in $build"
cmake --preset fuzz -B "$build" >/dev/null
echo "== build (fuzz)"
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/#/annals_fuzz_}"

work="$(mktemp -d "${TMPDIR:-/tmp}/annals-fuzz-XXXXXX")"
status=0
for t in "${targets[@]}"; do
  # New inputs go to $work/$t (first corpus directory); the seeds in the
  # repository are only read.
  mkdir -p "$work/$t"
  echo "== fuzz $t for ${seconds}s"
  if ! "$build/fuzz/annals_fuzz_$t" "$work/$t" "fuzz/corpus/$t" \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/$t-" -print_final_stats=1 2>"$work/$t.log"; then
    status=1
    echo "!! $t failed; its log and the crashing input are in $work" >&2
    tail -n 40 "$work/$t.log" >&2
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$work/$t.log" | tail -n 3 || true
  fi
done
if [ "$status" -eq 0 ]; then
  rm -rf "$work"
  echo "== ok (fuzz)"
fi
exit "$status"
