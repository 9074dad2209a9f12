#!/usr/bin/env bash
# Tests of the `bank` program as a user runs it: one case per ctest test.
#   bash cli_test.sh BANK_PROGRAM CASE
# Each case works in a fresh temporary directory. A refused command must exit
# non-zero, say why on stderr, and leave the store as it was (same events,
# compared with the sqlite3 shell).
set -euo pipefail

bank_program="$1"
case_name="$2"
append_event="${3:-}"  # appends an event through the Annals API (append_event.cpp)
work="$(mktemp -d "${TMPDIR:-/tmp}/bank-cli-XXXXXX")"
trap 'rm -rf "$work"' EXIT
db="$work/bank.db"

fail() {
  echo "FAIL ($case_name): $*" >&2
  exit 1
}

# bank ARGS...: runs the program on $db; sets $out, $err and $code.
bank() {
  code=0
  "$bank_program" --db "$db" "$@" >"$work/out" 2>"$work/err" || code=$?
  out="$(cat "$work/out")"
  err="$(cat "$work/err")"
}

# ok ARGS...: the command succeeds.
ok() {
  bank "$@"
  [ "$code" -eq 0 ] || fail "bank $* exited $code: $err"
}

# Everything stored, as text: every event's position, stream, version, type
# and payload ("none" when there is no file yet).
store_state() {
  if [ -e "$db" ]; then
    sqlite3 "$db" "SELECT position, stream_id, version, type, payload FROM events ORDER BY position"
  else
    echo none
  fi
}

# refused EXIT_CODE MESSAGE_PATTERN ARGS...: the command exits with EXIT_CODE,
# stderr matches MESSAGE_PATTERN (grep -E), and the store is unchanged.
refused() {
  local want_code="$1" pattern="$2"
  shift 2
  local before
  before="$(store_state)"
  bank "$@"
  [ "$code" -eq "$want_code" ] || fail "bank $* exited $code, wanted $want_code (stderr: $err)"
  grep -Eq -- "$pattern" <<<"$err" || fail "bank $*: stderr '$err' does not match '$pattern'"
  [ "$(store_state)" = "$before" ] || fail "bank $* changed the store"
}

expect_out() {  # expect_out PATTERN: the last stdout matches (grep -E)
  grep -Eq -- "$1" <<<"$out" || fail "output does not match '$1':
$out"
}

balance_is() {  # balance_is ACCOUNT TEXT
  ok balance "$1"
  [ "$out" = "$1: $2" ] || fail "balance of $1 is '$out', wanted '$1: $2'"
}

setup_two_accounts() {
  ok open alice --owner "Alice" --currency EUR
  ok open bob --owner "Bob" --overdraft 50.00
  ok deposit alice 100.00
}

