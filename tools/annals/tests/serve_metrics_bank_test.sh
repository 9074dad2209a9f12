#!/usr/bin/env bash
# /metrics of a running `annals serve` while the bank example appends to its
# store from other processes: the store's head position grows by the events
# each bank command wrote, and the bank's two read models show up with their
# checkpoints and no lag.
#   bash serve_metrics_bank_test.sh ANNALS_PROGRAM BANK_PROGRAM
set -euo pipefail

annals="$1"
bank="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/annals-serve-metrics-XXXXXX")"
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server"
    wait "$server" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
db="$work/bank.db"

"$bank" --db "$db" open alice --owner Alice >/dev/null
"$annals" serve --db "$db" --port 0 >"$work/serve.out" 2>"$work/serve.err" &
server=$!
port=""
for _ in $(seq 1 100); do
  port="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/serve.out" | sed 's/.*://' || true)"
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || fail "annals serve exited: $(cat "$work/serve.err")"
  sleep 0.1
done
[ -n "$port" ] || fail "annals serve printed no address"

# GET /metrics over bash's /dev/tcp (no HTTP client needed); the body only.
# A connection the loaded machine refuses or resets is tried again, twice.
get_metrics() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 || return 1
  tr -d '\r' <&3
  exec 3<&-
}
scrape() {
  local response="" attempt
  for attempt in 1 2 3; do
    response="$( (get_metrics) 2>"$work/scrape.err" || true)"
    case "$response" in "HTTP/1.1 200"*) break ;; esac
    sleep 0.2
  done
  case "$response" in
    "HTTP/1.1 200"*) ;;
    *) fail "GET /metrics answered '$(printf '%s' "$response" | head -1)' ($(cat "$work/scrape.err"); server: $(cat "$work/serve.err"))" ;;
  esac
  printf '%s\n' "${response#*$'\n\n'}"
}
value() {  # value METRIC_LINE_PREFIX < metrics: the sample's value
  awk -v p="$1" 'index($0, p " ") == 1 { print $NF; found = 1 } END { exit !found }'
}
head_now() { scrape | value annals_store_head_position || fail "no annals_store_head_position"; }
# Events in the store, as the annals tool counts them (not through the server).
events_now() { "$annals" stats --db "$db" --json | sed 's/.*"events":\([0-9]*\).*/\1/'; }

before="$(head_now)"
[ "$before" -ge 1 ] || fail "head position $before after opening an account"
"$bank" --db "$db" deposit alice 100.00 >/dev/null
after_deposit="$(head_now)"
[ "$after_deposit" -eq "$((before + 1))" ] ||
  fail "head went from $before to $after_deposit on one deposit"
"$bank" --db "$db" open bob --owner Bob >/dev/null
"$bank" --db "$db" transfer alice bob 30.00 >/dev/null
after="$(head_now)"
[ "$after" -gt "$after_deposit" ] || fail "head stayed at $after_deposit after open and transfer"
[ "$after" -eq "$(events_now)" ] || fail "/metrics says head $after, the store holds $(events_now) events"

metrics="$(scrape)"
for projection in bank.accounts bank.ledger; do
  checkpoint="$(printf '%s\n' "$metrics" | value "annals_projection_checkpoint{projection=\"$projection\"}")" ||
    fail "no checkpoint of '$projection' in: $metrics"
  [ "$checkpoint" -eq "$after" ] || fail "'$projection' at $checkpoint, head at $after"
  lag="$(printf '%s\n' "$metrics" | value "annals_projection_lag_events{projection=\"$projection\"}")" ||
    fail "no lag of '$projection'"
  [ "$lag" -eq 0 ] || fail "'$projection' lags $lag events"
done
printf '%s\n' "$metrics" | grep -q '^annals_serve_requests_total{route="/metrics",code="200"} [1-9]' ||
  fail "the server did not count its /metrics requests"
echo "serve metrics: ok (head $before -> $after while the bank ran)"
