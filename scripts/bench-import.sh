#!/usr/bin/env bash
# The register's import (docs/PERFORMANCE.md, "Register import"): N plausible persons
# (default 270,000) generated as an .xlsx (merged title row, shared strings) and a CSV by
# regsheet, then `civicgrid import persons` into a fresh store, timed with its peak RSS by
# /usr/bin/time -v. The baseline, measured in the same run: the same rows inserted into the
# persons table of a fresh SQLite store with plain prepared INSERTs in one transaction.
# Usage: scripts/bench-import.sh [persons] [sqlite|postgres|both]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-270000}
backends=${2:-both}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p civicgrid -p bench --bin civicgrid --bin regsheet
bin=target/release
work=$(mktemp -d)
pgdbs=()
cleanup() {
  rm -rf "$work"
  for d in "${pgdbs[@]:-}"; do [ -n "$d" ] && psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null; done
}
trap cleanup EXIT
export CIVICGRID_LOG=warn

$bin/regsheet sheet --persons "$n" --xlsx "$work/persons.xlsx" --csv "$work/persons.csv"
echo "files: xlsx $(du -h "$work/persons.xlsx" | cut -f1), csv $(du -h "$work/persons.csv" | cut -f1); cores=$(nproc)"

baseline=$($bin/regsheet baseline --db "sqlite://$work/baseline.db" --csv "$work/persons.csv")
echo "$baseline"
base_s=$(echo "$baseline" | sed -E 's/.* in ([0-9.]+) s .*/\1/')

# One import into a fresh store: prints seconds and peak RSS (MB).
run() {
  local db=$1 file=$2 label=$3
  $bin/civicgrid --db "$db" demo --population 0 > "$work/demo.out"
  /usr/bin/time -v -o "$work/time.txt" $bin/civicgrid --db "$db" import persons "$file" --as street > "$work/import.out" 2>"$work/import.err" \
    || { echo "$label: import failed"; tail -n 5 "$work/import.out" "$work/import.err"; return 1; }
  local secs rss
  secs=$(grep -oE '[0-9.]+ s$' "$work/import.out" | tail -1 | cut -d' ' -f1)
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time.txt")
  local summary
  summary=$(tail -1 "$work/import.out")
  python3 -c "n=$n; s=$secs; b=$base_s; print(f'$label: {s:.1f} s, {n/s:,.0f} rows/s, peak RSS $rss MB, {s/b:.1f}x the raw-insert baseline ({b:.2f} s)')"
  echo "  $summary"
}

for backend in sqlite postgres; do
  [ "$backends" = both ] || [ "$backends" = "$backend" ] || continue
  for kind in xlsx csv; do
    case "$backend" in
      sqlite) db="sqlite://$work/$kind.db" ;;
      postgres)
        name="civicgrid_bench_import_${kind}_$$"
        pgdbs+=("$name")
        psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $name" >/dev/null
        db="postgres://postgres@127.0.0.1:5432/$name" ;;
    esac
    run "$db" "$work/persons.$kind" "$backend $kind"
  done
done
