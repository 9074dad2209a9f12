# A throwaway PostgreSQL server for scripts (tools/demo.sh --postgres, the
# bank's PostgreSQL tests): initdb and pg_ctl from Debian's postgresql
# package, run as the `postgres` system user when the caller is root (the
# server refuses to run as root), listening only on a Unix socket in a fresh
# temporary directory. Source this file, then:
#   pg_scratch_start     starts it; sets PG_SCRATCH_URL (postgresql:// URL)
#   pg_scratch_stop      stops it and removes its directory (safe to repeat)
# Callers put pg_scratch_stop in an EXIT trap, so the server goes away even
# when the script fails. ANNALS_PG_BIN overrides /usr/lib/postgresql/15/bin.

PG_SCRATCH_DIR=""
PG_SCRATCH_URL=""
_pg_scratch_as=()

pg_scratch_start() {
  local bin="${ANNALS_PG_BIN:-/usr/lib/postgresql/15/bin}"
  if [ ! -x "$bin/initdb" ]; then
    echo "pg_scratch: no $bin/initdb (install Debian's postgresql: bash tools/deps.sh)" >&2
    return 1
  fi
  PG_SCRATCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/annals-pg-XXXXXX")"
  _pg_scratch_as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_SCRATCH_DIR"
    _pg_scratch_as=(runuser -u postgres --)
  fi
  "${_pg_scratch_as[@]}" "$bin/initdb" -A trust -U postgres -E UTF8 --no-sync \
    -D "$PG_SCRATCH_DIR/data" >"$PG_SCRATCH_DIR/initdb.log" 2>&1 || {
    cat "$PG_SCRATCH_DIR/initdb.log" >&2
    return 1
  }
  "${_pg_scratch_as[@]}" "$bin/pg_ctl" start -w -t 60 -D "$PG_SCRATCH_DIR/data" \
    -l "$PG_SCRATCH_DIR/server.log" \
    -o "-k '$PG_SCRATCH_DIR' -c listen_addresses=''" >/dev/null || {
    cat "$PG_SCRATCH_DIR/server.log" >&2
    return 1
  }
  PG_SCRATCH_URL="postgresql:///postgres?host=$PG_SCRATCH_DIR&user=postgres"
}

pg_scratch_stop() {
  local bin="${ANNALS_PG_BIN:-/usr/lib/postgresql/15/bin}"
  [ -n "$PG_SCRATCH_DIR" ] || return 0
  if [ -f "$PG_SCRATCH_DIR/data/postmaster.pid" ]; then
    "${_pg_scratch_as[@]}" "$bin/pg_ctl" stop -m fast -D "$PG_SCRATCH_DIR/data" >/dev/null 2>&1 ||
      "${_pg_scratch_as[@]}" "$bin/pg_ctl" stop -m immediate -D "$PG_SCRATCH_DIR/data" \
        >/dev/null 2>&1 || true
  fi
  rm -rf -- "$PG_SCRATCH_DIR"
  PG_SCRATCH_DIR=""
  PG_SCRATCH_URL=""
}
