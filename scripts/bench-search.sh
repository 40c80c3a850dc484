#!/usr/bin/env bash
# The register search at scale (docs/PERFORMANCE.md, "Register search"): N synthetic people
# (default 10,000,000) loaded into SQLite and PostgreSQL, our index built from the store,
# then each query kind timed through RegisterDesk::search and against PostgreSQL pg_trgm
# (GIN) and its B-tree in the same run.
#
#   scripts/bench-search.sh [N] [QUERIES] [PG_BUDGET_SECONDS]
#
# Needs PostgreSQL at CIVICGRID_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test,
# whose server gets a database civicgrid_searchbench) with the pg_trgm extension available.
# The SQLite file goes to ${SEARCH_BENCH_DIR:-/tmp/search-bench}. At 10,000,000 people it
# needs about 15 GB of disk and several GB of memory.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
QUERIES=${2:-200}
BUDGET=${3:-60}
export CIVICGRID_LOG=warn
cargo build --release -p bench --bin searchbench
/usr/bin/time -v target/release/searchbench --people "$N" --queries "$QUERIES" --pg-budget "$BUDGET" 2> >(grep -E "Maximum resident|Elapsed|people|houses" >&2)
