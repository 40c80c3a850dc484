#!/usr/bin/env bash
# Throughput of an authenticated, scoped and audited JSON GET of one object
# (GET /api/v1/accounts/{id} as an administrator) against a bare axum JSON handler, and the
# same GET with the read audit off, all measured in one run by civicgrid's own load
# generator. Usage: scripts/bench-api.sh [sqlite|postgres] [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
seconds=${2:-10}
conns=${3:-32}

. scripts/bench-common.sh
password=$(awk '$1 == "admin" {print $2}' "$work/demo.out")

bare=$(start bare $bin/loadgen bare)
server=$(start on $bin/civicgrid --db "$db" serve --listen 127.0.0.1:0)
token=$(curl -s -X POST "http://$server/api/v1/session" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')
id=5
curl -sf "http://$server/api/v1/accounts/$id" -H "authorization: Bearer $token" > /dev/null

run() { $bin/loadgen run --url "$1" --seconds "$seconds" --connections "$conns" "${@:2}"; }
r_bare=$(run "http://$bare/item/$id")
r_on=$(run "http://$server/api/v1/accounts/$id" --header "Authorization: Bearer $token")
kill "$(cat "$work/on.pid")"; sleep 0.5
server=$(CIVICGRID_AUDIT_READS=false start off $bin/civicgrid --db "$db" serve --listen 127.0.0.1:0)
r_off=$(run "http://$server/api/v1/accounts/$id" --header "Authorization: Bearer $token")

rps() { echo "$1" | sed -E 's/.*"rps":([0-9.]+).*/\1/'; }
field() { echo "$1" | sed -E "s/.*\"$2\":([0-9]+).*/\1/"; }
b=$(rps "$r_bare"); on=$(rps "$r_on"); off=$(rps "$r_off")
echo "backend=$backend seconds=$seconds connections=$conns cores=$(nproc)"
echo "bare axum JSON handler:           $b req/s  p50 $(field "$r_bare" p50_us) µs  p99 $(field "$r_bare" p99_us) µs"
echo "civicgrid GET, audit on:          $on req/s  p50 $(field "$r_on" p50_us) µs  p99 $(field "$r_on" p99_us) µs  $(echo "$r_on" | grep -oE '"status":\{[^}]*\}')"
echo "civicgrid GET, audit of reads off: $off req/s  p50 $(field "$r_off" p50_us) µs  p99 $(field "$r_off" p99_us) µs"
python3 -c "b,on,off=$b,$on,$off; print(f'audited GET / bare handler: {on/b:.1%} (target >= 40%)'); print(f'cost of the read audit: {1-on/off:.1%} of throughput (target <= 15%)')"
echo "audit rows written: $($bin/civicgrid --db "$db" audit verify)"
