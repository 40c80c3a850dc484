# Shared by the HTTP bench scripts (sourced, not run): release binaries (or those in
# $CIVICGRID_BENCH_BIN), a work folder that
# is removed on exit, a store on the chosen backend ($db), and start NAME CMD…, which starts
# a program that prints its address and echoes that address (its pid goes to NAME.pid).
# Expects $backend to be sqlite or postgres.
# CIVICGRID_BENCH_BIN names a folder of binaries built earlier (to compare two builds).
if [ -n "${CIVICGRID_BENCH_BIN:-}" ]; then
  bin=$CIVICGRID_BENCH_BIN
else
  cargo build --release -q -p civicgrid -p bench --bin civicgrid --bin loadgen
  bin=target/release
fi
work=$(mktemp -d)
cleanup() { for p in "$work"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

case "$backend" in
  sqlite) db="sqlite://$work/bench.db" ;;
  postgres)
    name="civicgrid_bench_$$"
    psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $name" >/dev/null
    db="postgres://postgres@127.0.0.1:5432/$name"
    trap 'cleanup; psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null' EXIT
    ;;
  *) echo "backend is sqlite or postgres" >&2; exit 2 ;;
esac

export CIVICGRID_LOG=warn
$bin/civicgrid --db "$db" demo --population 0 > "$work/demo.out"

start() {
  local name=$1 out="$work/$1.out"; shift
  "$@" > "$out" 2>/dev/null &
  echo $! > "$work/$name.pid"
  for _ in $(seq 1 100); do
    addr=$(grep -oE '127\.0\.0\.1:[0-9]+' "$out" | head -1 || true)
    [ -n "$addr" ] && { echo "$addr"; return; }
    sleep 0.1
  done
  echo "it did not start" >&2; exit 1
}