case "$case_name" in
  open_creates_the_bank_and_the_account)
    [ ! -e "$db" ] || fail "file exists before open"
    ok open alice --owner "Alice Martin"
    expect_out "opened account alice for Alice Martin in EUR, overdraft limit 0.00 EUR"
    balance_is alice "0.00 EUR (version 1)"
    ;;
  open_refuses_bad_input_and_creates_no_file)
    refused 1 "invalid currency 'euro'" open alice --owner Alice --currency euro
    refused 1 "invalid account id 'al/ice'" open al/ice --owner Alice
    refused 1 "invalid amount '-5'" open alice --owner Alice --overdraft -5
    refused 1 "invalid owner" open alice --owner ""
    refused 2 "owner" open alice
    [ ! -e "$db" ] || fail "a refused open created $db"
    ;;
  open_of_an_existing_account_is_refused)
    ok open alice --owner Alice
    refused 1 "account 'alice' already exists" open alice --owner Someone
    ;;
  deposit_and_withdraw_move_the_balance)
    ok open alice --owner Alice
    ok deposit alice 100.00
    expect_out "deposited 100.00 EUR to alice: balance 100.00 EUR"
    ok withdraw alice 0.01
    expect_out "withdrew 0.01 EUR from alice: balance 99.99 EUR"
    ok deposit alice 7
    balance_is alice "106.99 EUR (version 4)"
    ;;
  bad_amounts_are_refused_and_write_nothing)
    ok open alice --owner Alice
    ok deposit alice 10.00
    for amount in 0 0.00 -5 12.345 1e3 abc "" " 1" "1,00" 99999999999999999999; do
      refused 1 "invalid amount '$amount'" deposit alice "$amount"
      refused 1 "invalid amount '$amount'" withdraw alice "$amount"
      refused 1 "invalid amount '$amount'" transfer alice alice "$amount"
    done
    balance_is alice "10.00 EUR (version 2)"
    ;;
  withdrawal_past_the_overdraft_is_refused)
    setup_two_accounts
    refused 1 "cannot withdraw 100.01 EUR from 'alice'.*available 100.00 EUR" withdraw alice 100.01
    ok deposit bob 20.00
    refused 1 "available 70.00 EUR" withdraw bob 70.01
    ok withdraw bob 70.00
    balance_is bob "-50.00 EUR (version 3)"
    refused 1 "cannot withdraw" withdraw bob 0.01
    ;;
  unknown_accounts_are_refused)
    setup_two_accounts
    refused 1 "unknown account 'carol'" deposit carol 1.00
    refused 1 "unknown account 'carol'" withdraw carol 1.00
    refused 1 "unknown account 'carol'" transfer alice carol 1.00
    refused 1 "unknown account 'carol'" transfer carol alice 1.00
    refused 1 "unknown account 'carol'" close carol
    refused 1 "unknown account 'carol'" balance carol
    refused 1 "unknown account 'carol'" statement carol
    refused 1 "unknown account 'carol'" history carol
    refused 1 "invalid account id" balance "a b"
    ;;
  a_missing_bank_file_is_refused_and_not_created)
    refused 1 "no bank in '.*bank.db'" deposit alice 1.00
    refused 1 "no bank in" accounts
    refused 1 "no bank in" verify
    [ ! -e "$db" ] || fail "a read created $db"
    ;;
  transfer_moves_money_between_both_accounts_at_once)
    setup_two_accounts
    ok transfer alice bob 30.00 --reference "March rent"
    expect_out "transferred 30.00 EUR from alice to bob \(transfer [0-9a-f-]{36}\): alice 70.00 EUR, bob 30.00 EUR"
    # Both events in one append: consecutive positions, one transfer id.
    [ "$(sqlite3 "$db" "SELECT group_concat(stream_id || ':' || position, ' ') FROM events
         WHERE type IN ('bank.TransferSent', 'bank.TransferReceived')")" = "account-alice:4 account-bob:5" ] ||
      fail "transfer events are not one append"
    [ "$(sqlite3 "$db" "SELECT count(DISTINCT json_extract(payload, '$.transfer_id'))
         FROM events WHERE type LIKE 'bank.Transfer%'")" = 1 ] || fail "transfer ids differ"
    balance_is alice "70.00 EUR (version 3)"
    balance_is bob "30.00 EUR (version 2)"
    ;;
  transfer_refusals_write_nothing_on_either_side)
    setup_two_accounts
    ok open dan --owner Dan --currency USD
    refused 1 "cannot transfer 100.01 EUR from 'alice'" transfer alice bob 100.01
    refused 1 "currencies differ" transfer alice dan 1.00
    refused 1 "to itself" transfer alice alice 1.00
    ok transfer bob alice 50.00
    balance_is bob "-50.00 EUR (version 2)"
    ;;
  close_only_at_a_zero_balance)
    setup_two_accounts
    refused 1 "only be closed at a zero balance; it holds 100.00 EUR" close alice
    ok withdraw alice 100.00
    ok close alice
    expect_out "closed account alice"
    refused 1 "account 'alice' is closed" deposit alice 1.00
    refused 1 "is closed" transfer bob alice 1.00
    ok balance alice
    expect_out "alice: 0.00 EUR \(version 4, closed\)"
    ;;
  balance_as_of_a_past_time_and_at_a_version)
    setup_two_accounts
    ok history alice --json
    deposited_at="$(grep -o '"recorded_at":"[^"]*"' <<<"$out" | sed -n 2p | cut -d'"' -f4)"
    ok withdraw alice 40.00
    ok balance alice --as-of "$deposited_at"
    expect_out "^alice: 100.00 EUR as of $deposited_at \(version 2\)$"
    ok balance alice --as-of 2999-01-01
    expect_out "^alice: 60.00 EUR as of 2999-01-01T00:00:00.000000Z \(version 3\)$"
    ok balance alice --at-version 1
    expect_out "^alice: 0.00 EUR \(version 1\)$"
    ok balance alice --at-version 2 --json
    expect_out '"balance_cents": 10000'
    refused 1 "unknown account 'alice' as of 2000-01-01" balance alice --as-of 2000-01-01
    refused 1 "at version 9 \(its last version is 3\)" balance alice --at-version 9
    refused 1 "yesterday" balance alice --as-of yesterday
    refused 2 "excludes" balance alice --as-of 2999-01-01 --at-version 1
    refused 2 "at-version" balance alice --at-version 0
    ;;
  statement_lists_movements_in_a_window)
    setup_two_accounts
    ok transfer alice bob 30.00 --reference rent
    ok withdraw alice 5.50
    ok statement alice
    expect_out "deposit +100.00 +100.00"
    expect_out "transfer to bob \(rent\) +-30.00 +70.00"
    expect_out "withdrawal +-5.50 +64.50"
    expect_out "opening balance 0.00 EUR, closing balance 64.50 EUR, 3 movements"
    ok statement alice --from 2999-01-01
    expect_out "opening balance 64.50 EUR, closing balance 64.50 EUR, 0 movements"
    ok statement alice --to 2000-01-01 --json
    expect_out '"lines": \[\]'
    expect_out '"closing_balance_cents": 0'
    ok statement alice --json
    expect_out '"description":"transfer to bob \(rent\)"'
    refused 1 "is after" statement alice --from 2026-03-02 --to 2026-03-01
    refused 1 "not-a-time" statement alice --from not-a-time
    ;;
  history_shows_every_event_with_its_metadata)
    setup_two_accounts
    ok history alice
    # The owner's name is personal data: stored encrypted (docs/privacy.md).
    expect_out '^@1 v1 .* bank.AccountOpened \{"currency":"EUR","overdraft_limit":0,"owner":\{"annals_personal":1,"ciphertext":"[^"]+","key_id":"[0-9a-f]{32}","nonce":"[^"]+","tag":"[^"]+"\}\} \{"actor":'
    expect_out '^@3 v2 .* bank.Deposited \{"amount":10000\}'
    ok history bob --json
    expect_out '"position":2,"recorded_at":"[0-9T:.-]+Z","schema_version":1'
    expect_out '"metadata":\{"actor":"[^"]+","correlation_id":"[0-9a-f-]{36}"\}'
    ;;
  accounts_and_ledger_read_models)
    setup_two_accounts
    ok transfer alice bob 30.00 --reference rent
    ok withdraw bob 10.00
    ok accounts
    expect_out "^alice +Alice +70.00 EUR +0.00 EUR +open$"
    expect_out "^bob +Bob +20.00 EUR +50.00 EUR +open$"
    ok accounts --json
    expect_out '"account":"bob","balance":"20.00","balance_cents":2000'
    ok ledger
    expect_out "^@3 .* deposit +\(cash\) +-> alice +100.00 EUR$"
    expect_out "^@4 .* transfer +alice +-> bob +30.00 EUR  rent$"
    expect_out "^@6 .* withdrawal +bob +-> \(cash\) +10.00 EUR$"
    ok ledger --json
    expect_out '"amount_cents":3000,"currency":"EUR","from":"alice","kind":"transfer"'
    # The read models live in the store's own file with their checkpoints.
    [ "$(sqlite3 "$db" "SELECT group_concat(name || '=' || position, ' ') FROM
         (SELECT * FROM projection_checkpoints ORDER BY name)")" = "bank.accounts=6 bank.ledger=6" ] ||
      fail "checkpoints are not at the head"
    ;;
  verify_reports_ok_and_finds_a_tampered_event)
    setup_two_accounts
    ok verify
    expect_out "verify: ok \(3 events checked"
    ok verify --json
    expect_out '"ok": true'
    # Someone edits the store behind the bank's back (dropping the trigger
    # that forbids it first): verify names the position.
    sqlite3 "$db" "DROP TRIGGER events_append_only_update;
                   UPDATE events SET payload = '{\"amount\":99999999}' WHERE position = 3"
    bank verify
    [ "$code" -eq 3 ] || fail "verify of a tampered store exited $code"
    expect_out "verify: FAILED at position 3"
    ;;
  usage_errors_exit_2_and_help_exits_0)
    ok --help
    expect_out "Exit codes: 0 done, 1 refused"
    bank frobnicate
    [ "$code" -eq 2 ] || fail "unknown command exited $code"
    bank
    [ "$code" -eq 2 ] || fail "no command exited $code"
    bank deposit alice
    [ "$code" -eq 2 ] || fail "missing amount exited $code"
    ;;
  version_prints_the_project_version)
    # ANNALS_PROJECT_VERSION: the CMake project version, set by ctest.
    ok --version
    [ "$out" = "bank ${ANNALS_PROJECT_VERSION:?}" ] || fail "--version printed '$out'"
    [ ! -e "$db" ] || fail "--version created the bank file"
    ;;
  read_commands_never_create_or_change_a_file)
    # Issue 12, item 9: only `open` makes a store of a file.
    : >"$db"
    for args in "balance alice" "statement alice" "history alice" "verify" "accounts" \
      "ledger" "deposit alice 1.00" "close alice"; do
      # shellcheck disable=SC2086
      bank $args
      [ "$code" -eq 3 ] || fail "bank $args on an empty file exited $code: $err"
      grep -q "not an Annals store" <<<"$err" || fail "bank $args: $err"
      [ ! -s "$db" ] || fail "bank $args wrote into an empty file"
    done
    ok open alice --owner Alice
    ok deposit alice 10.00
    ok accounts
    before="$(sha256sum <"$db")"
    for args in "balance alice" "statement alice" "history alice" "verify" \
      "balance alice --at-version 1"; do
      # shellcheck disable=SC2086
      ok $args
      [ "$(sha256sum <"$db")" = "$before" ] || fail "bank $args changed the file"
    done
    if [ "$(id -u)" -eq 0 ] && [ ! -e /dev/null-journal ]; then
      code=0
      "$bank_program" --db /dev/null balance x >"$work/out" 2>"$work/err" || code=$?
      [ "$code" -eq 3 ] || fail "bank --db /dev/null balance x exited $code"
      code=0
      "$bank_program" --db /dev/null open x --owner X >"$work/out" 2>"$work/err" || code=$?
      [ "$code" -eq 3 ] || fail "bank --db /dev/null open exited $code"
      grep -q "not a regular file" "$work/err" || fail "bank --db /dev/null open: $(cat "$work/err")"
      if [ -e /dev/null-journal ]; then
        rm -f /dev/null-journal
        fail "bank --db /dev/null balance x created /dev/null-journal"
      fi
    fi
    ;;
  transfer_references_are_checked_and_stored_text_is_escaped)
    # Issue 12, item 11.
    setup_two_accounts
    refused 1 'invalid reference .x\\nopening balance' \
      transfer alice bob 1.00 --reference $'x\nopening balance 1000000.00 EUR'
    refused 1 "invalid reference '.{64}\.\.\. \(137 more bytes\)'" \
      transfer alice bob 1.00 --reference "$(printf 'r%.0s' $(seq 1 201))"
    ok transfer alice bob 1.00 --reference "$(printf 'r%.0s' $(seq 1 200))"
    # Stored text with control bytes (written past the bank's checks) is
    # printed escaped: no table line can be forged.
    "$append_event" "$db" account-alice bank.TransferSent \
      '{"transfer_id":"t-1","to_account":"bob","amount":100,"reference":"x\nopening balance 1000000.00 EUR\u001b[2J"}'
    ok statement alice
    expect_out 'transfer to bob \(x\\nopening balance 1000000.00 EUR\\x1b\[2J\)'
    ! grep -q '^opening balance 1000000' <<<"$out" || fail "statement printed a forged line"
    ok ledger
    expect_out 'x\\nopening balance 1000000.00 EUR\\x1b'
    ! grep -q '^opening balance 1000000' <<<"$out" || fail "ledger printed a forged line"
    ! grep -q $'\x1b' <<<"$out" || fail "ledger printed an escape byte"
    # Errors that echo input escape control bytes and cut it short.
    bank balance $'bad\nid'
    [ "$code" -eq 1 ] || fail "bad id exited $code"
    grep -q 'invalid account id .bad\\nid.' <<<"$err" || fail "bad id: $err"
    bank balance "$(printf 'y%.0s' $(seq 1 5000))"
    [ "${#err}" -lt 300 ] || fail "a 5000-byte id was echoed at length ${#err}"
    ;;
  forget_erases_the_owner_and_keeps_the_money)
    # Issue 16: the owner's name is personal data; forget destroys its key.
    name="Zelda Quixotic-Vanderberg"
    ok open alice --owner "$name"
    ok open bob --owner "Bob"
    ok deposit alice 100.00
    ok transfer alice bob 30.00 --reference rent
    ok accounts
    expect_out "^alice +$name +70.00 EUR"
    ok ledger
    ledger_before="$out"
    # The read model holds the name in clear until forget (the search works).
    grep -qaF "$name" "$db" "$db-wal" 2>/dev/null || fail "the name is not in the file before forget"
    [ "$(stat -c %a "$db.keys")" = 600 ] || fail "the key store is not mode 0600"
    ok forget alice
    expect_out "^forgot the owner of account alice: its key is destroyed; the name now reads \[erased\]"
    ok statement alice
    expect_out '^owner: \[erased\]$'
    expect_out '^opening balance 0.00 EUR, closing balance 70.00 EUR, 2 movements$'
    ok statement alice --json
    expect_out '"owner": "\[erased\]"\}$'
    ok balance alice --json
    expect_out '"owner": "\[erased\]"'
    balance_is alice "70.00 EUR (version 3)"
    ok accounts
    expect_out "^alice +\[erased\] +70.00 EUR +0.00 EUR +open$"
    expect_out "^bob +Bob +30.00 EUR"
    ok ledger
    [ "$out" = "$ledger_before" ] || fail "the ledger changed: $out"
    ok verify
    expect_out "^verify: ok \(5 events checked, hash chain intact\)$"
    for f in "$db" "$db-wal" "$db.keys" "$db.keys-journal"; do
      if [ -e "$f" ] && grep -qaF "$name" "$f"; then fail "the name is still in $f"; fi
    done
    ok history alice
    ! grep -qF "$name" <<<"$out" || fail "history shows the name"
    # Again: nothing left to destroy, still exit 0; unknown accounts refused.
    ok forget alice
    expect_out "its key was already destroyed"
    refused 1 "unknown account 'carol'" forget carol
    # The account goes on working.
    ok deposit alice 5.00
    balance_is alice "75.00 EUR (version 4)"
    ;;
  a_lost_or_unreadable_key_store_is_a_clear_error)
    ok open alice --owner "Alice Martin"
    ok deposit alice 10.00
    mv "$db.keys" "$work/keys-backup"
    bank statement alice
    [ "$code" -eq 3 ] || fail "statement without its key store exited $code: $err"
    grep -qF "key store '$db.keys' does not exist" <<<"$err" || fail "statement: $err"
    [ -z "$out" ] || fail "a failing statement printed '$out'"
    refused 3 "key store '.*' does not exist" deposit alice 1.00
    refused 3 "key store '.*' does not exist" forget alice
    [ ! -e "$db.keys" ] || fail "a command created an empty key store"
    # --keys names a key store elsewhere.
    ok --keys "$work/keys-backup" statement alice
    expect_out '^owner: Alice Martin$'
    # A damaged key store: an error naming it, never garbage.
    head -c 4096 /dev/urandom >"$db.keys"
    bank statement alice
    [ "$code" -eq 3 ] || fail "statement with a damaged key store exited $code: $err"
    grep -qF "key store '$db.keys'" <<<"$err" || fail "statement: $err"
    ;;
  overflow_on_replay_is_an_error_naming_the_stream_and_version)
    # Issue 12, item 12: a stored Deposited that overflows the balance.
    ok open alice --owner Alice
    ok deposit alice 1.00
    "$append_event" "$db" account-alice bank.Deposited '{"amount":9223372036854775807}'
    bank balance alice
    [ "$code" -eq 3 ] || fail "balance of an overflowing history exited $code: $err"
    grep -q "stream 'account-alice' version 3: adding 92233720368547758.07 to a balance of 1.00 overflows" \
      <<<"$err" || fail "balance: $err"
    [ -z "$out" ] || fail "balance printed '$out'"
    bank statement alice
    [ "$code" -eq 3 ] || fail "statement exited $code"
    grep -q "stream 'account-alice' version 3" <<<"$err" || fail "statement: $err"
    [ -z "$out" ] || fail "a failing statement printed '$out'"
    bank accounts
    [ "$code" -eq 3 ] || fail "accounts exited $code"
    grep -q "stream 'account-alice' version 3" <<<"$err" || fail "accounts: $err"
    # The read model never stored a value it cannot read back.
    [ "$(sqlite3 "$db" "SELECT typeof(balance) || ' ' || balance FROM bank_accounts")" = "integer 100" ] ||
      fail "read model holds $(sqlite3 "$db" "SELECT typeof(balance), balance FROM bank_accounts")"
    ;;
  writes_keep_the_read_models_current)
    # Issue 12, item 14: after any bank write, no projection lags.
    setup_two_accounts
    ok transfer alice bob 5.00
    head="$(sqlite3 "$db" "SELECT max(position) FROM events")"
    [ "$(sqlite3 "$db" "SELECT group_concat(name || '=' || position, ' ') FROM projection_checkpoints ORDER BY name")" = \
      "bank.accounts=$head bank.ledger=$head" ] ||
      fail "checkpoints: $(sqlite3 "$db" "SELECT name, position FROM projection_checkpoints")"
    ;;
  usage_errors_name_the_program_and_the_unknown_command)
    # Issue 12, item 14.
    bank frobnicate
    [ "$code" -eq 2 ] || fail "unknown command exited $code"
    grep -q "^bank: unknown command 'frobnicate'" <<<"$err" || fail "unknown command: $err"
    bank
    [ "$code" -eq 2 ] || fail "no command exited $code"
    grep -q "^bank: " <<<"$err" || fail "no command: $err"
    bank balance alice --at-version 0
    [ "$code" -eq 2 ] || fail "--at-version 0 exited $code"
    grep -q "^bank: --at-version: must be a whole number of at least 1, got '0'" <<<"$err" ||
      fail "--at-version 0: $err"
    ! grep -q "1.79\|not in range" <<<"$err" || fail "--at-version 0: $err"
    ;;
  a_failing_statement_prints_nothing)
    # Issue 12, item 14.
    ok open alice --owner Alice
    for args in "statement bob" "statement alice --from 2026-03-02 --to 2026-03-01" \
      "statement alice --from yesterday" "statement bob --json"; do
      # shellcheck disable=SC2086
      bank $args
      [ "$code" -ne 0 ] || fail "bank $args succeeded"
      [ -z "$out" ] || fail "bank $args printed '$out'"
    done
    ;;
  concurrent_withdrawals_never_overdraw)
    # 12 processes withdraw 7.00 each at the same moment from an account with
    # 60.00 available (50.00 + 10.00 overdraft): exactly 8 can succeed.
    ok open shared --owner Shared --overdraft 10.00
    ok deposit shared 50.00
    for i in $(seq 1 12); do
      (
        while [ ! -e "$work/go" ]; do sleep 0.01; done
        code=0
        "$bank_program" --db "$db" withdraw shared 7.00 >"$work/w$i.out" 2>"$work/w$i.err" || code=$?
        echo "$code" >"$work/w$i.code"
      ) &
    done
    touch "$work/go"
    wait
    accepted=0
    refused_count=0
    for i in $(seq 1 12); do
      c="$(cat "$work/w$i.code")"
      if [ "$c" -eq 0 ]; then
        accepted=$((accepted + 1))
      elif [ "$c" -eq 1 ] && grep -q "cannot withdraw 7.00 EUR" "$work/w$i.err"; then
        refused_count=$((refused_count + 1))
      else
        fail "withdrawal $i exited $c: $(cat "$work/w$i.err")"
      fi
    done
    [ "$accepted" -eq 8 ] || fail "$accepted withdrawals accepted, wanted 8"
    [ "$refused_count" -eq 4 ] || fail "$refused_count refused, wanted 4"
    balance_is shared "-6.00 EUR (version 10)"
    [ "$(sqlite3 "$db" "SELECT count(*) FROM events WHERE type = 'bank.Withdrawn'")" = 8 ] ||
      fail "history does not hold the 8 withdrawals"
    ok verify
    ;;
  seal_then_verify_passes_after_growth_and_finds_a_cut_tail)
    setup_two_accounts
    ok keygen --key "$work/seal.key" --public "$work/seal.pub"
    ok seal --key "$work/seal.key"
    printf '%s\n' "$out" >"$work/seal.json"
    grep -q '"head_position":3' "$work/seal.json" || fail "seal: $(cat "$work/seal.json")"
    ok deposit bob 5.00
    ok verify --seal "$work/seal.json" --key "$work/seal.pub"
    expect_out "verify: ok \(4 events checked, hash chain intact; the seal of position 3 holds, signature trusted\)"
    # The newest events are cut (triggers dropped first): the high-water mark
    # of positions finds it, and so does the seal.
    sqlite3 "$db" "DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position > 2"
    bank verify
    [ "$code" -eq 3 ] || fail "verify of a cut store exited $code"
    grep -q "high-water mark" <<<"$out$err" || fail "verify of a cut store: $out$err"
    bank verify --seal "$work/seal.json" --key "$work/seal.key"
    [ "$code" -eq 3 ] || fail "verify of a cut store against its seal exited $code"
    expect_out "verify: FAILED against the seal \(truncated\)"
    # A malformed seal file is refused, naming it.
    echo '{"annals_seal":1}' >"$work/bad.json"
    refused 1 "bad.json.*field 'store_id' is missing" verify --seal "$work/bad.json"
    # A seal key is never overwritten.
    bank keygen --key "$work/seal.key"
    [ "$code" -ne 0 ] || fail "keygen overwrote a key"
    ;;
  explain_lists_the_events_behind_a_balance_and_finds_a_tampered_read_model)
    setup_two_accounts
    ok withdraw alice 30.50
    ok transfer alice bob 10.00 --reference rent
    ok explain alice
    expect_out "^1 +1 +[0-9T:.-]+Z +bank.AccountOpened +0.00$"
    expect_out "^3 +2 +[0-9T:.-]+Z +bank.Deposited +100.00$"
    expect_out "^4 +3 +[0-9T:.-]+Z +bank.Withdrawn +-30.50$"
    expect_out "^5 +4 +[0-9T:.-]+Z +bank.TransferSent +-10.00$"
    expect_out "^4 events add up to 59.50 EUR; the balances read model says 59.50 EUR$"
    expect_out "^explain: ok$"
    ok explain bob --json
    grep -q '"events_balance_cents": 1000' <<<"$out" || fail "explain --json: $out"
    grep -q '"ok": true' <<<"$out" || fail "explain --json: $out"
    # The read model's figure altered by hand: named, exit 3, store unchanged.
    sqlite3 "$db" "UPDATE bank_accounts SET balance = 999999 WHERE account = 'alice'"
    refused 3 "DISCREPANCY: the read model's balance 9999.99 EUR differs from the events' sum 59.50 EUR" \
      explain alice
    expect_out "the balances read model says 9999.99 EUR"
    # A row deleted by hand is named as well.
    sqlite3 "$db" "DELETE FROM bank_accounts WHERE account = 'bob'"
    refused 3 "DISCREPANCY: the balances read model has no row for account 'bob'" explain bob
    refused 1 "unknown account .carol." explain carol
    ;;
  check_compares_the_read_models_with_a_replay_and_changes_nothing)
    setup_two_accounts
    ok transfer alice bob 10.00
    ok check
    expect_out "check bank.accounts at position 5: ok \(2 live rows, 2 replayed; 0 only in live, 0 only in replay, 0 differing\)"
    expect_out "check bank.ledger at position 5: ok"
    sqlite3 "$db" "UPDATE bank_ledger SET amount = 1 WHERE kind = 'deposit'; DELETE FROM bank_accounts WHERE account = 'bob'"
    before="$(sqlite3 "$db" "SELECT * FROM bank_ledger ORDER BY position; SELECT * FROM bank_accounts ORDER BY account")"
    bank check
    [ "$code" -eq 3 ] || fail "check of a tampered bank exited $code"
    expect_out "check bank.accounts at position 5: DIFFERS \(1 live rows, 2 replayed; 0 only in live, 1 only in replay, 0 differing\)"
    expect_out "bank_accounts only in replay: account=bob owner=Bob"
    expect_out "bank_ledger differing: position=3 .*amount=1 \(replay: 10000\)"
    after="$(sqlite3 "$db" "SELECT * FROM bank_ledger ORDER BY position; SELECT * FROM bank_accounts ORDER BY account")"
    [ "$before" = "$after" ] || fail "check changed the read models"
    ;;
  *)
    fail "no such case"
    ;;
esac
echo "ok: $case_name"
