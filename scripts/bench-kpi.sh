#!/usr/bin/env bash
# Key figures at scale (docs/PERFORMANCE.md, "Key figures"): N incidents (default
# 1,000,000) in the demo district on SQLite and on PostgreSQL, the district's figures by
# street through our rollup, and DuckDB over the same rows in the same run.
#
#   scripts/bench-kpi.sh [N] [RUNS]
#
# Needs: PostgreSQL at CIVICGRID_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test,
# whose server gets a database civicgrid_kpibench), python3 with duckdb (`pip install
# duckdb`). Work files go to ${KPI_BENCH_DIR:-/tmp/kpi-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
RUNS=${2:-50}
DIR=${KPI_BENCH_DIR:-/tmp/kpi-bench}
PG=${CIVICGRID_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
PG_DB="${PG%/*}/civicgrid_kpibench"
export CIVICGRID_LOG=warn
mkdir -p "$DIR"
cargo build --release -p bench --bin kpibench
BIN=target/release/kpibench

echo "== $N incidents on SQLite"
rm -f "$DIR/kpi-$N.db" "$DIR/kpi-$N.db-wal" "$DIR/kpi-$N.db-shm"
$BIN load "sqlite://$DIR/kpi-$N.db" "$N"
$BIN query "sqlite://$DIR/kpi-$N.db" "$RUNS" | tee "$DIR/ours-sqlite-$N.txt"
FROM=$(sed -n 's/^ours: .*street, \([0-9-]*\) to \([0-9-]*\),.*/\1/p' "$DIR/ours-sqlite-$N.txt")
TO=$(sed -n 's/^ours: .*street, \([0-9-]*\) to \([0-9-]*\),.*/\2/p' "$DIR/ours-sqlite-$N.txt")

echo "== DuckDB over the same rows"
$BIN export "sqlite://$DIR/kpi-$N.db" "$DIR/kpi-$N.csv"
python3 scripts/kpi_duckdb.py "$DIR/kpi-$N.csv" "$FROM" "$TO" "$RUNS" | tee "$DIR/duckdb-$N.txt"
if diff <(grep '^street' "$DIR/ours-sqlite-$N.txt" | sort) <(grep '^street' "$DIR/duckdb-$N.txt" | sort) >/dev/null; then
    echo "answers: ours and DuckDB agree on every street (reported, filed, closed)"
else
    echo "answers DIFFER:"; diff <(grep '^street' "$DIR/ours-sqlite-$N.txt" | sort) <(grep '^street' "$DIR/duckdb-$N.txt" | sort) || true
fi

echo "== $N incidents on PostgreSQL"
psql "$PG" -q -c "DROP DATABASE IF EXISTS civicgrid_kpibench WITH (FORCE)" -c "CREATE DATABASE civicgrid_kpibench"
$BIN load "$PG_DB" "$N"
psql "$PG_DB" -q -c "VACUUM ANALYZE"
$BIN query "$PG_DB" "$RUNS" | tee "$DIR/ours-postgres-$N.txt"
if diff <(grep '^street' "$DIR/ours-postgres-$N.txt" | sort) <(grep '^street' "$DIR/duckdb-$N.txt" | sort) >/dev/null; then
    echo "answers: PostgreSQL and DuckDB agree on every street"
else
    echo "answers DIFFER (PostgreSQL's history is generated at its own 'now')"
fi
