#!/usr/bin/env bash
# Durable intake over HTTP: POST /api/v1/incidents (each with its own Idempotency-Key) by
# civicgrid's load generator on the same machine, against raw SQLite inserts with
# synchronous=FULL measured in the same run. An incident counts only once committed.
# Usage: scripts/bench-intake.sh [sqlite|postgres] [seconds] [connections] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
seconds=${2:-10}
conns=${3:-64}
rate=${4:-2000}

. scripts/bench-common.sh
password=$(awk '$1 == "operator" {print $2}' "$work/demo.out")

server=$(start server $bin/civicgrid --db "$db" serve --listen 127.0.0.1:0)
token=$(curl -s -X POST "http://$server/api/v1/session" -H 'content-type: application/json' \
  -d "{\"username\":\"operator\",\"password\":\"$password\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')
# A point in the middle of the first grid's bounding box.
point=$(curl -s "http://$server/api/v1/areas/430503001001001/geometry" -H "authorization: Bearer $token" | python3 -c '
import json, sys
g = json.load(sys.stdin)
g = g.get("geometry", g)
xs, ys = [], []
def walk(c):
    if isinstance(c[0], (int, float)): xs.append(c[0]); ys.append(c[1])
    else: [walk(x) for x in c]
walk(g["coordinates"])
print(f"{(min(ys)+max(ys))/2:.6f} {(min(xs)+max(xs))/2:.6f}")')
read -r lat lon <<< "$point"
body="{\"category\":\"C0101\",\"description\":\"井盖缺失，行人有坠落危险 {seq}\",\"location\":{\"lat\":$lat,\"lon\":$lon},\"source\":\"hotline\"}"

raw=$($bin/loadgen sqlite-raw --path "$work/raw.db" --seconds 5)
post() { $bin/loadgen run --url "http://$server/api/v1/incidents" --method POST --body "$body" \
  --header "Authorization: Bearer $token" --seconds "$seconds" "$@"; }
max=$(post --connections "$conns" --header "Idempotency-Key: bench-max-{seq}")
fixed=$(post --connections "$conns" --rate "$rate" --header "Idempotency-Key: bench-rate-{seq}")

field() { echo "$1" | sed -E "s/.*\"$2\":([0-9.]+).*/\1/"; }
echo "backend=$backend seconds=$seconds connections=$conns cores=$(nproc)"
echo "raw SQLite, synchronous=FULL, 1 row per transaction:     $(field "$raw" rows_per_s_one_per_tx) rows/s"
echo "raw SQLite, synchronous=FULL, 1,000 rows per transaction: $(field "$raw" rows_per_s_1000_per_tx) rows/s"
echo "civicgrid POST /api/v1/incidents, as fast as answered:   $(field "$max" rps) incidents/s  p50 $(field "$max" p50_us) µs  p99 $(field "$max" p99_us) µs  $(echo "$max" | grep -oE '"status":\{[^}]*\}')"
echo "civicgrid POST /api/v1/incidents at $rate/s:              $(field "$fixed" rps) incidents/s  p50 $(field "$fixed" p50_us) µs  p99 $(field "$fixed" p99_us) µs  $(echo "$fixed" | grep -oE '"status":\{[^}]*\}')"
python3 -c "m,r=$(field "$max" rps),$(field "$raw" rows_per_s_one_per_tx); print(f'intake / raw one-row transactions: {m/r:.1f}x (target: beat it, and >= 10,000/s)')"
stored=$(curl -s "http://$server/api/v1/incidents?limit=1" -H "authorization: Bearer $token" | python3 -c 'import json,sys; i=json.load(sys.stdin)["items"]; print(i[0]["id"] if i else 0)')
echo "incidents stored (highest id): $stored"
