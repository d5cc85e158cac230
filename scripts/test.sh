#!/usr/bin/env bash
# Runs Cairn's whole test suite on every backend combination:
#   1. SQLite catalog + local object store
#   2. SQLite catalog + S3 (Garage)
#   3. Postgres catalog + S3 (Garage)
# Postgres: the server at $CAIRN_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# if it answers; otherwise a throwaway cluster created here with Debian's initdb/pg_ctl (the
# `postgresql` package is installed when missing) and removed afterwards.
# CloudFront API: moto's server (PyPI moto[server], installed when missing) on a free loopback port.
# Browser: Debian's chromium (apt, when missing) and playwright-core (npm ci in tests/browser) for
# the dashboard test, which saves its screenshots under target/screenshots/.
# S3: a single-node Garage ($GARAGE_VERSION, installed with `cargo install` when missing) on free
# loopback ports with a temp data dir (infra/garage/garage.toml), stopped when done.
# Tests that apply to one kind of backend only are #[ignore]d and selected by name on its runs
# (SELECTED_* below); the summary says per backend how many ran and how many were selected out.
# Before the suites, static checks: cfn-lint on infra/cloudformation (zero errors), the templates
# rendered with test parameters and checked against src/ (infra/tests: cache TTLs, IAM actions
# against the SDK calls, log wiring), the CloudFront reference vectors regenerated with botocore
# and compared with the committed ones, and
# `cargo deny` (bans: the `rsa` crate stays out; advisories: the RustSec database, fetched, or
# else a plain copy of it at $CAIRN_ADVISORY_DB or ../shared/advisory-db). Missing tools are
# installed (pip, cargo install).
# With CI=true a backend that cannot be brought up fails the run; it is never skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

PG_URL="${CAIRN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_TMP=""
PG_BIN=""
# shellcheck source=lib/garage.sh
. scripts/lib/garage.sh
# shellcheck source=lib/moto.sh
. scripts/lib/moto.sh
# shellcheck source=lib/browser.sh
. scripts/lib/browser.sh
RESULTS="$(mktemp /tmp/cairn-test-output.XXXXXX)"

# Tests that mean something on one kind of backend only are `#[ignore]`d and selected here by
# name, on the runs of that backend (run anywhere else they fail: helpers::require_backend).
SELECTED_LOCAL="cors::a_browser_form_upload_is_allowed_cross_origin
objects::local_uploads_answer_problem_json"
SELECTED_S3="store_faults::part_uploads_are_retried_with_backoff_through_injected_failures
store_faults::a_store_outage_is_a_503_that_loses_nothing_and_heals_without_a_restart
delivery::objects_are_stored_with_their_cache_control
lifecycle::multipart_uploads_are_aborted_whether_the_catalog_knows_them_or_not
multipart::multipart_registration_lists_parts_itself_and_refuses_incomplete_uploads"
SELECTED_POSTGRES_S3="lifecycle_replicas::three_replicas_purge_each_expired_item_once_with_one_run_per_tick"
# Tests that need a tool this script starts (moto's CloudFront, Chromium): selected on every
# backend once the tool runs (MOTO_UP, BROWSER_UP); without it they are not run and the summary
# says so (CI refuses to go on without the tools).
SELECTED_MOTO="invalidation::queued_paths_go_out_deduplicated_in_batches_of_at_most_1000_and_once
invalidation::transient_errors_are_retried_with_backoff_without_duplicate_invalidations
invalidation::a_lost_answer_is_retried_with_the_same_caller_reference
invalidation::an_outage_longer_than_the_backoff_leaves_the_paths_queued_for_the_next_run
invalidation::a_permanent_error_fails_the_rows_once_without_retrying
invalidation::concurrent_runs_send_each_path_once
invalidation::the_worker_sends_what_is_queued_until_shutdown
invalidation::a_purges_paths_are_sent_with_the_wildcard_apart"
# Needs moto and the S3 runs' AWS credentials.
SELECTED_MOTO_S3="invalidation::connect_uses_the_aws_chain"
SELECTED_BROWSER="dashboard::an_operator_signs_in_and_sees_a_tenant_row_and_chart_in_chromium"
MOTO_UP=""
BROWSER_UP=""
# Needs a store that refuses to overwrite (If-None-Match): the local store always, S3 when
# CAIRN_TEST_S3_CONDITIONAL_WRITES is not false (Garage ignores the header).
CONDITIONAL_WRITES_TEST="objects::an_object_is_never_overwritten"
LABELS=()
NOTES=()

