#!/usr/bin/env bash
# The README's commands as a reader follows them (issue 12, item 14):
#   bash readme_test.sh SOURCE_DIR
# - the main command (tools/demo.sh) builds the annals binary at the path the
#   README gives for it, and the bank binary likewise;
# - the README's bank and annals examples use one database name (the import's
#   copy aside, which must be a different file).
set -euo pipefail
root="$1"
readme="$root/README.md"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

grep -q 'build/release/tools/annals/annals' "$readme" || fail "README gives no annals path"
grep -q 'build/release/examples/bank/bank' "$readme" || fail "README gives no bank path"
build_line="$(grep -E 'cmake --build --preset release' "$root/tools/demo.sh")" ||
  fail "tools/demo.sh builds nothing in release"
grep -qw annals_cli <<<"$build_line" || fail "tools/demo.sh does not build the annals tool: $build_line"
grep -qw bank <<<"$build_line" || fail "tools/demo.sh does not build bank: $build_line"
# The target annals_cli is the file build/release/tools/annals/annals.
grep -q 'OUTPUT_NAME annals' "$root/tools/annals/CMakeLists.txt" ||
  fail "annals_cli is not named annals"

names="$(grep -oE '^(bank|annals) [^#]*--db [^ ]+' "$readme" | grep -v 'annals import' |
  sed -E 's/.*--db ([^ ]+).*/\1/' | sort -u)"
[ "$(wc -l <<<"$names")" -eq 1 ] || fail "the README's examples use several databases: $(tr '\n' ' ' <<<"$names")"
echo "ok: one database name in the README's examples ($names); demo.sh builds bank and annals"
