#!/usr/bin/env bash
# The bank program on PostgreSQL (`bank --db postgresql://...`), on a
# throwaway server (tools/pg_scratch.sh) that is stopped even when a check
# fails: the demo end to end, every command, two processes depositing into
# one account at once, the `annals` tool on the same schema, forget leaving
# no copy of the name in the tables' files, and clear errors.
#   bash postgres_cli_test.sh BANK_PROGRAM ANNALS_PROGRAM DEMO_SCRIPT PG_SCRATCH_SH
# ANNALS_TEST_PG_URL (a postgresql:// URL) runs it on that server instead, in
# fresh schemas; the checks of the data files are skipped when its data
# directory cannot be read from here, and the server is left running.
set -euo pipefail

bank_program="$1"
annals_program="$2"
demo="$3"
# shellcheck source=/dev/null
. "$4"
work="$(mktemp -d "${TMPDIR:-/tmp}/bank-pg-XXXXXX")"
trap 'pg_scratch_stop; rm -rf "$work"' EXIT
case "${ANNALS_TEST_PG_URL:-}" in
  postgresql://* | postgres://*)
    url="$ANNALS_TEST_PG_URL"
    suffix="_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
    ;;
  *)
    pg_scratch_start
    url="$PG_SCRATCH_URL"
    suffix=""
    ;;
esac
# The schemas of this run: "public" on a throwaway server, fresh ones otherwise.
main_schema="${suffix:+bank$suffix}"
main_schema="${main_schema:-public}"
export ANNALS_PG_SCHEMA="$main_schema"
psql_() { psql "$url" -Atq -v ON_ERROR_STOP=1 -c "$1"; }

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
bank() { "$bank_program" --db "$url" "$@"; }
# expect CODE PATTERN COMMAND...: exits with CODE, and stdout+stderr match PATTERN.
expect() {
  local code="$1" pattern="$2" got=0
  shift 2
  "$@" >"$work/out" 2>&1 || got=$?
  [ "$got" -eq "$code" ] || { cat "$work/out"; fail "'$*' exited $got, expected $code"; }
  grep -Eq -- "$pattern" "$work/out" || { cat "$work/out"; fail "'$*' printed no line matching '$pattern'"; }
}

# 1. The demo, in its own schema.
ANNALS_PG_SCHEMA="demo$suffix" bash "$demo" "$bank_program" "$url" >"$work/demo" 2>&1 || {
  cat "$work/demo"
  fail "the demo exited non-zero on PostgreSQL"
}
for line in "^transferred 30.00 EUR from alice to bob" \
  "^\(refused with exit code 1; nothing was written\)$" \
  "^alice +Alice Martin +75.00 EUR +0.00 EUR +open$" \
  "^bob +\[erased\] +-10.00 EUR +50.00 EUR +open$" \
  "^verify: ok \(8 events checked, hash chain intact; the seal of position 7 holds, signature trusted\)$"; do
  grep -Eq -- "$line" "$work/demo" || { cat "$work/demo"; fail "demo output has no line matching '$line'"; }
done

# 2. Every command, in schema "public" (the default) on a throwaway server.
expect 1 "no bank in schema '$main_schema'.*bank open" bank balance alice
[ "$(psql_ "SELECT count(*) FROM pg_tables WHERE schemaname = '$main_schema'")" = 0 ] ||
  fail "a refused command created tables"
