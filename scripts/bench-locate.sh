#!/usr/bin/env bash
# Point → grid lookups against PostGIS in the same run (see docs/PERFORMANCE.md).
# Installs PostGIS when it is missing, makes sure the local PostgreSQL 15 is up, then runs
# the criterion bench. Extra arguments go to the bench binary (e.g. a criterion filter).
# CIVICGRID_BENCH_POSTGRES overrides the baseline's URL; with it set, nothing is installed
# or started here.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CIVICGRID_BENCH_POSTGRES:-}" ]]; then
    if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
        echo "bench-locate: installing PostGIS (postgresql-15-postgis-3)…"
        sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql-15-postgis-3
    fi
    if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "bench-locate: PostgreSQL is down, starting it…"
        sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
fi

# The bench reports when PostGIS is unreachable and still runs the in-process part.
exec cargo bench -p bench --bench locate -- "$@"
