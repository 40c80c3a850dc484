#!/usr/bin/env bash
# Throughput of an authenticated, scoped and audited JSON GET of one object
# (GET /api/v1/accounts/{id} as an administrator) against a bare axum JSON handler, and the
# same GET with the read audit off, all measured in one run by civicgrid's own load
# generator. The three are measured in turn, ROUNDS times (the machines here are shared
# and noisy: a neighbour's burst lands on one round, not on one side), and the medians of
# the per-round ratios are the figures. Each round also reports the CPU the two civicgrid
# servers used per request (their own process only: on PostgreSQL the database's work is
# not in it).
# Usage: scripts/bench-api.sh [sqlite|postgres] [seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
seconds=${2:-10}
conns=${3:-32}
rounds=${4:-3}

. scripts/bench-common.sh
password=$(awk '$1 == "admin" {print $2}' "$work/demo.out")

bare=$(start bare $bin/loadgen bare)
on=$(start on $bin/civicgrid --db "$db" serve --listen 127.0.0.1:0)
off=$(CIVICGRID_AUDIT_READS=false start off $bin/civicgrid --db "$db" serve --listen 127.0.0.1:0)
token=$(curl -s -X POST "http://$on/api/v1/session" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')
id=5
curl -sf "http://$on/api/v1/accounts/$id" -H "authorization: Bearer $token" > /dev/null
curl -sf "http://$off/api/v1/accounts/$id" -H "authorization: Bearer $token" > /dev/null

run() { sleep 1; $bin/loadgen run --url "$1" --seconds "$seconds" --connections "$conns" "${@:2}"; }
# The server's CPU time (user + system, in clock ticks) so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run_cpu NAME URL ARGS…: run, and leave in $work/NAME.cores the cores the server NAME used
# while measured (from 0.5 s after the 2 s warm-up to 0.5 s before the end).
run_cpu() {
  local pid; pid=$(cat "$work/$1.pid")
  ( sleep 3.5; a=$(ticks "$pid"); t=$(date +%s.%N); sleep "$(echo "$seconds - 1" | bc)"
    b=$(ticks "$pid"); u=$(date +%s.%N)
    echo "($b - $a) / $(getconf CLK_TCK) / ($u - $t)" | bc -l > "$work/$1.cores" ) &
  local sampler=$!
  run "${@:2}"
  wait "$sampler"
}
rps() { echo "$1" | sed -E 's/.*"rps":([0-9.]+).*/\1/'; }
field() { echo "$1" | sed -E "s/.*\"$2\":([0-9]+).*/\1/"; }
echo "backend=$backend seconds=$seconds connections=$conns rounds=$rounds cores=$(nproc)"
rows=""
for r in $(seq 1 "$rounds"); do
  r_bare=$(run "http://$bare/item/$id")
  r_on=$(run_cpu on "http://$on/api/v1/accounts/$id" --header "Authorization: Bearer $token")
  r_off=$(run_cpu off "http://$off/api/v1/accounts/$id" --header "Authorization: Bearer $token")
  b=$(rps "$r_bare"); o=$(rps "$r_on"); f=$(rps "$r_off")
  c_on=$(cat "$work/on.cores"); c_off=$(cat "$work/off.cores")
  echo "round $r: bare $b req/s (p99 $(field "$r_bare" p99_us) µs) | audit on $o req/s (p99 $(field "$r_on" p99_us) µs, $(echo "$r_on" | grep -oE '"status":\{[^}]*\}'), server CPU $(printf %.2f "$c_on") cores) | audit of reads off $f req/s (p99 $(field "$r_off" p99_us) µs, server CPU $(printf %.2f "$c_off") cores)"
  rows="$rows$b $o $f $c_on $c_off
"
done
printf '%s' "$rows" | python3 -c '
import sys, statistics
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
share = [o / b for b, o, f, co, cf in rows]
cost = [1 - o / f for b, o, f, co, cf in rows]
us_on = [co / o * 1e6 for b, o, f, co, cf in rows]
us_off = [cf / f * 1e6 for b, o, f, co, cf in rows]
print("audited GET / bare handler, per round: " + ", ".join(f"{x:.1%}" for x in share) + f"; median {statistics.median(share):.1%} (target >= 40%)")
print("cost of the read audit, per round:     " + ", ".join(f"{x:.1%}" for x in cost) + f"; median {statistics.median(cost):.1%} (target <= 15%)")
print(f"server CPU per request, median: audit on {statistics.median(us_on):.1f} µs, audit of reads off {statistics.median(us_off):.1f} µs")
'
kill "$(cat "$work/on.pid")" "$(cat "$work/off.pid")"; sleep 1
echo "audit rows written: $($bin/civicgrid --db "$db" audit verify)"
