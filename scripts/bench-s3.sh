#!/usr/bin/env bash
# The S3 benchmark: starts a single-node Garage (as the tests do) and runs `cargo bench --bench
# s3_upload` against it: a 1 GiB upload streamed through Cairn's store layer vs. straight to the
# store with the SDK (MB/s, peak RSS); then `--bench artifact_upload`: a 500 MiB artifact streamed
# through a real `cairn serve` (PUT /artifacts/{id}/content) vs. the SDK; then `--bench purge`: the
# lifecycle sweep purging 100,000 expired items, multi-object deletes (4 in flight, then 1) vs. one
# DeleteObject per object (objects/s). CAIRN_BENCH_UPLOAD_MIB, CAIRN_BENCH_ARTIFACT_MIB and
# CAIRN_BENCH_PURGE_ITEMS change the sizes. The tests' Garage is a debug build, which bounds every
# figure here; GARAGE_BIN=<path> runs another build instead, e.g. a release one from
# `cargo install --locked garage --version 2.5.0 --root <dir>` (GARAGE_BIN=<dir>/bin/garage).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n==> %s\n' "$*" >&2; }
. scripts/lib/garage.sh
trap stop_garage EXIT
start_garage
cargo bench --bench s3_upload
cargo bench --bench artifact_upload
cargo bench --bench purge
