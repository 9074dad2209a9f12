#!/usr/bin/env bash
# Smoke run of the benchmark programs on tiny sizes (ctest label "bench"):
# every program runs, every case of both sides completes, and the report
# turns their JSON into a well-formed results file. No timing is checked.
# Usage: smoke.sh APPEND READ RSS REPORT
set -euo pipefail
append=$1 read=$2 rss=$3 report=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/annals-bench-smoke-XXXXXX")
trap 'rm -rf "$work"' EXIT
export ANNALS_BENCH_FIXTURES=$work
check() { # check DESCRIPTION JQ-ARGS...: fails the smoke run with DESCRIPTION
  local what=$1
  shift
  jq -e "$@" >/dev/null || { echo "bench smoke: $what" >&2; exit 1; }
}
"$append" --size=tiny --benchmark_format=json --benchmark_out_format=json \
  --benchmark_out="$work/append.json" >/dev/null
"$read" --size=tiny --benchmark_format=json --benchmark_out_format=json \
  --benchmark_out="$work/read.json" >/dev/null
store=$("$rss" build 10000)
"$rss" read_all "$store" >>"$work/memory.jsonl"
"$rss" catch_up "$store" >>"$work/memory.jsonl"
"$report" "$work/results.json" --memory "$work/memory.jsonl" "$work/append.json" "$work/read.json"
check "results are not an array of {name, annals_per_s, baseline_per_s, ratio}" \
  'type == "array" and length == 11 and
   all(.[]; (.name | type == "string") and (.annals_per_s > 0) and
            (.baseline_per_s > 0) and (.ratio > 0))' "$work/results.json"
for name in append_1 append_batch_10 append_batch_100 append_batch_1000 append_typed_100 \
            group_commit_8_threads read_stream read_all load_aggregate load_aggregate_snapshot \
            catch_up; do
  check "no row named $name in the results" --arg n "$name" 'any(.[]; .name == $n)' \
    "$work/results.json"
done
check "peak memory lines are missing or wrong" \
  -s 'length == 2 and all(.[]; .events == 10000 and .peak_rss_kib > 0)' "$work/memory.jsonl"
echo "bench smoke: ok"