# One backend run, named $1 in the summary, on catalog $2: the workspace's tests, then the
# #[ignore]d tests selected for this backend ($3, one name a line). The output is kept for the
# closing summary.
suite() {
    local label="$1" catalog="$2" selected="$3"
    local out="$RESULTS.${#LABELS[@]}"
    LABELS+=("$label")
    CAIRN_TEST_BACKEND="$catalog" cargo test --workspace --locked 2>&1 | tee -a "$out"
    # shellcheck disable=SC2086 # one test name a word
    CAIRN_TEST_BACKEND="$catalog" cargo test --locked --test api -- --ignored --exact $selected 2>&1 |
        tee -a "$out.selected"
}

# The tests selected for the run on catalog $1 and store $2.
selected_for() {
    local catalog="$1" store="$2" names
    if [ "$store" = local ]; then
        names="$SELECTED_LOCAL
$CONDITIONAL_WRITES_TEST"
    else
        names="$SELECTED_S3"
        [ "$catalog" = postgres ] && names="$names
$SELECTED_POSTGRES_S3"
        [ "${CAIRN_TEST_S3_CONDITIONAL_WRITES:-true}" = false ] || names="$names
$CONDITIONAL_WRITES_TEST"
    fi
    [ -n "$MOTO_UP" ] && names="$names
$SELECTED_MOTO"
    [ -n "$MOTO_UP" ] && [ "$store" = s3 ] && names="$names
$SELECTED_MOTO_S3"
    [ -n "$BROWSER_UP" ] && names="$names
$SELECTED_BROWSER"
    echo "$names"
}

# passed, failed and ignored over every `test result:` line of the files given.
counts() {
    cat "$@" 2>/dev/null | grep '^test result:' | awk '{ for (i = 1; i <= NF; i++) {
            if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1);
            if ($i ~ /^ignored;?$/) g += $(i-1) } }
        END { printf "%d %d %d\n", p, f, g }'
}

# Per backend: the tests that ran (with those selected for it by name), and how many were
# selected out (#[ignore]d for other backends); then the total. A skipped backend is not listed.
summary() {
    local i p f g sp sf tp=0 tf=0
    for i in "${!LABELS[@]}"; do
        read -r p f g < <(counts "$RESULTS.$i")
        read -r sp sf _ < <(counts "$RESULTS.$i.selected")
        printf 'tests on %s: %d ran (%d of them selected for it by name): %d passed, %d failed; %d selected out (other backends)\n' \
            "${LABELS[$i]}" $((p + f + sp + sf)) $((sp + sf)) $((p + sp)) $((f + sf)) $((g - sp - sf))
        tp=$((tp + p + sp)); tf=$((tf + f + sf))
    done
    for note in "${NOTES[@]+"${NOTES[@]}"}"; do printf 'note: %s\n' "$note"; done
    printf 'tests: %d passed, %d failed\n' "$tp" "$tf"
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
    stop_garage
    stop_moto
    rm -f "$RESULTS" "$RESULTS".*
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
    local port
    port=$(free_port 25432)
    log "starting a throwaway PostgreSQL cluster on port $port"
    as_postgres "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null \
        || { cat "$PG_TMP/log" >&2; return 1; }
    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export PATH="$PG_BIN:$PATH"
}

pip_install() {
    log "installing $* (pip)"
    python3 -m pip install --quiet --disable-pip-version-check "$@" >&2
}

static_checks() {
    log "cfn-lint infra/cloudformation"
    python3 -c 'import cfnlint' 2>/dev/null || pip_install cfn-lint || die "cannot install cfn-lint"
    # Through the interpreter: a fresh pip install may not be on PATH yet (pyenv shims).
    python3 -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' \
        infra/cloudformation/*.yaml || die "cfn-lint found errors in infra/cloudformation"

    log "infra/tests: the templates rendered with test parameters, checked against src/"
    python3 -B -m unittest discover -s infra/tests || die "infra/tests: the templates do not match what Cairn does"

    log "CloudFront reference vectors against botocore"
    python3 -c 'import botocore, cryptography' 2>/dev/null || pip_install botocore cryptography ||
        die "cannot install botocore and cryptography"
    python3 scripts/cloudfront-vectors.py --check || die "tests/fixtures/cloudfront/vectors.json differs from botocore's output"

    log "cargo deny"
    if ! cargo deny --version >/dev/null 2>&1; then
        log "installing cargo-deny (cargo install; cached in ~/.cargo/bin)"
        cargo install --locked cargo-deny >&2 || die "cannot install cargo-deny"
    fi
    cargo deny --log-level error check bans || die "cargo deny: banned crates in the graph"
    if cargo deny --log-level error fetch db >/dev/null 2>&1; then
        cargo deny --log-level error check --disable-fetch advisories ||
            die "cargo deny: open RustSec advisories"
    else
        # This workplace reaches package registries only; the database lives in a git repository.
        # A plain copy of it stands in when there is one.
        local rc=0
        advisories_from_snapshot || rc=$?
        case $rc in
            0) ;;
            1) die "cargo deny: open RustSec advisories (snapshot database)" ;;
            *) log "WARNING: the RustSec advisory database could not be fetched and no snapshot was found; advisories NOT checked" ;;
        esac
    fi
}

