#!/usr/bin/env bash
# The browser test of `annals serve`: a test store, the server on a free
# loopback port, and serve_test.mjs driving Debian's headless Chromium with
# playwright-core. Installs what it needs: the Debian packages through
# tools/deps.sh, playwright-core (pinned in package.json) with npm into
# WORK_DIR/node. No browser is downloaded.
#   bash serve_browser_test.sh ANNALS_PROGRAM APPEND_PROGRAM WORK_DIR SOURCE_DIR
# Screenshots are left in WORK_DIR/artifacts.
set -euo pipefail

annals="$1"
append="$2"
work="$3"
source_dir="$4"
here="$(cd "$(dirname "$0")" && pwd)"

fail() {
  echo "browser: FAILED: $*" >&2
  exit 1
}

if [ ! -x /usr/bin/chromium ] || ! command -v npm >/dev/null 2>&1; then
  bash "$source_dir/tools/deps.sh"
fi

node_dir="$work/node"
mkdir -p "$node_dir"
if ! cmp -s "$here/package.json" "$node_dir/package.json" ||
   [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
  cp "$here/package.json" "$node_dir/package.json"
  (cd "$node_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
     --loglevel=error >"$work/npm.log" 2>&1) || { cat "$work/npm.log"; fail "npm install failed"; }
fi
# Beside node_modules, so that `import 'playwright-core'` resolves there.
cp "$here/serve_test.mjs" "$node_dir/serve_test.mjs"

run="$work/run"
artifacts="$work/artifacts"
rm -rf "$run" "$artifacts"
mkdir -p "$run/profile" "$artifacts"
db="$run/store.db"

# A small bank-like store, written by another process than the server.
n=0
add() {  # STREAM TYPE PAYLOAD
  n=$((n + 1))
  "$append" "$db" "$1" "$2" "$3" \
    "{\"correlation_id\":\"cmd-$n\",\"actor\":\"teller-$(( n % 3 + 1 ))\"}" >/dev/null
}
add account-1 bank.AccountOpened '{"owner":"Ada Lovelace","currency":"EUR","overdraft":0}'
add account-2 bank.AccountOpened '{"owner":"Charles Babbage","currency":"EUR","overdraft":5000}'
add account-1 bank.MoneyDeposited '{"amount":125000}'
add account-3 bank.AccountOpened '{"owner":"Mary Somerville","currency":"GBP","overdraft":0}'
add account-1 bank.MoneyWithdrawn '{"amount":2500}'
add account-2 bank.MoneyDeposited '{"amount":40000}'
add account-1 bank.TransferSent '{"to":"account-2","amount":10000,"reference":"rent"}'
add account-2 bank.TransferReceived '{"from":"account-1","amount":10000,"reference":"rent"}'
add audit-1 audit.Checked '{"by":"auditor","verified":true}'
add '<script>window.__pwned = 1</script>' test.Hostile '{"note":"<img src=x onerror=\"window.__pwned = 2\">"}'

"$annals" serve --db "$db" --port 0 >"$run/serve.out" 2>"$run/serve.err" &
server=$!
stop_server() {
  if kill -0 "$server" 2>/dev/null; then kill -TERM "$server"; wait "$server" || true; fi
}
trap stop_server EXIT

url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$run/serve.out" || true)"
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$run/serve.err"; fail "annals serve exited"; }
  sleep 0.1
done
[ -n "$url" ] || fail "annals serve printed no address"

BASE_URL="$url" APPEND="$append" DB="$db" ARTIFACTS="$artifacts" PROFILE="$run/profile" \
  node "$node_dir/serve_test.mjs" || fail "the page test failed (server log: $(cat "$run/serve.err"))"

# SIGTERM ends the server cleanly, with exit code 0.
kill -TERM "$server"
code=0
wait "$server" || code=$?
trap - EXIT
[ "$code" -eq 0 ] || fail "annals serve exited $code on SIGTERM"
echo "browser: screenshots in $artifacts"
echo "browser: ok"
