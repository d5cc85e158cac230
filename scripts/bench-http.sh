#!/usr/bin/env bash
# The HTTP benchmark, as users measure: a release `cairn serve` on loopback driven by wrk (Debian
# package `wrk`, installed when missing) with benches/wrk/request.lua, for each operation of
# issue 17's table at concurrency 1 and 32. Per case it prints requests/s, p50 and p99 latency,
# non-2xx answers and transport errors, and the server's CPU time per request (utime + stime
# from /proc/<pid>/stat over the run, divided by the requests: steadier than req/s on a shared
# machine); at the end the server's peak RSS (VmHWM).
#
#   scripts/bench-http.sh [--catalog sqlite|postgres] [--seconds N] [--artifacts N]
#                         [--registers N] [--only PATTERN]
#
# sqlite (default): the embedded default, a fresh temp data dir. postgres: a fresh database on
# $CAIRN_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres), dropped
# afterwards. The local object store in both. Seeding (a 1 KiB raw asset, a run of --artifacts
# private images, default 1000, and per register case --registers uploaded pending assets,
# default 20000) goes through the API before the measured runs. A register case stops when its
# assets are used up (never registering one twice): its req/s is over the time it ran.
# --only: run just the cases whose name contains PATTERN.
set -euo pipefail
cd "$(dirname "$0")/.."

CATALOG=sqlite SECONDS_PER_RUN=15 ARTIFACTS=1000 REGISTERS=20000 ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --catalog) CATALOG="$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --artifacts) ARTIFACTS="$2"; shift 2 ;;
        --registers) REGISTERS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-http.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
log() { printf '==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    log "installing wrk (apt)"
    apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked --quiet
BIN=target/release/cairn
TMP="$(mktemp -d /tmp/cairn-bench-http.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PG_URL="${CAIRN_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB=""
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    [ -n "$DB" ] && psql "$PG_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

export CAIRN_DATA_DIR="$TMP/data" CAIRN_LISTEN="127.0.0.1:$PORT" CAIRN_JOBS=off
export CAIRN_JWT_SECRET="cairn-bench-hs256-secret-0123456789abcdef" RUST_LOG=warn
# The bench opens thousands of connections; keep-alive is what wrk uses anyway.
export CAIRN_MAX_CONNECTIONS=4096
if [ "$CATALOG" = postgres ]; then
    DB="cairn_bench_$$"
    psql "$PG_URL" -qc "create database $DB" >/dev/null
    export DATABASE_URL="${PG_URL%/*}/$DB"
fi
"$BIN" serve >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$TMP/server.log" >&2; exit 1; }

TOKEN="$("$BIN" token --sub bench --tenant acme=owner --ttl 2h)"
log "seeding: a 1 KiB raw asset, $ARTIFACTS artifacts, 2 × $REGISTERS pending uploads"
eval "$(python3 scripts/bench_http_setup.py "http://127.0.0.1:$PORT" "$TOKEN" "$ARTIFACTS" "$REGISTERS" "$TMP")"
API="http://127.0.0.1:$PORT"
TICKS="$(getconf CLK_TCK)"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }

# case NAME CONCURRENCY METHOD URL [BODY] [auth] [SCRIPT]
case_() {
    local name="$1" c="$2" method="$3" url="$4" body="${5:-}" auth="${6:-auth}"
    local script="${7:-benches/wrk/request.lua}" threads out before after
    [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]] && return 0
    threads="$([ "$c" = 1 ] && echo 1 || echo 2)"
    before="$(cpu_ticks)"
    out="$(BENCH_METHOD="$method" BENCH_BODY="$body" BENCH_TOKEN="$([ "$auth" = auth ] && echo "$TOKEN")" \
        BENCH_THREADS="$threads" BENCH_IDS="${BENCH_IDS:-}" BENCH_SHA256="${SHA256:-}" \
        wrk -t"$threads" -c"$c" -d"${SECONDS_PER_RUN}s" --latency -s "$script" "$url")"
    after="$(cpu_ticks)"
    python3 - "$name" "$c" "$((after - before))" "$TICKS" <<PY
import re, sys
name, c, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = """$out"""
m = dict(kv.split("=") for kv in re.search(r"BENCH (.*)", out).group(1).split())
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
n = int(m["requests"])
secs = int(m["duration_us"]) / 1e6
cpu_us = ticks * 1e6 / hz / n if n else float("nan")
print(f"| {name} | {c} | {n / secs:,.0f} | {int(m['p50_us']) / 1000:.2f} | {int(m['p99_us']) / 1000:.2f} "
      f"| {non2xx.group(1) if non2xx else 0} | {m['errors']} | {cpu_us:,.0f} |")
PY
}

echo
echo "catalog: $CATALOG, store: local, ${SECONDS_PER_RUN} s per case, $(nproc) cores, $(date -u +%F)"
echo
echo "| operation | c | req/s | p50 ms | p99 ms | non-2xx | errors | server CPU µs/req |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for c in 1 32; do
    case_ "signed download URL" "$c" POST "$API/storage/raw/presign-download" "{\"asset_id\":\"$ASSET\"}"
    case_ "signed upload URL" "$c" POST "$API/storage/raw/presign-upload" \
        '{"filename":"b.bin","content_type":"application/octet-stream","size_bytes":1024}'
    BENCH_IDS="$([ "$c" = 1 ] && echo "$REGISTER_IDS_1" || echo "$REGISTER_IDS_32")" \
        case_ "register" "$c" POST "$API/storage/raw/register" "" auth benches/wrk/register.lua
    case_ "object metadata GET" "$c" GET "$API/storage/raw/$ASSET"
    case_ "1 KiB download via /o/" "$c" GET "$OBJECT_URL" "" noauth
    case_ "run manifest, $ARTIFACTS items" "$c" GET "$API/runs/$RUN/artifacts"
    case_ "GET /healthz" "$c" GET "$API/healthz" "" noauth
done
echo
echo "server peak RSS: $(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$PID/status")"