expect 0 "^opened account alice" bank open alice --owner "Alice Martin" --currency EUR
expect 0 "^opened account carol" bank open carol --owner "Carol Diaz" --currency EUR --overdraft 10
expect 1 "already exists" bank open alice --owner "Someone Else"
expect 0 "balance 100.00 EUR" bank deposit alice 100
before="$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)"
expect 0 "alice 75.00 EUR, carol 25.00 EUR" bank transfer alice carol 25 --reference "a gift"
expect 0 "balance 15.00 EUR" bank withdraw carol 10
expect 1 "cannot withdraw 25.01 EUR" bank withdraw carol 25.01
expect 1 "12.345" bank deposit alice 12.345
expect 0 "^alice: 100.00 EUR as of" bank balance alice --as-of "$before"
expect 0 "^alice: 100.00 EUR \(version 2\)" bank balance alice --at-version 2
expect 0 '"balance_cents": 7500' bank balance alice --json
expect 0 "^opening balance 0.00 EUR, closing balance 15.00 EUR, 2 movements$" bank statement carol
expect 0 '"closing_balance_cents": 1500' bank statement carol --json
expect 0 "bank.TransferReceived" bank history carol
expect 0 "\"type\":\"bank.AccountOpened\"" bank history alice --json
expect 0 "^carol +Carol Diaz +15.00 EUR +10.00 EUR +open$" bank accounts
expect 0 "transfer +alice +-> carol +25.00 EUR  a gift$" bank ledger
expect 0 '"reference":"a gift"' bank ledger --json
expect 0 "^explain: ok" bank explain carol
expect 0 "^check bank.ledger at position [0-9]+: ok" bank check
expect 0 '"ok": true' bank verify --json
"$bank_program" --db "$url" seal >"$work/seal.json" 2>/dev/null || fail "seal exited non-zero"
expect 0 "the seal of position [0-9]+ holds, signature none" bank verify --seal "$work/seal.json"
expect 0 "balance 0.00 EUR" bank withdraw carol 15
expect 0 "^closed account carol$" bank close carol
expect 0 "^carol +Carol Diaz +0.00 EUR +10.00 EUR +closed$" bank accounts
expect 1 "unknown account 'nobody'|no account 'nobody'|nobody" bank deposit nobody 1

# 3. Two processes deposit into one account at once; a third lists accounts.
for p in 1 2; do
  (for i in $(seq 1 40); do bank deposit alice 1.00 >/dev/null || exit 1; done) &
done
(for i in $(seq 1 10); do bank accounts >/dev/null || exit 1; done) &
for job in $(jobs -p); do wait "$job" || fail "a concurrent bank process failed"; done
expect 0 "^alice: 155.00 EUR \(version 83\)" bank balance alice
expect 0 "^alice +Alice Martin +155.00 EUR" bank accounts

# 4. The annals tool on the bank's schema.
expect 0 "ok" "$annals_program" verify --db "$url"
expect 0 "bank.accounts" "$annals_program" projections --db "$url"

# 5. forget: the name is in no table's file afterwards, nor is the key, nor
# in the planner's statistics (ANALYZE, as autovacuum would run it).
psql_ "ANALYZE $main_schema.bank_accounts; ANALYZE ${main_schema}_keys.subject_keys"
key="$(psql_ "SELECT encode(key, 'hex') FROM ${main_schema}_keys.subject_keys WHERE subject = 'account-carol'")"
[ -n "$key" ] || fail "carol has no key in schema ${main_schema}_keys"
expect 0 "forgot the owner of account carol" bank forget carol
expect 0 "^carol +\[erased\] +0.00 EUR" bank accounts
expect 0 "^owner: \[erased\]$" bank statement carol
expect 0 "forgot the owner of account carol: its key was already destroyed" bank forget carol
psql_ "CHECKPOINT"
data="$(psql_ "SHOW data_directory")"
for table in "$main_schema.bank_accounts" "${main_schema}_keys.subject_keys"; do
  file="$data/$(psql_ "SELECT pg_relation_filepath('$table')")"
  if [ ! -r "$file" ]; then
    [ -n "$suffix" ] || fail "cannot read $file"
    echo "(skipped: $file cannot be read here)"
    continue
  fi
  if grep -q "Carol Diaz" "$file"; then fail "the name survives in $table's file"; fi
  if od -An -tx1 -v "$file" | tr -d ' \n' | grep -q "$key"; then
    fail "the destroyed key survives in $table's file"
  fi
done
expect 0 "^alice +Alice Martin" bank accounts
[ "$(psql_ "SELECT count(*) FROM pg_stats WHERE schemaname IN ('$main_schema', '${main_schema}_keys')
      AND (coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, ''))
      ~ '(Carol Diaz|account-carol|$key)'")" = 0 ] || fail "pg_statistic keeps carol's name or key"

# A schema name that leaves no room for "_keys": refused, nothing created.
long="s$(printf 'x%.0s' $(seq 1 59))"
ANNALS_PG_SCHEMA="$long" expect 1 "ANNALS_PG_SCHEMA: invalid schema name.*at most 58 bytes" \
  bank open zed --owner Zed
[ "$(psql_ "SELECT count(*) FROM pg_namespace WHERE nspname = '$long'")" = 0 ] ||
  fail "a refused schema name left a schema behind"

# 6. A server that is gone: a clear failure, exit 3.
if [ -z "$suffix" ]; then
  pg_scratch_stop
  expect 3 "cannot connect" bank balance alice
fi
echo "ok"