# The RustSec database from a plain copy of its files ($CAIRN_ADVISORY_DB, else this workplace's
# ../shared/advisory-db): made a one-commit git repository where cargo-deny keeps the default
# database, and checked offline. 0: no advisory; 1: advisories found; 2: no snapshot.
advisories_from_snapshot() {
    local src="${CAIRN_ADVISORY_DB:-$(cd .. && pwd)/shared/advisory-db}"
    [ -f "$src/SNAPSHOT" ] || [ -d "$src/crates" ] || return 2
    local tmp rc=0
    tmp="$(mktemp -d /tmp/cairn-advisory-db.XXXXXX)"
    # The directory name cargo-deny derives from the default RustSec URL.
    cp -r "$src" "$tmp/advisory-db-3157b0e258782691"
    (cd "$tmp/advisory-db-3157b0e258782691" && git init -q && git add -A &&
        git -c user.name=cairn -c user.email=cairn@localhost commit -qm snapshot) >/dev/null || {
        rm -rf "$tmp"
        return 2
    }
    sed "s|^\[advisories\]|[advisories]\ndb-path = \"$tmp\"|" deny.toml >"$tmp/deny.toml"
    log "cargo deny advisories, offline, against the snapshot in $src ($(sed -n 's/^upstream date: *//p' "$src/SNAPSHOT" 2>/dev/null))"
    cargo deny --offline --log-level error --config "$tmp/deny.toml" check advisories || rc=1
    rm -rf "$tmp"
    return $rc
}
static_checks

# CloudFront's API (invalidations) for every run: moto's server.
if start_moto; then
    MOTO_UP=1
else
    [ "${CI:-}" = "true" ] && die "moto could not be installed or started; CI does not skip the CloudFront tests"
    log "WARNING: moto unavailable; the CloudFront invalidation tests do not run (they are required in CI)"
    NOTES+=("moto was unavailable: the $(echo "$SELECTED_MOTO" | wc -l) tests that need it did not run")
fi

# The dashboard's browser test: Debian's Chromium driven by Playwright (tests/browser).
if start_browser_tools; then
    BROWSER_UP=1
else
    [ "${CI:-}" = "true" ] && die "Chromium or Playwright could not be installed; CI does not skip the browser test"
    log "WARNING: Chromium unavailable; the dashboard browser test does not run (it is required in CI)"
    NOTES+=("Chromium was unavailable: the dashboard browser test did not run")
fi

log "SQLite catalog + local object store"
CAIRN_TEST_STORAGE=local suite "SQLite + local" sqlite "$(selected_for sqlite local)"

if start_garage; then
    log "SQLite catalog + S3 (Garage)"
    [ "${CAIRN_TEST_S3_CONDITIONAL_WRITES:-true}" = false ] &&
        NOTES+=("on S3, $CONDITIONAL_WRITES_TEST did not run: this store ignores If-None-Match (it ran on the local store)")
    CAIRN_TEST_STORAGE=s3 suite "SQLite + S3" sqlite "$(selected_for sqlite s3)"
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
        CAIRN_TEST_STORAGE=s3 CAIRN_TEST_POSTGRES_URL="$PG_URL" suite "Postgres + S3" postgres \
            "$(selected_for postgres s3)"
    else
        log "Postgres catalog ($PG_URL) + local object store (S3 unavailable)"
        CAIRN_TEST_STORAGE=local CAIRN_TEST_POSTGRES_URL="$PG_URL" suite "Postgres + local" postgres \
            "$(selected_for postgres local)"
    fi
elif [ "${CI:-}" = "true" ]; then
    die "no PostgreSQL could be found or started; CI does not skip a backend"
else
    log "WARNING: PostgreSQL unavailable; the Postgres run was SKIPPED (it is required in CI)"
fi

summary
