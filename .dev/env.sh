# Sourced by the Taskfile's commands: the project-local defaults for whatever
# the caller has not set. With DATABASE_URL set, your own Postgres is used.
port=${LEADIFY_PG_PORT:-54329}
if [ -z "${DATABASE_URL:-}" ]; then
  export DATABASE_URL="postgres://leadify_app@127.0.0.1:$port/leadify?sslmode=disable"
  export LEADIFY_MIGRATE_DATABASE_URL="${LEADIFY_MIGRATE_DATABASE_URL:-postgres://leadify_owner@127.0.0.1:$port/leadify?sslmode=disable}"
fi
export LEADIFY_TEST_DATABASE_URL="${LEADIFY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable}"
# The demo's secret key lives beside the demo database, made once.
if [ -z "${LEADIFY_SECRET_KEYS:-}" ]; then
  keyfile="$(dirname "${BASH_SOURCE[0]:-$0}")/../.data/secret-keys"
  if [ ! -s "$keyfile" ]; then
    mkdir -p "$(dirname "$keyfile")"
    printf 'demo:%s' "$(head -c 32 /dev/urandom | base64)" >"$keyfile"
    chmod 600 "$keyfile"
  fi
  LEADIFY_SECRET_KEYS="$(cat "$keyfile")"
  export LEADIFY_SECRET_KEYS
fi
export GOFLAGS="${GOFLAGS:-}"
