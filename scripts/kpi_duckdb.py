#!/usr/bin/env python3
"""DuckDB baseline for the key-figure benchmark (docs/PERFORMANCE.md, "Key figures").

Loads the incidents `kpibench export` wrote (place, created_at, state, closed_at) into an
in-memory DuckDB table, then times the district's per-street count and closure rate for
the report days FROM..TO (Asia/Shanghai) and prints p50/p95 and the answer, one line per
street, in the same format as `kpibench query`.

Bench-only: `pip install duckdb`. Never a build or test dependency.

    python3 scripts/kpi_duckdb.py FILE.csv FROM TO RUNS
"""
import datetime
import statistics
import sys
import time

import duckdb

DAY_MS = 86_400_000
SHANGHAI_MS = 8 * 3_600_000


def day_start_ms(iso: str) -> int:
    days = (datetime.date.fromisoformat(iso) - datetime.date(1970, 1, 1)).days
    return days * DAY_MS - SHANGHAI_MS


def main() -> None:
    path, first, last, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    lo, hi = day_start_ms(first), day_start_ms(last) + DAY_MS
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        "CREATE TABLE incidents AS SELECT * FROM read_csv(?, header = true, "
        "columns = {'place': 'VARCHAR', 'created_at': 'BIGINT', 'state': 'VARCHAR', 'closed_at': 'BIGINT'})",
        [path],
    )
    rows = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"duckdb {duckdb.__version__}: loaded {rows} rows in {time.perf_counter() - started:.1f} s ({threads} threads)")
    query = """
        SELECT substr(place, 1, 9) AS street,
               count(*) AS reported,
               sum(CASE WHEN state IN ('reported', 'rejected', 'merged', 'voided') THEN 0 ELSE 1 END) AS filed,
               sum(CASE WHEN closed_at IS NOT NULL THEN 1 ELSE 0 END) AS closed,
               sum(CASE WHEN closed_at IS NOT NULL THEN 1 ELSE 0 END) / sum(CASE WHEN state IN ('reported', 'rejected', 'merged', 'voided') THEN 0 ELSE 1 END) AS closure_rate
        FROM incidents
        WHERE created_at >= ? AND created_at < ? AND place LIKE '430503%' AND length(place) >= 9
        GROUP BY 1 ORDER BY 1
    """
    for _ in range(3):
        con.execute(query, [lo, hi]).fetchall()
    times = []
    answer = []
    for _ in range(runs):
        t = time.perf_counter()
        answer = con.execute(query, [lo, hi]).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[max(1, -(-len(times) * 95 // 100)) - 1]
    print(f"duckdb: district by street, {first} to {last}, {runs} runs: p50 {statistics.median(times):.2f} ms, p95 {p95:.2f} ms")
    for street, reported, filed, closed, _ in answer:
        print(f"street {street} {reported} {filed} {closed}")


if __name__ == "__main__":
    main()
