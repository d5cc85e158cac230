#!/usr/bin/env bash
# Runs Cairn's whole test suite on every backend combination:
#   1. SQLite catalog + local object store
#   2. SQLite catalog + S3 (Garage)
#   3. Postgres catalog + S3 (Garage)
# Postgres: the server at $CAIRN_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# if it answers; otherwise a throwaway cluster created here with Debian's initdb/pg_ctl (the
# `postgresql` package is installed when missing) and removed afterwards.
# S3: a single-node Garage ($GARAGE_VERSION, installed with `cargo install` when missing) on free
# loopback ports with a temp data dir (infra/garage/garage.toml), stopped when done.
# With CI=true a backend that cannot be brought up fails the run; it is never skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

PG_URL="${CAIRN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_TMP=""
PG_BIN=""
GARAGE_VERSION=2.5.0
GARAGE_TMP=""
GARAGE_PID=""
RESULTS="$(mktemp /tmp/cairn-test-output.XXXXXX)"

# One backend run: the workspace's tests; the output is kept for the closing summary.
suite() {
    CAIRN_TEST_BACKEND="$1" cargo test --workspace --locked 2>&1 | tee -a "$RESULTS"
}

# One line totalling every `test result:` line of every run.
summary() {
    grep '^test result:' "$RESULTS" | awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
         END { printf "tests: %d passed, %d failed\n", p, f }'
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
    local status=$?
    if command -v psql >/dev/null 2>&1 && psql "$PG_URL" -Atc 'select 1' >/dev/null 2>&1; then
        for db in $(psql "$PG_URL" -Atc "select datname from pg_database where datname like 'cairn_test_%'"); do
            psql "$PG_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
        done
    fi
    if [ -n "$PG_TMP" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TMP"
    fi
    if [ -n "$GARAGE_PID" ]; then
        kill "$GARAGE_PID" 2>/dev/null || true
        wait "$GARAGE_PID" 2>/dev/null || true
    fi
    [ -n "$GARAGE_TMP" ] && rm -rf "$GARAGE_TMP"
    rm -f "$RESULTS"
    exit "$status"
}
trap cleanup EXIT

pg_answers() {
    command -v psql >/dev/null 2>&1 && psql "$1" -Atc 'select 1' >/dev/null 2>&1
}

find_pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_throwaway_postgres() {
    PG_BIN="$(find_pg_bin)"
    if [ -z "$PG_BIN" ]; then
        log "installing PostgreSQL (Debian package postgresql)"
        local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null \
            || return 1
        PG_BIN="$(find_pg_bin)"
        [ -n "$PG_BIN" ] || return 1
    fi
    PG_TMP="$(mktemp -d /tmp/cairn-pg.XXXXXX)"
    chmod 755 "$PG_TMP"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_TMP"
    local port=55432
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    log "starting a throwaway PostgreSQL cluster on port $port"
    as_postgres "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null \
        || { cat "$PG_TMP/log" >&2; return 1; }
    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export PATH="$PG_BIN:$PATH"
}

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

garage_bin() {
    local bin
    bin="$(command -v garage || true)"
    [ -n "$bin" ] || bin="$HOME/.cargo/bin/garage"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "[:v]$GARAGE_VERSION\b"; then
        echo "$bin"; return 0
    fi
    log "installing Garage $GARAGE_VERSION (cargo install --debug; cached in ~/.cargo/bin for later runs)"
    cargo install --locked --debug garage --version "$GARAGE_VERSION" >&2 || return 1
    echo "$HOME/.cargo/bin/garage"
}

start_garage() {
    local bin
    bin="$(garage_bin)" || return 1
    GARAGE_TMP="$(mktemp -d /tmp/cairn-garage.XXXXXX)"
    local s3 rpc web admin
    s3=$(free_port 39000); rpc=$(free_port $((s3 + 1))); web=$(free_port $((rpc + 1))); admin=$(free_port $((web + 1)))
    sed -e "s#/var/lib/garage#$GARAGE_TMP#" \
        -e "s#REPLACE_WITH_64_HEX_CHARACTERS#$(rand_hex 32)#" \
        -e "s#127.0.0.1:3900#127.0.0.1:$s3#" -e "s#127.0.0.1:3901#127.0.0.1:$rpc#g" \
        -e "s#127.0.0.1:3902#127.0.0.1:$web#" -e "s#127.0.0.1:3903#127.0.0.1:$admin#" \
        infra/garage/garage.toml >"$GARAGE_TMP/garage.toml"
    export GARAGE_DEFAULT_ACCESS_KEY="GK$(rand_hex 12)"
    export GARAGE_DEFAULT_SECRET_KEY="$(rand_hex 32)"
    export GARAGE_DEFAULT_BUCKET=cairn-test
    log "starting Garage on 127.0.0.1:$s3"
    "$bin" -c "$GARAGE_TMP/garage.toml" server --single-node --default-access-key --default-bucket \
        >"$GARAGE_TMP/garage.log" 2>&1 &
    GARAGE_PID=$!
    local i
    for i in $(seq 1 100); do
        if "$bin" -c "$GARAGE_TMP/garage.toml" bucket info "$GARAGE_DEFAULT_BUCKET" >/dev/null 2>&1; then break; fi
        kill -0 "$GARAGE_PID" 2>/dev/null || { cat "$GARAGE_TMP/garage.log" >&2; return 1; }
        sleep 0.2
    done
    # Each test creates its own bucket through the S3 API.
    "$bin" -c "$GARAGE_TMP/garage.toml" key allow --create-bucket "$GARAGE_DEFAULT_ACCESS_KEY" >/dev/null || return 1
    export AWS_ACCESS_KEY_ID="$GARAGE_DEFAULT_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$GARAGE_DEFAULT_SECRET_KEY"
    export AWS_REGION=garage AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3" AWS_EC2_METADATA_DISABLED=true
    export CAIRN_TEST_GARAGE_BIN="$bin" CAIRN_TEST_GARAGE_CONFIG="$GARAGE_TMP/garage.toml"
    # Garage accepts but does not enforce If-None-Match on PUT.
    export CAIRN_TEST_S3_CONDITIONAL_WRITES=false
}

log "SQLite catalog + local object store"
CAIRN_TEST_STORAGE=local suite sqlite

if start_garage; then
    log "SQLite catalog + S3 (Garage)"
    CAIRN_TEST_STORAGE=s3 suite sqlite
    S3_READY=1
elif [ "${CI:-}" = "true" ]; then
    die "Garage could not be installed or started; CI does not skip a backend"
else
    log "WARNING: Garage unavailable; the S3 runs were SKIPPED (they are required in CI)"
    S3_READY=""
fi

if pg_answers "$PG_URL" || start_throwaway_postgres; then
    pg_answers "$PG_URL" || die "PostgreSQL at $PG_URL does not answer"
    if [ -n "$S3_READY" ]; then
        log "Postgres catalog ($PG_URL) + S3 (Garage)"
        CAIRN_TEST_STORAGE=s3 CAIRN_TEST_POSTGRES_URL="$PG_URL" suite postgres
    else
        log "Postgres catalog ($PG_URL) + local object store (S3 unavailable)"
        CAIRN_TEST_STORAGE=local CAIRN_TEST_POSTGRES_URL="$PG_URL" suite postgres
    fi
elif [ "${CI:-}" = "true" ]; then
    die "no PostgreSQL could be found or started; CI does not skip a backend"
else
    log "WARNING: PostgreSQL unavailable; the Postgres run was SKIPPED (it is required in CI)"
fi

summary
