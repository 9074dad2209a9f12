#!/usr/bin/env bash
# Runs the bank demo (examples/bank/demo.sh) twice on one file and checks its
# key results: the balances after the transfer and the overdraft, the refused
# withdrawal, the balance before the transfer, and verify.
#   bash demo_test.sh BANK_PROGRAM DEMO_SCRIPT
set -euo pipefail

bank_program="$1"
demo="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/bank-demo-XXXXXX")"
trap 'rm -rf "$work"' EXIT
db="$work/bank-demo.db"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
has() {  # has PATTERN: the demo's output has a line matching (grep -E)
  grep -Eq -- "$1" "$work/out" || fail "demo output has no line matching '$1'"
}

for run in 1 2; do  # a second run on the same file starts afresh
  bash "$demo" "$bank_program" "$db" >"$work/out" 2>&1 || {
    cat "$work/out"
    fail "demo run $run exited non-zero"
  }
  has "^transferred 30.00 EUR from alice to bob"
  has "^bank: cannot withdraw 120.01 EUR from 'bob'.*available 100.00 EUR$"
  has "^\(refused with exit code 1; nothing was written\)$"
  has "^alice +Alice Martin +70.00 EUR +0.00 EUR +open$"
  has "^bob +Bob Chen +-10.00 EUR +50.00 EUR +open$"
  has "^alice: 70.00 EUR \(version 3\)$"
  has "^alice: 100.00 EUR as of .* \(version 2\)$"
  has "^opening balance 0.00 EUR, closing balance -10.00 EUR, 3 movements$"
  has "^verify: ok \(7 events checked"
  has '^\{"annals_seal":1,.*"head_position":7,'
  has "^verify: ok \(8 events checked, hash chain intact; the seal of position 7 holds, signature trusted\)$"
  has "^forgot the owner of account bob: its key is destroyed"
  has "^bob +\[erased\] +-10.00 EUR +50.00 EUR +open$"
  has "^verify: ok \(8 events checked, hash chain intact\)$"
  ! grep -qaF "Bob Chen" "$db" "$db.keys" || fail "Bob's name is still in the bank's files"
  # The file holds what the demo said, as the program reads it back.
  [ "$("$bank_program" --db "$db" balance bob --json | grep -c '"balance_cents": -1000')" = 1 ] ||
    fail "bob's stored balance is not -10.00"
done

# The demo refuses to replace a file that is not an SQLite database.
echo "my notes" >"$work/notes.txt"
if bash "$demo" "$bank_program" "$work/notes.txt" >/dev/null 2>&1; then
  fail "the demo overwrote a file that is not a database"
fi
[ "$(cat "$work/notes.txt")" = "my notes" ] || fail "notes.txt changed"
echo "ok: demo"
