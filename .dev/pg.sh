#!/usr/bin/env bash
# pg.sh up|down|reset|env — the project-local PostgreSQL cluster.
#
# The cluster lives in .data/pg (git-ignored), listens on 127.0.0.1:$LEADIFY_PG_PORT
# (default 54329) and has three roles: postgres (superuser, used only by this script
# and by tests to create throwaway databases), leadify_owner (owns the tables, runs
# migrations) and leadify_app (what the server connects as: neither owner nor
# superuser, so row-level security always applies). When the task runs as root the
# cluster runs as the `postgres` user, since PostgreSQL refuses to run as root.
# With DATABASE_URL set, nothing is started: you bring your own Postgres.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${LEADIFY_PG_PORT:-54329}
data="$root/.data/pg"
cmd=${1:-up}

log() { printf 'pg: %s\n' "$*" >&2; }

if [ -n "${DATABASE_URL:-}" ] && [ "$cmd" != env ]; then
  log "DATABASE_URL is set; using that database, not starting a local cluster"
  exit 0
fi

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)"
}
bin=$(find_bin || true)
if [ -z "$bin" ] && [ "$cmd" = up ]; then
  log "installing PostgreSQL"
  "$root/.dev/apt.sh" postgresql
  bin=$(find_bin)
fi

as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
  if ! "${as_pg[@]}" test -x "$root" 2>/dev/null; then
    # The checkout is not reachable by the postgres user (e.g. under /root): keep
    # the data in a per-checkout folder it can reach, linked from .data/pg.
    alt="/var/lib/leadify-pg/$(printf %s "$root" | sha1sum | cut -c1-12)"
    mkdir -p "$alt" "$root/.data"
    chown postgres: "$alt"
    [ -L "$data" ] || ln -sfn "$alt" "$data"
    data="$alt"
  fi
fi
pgctl() { "${as_pg[@]}" "$bin/pg_ctl" -D "$data" "$@"; }
psql_su() { PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

running() { [ -f "$data/postmaster.pid" ] && pgctl status >/dev/null 2>&1; }

# tune writes the settings the project's figures are measured with into
# leadify.conf (included from postgresql.conf), for new and existing clusters
# alike, restarting a running cluster when they changed. They are what a
# server sized for bulk ledger writes would have, kept small enough for a
# 2-core CI machine: shared buffers that hold a commission run's working set
# (2M ledger rows and their indexes are about 800 MB; with 256 MB the
# backends wrote evicted pages themselves), and WAL room for a whole run
# between checkpoints (a run writes 1.3 GB of WAL; under the default 1 GB
# max_wal_size it triggered two or three checkpoints, and every page touched
# after each was logged whole again).
tune() {
  local conf="$data/leadify.conf" want changed=
  want=$(cat <<'CONF'
shared_buffers = 2GB
max_wal_size = 4GB
CONF
)
  if ! grep -q "^include_if_exists = 'leadify.conf'" "$data/postgresql.conf"; then
    echo "include_if_exists = 'leadify.conf'" | "${as_pg[@]}" tee -a "$data/postgresql.conf" >/dev/null
    changed=1
  fi
  if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" | "${as_pg[@]}" tee "$conf" >/dev/null
    changed=1
  fi
  if [ -n "$changed" ]; then
    if running; then
      log "settings changed: restarting"
      pgctl -m fast -w stop >/dev/null
    fi
  fi
}

up() {
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising cluster in $data"
    mkdir -p "$data"
    [ ${#as_pg[@]} -gt 0 ] && chown postgres: "$data"
    chmod 700 "$data"
    "${as_pg[@]}" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 300
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
  fi
  tune
  if ! running; then
    log "starting on 127.0.0.1:$port"
    pgctl -l "$data/server.log" -w -t 60 start >/dev/null
  fi
  psql_su -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leadify_owner') THEN
    CREATE ROLE leadify_owner LOGIN CREATEDB;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leadify_app') THEN
    CREATE ROLE leadify_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;
SQL
  if ! psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'leadify'" | grep -q 1; then
    psql_su -d postgres -c "CREATE DATABASE leadify OWNER leadify_owner"
  fi
}

case "$cmd" in
  up) up ;;
  down) if running; then pgctl -m fast -w stop >/dev/null; log "stopped"; fi ;;
  reset)
    if running; then pgctl -m fast -w stop >/dev/null; fi
    rm -rf "${data:?}"/* "$data"/.[!.]* 2>/dev/null || true
    up ;;
  env)
    cat <<ENV
DATABASE_URL=postgres://leadify_app@127.0.0.1:$port/leadify?sslmode=disable
LEADIFY_MIGRATE_DATABASE_URL=postgres://leadify_owner@127.0.0.1:$port/leadify?sslmode=disable
LEADIFY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable
ENV
    ;;
  *) echo "usage: pg.sh up|down|reset|env" >&2; exit 2 ;;
esac
