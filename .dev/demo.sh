#!/usr/bin/env bash
# demo.sh — run by `go tool task demo` after Postgres is up and bin/ is built:
# migrates, seeds the demo, starts the sync server and the desktop app (under
# Xvfb when there is no display), prints the demo logins and waits for Ctrl-C.
# LEADIFY_DEMO_DETACH=1 leaves everything running and returns.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .data/demo out
addr=${LEADIFY_ADDR:-127.0.0.1:8080}
server_log=.data/demo/server.log

stop_pid() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; }
# One demo at a time: stop the previous one's processes.
stop_pid .data/demo/server.pid
stop_pid .data/demo/desktop.pid
stop_pid .data/demo/xvfb.pid
stop_pid .data/demo/carriers.pid
stop_pid .data/demo/sheets.pid
stop_pid .data/demo/shops.pid

bin/leadify-server migrate

# The fake Google Sheets API the demo store's sheet connection syncs from
# (seed-demo's first sync, then the server's periodic ones).
sheets=${LEADIFY_DEMO_SHEETS_ADDR:-127.0.0.1:8091}
export LEADIFY_SHEETS_ENDPOINT="http://$sheets/"
nohup bin/leadify-server demo-sheets >.data/demo/sheets.log 2>&1 &
echo $! >.data/demo/sheets.pid
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://$sheets/" && break
  sleep 0.1
done

echo
echo "== Demo logins"
bin/leadify-server seed-demo

# Last month's invoices of the demo stores: issued, sealed, the PDFs in
# out/invoices, Argan Beauty's emailed through an in-process SMTP sink.
echo
echo "== Invoices"
bin/leadify-server demo-invoices --public-url "${LEADIFY_PUBLIC_URL:-http://$addr}"

echo
echo "== Sync server on http://$addr (log: $server_log)"
nohup bin/leadify-server serve --addr "$addr" >"$server_log" 2>&1 &
echo $! >.data/demo/server.pid
for _ in $(seq 1 100); do
  curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$addr/readyz" >/dev/null || { echo "server did not start:"; tail -20 "$server_log"; exit 1; }

# The carrier sandboxes: fake Coliix, Ameex and Sendit are Argan Beauty's
# carriers (per-city rules share the leads out); the demo agent confirms leads
# and their parcels move to delivered or returned on their own.
echo
echo "== Carrier sandbox (log: .data/demo/carriers.log)"
nohup bin/leadify-server demo-carriers --addr "$addr" >.data/demo/carriers.log 2>&1 &
echo $! >.data/demo/carriers.pid

# A Shopify sandbox connected to Caftan Chic: its orders arrive as signed
# webhooks, become leads (COD only), and a backfill brings the one it never
# announced.
echo
echo "== Shop sandbox (log: .data/demo/shops.log)"
nohup bin/leadify-server demo-shops --addr "$addr" >.data/demo/shops.log 2>&1 &
echo $! >.data/demo/shops.pid
for _ in $(seq 1 60); do
  grep -q 'sandbox ready' .data/demo/shops.log && break
  sleep 0.5
done
grep -vE '^[{]' .data/demo/shops.log || true

if [ -z "${DISPLAY:-}" ]; then
  display=:${LEADIFY_DEMO_DISPLAY:-77}
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  echo $! >.data/demo/xvfb.pid
  export DISPLAY=$display
  sleep 1
  echo "== No display: the desktop runs under Xvfb on $DISPLAY"
fi
LEADIFY_SERVER_URL="http://$addr" LEADIFY_DATA_DIR="$root/.data/demo/desktop" \
  nohup bin/leadify-desktop >.data/demo/desktop.log 2>&1 &
echo $! >.data/demo/desktop.pid
sleep 4
if command -v import >/dev/null && [ -n "${DISPLAY:-}" ]; then
  import -window root out/demo-desktop.png 2>/dev/null && echo "== Screenshot of the desktop: out/demo-desktop.png"
fi

cat <<TXT

Leadify is running:
  sync server   http://$addr        (health: /healthz, /readyz)
  desktop app   pid $(cat .data/demo/desktop.pid) on DISPLAY=$DISPLAY
  try it        go tool -modfile=.tools/go.mod buf curl --schema proto --protocol grpc --http2-prior-knowledge \\
                  -d '{"email":"salma@arganbeauty.ma","password":"leadify-demo-2026"}' \\
                  http://$addr/leadify.v1.AuthService/Login
TXT

# Wait (up to a minute) for every parcel to reach an end, then show the moves.
for _ in $(seq 1 60); do
  grep -q 'reached an end' .data/demo/carriers.log && break
  sleep 1
done
echo "== Parcels (Coliix, Ameex, Sendit) moving on their own:"
grep -E 'parcel|claimed|sandbox|reached an end|delivered [0-9]' .data/demo/carriers.log | tail -n 40 || true

if [ "${LEADIFY_DEMO_DETACH:-}" = 1 ]; then
  echo "Detached. Stop with: kill \$(cat .data/demo/*.pid)"
  exit 0
fi
trap 'stop_pid .data/demo/sheets.pid; stop_pid .data/demo/shops.pid; stop_pid .data/demo/carriers.pid; stop_pid .data/demo/desktop.pid; stop_pid .data/demo/server.pid; stop_pid .data/demo/xvfb.pid; echo stopped' EXIT INT TERM
echo "Ctrl-C stops the demo. Parcels keep moving:"
tail -n 0 -f .data/demo/carriers.log &
wait "$(cat .data/demo/server.pid)" 2>/dev/null || true
