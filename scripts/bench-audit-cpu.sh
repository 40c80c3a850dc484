#!/usr/bin/env bash
# CPU per audited GET on PostgreSQL: civicgrid's own and the database's. One server on a
# fresh demo database (no people), GET /api/v1/accounts/5 as the administrator under
# civicgrid's load generator; the CPU of the server and of every `postgres` process
# (/proc/PID/stat) is read 2 s after the start and 1 s before the end.
# Usage: scripts/bench-audit-cpu.sh [seconds] [connections] [ENV=VALUE…]
#   e.g. scripts/bench-audit-cpu.sh 8 32 CIVICGRID_AUDIT_READS=false
# CIVICGRID_BENCH_BIN names a folder of binaries built earlier (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
conns=${2:-32}
shift $(( $# < 2 ? $# : 2 ))
backend=postgres
. scripts/bench-common.sh
password=$(awk '$1 == "admin" {print $2}' "$work/demo.out")
addr=$(start server env "$@" $bin/civicgrid --db "$db" serve --listen 127.0.0.1:0)
token=$(curl -s -X POST "http://$addr/api/v1/session" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')
pg_ticks() { local s=0 t; for p in $(pgrep -u postgres); do t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0); s=$((s + t)); done; echo "$s"; }
server_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$work/server.pid")/stat"; }
( sleep 2; a=$(pg_ticks); b=$(server_ticks); sleep $((seconds - 3)); c=$(pg_ticks); d=$(server_ticks)
  echo "$((c - a)) $((d - b))" > "$work/ticks" ) &
sampler=$!
r=$($bin/loadgen run --url "http://$addr/api/v1/accounts/5" --seconds "$seconds" --connections "$conns" --header "Authorization: Bearer $token")
wait "$sampler"
read -r pg sv < "$work/ticks"
rps=$(echo "$r" | sed -E 's/.*"rps":([0-9.]+).*/\1/')
python3 -c "
rps, pg, sv, s, hz = $rps, $pg, $sv, $seconds - 3, $(getconf CLK_TCK)
print(f'{rps:.0f} req/s; CPU per request: civicgrid {sv / hz / s / rps * 1e6:.1f} µs, PostgreSQL {pg / hz / s / rps * 1e6:.2f} µs')"
