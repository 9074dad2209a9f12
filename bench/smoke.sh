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
"$append" --size=tiny --benchmark_format=json --benchmark_out_format=json \
  --benchmark_out="$work/append.json" >/dev/null
"$read" --size=tiny --benchmark_format=json --benchmark_out_format=json \
  --benchmark_out="$work/read.json" >/dev/null
store=$("$rss" build 10000)
"$rss" read_all "$store" >>"$work/memory.jsonl"
"$rss" catch_up "$store" >>"$work/memory.jsonl"
"$report" "$work/results.json" --memory "$work/memory.jsonl" "$work/append.json" "$work/read.json"
"$report" --check "$work/results.json" \
  append_1 append_batch_10 append_batch_100 append_batch_1000 append_typed_100 \
  group_commit_8_threads read_stream read_all load_aggregate load_aggregate_unchecked \
  read_stream_decode aggregate_load aggregate_load_unchecked read_all_decode \
  load_aggregate_snapshot catch_up \
  --memory "$work/memory.jsonl" 10000
echo "bench smoke: ok"
