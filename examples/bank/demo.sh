#!/usr/bin/env bash
# The bank demo: a short session at the `bank` command line, on a fresh
# SQLite file or an empty PostgreSQL schema. Opens two accounts, pays money
# in, transfers, has an overdraft refused, then reads balances, a statement,
# a balance in the past, the ledger, the integrity check, a seal of the head,
# and the erasure of an owner's name (forget).
#   bash examples/bank/demo.sh BANK_PROGRAM [FILE]     (FILE defaults to bank-demo.db)
#   bash examples/bank/demo.sh BANK_PROGRAM postgresql://...   (schema ANNALS_PG_SCHEMA)
# The file is replaced on every run, so the demo can run again and again; a
# PostgreSQL schema must not hold a bank yet (tools/demo.sh --postgres uses a
# throwaway server).
set -euo pipefail

bank_program="${1:?usage: demo.sh BANK_PROGRAM [FILE | postgresql://...]}"
file="${2:-bank-demo.db}"

case "$file" in
  postgresql://* | postgres://*)
    # The seal's key and the seal go to a directory of their own.
    side="$(mktemp -d)"
    trap 'rm -rf -- "$side"' EXIT
    where="the PostgreSQL schema ${ANNALS_PG_SCHEMA:-public}"
    ;;
  *)
    # Start from an empty file, but never delete something that is not an
    # SQLite database (a mistyped path must not cost anyone a document).
    if [ -e "$file" ] && [ "$(head -c 15 "$file")" != "SQLite format 3" ]; then
      echo "demo: '$file' exists and is not an SQLite database; choose another file" >&2
      exit 2
    fi
    rm -f -- "$file" "$file-wal" "$file-shm" "$file.keys"
    side=""
    where="$file"
    ;;
esac

step() { printf '\n== %s\n' "$*"; }
# Shows the command, then runs it.
bank() {
  local shown="\$ bank" arg
  for arg in "$@"; do
    case "$arg" in *" "*) shown+=" \"$arg\"" ;; *) shown+=" $arg" ;; esac
  done
  echo "$shown"
  "$bank_program" --db "$file" "$@"
}
# Runs a command that the bank must refuse, and says so.
refused() {
  local code=0
  bank "$@" 2>&1 || code=$?
  if [ "$code" -eq 0 ]; then
    echo "demo: expected a refusal" >&2
    exit 1
  fi
  echo "(refused with exit code $code; nothing was written)"
}

echo "Annals bank demo: every change below is an event appended to $where"

step "Open two accounts (amounts are exact decimals, kept as integer cents)"
bank open alice --owner "Alice Martin" --currency EUR
bank open bob --owner "Bob Chen" --currency EUR --overdraft 50.00

step "Pay money in"
bank deposit alice 100.00
bank deposit bob 20.00
before_transfer="$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)"

step "Transfer: one atomic append to both accounts' streams"
bank transfer alice bob 30.00 --reference "March rent"

step "Overdraft: Bob may go 50.00 below zero, not further"
refused withdraw bob 120.01
bank withdraw bob 60.00

step "Bad input is refused too"
refused deposit alice 12.345

step "Balances (the accounts read model, kept by a durable projection)"
bank accounts

step "Bob's statement, with a running balance"
bank statement bob

step "Alice's balance now, and as it was before the transfer"
bank balance alice
bank balance alice --as-of "$before_transfer"

step "The transactions ledger (a second projection)"
bank ledger

step "Alice's history: every event, with its position, version, time and metadata"
bank history alice

step "Integrity: every event is chained to the one before it by SHA-256"
bank verify

step "Seal: a signed statement of the head, with a key kept outside the bank's store"
key="${side:-$file}${side:+/bank}.seal-key"
seal="${side:-$file}${side:+/bank}.seal.json"
rm -f -- "$key" "$seal"
bank keygen --key "$key"
echo "\$ bank seal --key $key > $seal"
"$bank_program" --db "$file" seal --key "$key" >"$seal"
cat "$seal"
bank deposit alice 5.00
echo "(the bank grew after the seal; verify checks the sealed head is still there)"
bank verify --seal "$seal" --key "$key"

step "Erasure: Bob asks to be forgotten; the key of his name is destroyed (docs/privacy.md)"
bank forget bob
bank accounts
bank verify
echo "(his balance, the ledger and the hash chain are unchanged; his name reads [erased])"

echo
echo "Explore further:  $bank_program --db $file --help"
